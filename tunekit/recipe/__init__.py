"""Recipes: optimizer (SGD with classical or Nesterov momentum, RMSprop, Adam, AdamW) + LR schedule (warmup, then
constant, cosine, step, exponential, one-cycle or cosine with restarts) + the SWATS estimate of the two-stage
Adam-then-SGD switch.

Plain torch: nothing here needs Lightning. ``tunekit.RecipeMixin`` (in ``tunekit.callbacks``) makes a
LightningModule train with a recipe.
"""

from __future__ import annotations

from tunekit.recipe._build import build_optimizer, param_groups
from tunekit.recipe._live import GROUP_KEYS, apply_to_groups, group_lrs, rescale_schedule
from tunekit.recipe._recipe import FIELDS, OPTIMIZERS, SCHEDULE_KEYS, Recipe
from tunekit.recipe._schedule import SCHEDULES, ScheduleMultiplier
from tunekit.recipe._swats import SwatsEstimate

__all__ = ["FIELDS", "GROUP_KEYS", "OPTIMIZERS", "SCHEDULES", "SCHEDULE_KEYS", "Recipe", "ScheduleMultiplier",
           "SwatsEstimate", "apply_to_groups", "build_optimizer", "group_lrs", "param_groups", "rescale_schedule"]
