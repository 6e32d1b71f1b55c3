"""Worker processes on one storage: ``--n-jobs N`` runs N of them; this process reports their progress."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
import warnings
from typing import Any

import optuna
from optuna.trial import TrialState

from tunekit.exceptions import ConfigError
from tunekit.search._plan import SearchPlan

POLL_SECONDS = 1.0  # how often the parent looks for newly finished trials to report


def available_devices(accelerator: str) -> int:
    """Devices of this kind on this machine (CPU: cores, each DDP process wants one)."""
    if accelerator == "cuda":
        import torch

        return torch.cuda.device_count()
    return os.cpu_count() or 1


def check_devices(plan: SearchPlan, n_jobs: int) -> None:
    """``--n-jobs N`` workers each running trials on the config's devices must fit on this machine."""
    wanted = n_jobs * plan.world_size
    have = available_devices(plan.accelerator)
    if plan.world_size > 1 and wanted > have:
        raise ConfigError(f"--n-jobs {n_jobs} x {plan.world_size} devices per trial needs {wanted} {plan.accelerator} "
                          f"devices, but this machine has {have}: lower --n-jobs or trainer.devices.")


def worker_devices(plan: SearchPlan, index: int, n_jobs: int) -> str | None:
    """The ``CUDA_VISIBLE_DEVICES`` of worker ``index``: its own slice of the GPUs when they are enough for every
    worker (None: leave the environment as it is)."""
    if plan.accelerator != "cuda" or n_jobs == 1:
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = visible.split(",") if visible else [str(i) for i in range(available_devices("cuda"))]
    if len(ids) < n_jobs * plan.world_size:
        return None
    return ",".join(ids[index * plan.world_size:(index + 1) * plan.world_size])


def _worker(plan: SearchPlan, url: str, study_name: str, n_trials: int | None, timeout: float | None,
            index: int, heartbeat: tuple[int, int], auto_remedy: bool, devices: str | None) -> None:
    if devices is not None:  # before anything touches CUDA in this process
        os.environ["CUDA_VISIBLE_DEVICES"] = devices
    from tunekit.search._run import open_study, optimize

    warnings.filterwarnings("ignore")  # a spawned process starts with none of the parent's filters
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
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
                               args=(plan, url, study_name, share, timeout, i, heartbeat, auto_remedy,
                                     worker_devices(plan, i, n_jobs)))
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
