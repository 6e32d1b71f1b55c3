"""Plateau: the loss stopped improving (noise floor) or improves too slowly (LR too low)."""

from __future__ import annotations

from typing import ClassVar

from tunekit.callbacks._base import Monitor
from tunekit.diagnose import RunRecord
from tunekit.diagnose._stats import halves_change, recent_window
from tunekit.diagnose.rules import Rule, check_plateau, check_slow_convergence


class PlateauMonitor(Monitor):
    """Watches the training loss for a plateau at a noise floor and for progress too slow for the step.

    Logs ``tunekit/plateau/window_change``: the relative change of the loss over the recent window
    (negative while it still falls, about zero on a plateau).
    """

    rules: ClassVar[tuple[Rule, ...]] = (check_plateau, check_slow_convergence)

    def metrics(self, record: RunRecord) -> dict[str, float]:
        n = recent_window(len(record), 0.3, 40, 1000)
        return {"tunekit/plateau/window_change": halves_change(record.loss[-n:])} if len(record) >= 8 else {}
