"""Recipes: optimizer (torch's SGD with classical or Nesterov momentum, RMSprop, Adam, AdamW, Adagrad, RAdam, NAdam,
L-BFGS; LAMB, AdaBound, Prodigy and schedule-free AdamW/SGD from the ``optimizers`` extra; optionally inside
Lookahead) + LR schedule (warmup, then constant, cosine, step, exponential, one-cycle, cosine with restarts or
reduce-on-plateau) + the SWATS estimate of the two-stage Adam-then-SGD switch.

Plain torch: nothing here needs Lightning. ``tunekit.RecipeMixin`` (in ``tunekit.callbacks``) makes a
LightningModule train with a recipe.
"""

from __future__ import annotations

from tunekit.recipe._build import param_groups
from tunekit.recipe._live import GROUP_KEYS, apply_to_groups, group_lrs, rescale_schedule
from tunekit.recipe._noise import add_grad_noise, noise_std
from tunekit.recipe._optimizers import SCHEDULE_FREE, build_optimizer, check_installed, inner_optimizer
from tunekit.recipe._recipe import FIELDS, OPTIMIZERS, SCHEDULE_KEYS, Recipe
from tunekit.recipe._schedule import SCHEDULES, ScheduleMultiplier
from tunekit.recipe._swats import SwatsEstimate

__all__ = ["FIELDS", "GROUP_KEYS", "OPTIMIZERS", "SCHEDULES", "SCHEDULE_FREE", "SCHEDULE_KEYS", "Recipe",
           "ScheduleMultiplier", "SwatsEstimate", "add_grad_noise", "apply_to_groups", "build_optimizer",
           "check_installed", "group_lrs", "inner_optimizer", "noise_std", "param_groups", "rescale_schedule"]
