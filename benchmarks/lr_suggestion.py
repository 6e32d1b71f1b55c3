"""How good is a suggested learning rate? The validation loss after a fixed training budget at the
suggested LR, divided by the best of a 25-point LR grid (1.00 = as good as the grid's best; lower is
possible between grid points).

Compared on the same tasks:
  tunekit    ``tunekit.lr_range_test`` (range test + confirmation runs, at most 300 training steps)
  lightning  ``Tuner.lr_find`` (100 steps) and its suggestion (the steepest slope of the recorded curve)
  valley     fastai's "valley" rule, re-stated in ``tunekit.lr_finder.valley_suggestion``, applied to the
             curve Lightning recorded (so it costs the same 100 steps)
  prodigy    no LR to pick: the task trained with Prodigy at its defaults (``lr`` 1.0, ``d_coef`` 1.0)
  sched_free no LR to pick: schedule-free AdamW at its default LR (0.0025) on the Adam-family tasks, schedule-free
             SGD at its defaults (LR 1.0, momentum 0.9) on the SGD tasks; constant schedule, no warmup
(the last two need ``pip install 'tunekit-lightning[optimizers]'``; both are scored against the grid of the task's
own optimizer, and their column shows the LR they ran at)

Tasks (sklearn's bundled data and Python's own source; fixed seeds):
  mlp_digits_adam    MLP 64-128-10, Adam, digits, batch 64, 230 steps
  mlp_digits_sgd     MLP 64-128-10, SGD momentum 0.9, digits, batch 64, 230 steps
  cnn_digits_adam    2-conv CNN, Adam, digits, batch 64, 230 steps
  cnn_digits_sgd     2-conv CNN, plain SGD, digits, batch 64, 230 steps
  logreg_cancer_sgd  logistic regression, plain SGD, breast cancer, batch 32, 300 steps
  charlm_adamw       2-layer character transformer, AdamW, Python source, batch 32, 400 steps

Each LR is scored by the mean validation loss over 3 seeds (1 for the transformer), so the grid's best is
not a lucky draw. The grid's runs are cached in ``benchmarks/results/lr_grid.json`` (delete it to
recompute; ``--no-cache`` ignores it).

    python benchmarks/lr_suggestion.py [--tasks NAME ...] [--no-cache] [--steps N] [--grid N]

``--steps`` and ``--grid`` shrink every task's budget and the grid (a quick check that the script runs; such
results are not comparable and are not cached).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.tuner import Tuner

from tunekit import lr_range_test
from tunekit.examples import (
    MLP,
    BreastCancerDataModule,
    CharTransformer,
    DiabetesDataModule,
    DigitsCNN,
    DigitsDataModule,
    PythonSourceDataModule,
)
from tunekit.lr_finder import valley_suggestion
from tunekit.utilities.lightning import quiet_lightning

CACHE = Path(__file__).parent / "results" / "lr_grid.json"
GRID = np.logspace(-5, 1.5, 25)  # 1e-5 .. 31.6, a point every 0.27 decades


LR_FREE = ("prodigy", "sched_free")  # the columns that train at a package's defaults instead of a suggested LR


def lr_free_recipe(column: str, model: pl.LightningModule) -> dict[str, Any]:
    """The recipe change that trains ``model`` (a task's, with a tunekit ``Recipe``) at the column's defaults."""
    if column == "prodigy":
        return {"optimizer": "prodigy", "lr": 1.0, "d_coef": 1.0, "switch_to_sgd_at": None}
    if model.recipe.optimizer == "sgd":
        return {"optimizer": "schedulefree_sgd", "lr": 1.0, "momentum": 0.9, "nesterov": False, "warmup_steps": 0}
    return {"optimizer": "schedulefree_adamw", "lr": 0.0025, "beta1": 0.9, "beta2": 0.999, "warmup_steps": 0}


@dataclass
class Task:
    name: str
    model: Callable[[float], pl.LightningModule]
    data: Callable[[int], pl.LightningDataModule]
    steps: int
    seeds: int = 3  # each LR's score is the mean over this many seeds (init and data order)


def _charlm(lr: float) -> pl.LightningModule:
    return CharTransformer(vocab_size=PythonSourceDataModule().vocab_size, lr=lr)


def _digits(seed: int) -> pl.LightningDataModule:
    return DigitsDataModule(seed=seed)


TASKS = [
    Task("mlp_digits_adam", lambda lr: MLP(optimizer="adam", lr=lr), _digits, 230),
    Task("mlp_digits_sgd", lambda lr: MLP(optimizer="sgd", lr=lr, momentum=0.9), _digits, 230),
    Task("cnn_digits_adam", lambda lr: DigitsCNN(optimizer="adam", lr=lr), _digits, 230),
    Task("cnn_digits_sgd", lambda lr: DigitsCNN(optimizer="sgd", lr=lr), _digits, 230),
    Task("logreg_cancer_sgd", lambda lr: MLP(in_features=30, out_features=2, hidden=(), optimizer="sgd", lr=lr),
         lambda seed: BreastCancerDataModule(batch_size=32, seed=seed), 300),
    Task("charlm_adamw", _charlm, lambda seed: PythonSourceDataModule(seed=seed), 400, seeds=1),
]
# Held out: never looked at while the method's constants were chosen; reported on their own line.
HELD_OUT = [
    Task("mlp_cancer_adam", lambda lr: MLP(in_features=30, out_features=2, hidden=(64,), optimizer="adam", lr=lr),
         lambda seed: BreastCancerDataModule(batch_size=32, seed=seed), 300),
    Task("deep_mlp_digits_adamw", lambda lr: MLP(hidden=(256, 256, 256), optimizer="adamw", lr=lr, weight_decay=0.01),
         _digits, 230),
    Task("cnn_digits_sgdm", lambda lr: DigitsCNN(optimizer="sgd", lr=lr, momentum=0.9), _digits, 230),
    Task("mlp_diabetes_sgd", lambda lr: MLP(in_features=10, out_features=1, task="regression", hidden=(32,),
                                            optimizer="sgd", lr=lr, momentum=0.9),
         lambda seed: DiabetesDataModule(batch_size=16, seed=seed), 300),
]


def train_and_score(task: Task, lr: float, column: str | None = None) -> float:
    """Validation loss after the task's budget at a constant ``lr`` (or at an LR-free column's defaults), mean over
    the task's seeds (inf if a run diverged)."""
    values = []
    for seed in range(task.seeds):
        pl.seed_everything(seed, verbose=False)
        model, data = task.model(lr), task.data(seed)
        if column is not None:
            model.recipe = model.recipe.replace(**lr_free_recipe(column, model))
        with quiet_lightning():
            trainer = pl.Trainer(max_steps=task.steps, logger=False, enable_checkpointing=False,
                                 enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                                 limit_val_batches=0)
            trainer.fit(model, datamodule=data)
            validator = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
            value = validator.validate(model, datamodule=data, verbose=False)[0]["val_loss"]
        values.append(float(value) if math.isfinite(value) else math.inf)
    return float(np.mean(values))


