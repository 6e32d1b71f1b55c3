"""A recipe for a LightningModule that does not use one: any module, unchanged, trained with a searched recipe.

Two ways, as a user would do it by hand:

* ``replace``: the recipe's optimizer and schedule take the place of the module's ``configure_optimizers`` (what
  LightningCLI's ``optimizer:`` section does), and its callbacks (``recipe_callbacks``) join the module's own;
* otherwise the module keeps its own optimizers, param groups and schedulers, and only some recipe keys are set on
  them: the LR (the first optimizer's first group gets it, and every group of every optimizer is scaled by the same
  factor, so they keep their ratios; running schedulers are rescaled to go on from it), momentum, Adam's betas,
  weight decay.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MethodType
from typing import Any

import lightning.pytorch as pl
import torch

from tunekit.callbacks.recipe_mixin import recipe_callbacks
from tunekit.recipe import GROUP_KEYS, Recipe, apply_to_groups, rescale_schedule
from tunekit.utilities.lightning import planned_steps


def _schedulers(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [value["scheduler"]] if value.get("scheduler") is not None else []
    if isinstance(value, Sequence):
        return [s for item in value for s in _schedulers(item)]
    return [value]


def optimizers_of(conf: Any) -> tuple[list[torch.optim.Optimizer], list[Any]]:
    """The optimizers and LR schedulers in what a ``configure_optimizers`` returned, in each form Lightning
    documents: one optimizer; a list of them; two lists (optimizers, schedulers); a dict; a list of dicts.

    Example:
        >>> opt = torch.optim.SGD([torch.zeros(1)], lr=0.1)
        >>> sched = torch.optim.lr_scheduler.StepLR(opt, 10)
        >>> [len(x) for x in optimizers_of(([opt], [sched]))], [len(x) for x in optimizers_of({"optimizer": opt})]
        ([1, 1], [1, 0])
    """
    if isinstance(conf, torch.optim.Optimizer):
        return [conf], []
    if isinstance(conf, Mapping):
        return [conf["optimizer"]], _schedulers(conf.get("lr_scheduler"))
    if isinstance(conf, Sequence) and not isinstance(conf, str):
        if len(conf) == 2 and isinstance(conf[0], Sequence) and not isinstance(conf[0], Mapping):
            return list(conf[0]), _schedulers(conf[1])
        optimizers: list[torch.optim.Optimizer] = []
        schedulers: list[Any] = []
        for item in conf:
            more, scheds = optimizers_of(item)
            optimizers += more
            schedulers += scheds
        return optimizers, schedulers
    return [], []


def set_base_lr(optimizers: Sequence[torch.optim.Optimizer], schedulers: Iterable[Any], lr: float) -> None:
    """Make ``lr`` the first optimizer's first group's base LR, and scale every other group of every optimizer by
    the same factor (an SGD body at 0.05 and an Adam head at 1e-3 keep their 50:1), schedulers included.

    Example:
        >>> body = torch.optim.SGD([torch.zeros(1)], lr=0.05)
        >>> head = torch.optim.Adam([{"params": [torch.zeros(1)]}, {"params": [torch.zeros(1)], "lr": 1e-4}], lr=1e-3)
        >>> set_base_lr([body, head], [], 0.1)
        >>> [round(g["lr"], 6) for opt in (body, head) for g in opt.param_groups]
        [0.1, 0.002, 0.0002]
    """
    if not optimizers:
        return
    first = optimizers[0].param_groups[0]
    base = float(first.get("initial_lr", first["lr"]))
    factor = lr / base if base > 0 else 1.0
    for optimizer in optimizers:
        lead = optimizer.param_groups[0]
        apply_to_groups(optimizer, {"lr": float(lead["lr"]) * factor})  # its other groups keep their ratio to it
        rescale_schedule(optimizer, list(schedulers), factor)


def adopt_recipe(module: pl.LightningModule, recipe: Recipe, *, replace: bool,
                 keys: Iterable[str] = GROUP_KEYS) -> str:
    """Make ``module`` (which has no tunekit ``Recipe``) train with ``recipe``; returns a one-line note of what was
    done, for the user."""
    name = type(module).__name__
    if replace:
        def configure_optimizers(self: pl.LightningModule) -> Any:
            total = planned_steps(self.trainer) if not recipe.max_steps else None
            return recipe.configure_optimizers(self, total)

        module.configure_optimizers = MethodType(configure_optimizers, module)  # type: ignore[method-assign]
        if recipe_callbacks(recipe):
            own_callbacks = module.configure_callbacks

            def configure_callbacks(self: pl.LightningModule) -> Any:
                mine = own_callbacks()
                mine = list(mine) if isinstance(mine, Sequence) else [mine]
                return mine + recipe_callbacks(recipe)

            module.configure_callbacks = MethodType(configure_callbacks, module)  # type: ignore[method-assign]
        return (f"{name} has no tunekit Recipe: its configure_optimizers is replaced by the recipe's optimizer and "
                "schedule (as LightningCLI's optimizer: section does)")
    change = {k: getattr(recipe, k) for k in keys if k in GROUP_KEYS}
    own = module.configure_optimizers

    def configure_own(self: pl.LightningModule) -> Any:
        conf = own()
        optimizers, schedulers = optimizers_of(conf)
        if "lr" in change:
            set_base_lr(optimizers, schedulers, float(change["lr"]))
        for optimizer in optimizers:
            apply_to_groups(optimizer, {k: v for k, v in change.items() if k != "lr"})
        return conf

    module.configure_optimizers = MethodType(configure_own, module)  # type: ignore[method-assign]
    return (f"{name} has no tunekit Recipe: it keeps its own optimizer and param groups, and {', '.join(change)} "
            "are set on each of its param groups")
