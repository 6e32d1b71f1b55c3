"""A checkpoint taken at the end of an epoch holds the reduce-on-plateau state with that epoch counted.

Lightning steps a ``ReduceLROnPlateau`` after ``on_train_epoch_end``, that is after ``ModelCheckpoint`` saved the
epoch's checkpoint, and skips that step when it resumes from the checkpoint: without this callback a resumed fit
never counts the checkpoint's epoch, and cuts the LR one epoch later than an unbroken fit.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback


class PlateauResume(Callback):
    """On a checkpoint saved at the end of a training epoch, before Lightning stepped its plateau schedulers, store
    each ``ReduceLROnPlateau`` (and its optimizer's LRs) as they will be once it has seen this epoch's metric; the
    running fit is left as it was (its scheduler takes that step itself a moment later)."""

    def __init__(self) -> None:  # no arguments (an explicit signature LightningCLI can read)
        super().__init__()

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        if "lr_schedulers" not in checkpoint or not trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            return  # a mid-epoch save: the plateau schedulers step at the epoch's end, not here
        for index, config in enumerate(trainer.lr_scheduler_configs):
            scheduler = config.scheduler
            if not isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau) or config.interval != "epoch":
                continue
            metric = trainer.callback_metrics.get(config.monitor) if config.monitor else None
            pending = scheduler.last_epoch == trainer.current_epoch  # it has stepped once per finished epoch
            if metric is None or not pending or (trainer.current_epoch + 1) % config.frequency:
                continue
            optimizer = scheduler.optimizer
            saved, lrs = scheduler.state_dict(), [group["lr"] for group in optimizer.param_groups]
            scheduler.step(float(metric))
            checkpoint["lr_schedulers"][index] = scheduler.state_dict()
            position = next(i for i, o in enumerate(trainer.optimizers) if o is optimizer)
            for group, new in zip(_param_groups(checkpoint["optimizer_states"][position]), optimizer.param_groups,
                                  strict=True):
                group["lr"] = new["lr"]
            scheduler.load_state_dict(saved)
            for group, lr in zip(optimizer.param_groups, lrs, strict=True):
                group["lr"] = lr


def _param_groups(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The param groups of an optimizer's state dict; a Lookahead's are those of the optimizer it wraps."""
    if "param_groups" in state:
        return state["param_groups"]
    return _param_groups(state["base_optimizer"])
