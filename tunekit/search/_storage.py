"""The Optuna storage a URL names.

* ``sqlite:///file.db`` (the default), ``postgresql://...`` or any SQLAlchemy URL: Optuna's RDB storage, right for
  tens of workers. Heartbeats mark a killed worker's trial failed after ``GRACE_PERIOD`` seconds, and Optuna's
  ``RetryHeartbeatStaleTrialCallback`` queues it to run again.
* ``grpc://host:port``: Optuna's ``GrpcStorageProxy``, a client of a proxy server (``tunekit storage serve``) in
  front of the database, for hundreds of workers.
* ``redis://host:port[/db]``: Optuna's ``JournalStorage`` with its Redis backend (Optuna's own key prefix, so plain
  Optuna opens the same study); ``journal:///path/file.log``: a journal file.

Optuna implements heartbeats for RDB storages only: on the others a killed worker's trial stays RUNNING.
"""

from __future__ import annotations

import difflib
import sqlite3
from pathlib import Path
from typing import Any

import optuna

from tunekit.exceptions import StorageError
from tunekit.utilities import defaults
from tunekit.utilities.imports import require

HEARTBEAT_INTERVAL = 20  # seconds between a running trial's heartbeats
GRACE_PERIOD = 60  # a trial silent this long is stale: failed and retried (the issue asks for under two minutes)
MAX_RETRY = 3  # a stale trial is retried at most this many times
DEFAULT_STORAGE = defaults.DEFAULT_STORAGE  # kept there so that the CLI's --help need not import Optuna
OWN_SCHEMES = ("grpc", "redis", "rediss", "journal")  # the storages that are not a SQLAlchemy database URL
STORAGE_KINDS = ("sqlite:///FILE.db, postgresql://USER@HOST/DB, mysql+pymysql://USER@HOST/DB, grpc://HOST:PORT, "
                 "redis://HOST:PORT or journal:///FILE.log")
RENAMED_SCHEMES = {"postgres": "postgresql"}  # names SQLAlchemy 1.4 dropped that Heroku and others still print


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


JOURNAL_PREFIX = "journal://"


def supports_heartbeat(storage: optuna.storages.BaseStorage) -> bool:
    """Whether Optuna keeps heartbeats (and so retries a killed worker's trial) on this storage."""
    from optuna.storages._heartbeat import BaseHeartbeat

    return isinstance(storage, BaseHeartbeat)


def storage_file(url: str) -> Path | None:
    """The file a ``sqlite:///`` or ``journal:///`` URL keeps the study in (None for servers and in-memory SQLite)."""
    if url.startswith(JOURNAL_PREFIX):
        return Path(url[len(JOURNAL_PREFIX):])
    return sqlite_path(url)


def open_storage(url: str, heartbeat_interval: int = HEARTBEAT_INTERVAL, grace_period: int = GRACE_PERIOD, *,
                 create: bool = True) -> optuna.storages.BaseStorage:
    """Open the storage a URL names; an unreachable one is a one-line ``StorageError``.

    ``create=False`` is for reading: a missing file is an error (nothing is created) and no table is created in a
    database that has none.
    """
    if "://" not in url:
        raise StorageError(f"storage {url!r} is not a storage URL: use {STORAGE_KINDS}.")
    path = storage_file(url)
    if path is not None and not create and not path.exists():
        raise StorageError(f"no study storage at {url}: the file {str(path)!r} does not exist.")
    if path is not None and not path.parent.exists():
        raise StorageError(f"cannot create storage {url}: the folder {str(path.parent)!r} does not exist.")
    scheme = url.split("://", 1)[0]
    if scheme not in OWN_SCHEMES:
        _check_dialect(url, scheme)
    try:
        if scheme == "grpc":
            return _grpc(url)
        if scheme in ("redis", "rediss"):
            return _redis(url)
        if scheme == "journal":
            return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
        fresh = path is not None and create and not path.exists()
        return optuna.storages.RDBStorage(
            url, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
            failed_trial_callback=None,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY),
            engine_kwargs=_engine_kwargs(url, write_ahead=path is not None and create),
            skip_table_creation=not create,
            skip_compatibility_check=fresh,  # the tables are about to be made by this Optuna: ~0.1 s of alembic
        )
    except StorageError:
        raise
    except Exception as err:
        reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        raise StorageError(f"cannot open storage {mask(url)}: {reason.replace(url, mask(url))}") from None


