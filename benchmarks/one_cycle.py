"""One-cycle with the range test's peak against constant and cosine at the suggestion, at an equal budget.

For each task of the search suite (``search/tasks.py``: two development tasks, three held out) and seed: the LR
range test told the fit's budget gives a suggestion; the task's base recipe (its first optimizer, the model's
default momentum and betas) is fitted three times at that LR, with ``schedule`` constant, cosine and one_cycle (the
suggestion is one-cycle's peak), the same steps and data order. Printed: the final validation loss of each, and
each schedule's geometric-mean ratio to the best of the three per task and seed (1.00 = always the best).

    python benchmarks/one_cycle.py [--tasks NAME ...] [--seeds 3] [--out benchmarks/results/one_cycle.txt]
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import warnings
from pathlib import Path

import lightning.pytorch as pl

sys.path.insert(0, str(Path(__file__).parent / "search"))
from tasks import TASKS, Task, config_of  # noqa: E402

from tunekit import lr_range_test  # noqa: E402
from tunekit.config import parse_config  # noqa: E402
from tunekit.recipe import Recipe  # noqa: E402
from tunekit.utilities.lightning import quiet_lightning  # noqa: E402

SCHEDULES = ("constant", "cosine", "one_cycle")


def _fit(task: Task, seed: int, recipe: Recipe) -> float:
    cfg = parse_config(config_of(task, seed))
    pl.seed_everything(seed, verbose=False)
    model = cfg.make_model()
    model.recipe = recipe
    trainer = pl.Trainer(**{**cfg.trainer, "logger": False, "enable_progress_bar": False,
                            "enable_model_summary": False})
    with quiet_lightning():
        trainer.fit(model, **cfg.data_kwargs())
    value = float(trainer.callback_metrics.get("val_loss", math.nan))
    return value if math.isfinite(value) else math.inf


def run(task: Task, seed: int) -> tuple[float | None, dict[str, float]]:
    cfg = parse_config(config_of(task, seed))
    optimizer = task.optimizer[0] if isinstance(task.optimizer, list) else task.optimizer
    pl.seed_everything(seed, verbose=False)
    model = cfg.make_model()
    base = model.recipe.replace(optimizer=optimizer)
    model.recipe = base
    with quiet_lightning():
        found = lr_range_test(model, **cfg.range_test_data(model), seed=seed)
    if found.suggestion is None:
        return None, {}
    return found.suggestion, {s: _fit(task, seed, base.replace(lr=found.suggestion, schedule=s)) for s in SCHEDULES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="*", default=None)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    lines = [f"# python benchmarks/one_cycle.py {' '.join(sys.argv[1:])}".rstrip(),
             f"{'task':<18}{'seed':>5}{'lr':>10}" + "".join(f"{s:>12}" for s in SCHEDULES) + "  best"]
    ratios: dict[tuple[bool, str], list[float]] = {}
    wins = dict.fromkeys(SCHEDULES, 0)
    for task in TASKS:
        if args.tasks and task.name not in args.tasks:
            continue
        for seed in range(args.seeds):
            lr, vals = run(task, seed)
            name = task.name + (" *" if task.held_out else "")
            if lr is None:
                lines.append(f"{name:<18}{seed:>5}  no suggestion (nothing to seed the cycle with)")
                print(lines[-1], flush=True)
                continue
            best = min(vals.values())
            winner = min(vals, key=vals.__getitem__)
            wins[winner] += 1
            for s, v in vals.items():
                ratios.setdefault((task.held_out, s), []).append(v / best)
            lines.append(f"{name:<18}{seed:>5}{lr:>10.3g}"
                         + "".join(f"{v:>12.4g}" for v in vals.values()) + f"  {winner}")
            print(lines[-1], flush=True)
    lines.append("\n(* held out) geometric mean of val_loss / the best of the three, development / held out; wins")
    for s in SCHEDULES:
        parts = []
        for held in (False, True):
            r = ratios.get((held, s), [])
            parts.append(f"{math.exp(sum(map(math.log, r)) / len(r)):.3f}" if r and all(map(math.isfinite, r))
                         else "-")
        lines.append(f"  {s:<10} {' / '.join(parts)}   best on {wins[s]}")
    print("\n".join(lines[-4:]))
    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
