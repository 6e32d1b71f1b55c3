"""A fresh ``pip install`` of the package, into an empty virtual environment and a project folder outside the
repository, runs every Python snippet of the README and every command of its Commands table, as a new user would.

The wheel is built from this checkout (``pip wheel --no-deps``), installed after torch (the CPU build pip finds on
this machine) with the extra the Commands table needs (``scale``: ``tunekit storage serve``). Nothing of the
repository is on the path: the snippets and commands see only what the wheel installed. Where pip cannot reach a
package index the tests skip and say so.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.docs.test_readme import README, SNIPPETS

ROOT = README.parent
TORCH = "torch==2.13.0"  # the CPU build the Makefile installs first, so pip does not pull a multi-GB CUDA build
EXTRAS = "scale"  # the Commands table's `tunekit storage serve` needs grpcio
HELP_SECONDS = 1.0  # issue 19: `tunekit --help` returns in under a second
# what the wheel is not built from: version control, environments, build outputs and caches, logs of runs
NOT_PACKED = (
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    "lightning_logs",
    "wandb",
    "cache",
)
STOP_SECONDS = 120  # how long `tunekit storage serve` may take to stop after Ctrl-C (about 5 s here, 2 loaded cores)
# pip's words when it cannot reach an index (no network, no mirror): the tests skip instead of failing. "from
# versions: none" is pip seeing no version at all of a package every index has (setuptools, torch); a pin that does
# not exist lists the versions there are, and fails the test.
UNREACHABLE = (
    "(from versions: none)",
    "Could not fetch URL",
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Network is unreachable",
)
# the README's Search config, a user's search.yaml, shrunk to one epoch and run for two trials
SEARCH_YAML = re.search(r"```yaml\n(# examples/search\.yaml.*?)```", README.read_text(), flags=re.S)
# a run of the user's own, logged without tunekit (CSVLogger): what `tunekit diagnose` reads
PLAIN_RUN = """
import lightning.pytorch as pl
from lightning.pytorch.loggers import CSVLogger
from tunekit.examples import MLP, DigitsDataModule

pl.seed_everything(0)
trainer = pl.Trainer(max_epochs=2, logger=CSVLogger("logs"), log_every_n_steps=1, enable_checkpointing=False,
                     enable_progress_bar=False)
trainer.fit(MLP(optimizer="sgd", lr=0.05), datamodule=DigitsDataModule())
"""

pytestmark = pytest.mark.slow


def _run(argv: list[Any], cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _clock() -> tuple[float, float]:
    """Wall seconds, and CPU seconds of this process's finished children (the honest cost on a shared machine)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter(), children.ru_utime + children.ru_stime


def _since(start: tuple[float, float]) -> tuple[float, float]:
    now = _clock()
    return now[0] - start[0], now[1] - start[1]


def _pip(python: Path, args: list[Any], cwd: Path, env: dict[str, str]) -> None:
    """``python -m pip ARGS``; a skip with pip's reason when it cannot reach an index, a failure otherwise."""
    done = _run([python, "-m", "pip", *args], cwd, env)
    if done.returncode != 0:
        said = [
            line.strip() for line in (done.stderr + done.stdout).splitlines() if any(w in line for w in UNREACHABLE)
        ]
        if said:
            pytest.skip(f"pip cannot reach a package index from here (pip {' '.join(map(str, args[:2]))}: {said[0]})")
        pytest.fail(f"pip {' '.join(map(str, args))} failed:\n{done.stderr[-3000:]}")