def _check_dialect(url: str, scheme: str) -> None:
    """A database URL whose scheme SQLAlchemy knows (SQLAlchemy's own message names a plugin, not the URL's typo)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        make_url(url).get_dialect()
    except NoSuchModuleError:
        dialect = scheme.split("+", 1)[0]
        if dialect in RENAMED_SCHEMES:
            fixed = RENAMED_SCHEMES[dialect] + url[len(dialect):]
            raise StorageError(f"storage scheme {dialect}:// is not a SQLAlchemy name: write {mask(fixed)}.") from None
        close = difflib.get_close_matches(dialect, ["sqlite", "postgresql", "mysql", *OWN_SCHEMES], n=1)
        hint = f"did you mean {close[0]}://? " if close else ""
        raise StorageError(f"unknown storage scheme {scheme}:// in {mask(url)}: {hint}use {STORAGE_KINDS}.") from None
    except ArgumentError as err:
        raise StorageError(f"storage {mask(url)} is not a valid URL ({str(err).splitlines()[0]}): use "
                           f"{STORAGE_KINDS}.") from None


def _grpc(url: str) -> optuna.storages.BaseStorage:
    require("grpc", "grpcio", extra="scale")
    host, _, port = url[len("grpc://"):].rstrip("/").rpartition(":")
    if not host or not port.isdigit():
        raise StorageError(f"storage {url!r}: a gRPC proxy URL is grpc://HOST:PORT (tunekit storage serve prints it).")
    proxy = optuna.storages.GrpcStorageProxy(host=host, port=int(port))
    try:
        proxy.get_all_studies()  # fails at once when no proxy server answers
    except Exception as err:
        raise StorageError(f"cannot open storage {url}: no gRPC proxy server answers there "
                           f"({type(err).__name__}); start one with tunekit storage serve.") from None
    return proxy


def _redis(url: str) -> optuna.storages.BaseStorage:
    redis = require("redis", "redis", extra="scale")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).ping()
    except Exception as err:
        raise StorageError(f"cannot open storage {mask(url)}: {str(err).splitlines()[0]}") from None
    from optuna.storages.journal import JournalRedisBackend

    return optuna.storages.JournalStorage(JournalRedisBackend(url))


SQLITE_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")  # SQLite's write-ahead log, synced at
# checkpoints: a commit costs ~0.03 ms instead of ~15 ms (an fsync each); a crash of the process loses nothing, a power
# loss at most the last commits, never the file (sqlite.org/wal.html). A trial makes ~25 commits (its params, each
# validation's value, its attributes): ~0.4 s a trial before; creating Optuna's 13 tables in a new file ~0.3 s
# before (they are made on the first connection, so that one has the pragmas too). WAL needs a local disk (not NFS).


class _WriteAhead(sqlite3.Connection):
    """A SQLite connection opened with ``SQLITE_PRAGMAS`` (SQLAlchemy's pysqlite dialect passes ``factory`` on to
    ``sqlite3.connect``, with its own arguments: every connection of the engine, the first one included)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for pragma in SQLITE_PRAGMAS:
            self.execute(pragma)


def release(storage: optuna.storages.BaseStorage) -> None:
    """Close a storage's pooled database connections (SQLite removes its -wal and -shm files with the last one)."""
    engine = getattr(getattr(storage, "_backend", storage), "engine", None)
    if engine is not None:
        engine.dispose()


def _engine_kwargs(url: str, write_ahead: bool = False) -> dict[str, Any]:
    if url.startswith("postgresql"):
        return {"connect_args": {"connect_timeout": 5}, "pool_pre_ping": True}
    if url.startswith("sqlite"):  # several worker processes share the file
        return {"connect_args": {"timeout": 60, **({"factory": _WriteAhead} if write_ahead else {})}}
    return {}
