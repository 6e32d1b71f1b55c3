"""``run_search``: an Optuna study over recipes for a config's model and data, resumable, many workers."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import optuna
from optuna.trial import TrialState

from tunekit.config import RunConfig
from tunekit.exceptions import ConfigError
from tunekit.lr_finder import LRRangeResult, lr_range_test
from tunekit.lr_finder._runs import quiet_lightning
from tunekit.recipe import Recipe
from tunekit.search._objective import MonitorNotLogged, Objective
from tunekit.search._space import SearchSpace
from tunekit.search._study import (
    DEFAULT_STORAGE,
    GRACE_PERIOD,
    HEARTBEAT_INTERVAL,
    make_pruner,
    make_sampler,
    mask,
    open_storage,
    sqlite_path,
)

LR_RANGE_ATTR = "tunekit.lr_range.{family}"  # study user attribute holding the range test of an optimizer family
SPACE_ATTR = "tunekit.search"  # the search section a study was created with


@dataclass
class SearchResult:
    """What a search left in its study (a summary; the study itself is in the storage)."""

    study_name: str
    storage: str  # the URL with its password masked
    monitor: str
    direction: str
    complete: int
    pruned: int
    failed: int
    best_value: float | None
    best_trial: int | None
    best_recipe: dict[str, Any] | None
    best_diagnosis: dict[str, Any] | None
    lr_range: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(study: optuna.Study, storage_url: str, monitor: str, seconds: float = 0.0) -> SearchResult:
    trials = study.get_trials(deepcopy=False)
    count = {s: sum(t.state == s for t in trials) for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    best = None
    if count[TrialState.COMPLETE]:
        best = study.best_trial
    lr_range = {k.rsplit(".", 1)[1]: v for k, v in study.user_attrs.items() if k.startswith("tunekit.lr_range.")}
    return SearchResult(
        study_name=study.study_name, storage=mask(storage_url), monitor=monitor,
        direction=study.direction.name.lower(), complete=count[TrialState.COMPLETE],
        pruned=count[TrialState.PRUNED], failed=count[TrialState.FAIL],
        best_value=best.value if best else None, best_trial=best.number if best else None,
        best_recipe=best.user_attrs.get("recipe") if best else None,
        best_diagnosis=best.user_attrs.get("diagnosis") if best else None,
        lr_range={k: {"suggestion": v.get("suggestion"), "bounds": v.get("bounds"), "steps": v.get("steps")}
                  for k, v in lr_range.items()},
        seconds=round(seconds, 2),
    )


def preflight(config: RunConfig) -> tuple[SearchSpace, Recipe]:
    """Everything that can be checked before a study is written: the space, the module, the data module."""
    model = config.make_model()
    base = getattr(model, "recipe", None)
    if not isinstance(base, Recipe):
        raise ConfigError(f"model: {config.model_class.__name__} does not train with a tunekit Recipe: inherit "
                          "tunekit.recipe.RecipeMixin (or return self.recipe.configure_optimizers(self)) and set "
                          "self.recipe in __init__.")
    space = SearchSpace.parse(config.search, base)
    if "batch_size" in space.dimensions and not config.data_takes_batch_size:
        raise ConfigError(f"search: batch_size is searched, but data: {config.data_class.__name__} takes no "
                          "batch_size argument: add one to its __init__ or drop batch_size from search:.")
    config.make_data()
    return space, base


def open_study(config: RunConfig, storage: str | None, study_name: str, *, worker: int = 0,
               heartbeat: tuple[int, int] = (HEARTBEAT_INTERVAL, GRACE_PERIOD)) -> tuple[optuna.Study, bool]:
    """Create or load the study; returns it and whether this call created it."""
    url = storage or DEFAULT_STORAGE
    rdb = open_storage(url, *heartbeat)
    existing = {s.study_name for s in optuna.study.get_all_study_summaries(rdb)}
    study = optuna.create_study(storage=rdb, study_name=study_name,
                                direction=optuna.study.StudyDirection[config.direction.upper()],
                                sampler=make_sampler(config.sampler, config.seed + worker),
                                pruner=make_pruner(config.pruner), load_if_exists=True)
    created = study_name not in existing
    # A resumed study must not replay the sampler's first random draws: seed it past the trials it has.
    study.sampler = make_sampler(config.sampler, config.seed + worker + 7919 * len(study.trials))
    recorded = study.user_attrs.get(SPACE_ATTR)
    section = json.loads(json.dumps(config.search))
    if created or recorded is None:
        study.set_user_attr(SPACE_ATTR, section)
        study.set_user_attr("tunekit.monitor", config.monitor)
    elif recorded != section:
        raise ConfigError(f"study {study_name!r} in {mask(url)} was created with another search: section; use a new "
                          "--study-name (or the original search space) to add trials to it.")
    return study, created


def lr_ranges(study: optuna.Study, config: RunConfig, space: SearchSpace,
              note: Callable[[str], None] | None = None) -> dict[str, tuple[float, float]]:
    """The LR range test once per optimizer family, stored with the study and reused on resume."""
    bounds = {}
    for fam in space.families():
        key = LR_RANGE_ATTR.format(family=fam)
        stored = study.user_attrs.get(key)
        if stored is None:
            if note is not None:
                note(f"LR range test for {fam} (once per study) ...")
            model = config.make_model()
            adam = space.base.optimizer if space.base.optimizer != "sgd" else "adamw"
            model.recipe = space.base.replace(optimizer="sgd" if fam == "sgd" else adam,  # type: ignore[assignment]
                                              switch_to_sgd_at=None)
            result = lr_range_test(model, datamodule=config.make_data(), monitor=config.monitor, seed=config.seed,
                                   trainer_kwargs=config.short_run_trainer_args(),
                                   budget_steps=config.planned_steps())
            if result.suggestion is None:
                raise ConfigError(f"lr: auto: the LR range test for {fam} found no learning rate ({result.reason}); "
                                  "give lr: a range instead.")
            stored = {**result.to_dict(), "measured_at": time.time()}
            study.set_user_attr(key, stored)
            if note is not None:
                note(f"LR range test for {fam}: suggestion {result.suggestion:.3g} in {result.steps} steps")
        low, high = LRRangeResult.from_dict(stored).bounds or (stored["suggestion"] / 10, stored["suggestion"] * 3)
        bounds[fam] = (float(low), float(high))
    return bounds


def _enqueue_suggestion(study: optuna.Study, space: SearchSpace) -> None:
    """Start a new study at the range test's suggestion with the recipe's own defaults: a strong first trial
    instead of a random one (the sampler takes over from the second trial)."""
    fam = space.families()[0]
    stored = study.user_attrs.get(LR_RANGE_ATTR.format(family=fam))
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
    study.enqueue_trial(params, user_attrs={"tunekit.start": "lr range test suggestion"})


def run_search(config: RunConfig, *, n_trials: int | None, timeout: float | None = None,
               storage: str | None = None, study_name: str = "tunekit", n_jobs: int = 1,
               on_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
               extra_callbacks: Any = None, note: Callable[[str], None] | None = None,
               heartbeat: tuple[int, int] = (HEARTBEAT_INTERVAL, GRACE_PERIOD)) -> SearchResult:
    """Run (or resume) a study: ``n_trials`` more trials, in ``n_jobs`` worker processes.

    Bad input raises ``ConfigError``/``StorageError`` before anything is written; a monitor metric that is
    never logged stops the study after its first trial, and a study this call created is removed again.
    """
    if n_trials is not None and n_trials < 1:
        raise ConfigError(f"--n-trials must be >= 1, but got {n_trials}.")
    if n_jobs < 1:
        raise ConfigError(f"--n-jobs must be >= 1, but got {n_jobs}.")
    space, _ = preflight(config)
    url = storage or DEFAULT_STORAGE
    path = sqlite_path(url)
    file_existed = path is not None and path.exists()
    study, created = open_study(config, storage, study_name, heartbeat=heartbeat)
    started = time.time()
    try:
        if space.needs_lr_range_test:
            with quiet_lightning():
                space.lr_bounds = lr_ranges(study, config, space, note)
            if created:
                _enqueue_suggestion(study, space)
        if n_jobs == 1:
            _optimize(study, config, space, n_trials, timeout, on_trial, extra_callbacks)
        else:
            _optimize_in_workers(study, config, url, n_trials, timeout, n_jobs, heartbeat, on_trial, space.lr_bounds)
    except MonitorNotLogged:
        if created:
            _remove(study, url, path, file_existed)
        raise
    except ConfigError:
        if created and not study.trials:
            _remove(study, url, path, file_existed)
        raise
    return summarize(study, url, config.monitor, time.time() - started)


def _optimize(study: optuna.Study, config: RunConfig, space: SearchSpace, n_trials: int | None,
              timeout: float | None, on_trial: Any, extra_callbacks: Any) -> None:
    objective = Objective(config, space, extra_callbacks=extra_callbacks)
    with quiet_lightning():
        study.optimize(objective, n_trials=n_trials, timeout=timeout, catch=(),
                       callbacks=[on_trial] if on_trial else None, gc_after_trial=True)


def _worker(config: RunConfig, url: str, study_name: str, n_trials: int | None, timeout: float | None,
            index: int, heartbeat: tuple[int, int], bounds: dict[str, tuple[float, float]]) -> None:
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    study, _ = open_study(config, url, study_name, worker=index, heartbeat=heartbeat)
    space, _ = preflight(config)
    space.lr_bounds = bounds
    _optimize(study, config, space, n_trials, timeout, None, None)


def _optimize_in_workers(study: optuna.Study, config: RunConfig, url: str, n_trials: int | None,
                         timeout: float | None, n_jobs: int, heartbeat: tuple[int, int], on_trial: Any,
                         bounds: dict[str, tuple[float, float]]) -> None:
    """``n_jobs`` worker processes on the same storage; this process reports their progress."""
    study_name = study.study_name
    shares = [None] * n_jobs if n_trials is None else [n_trials // n_jobs + (i < n_trials % n_jobs)
                                                       for i in range(n_jobs)]
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker, args=(config, url, study_name, share, timeout, i, heartbeat, bounds),
                               daemon=False) for i, share in enumerate(shares) if share != 0]
    for w in workers:
        w.start()
    seen: set[int] = set()
    try:
        while any(w.is_alive() for w in workers):
            time.sleep(1.0)
            seen = _report_new(study, seen, on_trial)
    except KeyboardInterrupt:
        for w in workers:
            if w.is_alive() and w.pid is not None:
                os.kill(w.pid, signal.SIGINT)
        for w in workers:
            w.join(timeout=60)
        raise
    _report_new(study, seen, on_trial)
    failed = [w.exitcode for w in workers if w.exitcode not in (0, None)]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(workers)} worker processes failed (exit codes {failed}); "
                           "the finished trials are kept in the study")


def _report_new(study: optuna.Study, seen: set[int], on_trial: Any) -> set[int]:
    if on_trial is None:
        return seen
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)):
        if trial.number not in seen:
            seen.add(trial.number)
            on_trial(study, trial)
    return seen


def _remove(study: optuna.Study, url: str, path: Any, file_existed: bool) -> None:
    """Undo a study this run created (bad input found in its first trial): nothing half-written is left."""
    try:
        optuna.delete_study(study_name=study.study_name, storage=url)
    except Exception:
        return
    if path is not None and not file_existed and path.exists():
        try:
            if not optuna.study.get_all_study_summaries(url):
                path.unlink()
        except Exception:
            pass

