"""Checking a config for a search, once, before anything is written: the space, the module, the data module."""

from __future__ import annotations

from dataclasses import dataclass

from tunekit.config import RunConfig
from tunekit.exceptions import ConfigError
from tunekit.recipe import Recipe
from tunekit.search._space import SearchSpace


@dataclass
class SearchPlan:
    """A config checked for a search, with its parsed space (``plan_search`` makes one)."""

    config: RunConfig
    space: SearchSpace

    @property
    def base(self) -> Recipe:
        return self.space.base


def plan_search(config: RunConfig) -> SearchPlan:
    """Everything that can be checked before a study is written: the space, the module, the data module.

    Raises ``ConfigError`` with one line naming the problem and the fix.
    """
    model = config.make_model()
    base = getattr(model, "recipe", None)
    if not isinstance(base, Recipe):
        raise ConfigError(f"model: {config.model_class.__name__} does not train with a tunekit Recipe: inherit "
                          "tunekit.RecipeMixin (or return self.recipe.configure_optimizers(self)) and set "
                          "self.recipe in __init__.")
    space = SearchSpace.parse(config.search, base)
    space.total_steps = config.planned_steps()
    if "batch_size" in space.dimensions and not config.data_takes_batch_size:
        raise ConfigError(f"search: batch_size is searched, but data: {config.data_class.__name__} takes no "
                          "batch_size argument: add one to its __init__ or drop batch_size from search:.")
    config.make_data()
    return SearchPlan(config, space)
