"""The diagnosis rules: pure functions ``rule(record, context) -> Finding | None``.

Each rule reads a ``RunRecord`` (recorded series) and a ``RunContext`` (live optimizer settings) and
returns at most one finding with its ranked remedies. Thresholds are named constants in each module.
"""

from __future__ import annotations

from collections.abc import Callable

from tunekit.diagnose._record import RunContext, RunRecord
from tunekit.diagnose._types import Finding
from tunekit.diagnose.rules._generalization import check_generalization_gap
from tunekit.diagnose.rules._instability import (
    check_divergence,
    check_early_instability,
    check_exploding_gradients,
    check_oscillation,
)
from tunekit.diagnose.rules._progress import (
    check_plateau,
    check_saddle_stall,
    check_slow_convergence,
    check_vanishing_gradients,
)

Rule = Callable[[RunRecord, RunContext], "Finding | None"]

ALL_RULES: tuple[Rule, ...] = (
    check_divergence,
    check_exploding_gradients,
    check_vanishing_gradients,
    check_saddle_stall,
    check_early_instability,
    check_oscillation,
    check_slow_convergence,
    check_plateau,
    check_generalization_gap,
)

__all__ = [
    "ALL_RULES",
    "Rule",
    "check_divergence",
    "check_early_instability",
    "check_exploding_gradients",
    "check_generalization_gap",
    "check_oscillation",
    "check_plateau",
    "check_saddle_stall",
    "check_slow_convergence",
    "check_vanishing_gradients",
]
