"""The samplers and pruners a config's ``sampler:`` and ``pruner:`` sections name."""

from __future__ import annotations

import warnings
from typing import Any

import optuna

from tunekit.exceptions import ConfigError
from tunekit.search._evidence import EvidencePruner

TPE_STARTUP = 5  # trials before TPE models the study (Optuna's default is 10): three informed ones, two random
# TPE over the joint space (multivariate), split into the groups of parameters that occur together (group: momentum
# only with SGD, betas only with Adam); Optuna's benchmarks show it beating independent TPE on such spaces
TPE_JOINT = {"multivariate": True, "group": True}


def make_sampler(spec: dict[str, Any], seed: int) -> optuna.samplers.BaseSampler:
    """``sampler: {name: tpe|random, ...options}`` (TPE by default: multivariate and grouped, after the informed
    trials the study starts from and ``TPE_STARTUP`` in all before it models the study)."""
    options = {k: v for k, v in spec.items() if k != "name"}
    name = spec.get("name", "tpe")
    if name == "tpe":  # the study starts from informed trials (enqueue_suggestion), so fewer random ones follow
        options = {"n_startup_trials": TPE_STARTUP, **TPE_JOINT, **options}
    samplers = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}
    if name not in samplers:
        raise ConfigError(f"sampler: {name!r} is not one of {', '.join(samplers)}.")
    try:
        with warnings.catch_warnings():  # multivariate and group are marked experimental since Optuna 2.2
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return samplers[name](seed=seed, **options)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"sampler: {name}: {err}") from None


def make_pruner(spec: dict[str, Any]) -> optuna.pruners.BasePruner:
    """``pruner: {name: evidence|median|percentile|hyperband|successive_halving|none, ...options}`` (``evidence`` by
    default: ``EvidencePruner``, which never judges a trial by the informed trials alone)."""
    options = {k: v for k, v in spec.items() if k != "name"}
    name = spec.get("name", "evidence")
    pruners: dict[str, Any] = {
        "evidence": EvidencePruner, "median": optuna.pruners.MedianPruner,
        "percentile": optuna.pruners.PercentilePruner,
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
