"""Generalization gap: validation loss rising while the training loss falls."""

from __future__ import annotations

from typing import ClassVar

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_warn

from tunekit.callbacks._base import Monitor
from tunekit.diagnose.rules import Rule, check_generalization_gap
from tunekit.exceptions import ConfigError


class GeneralizationGapMonitor(Monitor):
    """Records the validation loss at each validation run and watches for overfitting.

    Args:
        monitor: the logged metric holding the validation loss (``self.log("val_loss", ...)``).

    Logs ``tunekit/gap/val_loss`` at each validation run.
    """

    rules: ClassVar[tuple[Rule, ...]] = (check_generalization_gap,)

    def __init__(
        self, *, monitor: str = "val_loss",
        log_metrics: bool = True, flush_every: int = 64, update_ratio_every: int = 100,
    ) -> None:
        super().__init__(log_metrics=log_metrics, flush_every=flush_every, update_ratio_every=update_ratio_every)
        if not monitor:
            raise ConfigError("monitor must name the logged validation loss, e.g. monitor='val_loss'.")
        self.monitor = monitor
        self._key["monitor"] = monitor
        self._warned = False

    def on_validation(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            if not self._warned:
                self._warned = True
                known = ", ".join(sorted(trainer.callback_metrics)) or "none"
                rank_zero_warn(f"tunekit: no metric {self.monitor!r} was logged during validation (logged: "
                               f"{known}); the generalization-gap check needs it: pass monitor=... to name it.")
            return
        step = trainer.global_step
        val = self.recorder.history.val
        if len(val) and val.data[-1, 0] == step:
            return  # another monitor (or a second validation loader) already recorded this step
        self.recorder.add_validation(step, float(value))
        if self.log_metrics:
            for logger in trainer.loggers:
                logger.log_metrics({"tunekit/gap/val_loss": float(value)}, step=step)
