"""tunekit's fixed cost per trial over plain Optuna's, on a task whose trials take under a second.

Both run the same ``--trials`` trials of the suite's smallest held-out task (``two_stage_cancer``) over the same
space with pruning off and the batch size fixed, so each trial trains the same number of steps in both; the
difference in wall time per trial is what tunekit adds (Trainer and config set-up, the Diagnoser, storage, the
informed start). tunekit runs on a real SQLite storage, as its CLI does; plain Optuna in memory, as a user would.
Each run is also timed in CPU seconds of this process (``time.process_time``; torch runs on one thread here), which
other jobs on a shared machine move far less than the wall clock.
With ``--profile FILE`` tunekit's run is also profiled (cProfile, cumulative time: the top 30 lines and tunekit's
and Optuna's storage's top 40 to FILE, the raw stats beside it as FILE.prof).

    python benchmarks/search/overhead.py [--trials 10] [--repeats 2] [--profile FILE]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import pstats
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import optuna
import torch

sys.path.insert(0, str(Path(__file__).parent))
from tasks import TASKS, config_of  # noqa: E402

from tunekit.config import parse_config  # noqa: E402
from tunekit.recipe import Recipe  # noqa: E402
from tunekit.search import run_search  # noqa: E402
from tunekit.utilities.lightning import quiet_lightning  # noqa: E402

TASK = "two_stage_cancer"
SPACE = {"optimizer": ["sgd"], "lr": [1e-3, 0.3], "momentum": [0.5, 0.99]}  # fixed batch size: equal work per trial


def plain(task_config: dict[str, Any], n_trials: int, seed: int) -> tuple[float, float]:
    """Seconds for ``n_trials`` of plain Optuna (TPE, optuna-integration's pruning callback, no pruning)."""
    from optuna_integration import PyTorchLightningPruningCallback

    cfg = parse_config(task_config)

    def objective(trial: optuna.Trial) -> float:
        recipe = Recipe(optimizer="sgd", lr=trial.suggest_float("lr", *SPACE["lr"], log=True),
                        momentum=trial.suggest_float("momentum", *SPACE["momentum"]))
        pl.seed_everything(seed + trial.number, verbose=False)
        model = cfg.make_model()
        model.recipe = recipe
        trainer = pl.Trainer(**{**cfg.trainer, "logger": False, "enable_progress_bar": False,
                                "enable_model_summary": False,
                                "callbacks": [PyTorchLightningPruningCallback(trial, monitor="val_loss")]})
        trainer.fit(model, **cfg.data_kwargs())
        return float(trainer.callback_metrics["val_loss"])

    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed), pruner=optuna.pruners.NopPruner())
    started, cpu = time.perf_counter(), time.process_time()
    with quiet_lightning():
        study.optimize(objective, n_trials=n_trials)
    return time.perf_counter() - started, time.process_time() - cpu


def ours(task_config: dict[str, Any], n_trials: int, db: Path, profile: Path | None) -> tuple[float, float]:
    """Seconds for ``n_trials`` of ``run_search`` on the same space, pruning off, on SQLite."""
    cfg = parse_config({**task_config, "search": SPACE, "pruner": {"name": "none"}})
    profiler = cProfile.Profile() if profile is not None else None
    started, cpu = time.perf_counter(), time.process_time()
    if profiler is not None:
        profiler.enable()
    run_search(cfg, n_trials=n_trials, storage=f"sqlite:///{db}", study_name="overhead")
    if profiler is not None:
        profiler.disable()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if profiler is not None and profile is not None:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("cumulative").print_stats("tunekit|optuna/(study|storages)", 40)  # where tunekit adds cost
        profile.write_text(out.getvalue())
        profiler.dump_stats(profile.with_suffix(".prof"))
    return seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--profile", type=Path, default=None)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(1)
    task = next(t for t in TASKS if t.name == TASK)
    task_config = config_of(task, args.seed)
    plain(task_config, 2, args.seed)  # warm-up: first-use imports and lazy initialisation, outside both timings
    base, tk = [], []
    with tempfile.TemporaryDirectory(prefix="tunekit-overhead-") as tmp:
        for repeat in range(args.repeats):  # alternated, the fastest of each: other load on the machine shows less
            base.append(plain(task_config, args.trials, args.seed))
            tk.append(ours(task_config, args.trials, Path(tmp) / f"{repeat}.db", None))
        if args.profile is not None:  # apart from the timings: cProfile slows Python-heavy code down
            ours(task_config, args.trials, Path(tmp) / "profiled.db", args.profile)
    print(f"# python benchmarks/search/overhead.py {' '.join(sys.argv[1:])}")
    for kind, at in (("wall", 0), ("CPU", 1)):
        p, t = min(b[at] for b in base), min(x[at] for x in tk)
        print(f"{TASK}, {args.trials} trials, pruning off, fastest of {args.repeats}, {kind} seconds: plain Optuna "
              f"{p / args.trials:.3f} s/trial, tunekit {t / args.trials:.3f} s/trial (range test none, storage opened "
              f"once a run); overhead {(t - p) / args.trials:.3f} s/trial (all runs: plain "
              f"{', '.join(f'{b[at]:.1f}' for b in base)} s; tunekit {', '.join(f'{x[at]:.1f}' for x in tk)} s)")


if __name__ == "__main__":
    main()
