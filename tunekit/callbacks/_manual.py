"""The training loss of a module that optimizes by hand (``automatic_optimization = False``).

Such a ``training_step`` may return nothing: Lightning has no loss to hand the callbacks. The loss is read where
it goes through Lightning anyway: ``manual_backward(loss)`` (wrapped for the fit, the tensor kept on its device, no
host sync), else the training loss the step logged (``trainer.callback_metrics``). When neither holds one, the
run's loss-based checks cannot see anything, and that is said once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info

# the names a training loss is logged under (``self.log("train_loss", ...)``), most common first
LOGGED_LOSS_KEYS = ("train_loss", "train_loss_step", "train/loss", "training_loss", "loss")


class ManualLoss:
    """Collects the losses a module passes to ``manual_backward`` during a batch."""

    def __init__(self) -> None:
        self._losses: list[torch.Tensor] = []
        self._module: pl.LightningModule | None = None
        self._said = False

    def attach(self, module: pl.LightningModule) -> None:
        """Wrap ``module.manual_backward`` for the fit (only under manual optimization)."""
        if module.automatic_optimization or self._module is module:
            return
        original: Callable[..., None] = module.manual_backward
        losses = self._losses

        def manual_backward(loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
            losses.append(loss.detach())
            original(loss, *args, **kwargs)

        module.manual_backward = manual_backward  # type: ignore[method-assign]
        self._module = module

    def detach(self) -> None:
        """Put the module's own ``manual_backward`` back."""
        if self._module is not None:
            self._module.__dict__.pop("manual_backward", None)
            self._module = None
        self._losses.clear()

    def loss(self, outputs: Any, trainer: pl.Trainer) -> Any:
        """The batch's loss: what ``training_step`` returned when it holds one, else the mean of the losses passed
        to ``manual_backward`` in the batch, else the logged training loss; None (said once) when there is none."""
        returned = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if self._module is None:  # automatic optimization: nothing wrapped, nothing collected (the per-step path)
            return returned
        losses, self._losses[:] = list(self._losses), []
        if isinstance(returned, torch.Tensor):
            return returned
        if losses:
            return losses[0] if len(losses) == 1 else torch.stack([t.float() for t in losses]).mean()
        for key in LOGGED_LOSS_KEYS:
            value = trainer.callback_metrics.get(key)
            if isinstance(value, torch.Tensor):
                return value
        if not self._said:
            self._said = True
            rank_zero_info("tunekit: this module optimizes by hand and its training_step returned no loss, passed none "
                           "to manual_backward and logged none as train_loss: the checks that read the loss see "
                           "nothing (return the loss, or self.log('train_loss', loss)).")
        return None
