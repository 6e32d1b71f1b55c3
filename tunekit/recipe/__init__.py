"""Recipes: optimizer + LR schedule (warmup, cosine) + the SWATS estimate of the two-stage Adam-then-SGD switch.

Plain torch: nothing here needs Lightning. ``tunekit.RecipeMixin`` (in ``tunekit.callbacks``) makes a
LightningModule train with a recipe.
"""

from __future__ import annotations

from tunekit.recipe._build import build_optimizer, param_groups
from tunekit.recipe._recipe import FIELDS, OPTIMIZERS, SCHEDULES, Recipe
from tunekit.recipe._schedule import ScheduleMultiplier
from tunekit.recipe._swats import SwatsEstimate

__all__ = ["FIELDS", "OPTIMIZERS", "SCHEDULES", "Recipe", "ScheduleMultiplier", "SwatsEstimate", "build_optimizer",
           "param_groups"]
