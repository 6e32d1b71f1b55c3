"""Optuna storage, samplers and pruners for tunekit studies.

Storage is Optuna's RDB storage: an embedded SQLite file by default, PostgreSQL (or any SQLAlchemy URL) for
many machines. Heartbeats mark a killed worker's trial failed after ``GRACE_PERIOD`` seconds, and Optuna's
``RetryHeartbeatStaleTrialCallback`` queues it to run again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from tunekit.exceptions import ConfigError, StorageError

HEARTBEAT_INTERVAL = 20  # seconds between a running trial's heartbeats
GRACE_PERIOD = 60  # a trial silent this long is stale: failed and retried (the issue asks for under two minutes)
MAX_RETRY = 3  # a stale trial is retried at most this many times
DEFAULT_STORAGE = "sqlite:///tunekit.db"


def mask(url: str) -> str:
    """The storage URL with its password replaced by ``***`` (never print or log the password)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL sqlalchemy can parse: hide everything between '://' and '@'
        head, sep, rest = url.partition("://")
        return f"{head}{sep}***@{rest.split('@', 1)[1]}" if "@" in rest else url


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (None for other storages or in-memory SQLite)."""
    if not url.startswith("sqlite:///") or url in ("sqlite://", "sqlite:///:memory:"):
        return None
    return Path(url[len("sqlite:///"):])


def open_storage(url: str, heartbeat_interval: int = HEARTBEAT_INTERVAL,
                 grace_period: int = GRACE_PERIOD) -> optuna.storages.RDBStorage:
    """Open (or create) the RDB storage; an unreachable one is a one-line ``StorageError``."""
    if "://" not in url:
        raise StorageError(f"storage {url!r} is not a database URL: use e.g. sqlite:///tunekit.db or "
                           "postgresql://user@host/db.")
    path = sqlite_path(url)
    if path is not None and not path.parent.exists():
        raise StorageError(f"cannot create storage {url}: the folder {str(path.parent)!r} does not exist.")
    try:
        return optuna.storages.RDBStorage(
            url, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
            failed_trial_callback=None,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY),
            engine_kwargs=_engine_kwargs(url),
        )
    except Exception as err:
        reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        raise StorageError(f"cannot open storage {mask(url)}: {reason.replace(url, mask(url))}") from None


def _engine_kwargs(url: str) -> dict[str, Any]:
    if url.startswith("postgresql"):
        return {"connect_args": {"connect_timeout": 5}, "pool_pre_ping": True}
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}  # several worker processes share the file
    return {}


def make_sampler(spec: dict[str, Any], seed: int) -> optuna.samplers.BaseSampler:
    """``sampler: {name: tpe|random, ...options}`` (TPE by default)."""
    options = {k: v for k, v in spec.items() if k != "name"}
    name = spec.get("name", "tpe")
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
    if name == "median":
        options = {"n_startup_trials": 3, "n_warmup_steps": 1, **options}
    try:
        return pruners[name](**options)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"pruner: {name}: {err}") from None
