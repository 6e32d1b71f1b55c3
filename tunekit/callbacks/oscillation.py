"""Oscillation: a loss that swings up and down without coming down."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from tunekit.callbacks._base import Monitor
from tunekit.diagnose import RunRecord
from tunekit.diagnose._stats import median
from tunekit.diagnose.rules import Rule, check_oscillation


class OscillationMonitor(Monitor):
    """Watches for oscillation: large loss swings with no net progress, far from convergence.

    Logs ``tunekit/oscillation/amplitude``: the recent loss standard deviation over its median.
    """

    rules: ClassVar[tuple[Rule, ...]] = (check_oscillation,)

    def metrics(self, record: RunRecord) -> dict[str, float]:
        if len(record) < 8:
            return {}
        window = record.loss[-64:]
        return {"tunekit/oscillation/amplitude": float(np.std(window)) / max(median(window), 1e-12)}
