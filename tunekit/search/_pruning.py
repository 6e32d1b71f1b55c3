"""Pruning that sees every validation run.

optuna-integration's ``PyTorchLightningPruningCallback`` reports by epoch: a run validated several times an epoch
reports the same step again (Optuna ignores all but the first report of a step), and a run of one epoch or of
``max_steps`` is never pruned while the pruner waits out its first epoch. Under DDP it also refuses storages other
than a database. This one reports after every validation run and stops the fit on every rank when the pruner says
so.

Its step index is the validation's ordinal (1, 2, ...): the same point of training in every trial of a study, whatever
batch size a trial drew. An optimizer-step (or samples-seen) index would not line up across batch sizes, and Optuna's
median and percentile pruners compare trials only at equal steps.
"""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl
import optuna


class ValidationPruning(pl.Callback):
    """Report ``monitor`` to the trial after each validation run and stop the fit when the trial should be pruned.

    Rank zero (the only rank holding the trial) decides; the decision is broadcast, so every rank of a DDP group
    stops at the same step. ``trial=None`` is a follower rank: it takes rank zero's decision.

    Example:
        >>> study = optuna.create_study()
        >>> ValidationPruning(study.ask(), "val_loss").reported
        0
    """

    def __init__(self, trial: optuna.Trial | None, monitor: str) -> None:
        self.trial = trial
        self.monitor = monitor
        self.reported = 0  # validation runs reported so far: the step index of the next one
        self.pruned: str | None = None  # why the fit was stopped, when it was

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self.reported += 1
        decision: str | None = None
        if trainer.is_global_zero and self.trial is not None:
            value = trainer.callback_metrics.get(self.monitor)
            if value is not None and math.isfinite(float(value)):
                self.trial.report(float(value), step=self.reported)
                if self.trial.should_prune():
                    decision = (f"pruned at validation {self.reported} (step {trainer.global_step}): "
                                f"{self.monitor} {float(value):.4g}")
        decision = trainer.strategy.broadcast(decision, src=0)
        if decision is not None:
            self.pruned = decision
            trainer.should_stop = True

    def state_dict(self) -> dict[str, Any]:
        return {"reported": self.reported}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.reported = int(state_dict.get("reported", 0))
