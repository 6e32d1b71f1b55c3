"""The diagnosis rules: pure functions ``rule(record, context) -> Finding | None``.

Each rule reads a ``RunRecord`` (recorded series) and a ``RunContext`` (live optimizer settings) and
returns at most one finding with its ranked remedies. Thresholds are named constants in each module. The
statistics some rules test are public too (``saddle_grad_to_loss``, ...), so a monitor logs the number its
rule decides on.
"""

from __future__ import annotations

from collections.abc import Callable

from tunekit.diagnose._context import RunContext
from tunekit.diagnose._types import Finding
from tunekit.diagnose.rules._generalization import check_generalization_gap
from tunekit.diagnose.rules._instability import (
    check_divergence,
    check_early_instability,
    check_exploding_gradients,
    check_oscillation,
    divergence_loss_ratio,
    oscillation_amplitude,
)
from tunekit.diagnose.rules._pipeline import check_data_fault
from tunekit.diagnose.rules._progress import (
    SLOW_UPDATE_RATIO,
    check_plateau,
    check_saddle_stall,
    check_slow_convergence,
    check_vanishing_gradients,
    plateau_window_change,
    saddle_grad_to_loss,
)
from tunekit.diagnose.rules._settings import check_setting_faults, setting_fault
from tunekit.record import RunRecord

Rule = Callable[[RunRecord, RunContext], "Finding | None"]

ALL_RULES: tuple[Rule, ...] = (
    check_data_fault,
    check_divergence,
    check_exploding_gradients,
    check_vanishing_gradients,
    check_saddle_stall,
    check_early_instability,
    check_oscillation,
    check_setting_faults,
    check_slow_convergence,
    check_plateau,
    check_generalization_gap,
)

__all__ = [
    "ALL_RULES",
    "SLOW_UPDATE_RATIO",
    "Rule",
    "check_data_fault",
    "check_divergence",
    "check_early_instability",
    "check_exploding_gradients",
    "check_generalization_gap",
    "check_oscillation",
    "check_plateau",
    "check_saddle_stall",
    "check_setting_faults",
    "check_slow_convergence",
    "check_vanishing_gradients",
    "divergence_loss_ratio",
    "oscillation_amplitude",
    "plateau_window_change",
    "saddle_grad_to_loss",
    "setting_fault",
]
