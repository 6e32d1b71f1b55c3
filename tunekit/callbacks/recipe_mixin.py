"""A mixin that makes a LightningModule train with its ``recipe`` attribute, and the callbacks a recipe needs."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import Callback

from tunekit.callbacks.grad_noise import GradientNoise
from tunekit.callbacks.plateau_resume import PlateauResume
from tunekit.callbacks.schedule_free import ScheduleFreeModes
from tunekit.callbacks.two_stage import SwitchToSGD
from tunekit.exceptions import ConfigError
from tunekit.recipe import SCHEDULE_FREE, Recipe
from tunekit.utilities.lightning import planned_steps


def recipe_callbacks(recipe: Recipe) -> list[Callback]:
    """The callbacks a recipe needs beside its optimizer and schedulers: ``SwitchToSGD`` for ``switch_to_sgd_at``,
    ``GradientNoise`` for ``grad_noise``, ``ScheduleFreeModes`` for a schedule-free optimizer, ``PlateauResume`` for
    ``schedule: plateau``.

    Example:
        >>> [type(c).__name__ for c in recipe_callbacks(Recipe(optimizer="adam", grad_noise=0.01,
        ...                                                    switch_to_sgd_at=0.8))]
        ['SwitchToSGD', 'GradientNoise']
    """
    callbacks: list[Callback] = []
    if recipe.switch_to_sgd_at is not None:
        callbacks.append(SwitchToSGD(at=recipe.switch_to_sgd_at, momentum=recipe.momentum))
    if recipe.grad_noise is not None:
        callbacks.append(GradientNoise(recipe.grad_noise))
    if recipe.optimizer in SCHEDULE_FREE:
        callbacks.append(ScheduleFreeModes())
    if recipe.schedule == "plateau":
        callbacks.append(PlateauResume())
    return callbacks


class RecipeMixin:
    """Gives a LightningModule ``configure_optimizers`` and ``configure_callbacks`` from ``self.recipe``.

    The optimizer and LR schedule come from the recipe (a cosine spans the recipe's ``max_steps``, else the
    Trainer's planned steps; ``schedule: plateau`` watches ``self.recipe_monitor``, ``val_loss`` unless set); the
    callbacks of ``recipe_callbacks`` join the Trainer's.

    Example:
        >>> import lightning.pytorch as pl
        >>> from tunekit import Recipe, RecipeMixin
        >>> class Net(RecipeMixin, pl.LightningModule):
        ...     def __init__(self, recipe=None):
        ...         super().__init__()
        ...         self.recipe = Recipe.from_dict(recipe or {})
        >>> Net({"lr": 0.01}).recipe.lr
        0.01
    """

    recipe: Recipe
    recipe_monitor: str = "val_loss"  # the logged metric ``schedule: plateau`` watches

    def _recipe(self) -> Recipe:
        recipe = getattr(self, "recipe", None)
        if isinstance(recipe, dict):
            recipe = self.recipe = Recipe.from_dict(recipe)
        if not isinstance(recipe, Recipe):
            raise ConfigError(f"{type(self).__name__} has no recipe: set self.recipe = tunekit.Recipe(...) in "
                              "__init__ (or pass one to the module).")
        return recipe

    def configure_optimizers(self) -> Any:
        recipe = self._recipe()
        trainer = getattr(self, "_trainer", None)
        if trainer is not None:
            present = {type(cb) for cb in trainer.callbacks}
            missing = [cb for cb in recipe_callbacks(recipe) if type(cb) not in present]
            if missing:
                key = {SwitchToSGD: "switch_to_sgd_at", GradientNoise: "grad_noise", PlateauResume: "schedule: plateau",
                       }.get(type(missing[0]), f"optimizer={recipe.optimizer!r}")
                raise ConfigError(f"{key} needs the {type(missing[0]).__name__} callback in the Trainer: return "
                                  "RecipeMixin.configure_callbacks(self) from your module's configure_callbacks.")
        total = planned_steps(trainer) if trainer is not None and not recipe.max_steps else None
        return recipe.configure_optimizers(self, total, monitor=self.recipe_monitor)

    def configure_callbacks(self) -> Any:
        return recipe_callbacks(self._recipe())
