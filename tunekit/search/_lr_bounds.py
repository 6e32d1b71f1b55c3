"""``lr: auto``: the LR range test once per optimizer family, stored with the study, and the first trial enqueued
at its suggestion."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import optuna

from tunekit.callbacks.adopt import adopt_recipe
from tunekit.exceptions import ConfigError
from tunekit.lr_finder import LRRangeResult, lr_range_test
from tunekit.recipe import SCHEDULE_FREE, Recipe
from tunekit.search import _attrs as A
from tunekit.search._plan import SearchPlan
from tunekit.search._space import OWN, family, family_label, lr_param
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
                note(f"LR range test for {family_label(fam)} (once per study) ...")
            pl.seed_everything(config.seed, verbose=False)  # the model's init and its data follow the study's seed
            model = config.make_model()
            if fam != OWN:
                recipe = range_test_recipe(space.base, fam)
                if plan.uses_recipe:
                    model.recipe = recipe  # type: ignore[assignment]
                else:
                    adopt_recipe(model, recipe, replace=True)
            data = config.range_test_data(model)
            try:
                with quiet_lightning():
                    result = lr_range_test(model, **data, monitor=config.range_test_monitor, seed=config.seed,
                                           trainer_kwargs=config.short_run_trainer_args())
            except ValueError as err:  # what the range test cannot drive (several optimizers counted at fit time)
                raise ConfigError(f"search: lr: auto: the LR range test cannot run on {type(model).__name__}: "
                                  f"{str(err).strip().splitlines()[0]} Give lr: [low, high] instead.") from None
            if result.suggestion is None:  # the test never blocks the search: a wide range, narrowed by the trials
                result.bounds = result.fallback_bounds()
                if note is not None:
                    note(f"LR range test for {family_label(fam)}: no suggestion ({result.reason}); searching the "
                         f"wide range {result.bounds[0]:.2g} .. {result.bounds[1]:.2g} instead")
            elif note is not None:
                note(f"LR range test for {family_label(fam)}: suggestion {result.suggestion:.3g} in {result.steps} "
                     "optimizer steps")
            stored = {**result.to_dict(), "measured_at": time.time(), "batch_size": _batch_size(data)}
            if result.suggestion is not None and result.bounds:  # searched centred on the suggestion (TPE's prior)
                stored.update(range_test_bounds=list(result.bounds),
                              bounds=list(centred_bounds(result.suggestion, *result.bounds)))
            study.set_user_attr(key, stored)
        low, high = LRRangeResult.from_dict(stored).bounds or (stored["suggestion"] / BOUNDS_BELOW,
                                                                stored["suggestion"] * BOUNDS_ABOVE)
        bounds[fam] = (float(low), float(high))
        space.lr_batch_size = stored.get("batch_size")
    return bounds


def centred_bounds(suggestion: float, low: float, high: float) -> tuple[float, float]:
    """The LR range a family is searched over: as many decades as the range test's ``(low, high)``, centred (on a log
    scale) on its suggestion.

    Optuna's TPE has no per-parameter prior: its prior is one Gaussian kernel at the middle of a parameter's range
    (in log space for a log-scale range) as wide as the range (``optuna/samplers/_tpe/parzen_estimator.py``,
    ``_calculate_numerical_distributions``), and every random start draws from the whole range. With the range test's
    bounds (``suggestion / 10`` to at least ``3 x suggestion``) that middle sat at ~0.55 x the suggestion or wherever
    the divergence point put it; centred, TPE's prior and its estimate of the good LRs both start at the suggestion.

    Example:
        >>> low, high = centred_bounds(0.01, 0.001, 0.03)
        >>> round(low, 5), round(high, 4), round(high / low, 6)  # 30x wide, as (0.001, 0.03), around 0.01
        (0.00183, 0.0548, 30.0)
    """
    half = math.sqrt(high / low)
    return suggestion / half, suggestion * half


def range_test_recipe(base: Recipe, fam: str) -> Recipe:
    """The recipe a family's range test trains with: the base recipe's optimizer when it is of the family, else the
    family's namesake (``adamw`` for Adam's), without what the test's own LR program would fight (the switch to SGD, a
    reduce-on-plateau schedule, a schedule-free optimizer's own warmup and schedule) or what that optimizer refuses.

    Example:
        >>> range_test_recipe(Recipe(optimizer="nadam", switch_to_sgd_at=0.8), "adam").optimizer
        'nadam'
        >>> r = range_test_recipe(Recipe(weight_decay=0.01, warmup_steps=50, schedule="cosine"), "schedulefree_sgd")
        >>> r.optimizer, r.schedule, r.warmup_steps, r.weight_decay
        ('schedulefree_sgd', 'constant', 0, 0.01)
        >>> range_test_recipe(Recipe(optimizer="sgd", schedule="plateau"), "sgd").schedule
        'constant'
    """
    optimizer = base.optimizer if family(base.optimizer) == fam else "adamw" if fam == "adam" else fam
    changes: dict[str, Any] = {"optimizer": optimizer, "switch_to_sgd_at": None}
    if base.schedule == "plateau":  # the test sets the LR itself, and its runs may log no metric to watch
        changes["schedule"] = "constant"
    if optimizer in SCHEDULE_FREE:
        changes.update(schedule="constant", warmup_steps=0, lookahead=False)
    if optimizer == "lbfgs":
        changes.update(weight_decay=0.0, grad_noise=None)
    if optimizer == "schedulefree_sgd" and base.momentum <= 0:
        changes["momentum"] = Recipe.momentum
    return base.replace(**changes)


def _batch_size(data: dict[str, Any]) -> int | None:
    """The batch size the range test trained at (its data module's, or its loader's)."""
    source = data.get("datamodule")
    size = getattr(source, "batch_size", None) if source is not None else getattr(data.get("train_dataloaders"),
                                                                                    "batch_size", None)
    return int(size) if isinstance(size, int) and size > 0 else None


SPREAD = (1 / 3, 3.0)  # after the suggestion, one trial this far below it and one this far above (within bounds)


def enqueue_suggestion(study: optuna.Study, plan: SearchPlan, limit: int | None = None) -> None:
    """Start a new study from informed trials instead of random ones: the range test's suggestion at the batch size
    it was measured at, with the recipe's own defaults, then one LR below and one above it (the sampler takes over
    after them); at most ``limit`` trials, so none is left waiting when fewer trials are asked for."""
    space = plan.space
    if not space.families():  # only LR-free optimizers (Prodigy): no range test, nothing to start from
        return
    fam = space.families()[0]
    stored = study.user_attrs.get(A.lr_range_key(fam))
    if not stored or stored.get("suggestion") is None:
        return
    low, high = space.lr_bounds[fam]
    params: dict[str, Any] = {}
    optimizer = space.dimensions.get("optimizer")
    if optimizer is not None and optimizer.kind == "categorical":
        params["optimizer"] = next(c for c in optimizer.choices if family(c) == fam)
    for name in ("beta1", "beta2", "momentum"):
        dim = space.dimensions.get(name)
        default = getattr(space.base, name)
        if dim is not None and dim.kind == "float" and dim.low <= default <= dim.high:
            params[name] = default
    batch = _nearest_batch_size(space, stored.get("batch_size"))
    informed = ((1.0, "lr range test suggestion"), (SPREAD[0], "below the suggestion"),
                (SPREAD[1], "above the suggestion"))
    for factor, why in informed[:limit]:
        lr = min(high, max(low, stored["suggestion"] * factor))
        at = {"batch_size": batch} if batch is not None and factor == 1.0 else {}  # the others: the sampler's
        study.enqueue_trial({**params, **at, lr_param(fam): lr}, user_attrs={A.START: why})


def _nearest_batch_size(space: Any, reference: int | None) -> int | None:
    dim = space.dimensions.get("batch_size")
    if dim is None or reference is None:
        return None
    if dim.kind == "categorical":
        return min(dim.choices, key=lambda b: abs(math.log(b / reference)))
    if dim.kind == "int":
        return int(min(max(reference, dim.low), dim.high))
    return None
