"""Checking a config for a search, once, before anything is written: the space, the module, the data module."""

from __future__ import annotations

from dataclasses import dataclass

import lightning.pytorch as pl

from tunekit.callbacks.adopt import optimizers_of
from tunekit.config import TRAIN_LOSS, RunConfig
from tunekit.exceptions import ConfigError
from tunekit.recipe import Recipe
from tunekit.search._space import OWN_KEYS, SearchSpace
from tunekit.search._validation import is_validation_metric, no_validation_before_fit


@dataclass
class SearchPlan:
    """A config checked for a search, with its parsed space (``plan_search`` makes one).

    ``uses_recipe``: the module trains with a tunekit ``Recipe`` (it gets the sampled one). Otherwise the sampled
    recipe either replaces its ``configure_optimizers`` (``replace``: the search names ``optimizer``, as
    LightningCLI's ``optimizer:`` section does), or the module keeps its own optimizer and param groups and only
    the searched keys are set on each of its param groups; ``note`` says which, once, for the user.
    """

    config: RunConfig
    space: SearchSpace
    uses_recipe: bool = True
    replace: bool = False
    note: str | None = None
    accelerator: str = "cpu"  # what one trial's fit runs on
    world_size: int = 1  # processes one trial's fit runs on (a DDP group when > 1)

    @property
    def base(self) -> Recipe:
        return self.space.base


def plan_search(config: RunConfig) -> SearchPlan:
    """Everything that can be checked before a study is written: the space, the module, the data module.

    Raises ``ConfigError`` with one line naming the problem and the fix.
    """
    model = config.make_model()
    name = config.model_class.__name__
    own_recipe = getattr(model, "recipe", None)
    uses_recipe = isinstance(own_recipe, Recipe)
    replace = not uses_recipe and "optimizer" in config.search
    base = own_recipe if isinstance(own_recipe, Recipe) else Recipe.from_dict(
        config.recipe if replace or "optimizer" in config.recipe else {})
    space = SearchSpace.parse(config.search, base)
    space.own_optimizer = not uses_recipe and not replace
    if not uses_recipe:
        _check_optimizers(model, space, replace, name)
    if space.own_optimizer:
        extra = sorted(set(space.dimensions) - set(OWN_KEYS))
        if extra:
            raise ConfigError(f"search: {extra[0]} needs an optimizer: in search: ({name} has no tunekit Recipe and "
                              "keeps its own optimizer and schedule unless the search names optimizer:).")
    if "batch_size" in space.dimensions and not config.data_takes_batch_size:
        where = f"data: {config.data_class.__name__} takes no batch_size argument: add one to its __init__" \
            if config.data_class is not None else "the config has no data: (the module makes its own loaders)"
        raise ConfigError(f"search: batch_size is searched, but {where} or drop batch_size from search:.")
    data = config.make_data()
    if config.monitor != TRAIN_LOSS and is_validation_metric(config.monitor):
        why = no_validation_before_fit(config.resolved_trainer(), model, data)
        if why is not None:
            raise ConfigError(f"monitor {config.monitor!r} is logged by validation, which never runs: {why}.")
    space.total_steps = config.planned_steps()
    note = None
    if not uses_recipe:
        keys = ", ".join(k for k in space.dimensions if k in OWN_KEYS) or "nothing"
        note = (f"{name} has no tunekit Recipe: each trial replaces its configure_optimizers with the sampled "
                "recipe's optimizer and schedule (as LightningCLI's optimizer: section does)" if replace else
                f"{name} has no tunekit Recipe: each trial keeps its own optimizer and param groups and sets the "
                f"sampled {keys} on each of its param groups")
    accelerator, world_size = config.devices()
    return SearchPlan(config, space, uses_recipe, replace, note, accelerator, world_size)


def count_optimizers(model: pl.LightningModule) -> int | None:
    """The optimizers the module's ``configure_optimizers`` returns (None when it cannot be called before a fit,
    e.g. it reads ``self.trainer``)."""
    try:
        return len(optimizers_of(model.configure_optimizers())[0])
    except Exception:  # anything it needs from a running fit: Lightning will call it then
        return None


def several_optimizers(name: str, count: int) -> str:
    """What to say about a module with automatic optimization whose ``configure_optimizers`` returns ``count > 1``."""
    return (f"{name}.configure_optimizers returns {count} optimizers, which Lightning trains only with manual "
            "optimization: set self.automatic_optimization = False in its __init__ and step each optimizer in "
            "training_step, or return one optimizer with param groups.")


def _check_optimizers(model: pl.LightningModule, space: SearchSpace, replace: bool, name: str) -> None:
    """A module with several optimizers: trainable (manual optimization), and searched in a way that keeps them."""
    count = count_optimizers(model)
    if count is None or count < 2:
        return
    if model.automatic_optimization:
        raise ConfigError(several_optimizers(name, count))
    if replace:
        raise ConfigError(f"search: optimizer: would replace {name}'s {count} optimizers by one, which its "
                          "training_step cannot use: drop optimizer: from search: (each trial then keeps them and "
                          "scales all their LRs by one factor).")
    if space.needs_lr_range_test:
        raise ConfigError(f"search: lr: auto runs the LR range test, which drives one optimizer, but {name} has "
                          f"{count}: give lr: [low, high] (the first optimizer's LR; the others keep their ratio "
                          "to it).")
