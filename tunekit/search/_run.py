"""``run_search``: an Optuna study over recipes for a config's model and data, resumable, many workers."""

from __future__ import annotations

import contextlib
import gc
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from tunekit.config import RunConfig
from tunekit.exceptions import ConfigError
from tunekit.search import _attrs as A
from tunekit.search._ddp import finish_leading, follow, is_follower
from tunekit.search._lr_bounds import enqueue_suggestion, lr_ranges
from tunekit.search._objective import ModuleRefused, MonitorNotLogged, Objective
from tunekit.search._plan import SearchPlan, plan_search
from tunekit.search._read import StudyView
from tunekit.search._samplers import make_pruner, make_sampler
from tunekit.search._storage import (
    DEFAULT_STORAGE,
    GRACE_PERIOD,
    HEARTBEAT_INTERVAL,
    mask,
    open_storage,
    release,
    storage_file,
    supports_heartbeat,
)
from tunekit.search._summary import SearchResult, summarize
from tunekit.search._workers import check_devices, optimize_in_workers
from tunekit.utilities.lightning import quiet_lightning

RESEED_STRIDE = 7919  # a resumed study's sampler seed moves on by this per trial it already has (a prime)


def open_study(plan: SearchPlan, storage: str | None, study_name: str, *, worker: int = 0,
               heartbeat: tuple[int, int] = (HEARTBEAT_INTERVAL, GRACE_PERIOD)) -> tuple[optuna.Study, bool]:
    """Create or load the study; returns it and whether this call created it."""
    config = plan.config
    url = storage or DEFAULT_STORAGE
    rdb = open_storage(url, *heartbeat)
    existing = {s.study_name for s in optuna.study.get_all_study_summaries(rdb)}
    study = optuna.create_study(storage=rdb, study_name=study_name,
                                direction=optuna.study.StudyDirection[config.direction.upper()],
                                sampler=make_sampler(config.sampler, config.seed + worker),
                                pruner=make_pruner(config.pruner), load_if_exists=True)
    created = study_name not in existing
    if study.direction.name.lower() != config.direction:
        raise ConfigError(f"study {study_name!r} in {mask(url)} was created to {study.direction.name.lower()} "
                          f"{study.user_attrs.get(A.MONITOR, 'its monitor')}, but the config says {config.direction}: "
                          "use a new --study-name (or set direction: to the study's).")
    # A resumed study must not replay the sampler's first random draws: seed it past the trials it has.
    study.sampler = make_sampler(config.sampler, config.seed + worker + RESEED_STRIDE * len(study.trials))
    recorded = study.user_attrs.get(A.SPACE)
    section = json.loads(json.dumps(config.search))
    if created or recorded is None:
        study.set_user_attr(A.SPACE, section)
        study.set_user_attr(A.MONITOR, config.monitor)
    elif recorded != section:
        raise ConfigError(f"study {study_name!r} in {mask(url)} was created with another search: section; use a new "
                          "--study-name (or the original search space) to add trials to it.")
    return study, created


def optimize(study: optuna.Study, plan: SearchPlan, n_trials: int | None, timeout: float | None, on_trial: Any,
             extra_callbacks: Any, auto_remedy: bool = False) -> None:
    """Run trials in this process."""
    objective = Objective(plan, extra_callbacks=extra_callbacks, auto_remedy=auto_remedy,
                          world_size=plan.world_size)
    # On an accelerator, Optuna's gc after each trial frees a fit's reference cycles (Trainer <-> callbacks) and the
    # device memory they hold before the next fit allocates its own. On the CPU the interpreter's own collector
    # frees them as it would in plain Optuna (which does not collect after a trial): a full collection per trial
    # was 0.07 s of tunekit's fixed cost per trial on a fit of a second (benchmarks/results/search_overhead.txt).
    # The objects alive before the first trial (imports, the range test) are frozen out of every collection.
    gc.collect()
    gc.freeze()
    try:
        with quiet_lightning():
            study.optimize(objective, n_trials=n_trials, timeout=timeout, catch=(),
                           callbacks=[on_trial] if on_trial else None, gc_after_trial=plan.accelerator != "cpu")
    finally:
        gc.unfreeze()
        if plan.world_size > 1:
            finish_leading(study)


