"""Does the best LR move with the training budget, and how far is the LR range test's pick from the longer run's best?

For tasks of ``lr_suggestion.py`` (two it was developed on, two held out), the best of a local LR grid (7 points,
0.27 decades apart, around the 1x grid best) at 1x and 4x the task's budget, mean validation loss over 2 seeds;
then ``lr_range_test``'s pick (it takes no budget: the correction this benchmark measured helped Adam and hurt SGD,
so it was removed) scored at 4x against that grid's best (1.00 = as good as the best).

    python benchmarks/lr_budget.py [--mult 4] [--out benchmarks/results/lr_budget.txt]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import warnings
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from lr_suggestion import CACHE, GRID, HELD_OUT, TASKS, train_and_score  # noqa: E402

from tunekit import lr_range_test  # noqa: E402

CHOSEN = ["mlp_digits_adam", "cnn_digits_sgd", "mlp_cancer_adam", "cnn_digits_sgdm"]
SEEDS = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mult", type=int, default=4)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(1)
    grid1 = json.loads(CACHE.read_text())
    lines = [f"# python benchmarks/lr_budget.py {' '.join(sys.argv[1:])}",
             f"{'task':<24}{'best 1x':>9}{'best ' + str(args.mult) + 'x':>9}{'moved':>7}"
             f"{'range test':>20}"]
    print(lines[-1], flush=True)
    for task in [t for t in TASKS + HELD_OUT if t.name in CHOSEN]:
        scores1 = {float(k): v for k, v in grid1[task.name].items()}
        best1 = min((lr for lr in scores1 if float(f"{lr:.6g}") in [float(f"{g:.6g}") for g in GRID]),
                    key=scores1.__getitem__)
        i = int(np.argmin(np.abs(np.log(GRID) - np.log(best1))))
        local = GRID[max(0, i - 4):i + 3]
        long = dataclasses.replace(task, steps=task.steps * args.mult, seeds=SEEDS)
        scores = {float(lr): train_and_score(long, float(lr)) for lr in local}
        best = min(scores, key=scores.__getitem__)
        pl.seed_everything(0, verbose=False)
        r = lr_range_test(task.model(1e-3), datamodule=task.data(0))
        value = train_and_score(long, r.suggestion) / scores[best] if r.suggestion else float("inf")
        cell = f"{r.suggestion or float('nan'):>12.3g} x{value:<5.2f}"
        name = task.name + (" *" if task in HELD_OUT else "")
        lines.append(f"{name:<24}{best1:>9.3g}{best:>9.3g}{best / best1:>6.2f}x{cell:>20}")
        print(lines[-1], flush=True)
    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
