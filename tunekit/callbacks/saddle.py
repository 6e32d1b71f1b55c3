"""Saddle stall: a flat loss near its start with a tiny gradient."""

from __future__ import annotations

from typing import ClassVar

from tunekit.callbacks._base import Monitor
from tunekit.diagnose.rules import Rule, check_saddle_stall, saddle_grad_to_loss
from tunekit.record import RunRecord


class SaddleMonitor(Monitor):
    """Watches for a saddle stall: high, flat loss while every layer's gradient is tiny relative to it.

    Logs ``tunekit/saddle/grad_to_loss``: the statistic the rule tests, the largest layer's weight-gradient norm
    over the loss in the rule's window.
    """

    rules: ClassVar[tuple[Rule, ...]] = (check_saddle_stall,)

    def metrics(self, record: RunRecord) -> dict[str, float]:
        return {"tunekit/saddle/grad_to_loss": saddle_grad_to_loss(record)} if len(record) >= 8 else {}
