"""Builds a recipe's optimizer and LR scheduler (plain torch: no Trainer is needed)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from tunekit.exceptions import ConfigError
from tunekit.recipe._optimizers import SCHEDULE_FREE, build_optimizer
from tunekit.recipe._schedule import ScheduleMultiplier

if TYPE_CHECKING:
    from tunekit.recipe._recipe import Recipe

PLATEAU_MONITOR = "val_loss"  # the metric ``schedule: plateau`` watches unless told otherwise (tunekit's default)


def param_groups(module: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight matrices decay; biases and normalization gains (one-dimensional) do not."""
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise ConfigError(f"{type(module).__name__} has no trainable parameters to optimize.")
    decay = [p for p in params if p.ndim >= 2]
    rest = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}] if decay else []
    return groups + ([{"params": rest, "weight_decay": 0.0}] if rest else [])


def configure_optimizers(recipe: Recipe, module: torch.nn.Module, total_steps: int | None,
                         monitor: str = PLATEAU_MONITOR) -> Any:
    """The optimizer over ``module``'s parameters and its LR schedulers, in a form
    ``LightningModule.configure_optimizers`` returns.

    Every schedule but ``plateau`` is one per-step ``LambdaLR`` spanning the recipe's ``max_steps``, else
    ``total_steps``. ``plateau`` is a chainable per-step ``LinearLR`` warmup (when there is one) and torch's
    ``ReduceLROnPlateau`` on ``monitor``, stepped by Lightning after each validation epoch; a schedule-free
    optimizer warms up inside itself (its averaging needs the warmup to be its own), so its LambdaLR is flat.
    """
    optimizer = build_optimizer(recipe, param_groups(module, recipe.weight_decay))
    own_warmup = recipe.optimizer in SCHEDULE_FREE
    warmup = 0 if own_warmup else recipe.warmup_steps
    if recipe.schedule == "plateau":
        configs: list[dict[str, Any]] = []
        if warmup > 1:  # LinearLR multiplies the current LR, so a plateau cut during the warmup is kept
            ramp = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1 / warmup, end_factor=1.0,
                                                     total_iters=warmup - 1)
            configs.append({"scheduler": ramp, "interval": "step", "frequency": 1})
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=recipe.plateau_factor,
                                                             patience=recipe.plateau_patience)
        configs.append({"scheduler": plateau, "interval": "epoch", "frequency": 1, "monitor": monitor})
        return [optimizer], configs
    multiplier = ScheduleMultiplier(warmup, recipe.max_steps or total_steps, recipe.schedule,
                                    step_every=recipe.step_every, decay_factor=recipe.decay_factor,
                                    decay_rate=recipe.decay_rate, cycle_steps=recipe.cycle_steps,
                                    restart_mult=recipe.restart_mult)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}
