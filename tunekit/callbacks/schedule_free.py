"""The train/eval switch a schedule-free optimizer needs, done around validation, checkpoints and the end of the fit.

A schedule-free optimizer (Defazio et al. 2024) trains on an interpolation ``y`` of its averaged iterate ``x`` and
its base iterate ``z``; the weights to evaluate and to keep are ``x``. Its package asks the user to call
``optimizer.train()`` before training steps and ``optimizer.eval()`` before evaluating or saving; this callback does.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

from tunekit.recipe import inner_optimizer


def _schedule_free(trainer: pl.Trainer) -> list[Any]:
    """The Trainer's optimizers that have the schedule-free switch (``train``/``eval`` and a ``train_mode`` flag)."""
    found = []
    for optimizer in trainer.optimizers:
        inner = inner_optimizer(optimizer)
        if callable(getattr(inner, "eval", None)) and "train_mode" in inner.param_groups[0]:
            found.append(inner)
    return found


def in_train_mode(optimizer: Any) -> bool:
    return bool(inner_optimizer(optimizer).param_groups[0].get("train_mode", False))


class ScheduleFreeModes(Callback):
    """Keeps a schedule-free optimizer in train mode for training steps and in eval mode otherwise.

    * train mode at the start of each training batch (the weights become ``y``);
    * eval mode at the start of validation and at the end of the fit (the weights become ``x``), so validation,
      a later ``trainer.test`` and the module after ``fit`` see the averaged weights;
    * a checkpoint saved during training holds ``x`` and the optimizer state in eval mode (the weights and the
      flag agree, so a resumed fit switches back to ``y`` at its first batch).

    Optimizers without the switch are left alone, so the callback is harmless with any other optimizer.
    """

    def __init__(self) -> None:  # no arguments (an explicit signature LightningCLI can read)
        super().__init__()

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        for optimizer in _schedule_free(trainer):
            optimizer.train()

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for optimizer in _schedule_free(trainer):
            optimizer.eval()

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for optimizer in _schedule_free(trainer):
            optimizer.eval()

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        # Lightning gathered the weights and optimizer states before this hook: when they were taken in train mode
        # (a mid-epoch save), they are taken again in eval mode, then training goes on in train mode.
        training = [o for o in _schedule_free(trainer) if o.param_groups[0]["train_mode"]]
        if not training:
            return
        for optimizer in training:
            optimizer.eval()
        if "state_dict" in checkpoint:  # copies: the state dict shares storage with the weights train() moves back
            checkpoint["state_dict"] = {k: v.clone() if isinstance(v, torch.Tensor) else v
                                        for k, v in trainer.strategy.lightning_module_state_dict().items()}
        if "optimizer_states" in checkpoint:
            checkpoint["optimizer_states"] = [trainer.strategy.optimizer_state(o) for o in trainer.optimizers]
        for optimizer in training:
            optimizer.train()
