"""The samplers and pruners a config's ``sampler:`` and ``pruner:`` sections name."""

from __future__ import annotations

from typing import Any

import optuna

from tunekit.exceptions import ConfigError

TPE_STARTUP = 5  # trials before TPE models the study (Optuna's default is 10): three informed ones, two random


def make_sampler(spec: dict[str, Any], seed: int) -> optuna.samplers.BaseSampler:
    """``sampler: {name: tpe|random, ...options}`` (TPE by default)."""
    options = {k: v for k, v in spec.items() if k != "name"}
    name = spec.get("name", "tpe")
    if name == "tpe":  # the study starts from informed trials (enqueue_suggestion), so fewer random ones follow
        options = {"n_startup_trials": TPE_STARTUP, **options}
    samplers = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}
    if name not in samplers:
        raise ConfigError(f"sampler: {name!r} is not one of {', '.join(samplers)}.")
    try:
        return samplers[name](seed=seed, **options)
    except TypeError as err:
        raise ConfigError(f"sampler: {name}: {err}") from None


def make_pruner(spec: dict[str, Any]) -> optuna.pruners.BasePruner:
    """``pruner: {name: median|percentile|hyperband|successive_halving|none, ...options}`` (median by default)."""
    options = {k: v for k, v in spec.items() if k != "name"}
    name = spec.get("name", "median")
    pruners: dict[str, Any] = {
        "median": optuna.pruners.MedianPruner, "percentile": optuna.pruners.PercentilePruner,
        "hyperband": optuna.pruners.HyperbandPruner, "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
        "none": optuna.pruners.NopPruner,
    }
    if name not in pruners:
        raise ConfigError(f"pruner: {name!r} is not one of {', '.join(pruners)}.")
    if name == "median":  # steps are validation runs (ValidationPruning): from the first one on
        options = {"n_startup_trials": 3, "n_warmup_steps": 0, **options}
    try:
        return pruners[name](**options)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"pruner: {name}: {err}") from None
