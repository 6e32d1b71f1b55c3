"""Storages under many workers: N worker processes (1, 4, 16, 32) run a cheap objective against SQLite,
PostgreSQL, Optuna's gRPC proxy over PostgreSQL (`tunekit storage serve`) and the Redis journal, each opened the way
`tunekit search --storage URL` opens it (tunekit.search.open_storage).

Prints, per storage and N: trials per second (the whole study, from the moment every worker is ready to the last
trial told), the most storage connections seen at once (PostgreSQL: pg_stat_activity; Redis: connected_clients),
and the trials failed, missing or duplicated (every trial asked for must be there once).

    python benchmarks/scale.py [--workers 1 4 16 32] [--trials 256] [--out benchmarks/results/scale.txt]

The objective is TPE over four parameters returning at once, so the storage (and the sampler reading every finished
trial back from it) is all that is measured. On a 2-core machine 32 processes also compete for the CPU: the figures
are this machine's, not the storages' ceilings.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import subprocess
import sys
import threading
import time
import uuid
import warnings
from pathlib import Path

import optuna

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"
GRPC_PORT = 13731


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("lr", 1e-5, 1.0, log=True)
    y = trial.suggest_float("beta1", 0.8, 0.99)
    z = trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True)
    b = trial.suggest_categorical("batch_size", [32, 64, 128])
    return (x - 0.01) ** 2 + (y - 0.9) ** 2 + z + b / 1e4


def _quiet() -> None:
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.ERROR)


def _worker(url: str, name: str, n_trials: int, seed: int, ready: object, go: object) -> None:
    from tunekit.search import open_storage

    _quiet()
    storage = open_storage(url)
    study = optuna.load_study(study_name=name, storage=storage, sampler=optuna.samplers.TPESampler(seed=seed))
    ready.release()  # type: ignore[attr-defined]
    go.wait()  # type: ignore[attr-defined]
    study.optimize(_objective, n_trials=n_trials, catch=(Exception,))


class _Connections(threading.Thread):
    """Samples the storage's open connections every 0.1 s; keeps the most seen."""

    def __init__(self, kind: str) -> None:
        super().__init__(daemon=True)
        self.kind, self.most, self.stop = kind, 0, threading.Event()

    def count(self) -> int:
        if self.kind in ("postgresql", "grpc"):
            import sqlalchemy

            engine = sqlalchemy.create_engine(POSTGRES)
            with engine.connect() as c:
                n = c.execute(sqlalchemy.text("SELECT count(*) FROM pg_stat_activity WHERE datname = 'test' AND "
                                              "pid <> pg_backend_pid()")).scalar()
            engine.dispose()
            return int(n or 0)
        if self.kind == "redis":
            import redis

            return int(redis.Redis.from_url(REDIS).info("clients")["connected_clients"]) - 1  # less this one
        return 0

    def run(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(Exception):
                self.most = max(self.most, self.count())
            time.sleep(0.1)


def run(kind: str, url: str, n_workers: int, n_trials: int) -> dict[str, object]:
    from tunekit.search import open_storage

    name = f"scale-{uuid.uuid4().hex[:8]}"
    storage = open_storage(url)
    optuna.create_study(study_name=name, storage=storage)
    ctx = multiprocessing.get_context("spawn")
    ready, go = ctx.Semaphore(0), ctx.Event()
    shares = [n_trials // n_workers + (i < n_trials % n_workers) for i in range(n_workers)]
    procs = [ctx.Process(target=_worker, args=(url, name, share, i, ready, go)) for i, share in enumerate(shares)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()
    watch = _Connections(kind)
    watch.start()
    started = time.perf_counter()
    go.set()
    for p in procs:
        p.join()
    seconds = time.perf_counter() - started
    watch.stop.set()
    watch.join()
    trials = optuna.load_study(study_name=name, storage=open_storage(url)).get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    complete = sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    return {"storage": kind, "workers": n_workers, "trials": len(trials), "trials_per_s": complete / seconds,
            "connections": watch.most, "failed": sum(t.state == optuna.trial.TrialState.FAIL for t in trials),
            "missing": n_trials - len(set(numbers)), "duplicated": len(numbers) - len(set(numbers)),
            "exit_codes": sorted({p.exitcode for p in procs})}


def _available(kind: str) -> str | None:
    try:
        if kind in ("postgresql", "grpc"):
            import sqlalchemy

            with sqlalchemy.create_engine(POSTGRES, connect_args={"connect_timeout": 3}).connect():
                pass
        if kind == "redis":
            import redis

            redis.Redis.from_url(REDIS, socket_connect_timeout=2).ping()
    except Exception as err:
        return str(err).splitlines()[0]
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 16, 32])
    parser.add_argument("--trials", type=int, default=256, help="trials per study, shared out between the workers")
    parser.add_argument("--storages", nargs="+", default=["sqlite", "postgresql", "grpc", "redis"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    _quiet()
    tmp = Path("/tmp") / f"tunekit-scale-{uuid.uuid4().hex[:6]}"
    tmp.mkdir()
    urls = {"sqlite": f"sqlite:///{tmp}/scale.db", "postgresql": POSTGRES, "grpc": f"grpc://127.0.0.1:{GRPC_PORT}",
            "redis": REDIS}
    lines = [f"{'storage':<11} {'workers':>7} {'trials':>6} {'trials/s':>9} {'connections':>11} {'failed':>6} "
             f"{'missing':>7} {'duplicated':>10}  exit codes"]
    print(lines[0], flush=True)
    server = None
    for kind in args.storages:
        why = _available(kind)
        if why is not None:
            lines.append(f"{kind:<11} skipped: {why}")
            print(lines[-1], flush=True)
            continue
        if kind == "grpc":
            server = subprocess.Popen([sys.executable, "-m", "tunekit.cli", "storage", "serve", "--storage", POSTGRES,
                                       "--host", "127.0.0.1", "--port", str(GRPC_PORT)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(120):
                try:
                    optuna.storages.GrpcStorageProxy(host="127.0.0.1", port=GRPC_PORT).get_all_studies()
                    break
                except Exception:
                    time.sleep(0.5)
        try:
            for n in args.workers:
                r = run(kind, urls[kind], n, args.trials)
                lines.append(f"{kind:<11} {n:>7} {r['trials']:>6} {r['trials_per_s']:>9.1f} {r['connections']:>11} "
                             f"{r['failed']:>6} {r['missing']:>7} {r['duplicated']:>10}  {r['exit_codes']}")
                print(lines[-1], flush=True)
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=30)
                server = None
    if args.out is not None:
        args.out.write_text(f"# python benchmarks/scale.py {' '.join(sys.argv[1:])}\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
