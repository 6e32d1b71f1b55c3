"""Oscillation: a loss that swings up and down without coming down."""

from __future__ import annotations

from typing import ClassVar

from tunekit.callbacks._base import Monitor
from tunekit.diagnose.rules import Rule, check_oscillation, oscillation_amplitude
from tunekit.record import RunRecord


class OscillationMonitor(Monitor):
    """Watches for oscillation: large loss swings with no net progress, far from convergence.

    Logs ``tunekit/oscillation/amplitude``: the statistic the rule tests, the loss's interquartile range over its
    median in the rule's window.
    """

    rules: ClassVar[tuple[Rule, ...]] = (check_oscillation,)

    def metrics(self, record: RunRecord) -> dict[str, float]:
        return {"tunekit/oscillation/amplitude": oscillation_amplitude(record)} if len(record) >= 8 else {}
