"""Saddle stall: a flat loss near its start with a tiny gradient."""

from __future__ import annotations

from typing import ClassVar

from tunekit.callbacks._base import Monitor
from tunekit.diagnose import RunRecord
from tunekit.diagnose._stats import median
from tunekit.diagnose.rules import Rule, check_saddle_stall


class SaddleMonitor(Monitor):
    """Watches for a saddle stall: high, flat loss while the gradient norm is tiny relative to it.

    Logs ``tunekit/saddle/grad_to_loss``: the recent gradient norm over the recent loss.
    """

    rules: ClassVar[tuple[Rule, ...]] = (check_saddle_stall,)

    def metrics(self, record: RunRecord) -> dict[str, float]:
        if len(record) < 8:
            return {}
        return {"tunekit/saddle/grad_to_loss": median(record.grad_norm[-32:]) / max(median(record.loss[-32:]), 1e-12)}