class Fresh:
    """The fresh install: its interpreter, its ``bin/`` folder, the user's project folder and environment."""

    def __init__(self, base: Path) -> None:
        self.venv, self.project, self.wheels = base / "venv", base / "project", base / "wheels"
        self.project.mkdir()
        self.bin = self.venv / "bin"
        self.python = self.bin / "python"
        keep = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        self.env = {
            **keep,
            "PATH": f"{self.bin}{os.pathsep}{keep.get('PATH', '')}",
            "MPLBACKEND": "Agg",
            "WANDB_MODE": "offline",
            "WANDB_SILENT": "true",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        self.seconds: dict[str, tuple[float, float]] = {}  # what -> (wall, CPU of the processes it ran) seconds

    def timed(self, what: str, argv: list[Any], timeout: float = 600) -> subprocess.CompletedProcess[str]:
        start = _clock()
        done = _run(argv, self.project, self.env, timeout)
        self.seconds[what] = _since(start)
        return done

    def tunekit(self, *args: Any, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        done = self.timed(" ".join(map(str, ("tunekit", *args))), [self.bin / "tunekit", *args], timeout)
        assert done.returncode == 0, f"tunekit {' '.join(map(str, args))} exited {done.returncode}:\n{done.stderr}"
        return done


@pytest.fixture(scope="module")
def fresh() -> Iterator[Fresh]:
    """A wheel of this checkout installed into a new venv; the project folder is outside the repository. In a folder
    of its own, not pytest's basetemp: other pytest runs on the machine prune old basetemps while this one runs."""
    with tempfile.TemporaryDirectory(prefix="tunekit-fresh-install-") as base:
        yield from _installed(Path(base))


def _installed(base: Path) -> Iterator[Fresh]:
    made = Fresh(base)
    assert ROOT not in made.project.parents
    start = _clock()
    # built from a copy: setuptools writes build/ and *.egg-info into the tree it builds (and packs a stale build/)
    source = shutil.copytree(ROOT, base / "source", ignore=shutil.ignore_patterns(*NOT_PACKED))
    _pip(Path(sys.executable), ["wheel", "--no-deps", source, "-w", made.wheels, "-q"], made.project, made.env)
    wheel = next(made.wheels.glob("tunekit_lightning-*.whl"))
    created = _run([sys.executable, "-m", "venv", made.venv], made.project, made.env)
    assert created.returncode == 0, created.stderr
    _pip(made.python, ["install", "-q", TORCH], made.project, made.env)
    _pip(made.python, ["install", "-q", f"{wheel}[{EXTRAS}]"], made.project, made.env)
    made.seconds["install (wheel, venv, torch, the package)"] = _since(start)
    where = _run([made.python, "-c", "import tunekit; print(tunekit.__file__)"], made.project, made.env)
    assert Path(where.stdout.strip()).is_relative_to(made.venv), where.stdout + where.stderr  # not the checkout's
    yield made
    wall, cpu = (sum(s[i] for s in made.seconds.values()) for i in (0, 1))
    print(f"\nfresh install: {wall:.0f} s wall, {cpu:.0f} s CPU in all; wall/CPU seconds of each step:")
    print("\n".join(f"  {what}: {w:.1f} / {c:.1f}" for what, (w, c) in made.seconds.items()))


@pytest.fixture(scope="module")
def snippets(fresh: Fresh) -> list[subprocess.CompletedProcess[str]]:
    """Each README snippet run in order by the fresh interpreter in the project folder (the Commands test reads
    what the first one wrote)."""
    return [fresh.timed(f"snippet {i}", [fresh.python, "-c", code]) for i, code in enumerate(SNIPPETS)]


def test_tunekit_help_answers_in_under_a_second(fresh):
    seconds = []
    for _ in range(3):
        done = fresh.timed("tunekit --help", [fresh.bin / "tunekit", "--help"], timeout=60)
        assert done.returncode == 0 and "search" in done.stdout, done.stderr
        seconds.append(fresh.seconds["tunekit --help"][0])
    assert statistics.median(seconds) < HELP_SECONDS, f"tunekit --help took {seconds} s"


def test_every_readme_snippet_runs_from_the_installed_package(fresh, snippets):
    for index, done in enumerate(snippets):
        assert done.returncode == 0, f"README snippet {index} failed:\n{SNIPPETS[index]}\n{done.stderr[-3000:]}"
    # what the README says they print and write: the first a divergence and <log dir>/tunekit/diagnosis.json
    assert re.fullmatch(r"divergence \d+ \{'lr': [0-9.e-]+\}", snippets[0].stdout.strip().splitlines()[-1])
    assert list((fresh.project / "lightning_logs").glob("version_*/tunekit/diagnosis.json"))
    top, bottom, trace, hvps, seconds = map(float, snippets[1].stdout.split())
    assert top >= bottom and hvps > 0 and seconds > 0  # curvature's five figures
    assert (fresh.project / "lr.png").read_bytes().startswith(b"\x89PNG")  # the range test's plot


def _table_commands() -> list[str]:
    """The first column of the README's Commands table."""
    section = README.read_text().split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `(tunekit [^`]*)` \|", section, flags=re.M)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _finished_trials(db: Path, study: str) -> int:
    """Trials of ``study`` that ran to their end (complete or pruned), read with sqlite3 from Optuna's tables."""
    with sqlite3.connect(db) as con:
        (count,) = con.execute(
            "SELECT count(*) FROM trials JOIN studies USING (study_id) WHERE study_name = ? AND "
            "state IN ('COMPLETE', 'PRUNED')",
            (study,),
        ).fetchone()
    return int(count)


def test_every_command_of_the_readme_table_runs_from_the_installed_package(fresh, snippets):
    assert SEARCH_YAML is not None, "the README's Search section no longer shows examples/search.yaml"
    config = yaml.safe_load(SEARCH_YAML.group(1))
    config["trainer"]["max_epochs"] = 1
    (fresh.project / "search.yaml").write_text(yaml.safe_dump(config))
    url, db = "sqlite:///study.db", fresh.project / "study.db"
    ran: dict[str, Any] = {}

    ran["tunekit search CONFIG.yaml --n-trials 30"] = fresh.tunekit(
        "search", "search.yaml", "--n-trials", 2, "--storage", url
    )
    assert _finished_trials(db, "search") == 2  # the study, named after its config file, holds both trials

    best = ran["tunekit best --storage URL --study-name NAME"] = fresh.tunekit(
        "best", "--storage", url, "--study-name", "search"
    )
    recipe = yaml.safe_load(best.stdout)["recipe"]
    assert recipe["optimizer"] in ("adamw", "sgd") and recipe["lr"] > 0, best.stdout

    found = ran["tunekit lr-find CONFIG.yaml"] = fresh.tunekit("lr-find", "search.yaml", "--max-steps", 100)
    assert "suggested lr" in found.stdout, found.stdout
    assert (fresh.project / "lr_range_test.png").read_bytes().startswith(b"\x89PNG")

    ran["tunekit report --storage URL --study-name NAME -o report.html"] = fresh.tunekit(
        "report", "--storage", url, "--study-name", "search", "-o", "report.html"
    )
    assert "<svg" in (fresh.project / "report.html").read_text()

    (diagnosis,) = (fresh.project / "lightning_logs").glob("version_*/tunekit/diagnosis.json")  # README snippet 1
    ran["tunekit report lightning_logs/.../tunekit/diagnosis.json -o run.html"] = fresh.tunekit(
        "report", diagnosis.relative_to(fresh.project), "-o", "run.html"
    )
    assert "divergence" in (fresh.project / "run.html").read_text()

    own = fresh.timed("a plain Lightning run", [fresh.python, "-c", PLAIN_RUN])
    assert own.returncode == 0, own.stderr[-3000:]
    diagnosed = ran["tunekit diagnose PATH"] = fresh.tunekit("diagnose", "logs/lightning_logs/version_0/metrics.csv")
    assert re.search(r"read [1-9]\d* logged points", diagnosed.stderr), diagnosed.stderr

    ran["tunekit storage serve --storage postgresql://... --port 13000"] = _serve(fresh, url)

    assert sorted(ran) == sorted(_table_commands()), "a Commands row this test does not run (or one it runs that left)"


def _serve(fresh: Fresh, url: str) -> str:
    """``tunekit storage serve`` over the search's storage (the command takes sqlite:/// as well as postgresql://)
    until a gRPC client reads the study through it; Ctrl-C then ends it with the interrupted code, 130."""
    import optuna

    port = _free_port()
    start = _clock()
    server = subprocess.Popen(
        [fresh.bin / "tunekit", "storage", "serve", "--storage", url, "--host", "127.0.0.1", "--port", str(port)],
        cwd=fresh.project,
        env=fresh.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    names: list[str] = []
    deadline = time.time() + 120
    while not names and time.time() < deadline and server.poll() is None:
        try:
            names = [
                s.study_name for s in optuna.storages.GrpcStorageProxy(host="127.0.0.1", port=port).get_all_studies()
            ]
        except Exception:
            time.sleep(0.5)
    server.send_signal(signal.SIGINT)  # Ctrl-C
    try:
        out, err = server.communicate(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        server.kill()
        out, err = server.communicate()
        pytest.fail(f"tunekit storage serve was still running {STOP_SECONDS} s after Ctrl-C:\n{err}")
    fresh.seconds["tunekit storage serve"] = _since(start)
    assert names == ["search"], f"no study read through the proxy in 120 s:\n{err}"
    assert server.returncode == 130, err
    assert f"serving {url} on grpc://127.0.0.1:{port}" in err, err
    return err
