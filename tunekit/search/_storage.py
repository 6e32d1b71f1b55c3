"""Optuna storage, samplers and pruners for tunekit studies.

Storage is Optuna's RDB storage: an embedded SQLite file by default, PostgreSQL (or any SQLAlchemy URL) for
many machines. Heartbeats mark a killed worker's trial failed after ``GRACE_PERIOD`` seconds, and Optuna's
``RetryHeartbeatStaleTrialCallback`` queues it to run again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from tunekit.exceptions import StorageError

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


def open_storage(url: str, heartbeat_interval: int = HEARTBEAT_INTERVAL, grace_period: int = GRACE_PERIOD, *,
                 create: bool = True) -> optuna.storages.RDBStorage:
    """Open the RDB storage; an unreachable one is a one-line ``StorageError``.

    ``create=False`` is for reading: a missing SQLite file is an error (nothing is created) and no table is
    created in a database that has none.
    """
    if "://" not in url:
        raise StorageError(f"storage {url!r} is not a database URL: use e.g. {DEFAULT_STORAGE} or "
                           "postgresql://user@host/db.")
    path = sqlite_path(url)
    if path is not None and not create and not path.exists():
        raise StorageError(f"no study storage at {url}: the file {str(path)!r} does not exist.")
    if path is not None and not path.parent.exists():
        raise StorageError(f"cannot create storage {url}: the folder {str(path.parent)!r} does not exist.")
    try:
        return optuna.storages.RDBStorage(
            url, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
            failed_trial_callback=None,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY),
            engine_kwargs=_engine_kwargs(url), skip_table_creation=not create,
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