def lightning_lr_find(task: Task) -> tuple[float | None, float | None]:
    """Lightning's suggestion, and fastai's valley rule on the same recorded (smoothed) curve."""
    pl.seed_everything(0, verbose=False)
    model = task.model(1e-3)
    with quiet_lightning():
        trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, default_root_dir="/tmp/tunekit-lr-bench")
        finder = Tuner(trainer).lr_find(model, datamodule=task.data(0), update_attr=False)
    if finder is None:
        return None, None
    lrs, losses = np.asarray(finder.results["lr"]), np.asarray(finder.results["loss"], dtype=float)
    keep = np.isfinite(losses)
    return finder.suggestion(), valley_suggestion(lrs[keep], losses[keep])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="*", default=None)
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--steps", type=int, default=None, help="train every task this many steps (a smoke run)")
    parser.add_argument("--grid", type=int, default=None, help="this many grid points (a smoke run)")
    args = parser.parse_args()
    smoke = args.steps is not None or args.grid is not None
    grid_lrs = GRID if args.grid is None else np.logspace(-5, 1.5, args.grid)
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(2)
    cache: dict[str, Any] = {} if args.no_cache or smoke or not CACHE.exists() else json.loads(CACHE.read_text())
    cache = {k: v for k, v in cache.items() if k != "version"} if cache.get("version") == 2 else {}
    cache["version"] = 2  # v2: mean over seeds, grid to 31.6
    rows = []
    for task in TASKS + HELD_OUT:
        if args.tasks and task.name not in args.tasks:
            continue
        if args.steps is not None:
            task = dataclasses.replace(task, steps=args.steps, seeds=1)
        grid = cache.setdefault(task.name, {})

        def score(lr: float, task: Task = task, grid: dict[str, float] = grid, column: str | None = None) -> float:
            key = f"{lr:.6g}" if column is None else column
            if key not in grid:
                grid[key] = train_and_score(task, lr, column)
                if not smoke:
                    CACHE.parent.mkdir(parents=True, exist_ok=True)
                    CACHE.write_text(json.dumps(cache, indent=1))
            return grid[key]

        started = time.time()
        grid_scores = {float(lr): score(float(lr)) for lr in grid_lrs}
        best_lr = min(grid_scores, key=grid_scores.__getitem__)
        best = grid_scores[best_lr]
        pl.seed_everything(0, verbose=False)
        ours = lr_range_test(task.model(1e-3), datamodule=task.data(0))
        light, valley = lightning_lr_find(task)
        row = {"task": task.name, "held_out": task in HELD_OUT, "best_lr": best_lr, "best": best, "steps": ours.steps}
        for name, lr in (("tunekit", ours.suggestion), ("lightning", light), ("valley", valley)):
            row[f"{name}_lr"] = lr if lr is not None else math.nan
            row[f"{name}_ratio"] = score(lr) / best if lr is not None else math.inf
        for column in LR_FREE:
            row[f"{column}_lr"] = lr_free_recipe(column, task.model(1e-3))["lr"]
            row[f"{column}_ratio"] = score(1e-3, column=column) / best  # the 1e-3 is replaced by the column's LR
        rows.append(row)
        print(f"{task.name}: grid best lr {best_lr:.3g} (val loss {best:.4f}); tunekit {row['tunekit_lr']:.3g} "
              f"x{row['tunekit_ratio']:.2f} in {ours.steps} steps; lightning x{row['lightning_ratio']:.2f}; "
              f"valley x{row['valley_ratio']:.2f}; prodigy x{row['prodigy_ratio']:.2f}; schedule-free "
              f"x{row['sched_free_ratio']:.2f}  [{time.time() - started:.0f}s]", flush=True)
    if not rows:
        return
    names = ("tunekit", "lightning", "valley", *LR_FREE)
    print(f"\n{'task':<24}{'grid best':>10}{'tunekit':>19}{'steps':>7}{'lightning':>19}"
          f"{'valley':>19}{'prodigy':>19}{'sched_free':>19}")
    for r in rows:
        cells = [f"{r[f'{n}_lr']:>10.3g} x{r[f'{n}_ratio']:<6.2f}" for n in names]
        print(f"{r['task'] + (' *' if r['held_out'] else ''):<24}{r['best_lr']:>10.3g}{cells[0]}{r['steps']:>7}"
              f"{''.join(cells[1:])}")
    for label, group in (("development tasks", [r for r in rows if not r["held_out"]]),
                         ("held-out tasks (*)", [r for r in rows if r["held_out"]]), ("all tasks", rows)):
        if group:
            geo = [statistics.geometric_mean([r[f"{n}_ratio"] for r in group]) for n in names]
            worst = [max(r[f"{n}_ratio"] for r in group) for n in names]
            means = "  ".join(f"{n} x{g:.2f}" for n, g in zip(names, geo, strict=True))
            worsts = "  ".join(f"{n} x{w:.2f}" for n, w in zip(names, worst, strict=True))
            print(f"{label + ':':<24} geometric mean {means}   worst {worsts}")


if __name__ == "__main__":
    sys.exit(main())
