"""Why a fit runs no validation: a monitored validation metric can then never be logged, and a search on it would
spend every trial for nothing. Told from the config before the first trial where it can be, else from the first
trial's fit."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities.model_helpers import is_overridden

from tunekit.config import name_tokens

VALIDATION_TOKENS = ("val", "valid", "validation", "dev")  # a metric name with one of these is a validation metric


def is_validation_metric(monitor: str) -> bool:
    """``val_acc``, ``valid/loss``, ``dev_f1``: a metric only a validation run logs.

    Example:
        >>> is_validation_metric("val/acc"), is_validation_metric("train_loss"), is_validation_metric("interval")
        (True, False, False)
    """
    return any(t in VALIDATION_TOKENS for t in name_tokens(monitor))


def no_validation_before_fit(trainer: pl.Trainer, model: pl.LightningModule,
                             datamodule: pl.LightningDataModule | None) -> str | None:
    """Why a fit of ``model`` with this (not yet fitted) Trainer will run no validation; None when it will, as far
    as can be told before it runs."""
    name = type(model).__name__
    if not is_overridden("validation_step", model):
        return f"{name} defines no validation_step (add one that logs the metric)"
    if not is_overridden("val_dataloader", model) and (datamodule is None or not is_overridden("val_dataloader",
                                                                                               datamodule)):
        if datamodule is None:
            return f"{name} defines no val_dataloader and the config has no data: (add one)"
        return f"neither {type(datamodule).__name__} nor {name} defines val_dataloader (add one)"
    if trainer.limit_val_batches == 0:
        return "trainer.limit_val_batches is 0 (raise it, or leave it out)"
    every, epochs = trainer.check_val_every_n_epoch, trainer.max_epochs
    if every is not None and trainer.max_steps == -1 and epochs is not None and 0 < epochs < every:
        return (f"trainer.check_val_every_n_epoch is {every}, beyond max_epochs {epochs} (lower it, or raise "
                "max_epochs)")
    return None


def no_validation_after_fit(trainer: pl.Trainer, model: pl.LightningModule, datamodule: Any) -> str:
    """Why a finished fit ran no validation (it ran none: the caller knows)."""
    before = no_validation_before_fit(trainer, model, datamodule)
    if before is not None:
        return before
    if trainer.num_val_batches is not None and sum(trainer.num_val_batches) == 0:
        return "the validation loader yielded no batch"
    return (f"the fit ended after {trainer.global_step} steps in epoch {trainer.current_epoch + 1}, before its first "
            f"validation (check_val_every_n_epoch {trainer.check_val_every_n_epoch}, val_check_interval "
            f"{trainer.val_check_interval})")
