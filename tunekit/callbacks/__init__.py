"""tunekit's Lightning shells: the monitors, the ``Diagnoser`` that turns them on, the two-stage switch, the LR
range test callback, ``RecipeMixin`` and the callbacks a recipe adds (gradient noise, the schedule-free switch), and
the opt-in ``CurvatureMonitor``."""

from __future__ import annotations

from tunekit.callbacks._base import Monitor
from tunekit.callbacks.curvature import CurvatureMonitor
from tunekit.callbacks.diagnoser import DEFAULT_MONITORS, Diagnoser
from tunekit.callbacks.divergence import DivergenceMonitor
from tunekit.callbacks.generalization_gap import GeneralizationGapMonitor
from tunekit.callbacks.grad_noise import GradientNoise
from tunekit.callbacks.grad_norm import GradNormMonitor
from tunekit.callbacks.lr_range_test import LRRangeTest
from tunekit.callbacks.oscillation import OscillationMonitor
from tunekit.callbacks.plateau import PlateauMonitor
from tunekit.callbacks.plateau_resume import PlateauResume
from tunekit.callbacks.recipe_mixin import RecipeMixin, recipe_callbacks
from tunekit.callbacks.saddle import SaddleMonitor
from tunekit.callbacks.schedule_free import ScheduleFreeModes
from tunekit.callbacks.two_stage import SwitchToSGD

__all__ = [
    "DEFAULT_MONITORS",
    "CurvatureMonitor",
    "Diagnoser",
    "DivergenceMonitor",
    "GeneralizationGapMonitor",
    "GradientNoise",
    "GradNormMonitor",
    "LRRangeTest",
    "Monitor",
    "OscillationMonitor",
    "PlateauMonitor",
    "PlateauResume",
    "RecipeMixin",
    "SaddleMonitor",
    "ScheduleFreeModes",
    "SwitchToSGD",
    "recipe_callbacks",
]
