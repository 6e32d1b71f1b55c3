"""Reading the scalars a run logged: Lightning's CSVLogger ``metrics.csv``, TensorBoard event files, W&B run
directories (offline, or a synced copy)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tunekit.exceptions import ConfigError
from tunekit.logs._series import STEP_KEYS, Logged
from tunekit.utilities.imports import require


def _number(text: object) -> float | None:
    if text is None or text == "":
        return None
    try:
        return float(text)  # type: ignore[arg-type]  # "nan", "inf" and W&B's "NaN"/"Infinity" included
    except (TypeError, ValueError):
        return None


def _gathered(source: str, points: Iterator[tuple[str, float, float]]) -> Logged:
    """A ``Logged`` run from (key, step, value) points, each key's points in the order they came."""
    logged = Logged(source)
    columns: dict[str, tuple[list[float], list[float]]] = {}
    for key, step, value in points:
        steps, values = columns.setdefault(key, ([], []))
        steps.append(step)
        values.append(value)
    for key, (steps, values) in columns.items():
        logged.add(key, steps, values)
    return logged


def read_csv(path: Path) -> Logged:
    """Lightning's ``CSVLogger`` file: one row per logging call, a column per metric, ``step`` the global step."""

    def points() -> Iterator[tuple[str, float, float]]:
        with path.open(newline="") as f:
            for i, row in enumerate(csv.DictReader(f)):
                step = _number(row.get("step"))
                step = float(i) if step is None else step
                for key, text in row.items():
                    value = _number(text)
                    if key not in STEP_KEYS and key != "epoch" and value is not None:
                        yield key, step, value

    return _gathered(str(path), points())


def read_tensorboard(folder: Path) -> Logged:
    """Every scalar of the TensorBoard event files in ``folder`` (and below)."""
    accumulator = require("tensorboard.backend.event_processing.event_accumulator", "tensorboard",
                          extra="tensorboard")

    def points() -> Iterator[tuple[str, float, float]]:
        for events in sorted({p.parent for p in folder.rglob("events.out.tfevents.*")}):
            reader = accumulator.EventAccumulator(str(events), size_guidance={accumulator.SCALARS: 0})
            reader.Reload()
            for tag in reader.Tags().get("scalars", []):
                for event in reader.Scalars(tag):
                    yield tag, float(event.step), float(event.value)

    return _gathered(str(folder), points())


def read_wandb(run_dir: Path) -> Logged:
    """A W&B run directory: the history of its ``.wandb`` transaction log, read with ``wandb leet inspect --json``
    (W&B's own reader of that format), or ``files/wandb-history.jsonl`` in an older synced copy."""

    def points() -> Iterator[tuple[str, float, float]]:
        for item in _wandb_history(run_dir):
            step = _number(item.get("trainer/global_step", item.get("_step")))
            if step is None:
                continue
            for key, value in item.items():
                number = _number(value) if not isinstance(value, (dict, list, bool)) else None
                if not key.startswith("_") and key not in STEP_KEYS and number is not None:
                    yield key, step, number

    return _gathered(str(run_dir), points())


def _wandb_history(run_dir: Path) -> list[dict[str, object]]:
    jsonl = run_dir / "files" / "wandb-history.jsonl"
    if jsonl.is_file():
        return [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    require("wandb", "wandb")
    proc = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(run_dir)],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise ConfigError(f"cannot read the W&B run in {str(run_dir)!r}: "
                          f"{(proc.stderr.strip().splitlines() or ['wandb leet inspect failed'])[-1]}")
    items = []
    for line in proc.stdout.splitlines():
        record = json.loads(line) if line.startswith("{") else {}
        if record.get("type") == "history":
            items.append(dict(record["history"].get("item", {})))
    return items


def read_logged(path: str | Path) -> Logged:
    """Whatever logger wrote ``path``: a ``metrics.csv`` (or a folder holding one), a folder of TensorBoard event
    files, a W&B run directory (``run-*.wandb`` inside) or a ``wandb`` folder (its latest run)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{str(path)!r} does not exist: pass a metrics.csv, a TensorBoard log folder or a W&B run "
                          "folder.")
    if path.is_file():
        if path.suffix == ".csv":
            return read_csv(path)
        if path.name.startswith("events.out.tfevents"):
            return read_tensorboard(path.parent)
        if path.suffix == ".wandb":
            return read_wandb(path.parent)
        raise ConfigError(f"{str(path)!r} is not a log tunekit reads: give a metrics.csv, a TensorBoard event file "
                          "or folder, or a W&B run folder.")
    if (path / "metrics.csv").is_file():
        return read_csv(path / "metrics.csv")
    if list(path.glob("run-*.wandb")) or (path / "files" / "wandb-history.jsonl").is_file():
        return read_wandb(path)
    runs = sorted(path.glob("*run-*/"), key=lambda p: p.stat().st_mtime)
    if runs and (list(runs[-1].glob("run-*.wandb")) or (runs[-1] / "files").is_dir()):
        return read_wandb(runs[-1])
    if any(path.rglob("events.out.tfevents.*")):
        return read_tensorboard(path)
    csvs = sorted(path.rglob("metrics.csv"), key=lambda p: p.stat().st_mtime)
    if csvs:
        return read_csv(csvs[-1])
    raise ConfigError(f"no log in {str(path)!r}: it holds no metrics.csv, TensorBoard event file or W&B run.")
