"""Worker processes on one storage: ``--n-jobs N`` runs N of them; this process reports their progress."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from typing import Any

import optuna
from optuna.trial import TrialState

from tunekit.search._plan import SearchPlan

POLL_SECONDS = 1.0  # how often the parent looks for newly finished trials to report


def _worker(plan: SearchPlan, url: str, study_name: str, n_trials: int | None, timeout: float | None,
            index: int, heartbeat: tuple[int, int], auto_remedy: bool) -> None:
    from tunekit.search._run import open_study, optimize

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    study, _ = open_study(plan, url, study_name, worker=index, heartbeat=heartbeat)
    optimize(study, plan, n_trials, timeout, None, None, auto_remedy)


def optimize_in_workers(study: optuna.Study, plan: SearchPlan, url: str, n_trials: int | None,
                        timeout: float | None, n_jobs: int, heartbeat: tuple[int, int], on_trial: Any,
                        auto_remedy: bool = False) -> None:
    """``n_jobs`` worker processes on the same storage, the trials shared out between them."""
    study_name = study.study_name
    shares = [None] * n_jobs if n_trials is None else [n_trials // n_jobs + (i < n_trials % n_jobs)
                                                       for i in range(n_jobs)]
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker, daemon=False,
                               args=(plan, url, study_name, share, timeout, i, heartbeat, auto_remedy))
               for i, share in enumerate(shares) if share != 0]
    for w in workers:
        w.start()
    seen: set[int] = set()
    try:
        while any(w.is_alive() for w in workers):
            time.sleep(POLL_SECONDS)
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
