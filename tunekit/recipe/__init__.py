"""Recipes: optimizer + LR schedule (warmup, cosine) + the two-stage Adam-then-SGD switch."""

from __future__ import annotations

from tunekit.recipe._build import build_optimizer, param_groups
from tunekit.recipe._mixin import RecipeMixin
from tunekit.recipe._recipe import FIELDS, OPTIMIZERS, SCHEDULES, Recipe
from tunekit.recipe._schedule import ScheduleMultiplier

__all__ = ["FIELDS", "OPTIMIZERS", "SCHEDULES", "Recipe", "RecipeMixin", "ScheduleMultiplier", "build_optimizer",
           "param_groups"]