def run_search(plan: SearchPlan | RunConfig, *, n_trials: int | None, timeout: float | None = None,
               storage: str | None = None, study_name: str = "tunekit", n_jobs: int = 1,
               on_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
               extra_callbacks: Any = None, note: Callable[[str], None] | None = None,
               heartbeat: tuple[int, int] = (HEARTBEAT_INTERVAL, GRACE_PERIOD),
               auto_remedy: bool = False) -> SearchResult:
    """Run (or resume) a study: ``n_trials`` more trials, in ``n_jobs`` worker processes; with ``auto_remedy`` a
    trial that would have been pruned for a divergence is repaired inside its fit and scored instead.

    ``plan`` is a config checked by ``plan_search`` (a ``RunConfig`` is checked here). Bad input raises
    ``ConfigError``/``StorageError`` before anything is written; a monitor metric that is never logged stops the
    study after its first trial, and a study this call created is removed again.
    """
    if n_trials is not None and n_trials < 1:
        raise ConfigError(f"--n-trials must be >= 1, but got {n_trials}.")
    if n_jobs < 1:
        raise ConfigError(f"--n-jobs must be >= 1, but got {n_jobs}.")
    if isinstance(plan, RunConfig):
        plan = plan_search(plan)
    url = storage or DEFAULT_STORAGE
    if is_follower():  # a non-zero rank of a trial's DDP group: join rank zero's trials, write nothing
        started = time.time()
        follow(plan, url, study_name, auto_remedy=auto_remedy)
        return summarize(StudyView.load(url, study_name), time.time() - started)
    check_devices(plan, n_jobs)
    path = storage_file(url)
    file_existed = path is not None and path.exists()
    study, created = open_study(plan, storage, study_name, heartbeat=heartbeat)
    if note is not None:  # only once the storage opened: an error there stays the one line printed
        if plan.config.direction_reason:
            note(f"direction: {plan.config.direction_reason}")
        if plan.note:
            note(plan.note)
    if not supports_heartbeat(study._storage) and note is not None:
        note(f"{mask(url)} keeps no heartbeats (Optuna has them for database storages only): the trial of a worker "
             "that is killed stays RUNNING and is not retried.")
    started = time.time()
    try:
        if plan.space.needs_lr_range_test:
            plan.space.lr_bounds = lr_ranges(study, plan, note)
            if created:
                enqueue_suggestion(study, plan, limit=n_trials)
        if auto_remedy:
            study.set_user_attr(A.AUTO_REMEDY, True)
        if plan.space.own_optimizer:
            study.set_user_attr(A.OWN_OPTIMIZER, True)
        if n_jobs == 1:
            optimize(study, plan, n_trials, timeout, on_trial, extra_callbacks, auto_remedy)
        else:
            optimize_in_workers(study, plan, url, n_trials, timeout, n_jobs, heartbeat, on_trial, auto_remedy)
    except MonitorNotLogged:
        if created:
            _remove(study, path, file_existed)
        raise
    except ModuleRefused:  # a study this run created with nothing finished in it is undone
        if created and not any(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials):
            _remove(study, path, file_existed)
        raise
    except ConfigError:
        if created and not study.trials:
            _remove(study, path, file_existed)
        raise
    return summarize(StudyView(study, url), time.time() - started)


def _remove(study: optuna.Study, path: Path | None, file_existed: bool) -> None:
    """Undo a study this run created (bad input found in its first trial): nothing half-written is left."""
    storage = study._storage  # the storage object the study was opened on (a URL string would mean RDB to Optuna)
    with contextlib.suppress(Exception):
        optuna.delete_study(study_name=study.study_name, storage=storage)
    if path is not None and not file_existed and path.exists():
        with contextlib.suppress(Exception):
            if not optuna.study.get_all_study_summaries(storage):
                release(storage)
                path.unlink()
