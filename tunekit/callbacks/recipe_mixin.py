"""A mixin that makes a LightningModule train with its ``recipe`` attribute."""

from __future__ import annotations

from typing import Any

from tunekit.callbacks.two_stage import SwitchToSGD
from tunekit.exceptions import ConfigError
from tunekit.recipe import Recipe
from tunekit.utilities.lightning import planned_steps


class RecipeMixin:
    """Gives a LightningModule ``configure_optimizers`` and ``configure_callbacks`` from ``self.recipe``.

    The optimizer and LR schedule come from the recipe (a cosine spans the recipe's ``max_steps``, else the
    Trainer's planned steps); ``switch_to_sgd_at`` adds the ``SwitchToSGD`` callback.

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
        if recipe.switch_to_sgd_at is not None and trainer is not None and not any(
                isinstance(cb, SwitchToSGD) for cb in trainer.callbacks):
            raise ConfigError("switch_to_sgd_at needs the SwitchToSGD callback in the Trainer: return "
                              "RecipeMixin.configure_callbacks(self) from your module's configure_callbacks.")
        total = planned_steps(trainer) if trainer is not None and not recipe.max_steps else None
        return recipe.configure_optimizers(self, total)

    def configure_callbacks(self) -> Any:
        recipe = self._recipe()
        if recipe.switch_to_sgd_at is None:
            return []
        return [SwitchToSGD(at=recipe.switch_to_sgd_at, momentum=recipe.momentum)]
