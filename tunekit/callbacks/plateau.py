"""Plateau: the loss stopped improving (noise floor) or improves too slowly (LR too low)."""

from __future__ import annotations

from typing import ClassVar

from tunekit.callbacks._base import Monitor
from tunekit.diagnose.rules import (
    Rule,
    check_plateau,
    check_setting_faults,
    check_slow_convergence,
    plateau_window_change,
)
from tunekit.record import RunRecord


class PlateauMonitor(Monitor):
    """Watches the training loss for a plateau at a noise floor and for progress too slow for the step (or held
    back by a setting: clipping, weight decay, the schedule).

    Logs ``tunekit/plateau/window_change``: the statistic the rule tests, the relative change of the loss over
    its window (negative while it still falls, about zero on a plateau).
    """

    rules: ClassVar[tuple[Rule, ...]] = (check_setting_faults, check_plateau, check_slow_convergence)

    def metrics(self, record: RunRecord) -> dict[str, float]:
        return {"tunekit/plateau/window_change": plateau_window_change(record)} if len(record) >= 8 else {}
