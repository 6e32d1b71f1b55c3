"""``lr: auto``: the LR range test once per optimizer family, stored with the study, and the first trial enqueued
at its suggestion."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import optuna

from tunekit.callbacks.adopt import adopt_recipe
from tunekit.exceptions import ConfigError
from tunekit.lr_finder import LRRangeResult, lr_range_test
from tunekit.search import _attrs as A
from tunekit.search._plan import SearchPlan
from tunekit.search._space import OWN
from tunekit.utilities.lightning import quiet_lightning

BOUNDS_BELOW, BOUNDS_ABOVE = 10.0, 3.0  # a stored test without bounds is searched from suggestion/10 to x3


def lr_ranges(study: optuna.Study, plan: SearchPlan,
              note: Callable[[str], None] | None = None) -> dict[str, tuple[float, float]]:
    """The LR range test once per optimizer family, stored with the study and reused on resume."""
    config, space = plan.config, plan.space
    bounds = {}
    for fam in space.families():
        key = A.lr_range_key(fam)
        stored = study.user_attrs.get(key)
        if stored is None:
            if note is not None:
                note(f"LR range test for {fam} (once per study) ...")
            model = config.make_model()
            if fam != OWN:
                adam = space.base.optimizer if space.base.optimizer != "sgd" else "adamw"
                recipe = space.base.replace(optimizer="sgd" if fam == "sgd" else adam, switch_to_sgd_at=None)
                if plan.uses_recipe:
                    model.recipe = recipe  # type: ignore[assignment]
                else:
                    adopt_recipe(model, recipe, replace=True)
            with quiet_lightning():
                result = lr_range_test(model, **config.range_test_data(model), monitor=config.monitor,
                                       seed=config.seed, trainer_kwargs=config.short_run_trainer_args(),
                                       budget_steps=config.planned_steps())
            if result.suggestion is None:
                raise ConfigError(f"lr: auto: the LR range test for {fam} found no learning rate ({result.reason}); "
                                  "give lr: a range instead.")
            stored = {**result.to_dict(), "measured_at": time.time()}
            study.set_user_attr(key, stored)
            if note is not None:
                note(f"LR range test for {fam}: suggestion {result.suggestion:.3g} in {result.steps} steps")
        low, high = LRRangeResult.from_dict(stored).bounds or (stored["suggestion"] / BOUNDS_BELOW,
                                                                stored["suggestion"] * BOUNDS_ABOVE)
        bounds[fam] = (float(low), float(high))
    return bounds


def enqueue_suggestion(study: optuna.Study, plan: SearchPlan) -> None:
    """Start a new study at the range test's suggestion with the recipe's own defaults: a strong first trial
    instead of a random one (the sampler takes over from the second trial)."""
    space = plan.space
    fam = space.families()[0]
    stored = study.user_attrs.get(A.lr_range_key(fam))
    if not stored or stored.get("suggestion") is None:
        return
    low, high = space.lr_bounds[fam]
    params: dict[str, Any] = {f"lr_{fam}": min(high, max(low, stored["suggestion"]))}
    optimizer = space.dimensions.get("optimizer")
    if optimizer is not None and optimizer.kind == "categorical":
        params["optimizer"] = next(c for c in optimizer.choices if (c == "sgd") == (fam == "sgd"))
    for name in ("beta1", "beta2", "momentum"):
        dim = space.dimensions.get(name)
        default = getattr(space.base, name)
        if dim is not None and dim.kind == "float" and dim.low <= default <= dim.high:
            params[name] = default
    study.enqueue_trial(params, user_attrs={A.START: "lr range test suggestion"})
