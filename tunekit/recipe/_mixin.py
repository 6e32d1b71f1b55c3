"""A mixin that makes a LightningModule train with its ``recipe`` attribute."""

from __future__ import annotations

from typing import Any

from tunekit.exceptions import ConfigError
from tunekit.recipe._recipe import Recipe


class RecipeMixin:
    """Give a LightningModule ``configure_optimizers`` and ``configure_callbacks`` from ``self.recipe``.

    Example:
        >>> import lightning.pytorch as pl
        >>> from tunekit import Recipe
        >>> from tunekit.recipe import RecipeMixin
        >>> class Net(RecipeMixin, pl.LightningModule):
        ...     def __init__(self, recipe=None):
        ...         super().__init__()
        ...         self.recipe = Recipe.from_dict(recipe or {})
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
        return self._recipe().configure_optimizers(self)

    def configure_callbacks(self) -> Any:
        return self._recipe().callbacks()
