"""Divergence: stops the fit within a step of a non-finite loss, like ``EarlyStopping(check_finite=True)``."""

from __future__ import annotations

from typing import ClassVar

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_warn

from tunekit.callbacks._base import Monitor
from tunekit.diagnose.rules import (
    Rule,
    check_data_fault,
    check_divergence,
    check_early_instability,
    divergence_loss_ratio,
)
from tunekit.record import RunRecord


class DivergenceMonitor(Monitor):
    """Watches for a loss or gradient that blows up, and stops the fit on a non-finite one.

    Args:
        check_finite: stop the fit within one step of a NaN/inf loss or gradient norm (continuing only
            burns compute on a broken model). Under fp16 loss scaling an inf gradient is a skipped step,
            so only the loss counts there.

    Logs ``tunekit/divergence/loss_ratio``: the statistic the rule tests, the recent loss over the initial loss.
    """

    rules: ClassVar[tuple[Rule, ...]] = (check_data_fault, check_divergence, check_early_instability)

    def __init__(
        self, *, check_finite: bool = True,
        log_metrics: bool = True, flush_every: int = 64, update_ratio_every: int = 100,
    ) -> None:
        super().__init__(log_metrics=log_metrics, flush_every=flush_every, update_ratio_every=update_ratio_every)
        self.check_finite = check_finite
        self._key["check_finite"] = check_finite
        self.stopped_at: int | None = None

    def on_signals(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *, nonfinite: bool) -> None:
        super().on_signals(trainer, pl_module, nonfinite=nonfinite)
        bad = self.recorder.first_nonfinite_step
        if nonfinite and self.check_finite and bad is not None and self.stopped_at is None:
            self.stopped_at = trainer.global_step
            trainer.should_stop = True
            rank_zero_warn(f"tunekit: the loss or gradient became non-finite at step {bad}; stopping the fit "
                           "(DivergenceMonitor(check_finite=False) trains on).", category=UserWarning)

    def metrics(self, record: RunRecord) -> dict[str, float]:
        return {"tunekit/divergence/loss_ratio": divergence_loss_ratio(record)}
