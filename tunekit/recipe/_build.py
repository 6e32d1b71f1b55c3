"""Builds a recipe's optimizer and per-step LR scheduler (plain torch: no Trainer is needed)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from tunekit.exceptions import ConfigError
from tunekit.recipe._schedule import ScheduleMultiplier

if TYPE_CHECKING:
    from tunekit.recipe._recipe import Recipe


def param_groups(module: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight matrices decay; biases and normalization gains (one-dimensional) do not."""
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise ConfigError(f"{type(module).__name__} has no trainable parameters to optimize.")
    decay = [p for p in params if p.ndim >= 2]
    rest = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}] if decay else []
    return groups + ([{"params": rest, "weight_decay": 0.0}] if rest else [])


def build_optimizer(recipe: Recipe, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov)
    if recipe.optimizer == "rmsprop":
        return torch.optim.RMSprop(groups, lr=recipe.lr, alpha=recipe.beta2, momentum=recipe.momentum)
    cls = torch.optim.AdamW if recipe.optimizer == "adamw" else torch.optim.Adam
    return cls(groups, lr=recipe.lr, betas=(recipe.beta1, recipe.beta2))


def configure_optimizers(recipe: Recipe, module: torch.nn.Module, total_steps: int | None) -> dict[str, Any]:
    """The optimizer over ``module``'s parameters and a per-step LR schedule spanning the recipe's ``max_steps``,
    else ``total_steps``; in the form ``LightningModule.configure_optimizers`` returns."""
    optimizer = build_optimizer(recipe, param_groups(module, recipe.weight_decay))
    multiplier = ScheduleMultiplier(recipe.warmup_steps, recipe.max_steps or total_steps, recipe.schedule,
                                    step_every=recipe.step_every, decay_factor=recipe.decay_factor,
                                    decay_rate=recipe.decay_rate, cycle_steps=recipe.cycle_steps,
                                    restart_mult=recipe.restart_mult)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}
