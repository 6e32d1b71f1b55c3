"""tunekit search against plain Optuna: how much compute each needs to reach plain Optuna's 30-trial best.

Task: MLP 64-128-10 on sklearn's digits, AdamW, 4 epochs a trial, validation loss (lower is better).

  plain Optuna  TPE + MedianPruner (Optuna's defaults, pruning from the 3rd trial on) over naive ranges:
                lr 1e-5..1 (log), weight decay 1e-6..1e-1 (log), batch size 16..256 (log, integer),
                beta1 0.5..0.99, beta2 0.9..0.9999, with PyTorchLightningPruningCallback on val_loss.
  tunekit       ``run_search`` with the same space except ``lr: auto`` (the LR range test bounds it and
                the study starts at its suggestion), the Diagnoser on every trial (a diverging trial is
                pruned at once) and the same MedianPruner. Its range test counts as compute.

Compute is counted in training steps (optimizer steps, machine-independent) and in wall-clock seconds.
For each seed: plain Optuna's best after 30 trials, the compute plain Optuna spent on them, and the
compute tunekit spent until its best first reached that value (its range test included).

    python benchmarks/search_efficiency.py [--seeds 3] [--trials 30]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import optuna
import torch
from optuna.trial import TrialState

from tunekit.config import parse_config
from tunekit.examples import MLP, DigitsDataModule
from tunekit.search import run_search
from tunekit.utilities.lightning import quiet_lightning

EPOCHS = 4
SPACE = {"weight_decay": [1.0e-6, 1.0e-1], "batch_size": {"low": 16, "high": 256, "log": True},
         "beta1": [0.5, 0.99], "beta2": [0.9, 0.9999]}


def plain_objective(seed: int) -> Any:
    from optuna_integration import PyTorchLightningPruningCallback

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-5, 1.0, log=True)
        wd = trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True)
        batch_size = trial.suggest_int("batch_size", 16, 256, log=True)
        beta1 = trial.suggest_float("beta1", 0.5, 0.99)
        beta2 = trial.suggest_float("beta2", 0.9, 0.9999)
        pl.seed_everything(seed, verbose=False)
        model = MLP(optimizer="adamw", lr=lr, weight_decay=wd, beta1=beta1, beta2=beta2)
        trainer = pl.Trainer(max_epochs=EPOCHS, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False,
                             callbacks=[PyTorchLightningPruningCallback(trial, monitor="val_loss")])
        started = time.time()
        try:
            trainer.fit(model, datamodule=DigitsDataModule(batch_size=batch_size, seed=seed))
        finally:
            trial.set_user_attr("steps", int(trainer.global_step))
            trial.set_user_attr("seconds", time.time() - started)
        value = float(trainer.callback_metrics["val_loss"])
        return value if value == value else float("inf")

    return objective


def trace(study: optuna.Study, extra_steps: int = 0, extra_seconds: float = 0.0) -> list[tuple[int, float, float]]:
    """(cumulative steps, cumulative seconds, best so far) after each finished trial, in trial order."""
    steps, seconds, best, out = extra_steps, extra_seconds, float("inf"), []
    for t in sorted(study.trials, key=lambda t: t.number):
        steps += int(t.user_attrs.get("steps", 0))
        seconds += float(t.user_attrs.get("seconds", 0.0))
        if t.state == TrialState.COMPLETE and t.value is not None:
            best = min(best, t.value)
        out.append((steps, seconds, best))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=30)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(2)
    rows = []
    for seed in range(args.seeds):
        with tempfile.TemporaryDirectory() as tmp, quiet_lightning():
            plain = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed),
                                        pruner=optuna.pruners.MedianPruner())
            plain.optimize(plain_objective(seed), n_trials=args.trials)
            p_trace = trace(plain)
            target = p_trace[-1][2]
            config = parse_config({
                "model": {"class_path": "tunekit.examples.MLP", "init_args": {"optimizer": "adamw"}},
                "data": {"class_path": "tunekit.examples.DigitsDataModule", "init_args": {"seed": seed}},
                "trainer": {"max_epochs": EPOCHS}, "monitor": "val_loss", "seed": seed,
                "search": {"optimizer": "adamw", "lr": "auto", **SPACE}, "pruner": {"name": "median"},
            })
            storage = f"sqlite:///{Path(tmp) / 'bench.db'}"

            def stop_at_target(study: optuna.Study, trial: Any, target: float = target) -> None:
                if trial.state == TrialState.COMPLETE and trial.value <= target:
                    study.stop()  # reached plain Optuna's 30-trial best: the compute to get here is what counts

            started = time.time()
            run_search(config, n_trials=args.trials, storage=storage, study_name="b", on_trial=stop_at_target)
            study = optuna.load_study(study_name="b", storage=storage)
            range_steps = int(study.user_attrs["tunekit.lr_range.adam"]["steps"])
            range_seconds = time.time() - started - sum(float(t.user_attrs.get("seconds", 0)) for t in study.trials)
            t_trace = trace(study, range_steps, range_seconds)
        reached = next(((i + 1, s, w) for i, (s, w, b) in enumerate(t_trace) if b <= target), None)
        row = {"seed": seed, "target": target, "plain_steps": p_trace[-1][0], "plain_seconds": p_trace[-1][1],
               "plain_first": next(i + 1 for i, (_, _, b) in enumerate(p_trace) if b <= target),
               "tunekit_best": t_trace[-1][2], "reached": reached, "range_steps": range_steps,
               "tunekit_trace": [b for _, _, b in t_trace], "plain_trace": [b for _, _, b in p_trace]}
        rows.append(row)
        if reached:
            n, s, w = reached
            print(f"seed {seed}: plain Optuna's 30-trial best {target:.4f} ({row['plain_steps']} steps, "
                  f"{row['plain_seconds']:.0f} s); tunekit reached it at trial {n} after {s} steps "
                  f"({s / row['plain_steps']:.2f} of plain's steps, range test {range_steps} included) and "
                  f"{w:.0f} s ({w / row['plain_seconds']:.2f} of plain's time)", flush=True)
        else:
            print(f"seed {seed}: plain Optuna's 30-trial best {target:.4f}; tunekit did not reach it in "
                  f"{args.trials} trials (its best {row['tunekit_best']:.4f})", flush=True)
    print("\nbest val_loss by trial count (mean over seeds)")
    print(f"{'trials':>7}{'plain Optuna':>15}{'tunekit':>10}")
    for n in (1, 2, 3, 5, 10, 20, 30):
        p = [r["plain_trace"][min(n, len(r["plain_trace"])) - 1] for r in rows]
        t = [r["tunekit_trace"][min(n, len(r["tunekit_trace"])) - 1] for r in rows]
        print(f"{n:>7}{statistics.mean(p):>15.4f}{statistics.mean(t):>10.4f}")
    done = [r for r in rows if r["reached"]]
    if done:
        step_share = statistics.mean(r["reached"][1] / r["plain_steps"] for r in done)
        time_share = statistics.mean(r["reached"][2] / r["plain_seconds"] for r in done)
        print(f"\ntunekit reached plain Optuna's 30-trial best on {len(done)}/{len(rows)} seeds, using on average "
              f"{step_share:.2f} of its training steps and {time_share:.2f} of its wall-clock time "
              "(target: at most 0.33)")


if __name__ == "__main__":
    sys.exit(main())
