"""tunekit search against plain Optuna on the suite's tasks (``tasks.py``), 5 seeds each, in the same run.

  plain Optuna  TPE and MedianPruner with Optuna's defaults, optuna-integration's PyTorchLightningPruningCallback
                on val_loss, the naive LR range 1e-5..1 and the task's other ranges.
  careful user  the same, over the LR ranges a careful user writes (``CAREFUL_LR``: AdamW and Adam 1e-4..1e-2, SGD
                1e-3..1e-1, one range per optimizer), since that is what a user picks instead of tunekit.
  tunekit       ``run_search`` on the task's config with ``lr: auto`` and its defaults (the LR range test, informed
                first trials, batch-size-aware LR bounds, pruning at every validation, the Diagnoser).

Compute is counted in samples trained (optimizer steps x batch size; tunekit's range test included) and in
wall-clock seconds. For each task, seed and baseline: the baseline's best after its trials, the samples it spent on
them, and the samples (and seconds) tunekit had spent when its best first reached that value; then tunekit's own
best after the same number of trials. Each table gives the mean over seeds with a 95% interval (Student's t over
the seeds). Trials tunekit pruned as critical on a finite loss are refitted without the stop, and counted when they
would have recovered (ended below 80% of their initial validation loss).

    python benchmarks/search/run.py [--tasks NAME ...] [--seeds 5] [--trials 30] [--out FILE]
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
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

sys.path.insert(0, str(Path(__file__).parent))
from tasks import CAREFUL_LR, NAIVE_LR, TASKS, Task, config_of  # noqa: E402

from tunekit.config import parse_config  # noqa: E402
from tunekit.recipe import Recipe  # noqa: E402
from tunekit.search import run_search  # noqa: E402
from tunekit.utilities.lightning import quiet_lightning  # noqa: E402

RECOVERED = 0.8  # a critical trial refitted without the stop "recovered" below 80% of its initial val loss
NEAR_BEST = 0.01  # a pruned trial refitted to its end "would have counted" within 1% of the study's best (issue 24)
REFIT_LIMIT = 8  # pruned trials refitted per study (the last ones: TPE's best guesses), to keep a run short


def _samples(trainer: pl.Trainer, batch_size: int) -> int:
    return int(trainer.global_step) * int(batch_size)


def _unused(key: str, values: dict[str, Any]) -> bool:
    """Betas mean nothing to SGD; momentum nothing to Adam unless a switch to SGD follows."""
    sgd = values["optimizer"] == "sgd"
    return key in ("beta1", "beta2") and sgd or key == "momentum" and not sgd and values["switch_to_sgd_at"] is None


def plain_study(task: Task, seed: int, n_trials: int, careful: bool = False) -> optuna.Study:
    """What a user would run with plain Optuna: the same model, data and Trainer, naive LR range (``careful``: the
    ranges a careful user writes, one per optimizer)."""
    from optuna_integration import PyTorchLightningPruningCallback

    cfg = parse_config(config_of(task, seed))
    optimizers = task.optimizer if isinstance(task.optimizer, list) else [task.optimizer]

    def objective(trial: optuna.Trial) -> float:
        name = trial.suggest_categorical("optimizer", optimizers)
        first = name.replace("_then_sgd", "")
        lr = (trial.suggest_float(f"lr_{first}", *CAREFUL_LR["sgd" if first == "sgd" else "adam"], log=True)
              if careful else trial.suggest_float("lr", *NAIVE_LR, log=True))
        values: dict[str, Any] = {"optimizer": first, "switch_to_sgd_at": 0.8 if name.endswith("_then_sgd") else None,
                                  "lr": lr}
        for key, spec in task.space.items():
            if isinstance(spec, dict):
                values[key] = trial.suggest_int(key, spec["low"], spec["high"], log=spec.get("log", False))
            elif _unused(key, values):
                continue
            else:
                values[key] = trial.suggest_float(key, spec[0], spec[1], log=key == "weight_decay")
        pl.seed_everything(seed, verbose=False)
        if task.own:  # a module with its own optimizer: the user passes the sampled values to its __init__
            model = _own_model(task, values)
            batch_size = values.get("batch_size")
        else:
            recipe = Recipe(**values)
            model = cfg.make_model()
            model.recipe = recipe
            batch_size = recipe.batch_size
        trainer = pl.Trainer(**{**cfg.trainer, "logger": False, "enable_progress_bar": False,
                                "enable_model_summary": False,
                                "callbacks": [PyTorchLightningPruningCallback(trial, monitor="val_loss")]})
        started = time.time()
        try:
            trainer.fit(model, **cfg.data_kwargs(**({"batch_size": batch_size} if batch_size else {})))
        finally:
            trial.set_user_attr("samples", _samples(trainer, batch_size or 0))
            trial.set_user_attr("seconds", time.time() - started)
        value = float(trainer.callback_metrics.get("val_loss", math.nan))
        return value if math.isfinite(value) else math.inf

    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed), pruner=optuna.pruners.MedianPruner())
    with quiet_lightning():
        study.optimize(objective, n_trials=n_trials, catch=(Exception,))
    return study


def _own_model(task: Task, values: dict[str, Any]) -> pl.LightningModule:
    module, _, name = task.config["model"]["class_path"].rpartition(".")
    kwargs = {k: values[k] for k in ("lr", "weight_decay") if k in values}
    return getattr(importlib.import_module(module), name)(**task.config["model"].get("init_args", {}), **kwargs)


OVERRIDES: dict[str, Any] = {}  # sampler:/pruner: sections given on the command line (tunekit's defaults otherwise)


def tunekit_study(task: Task, seed: int, n_trials: int, folder: Path) -> tuple[optuna.Study, int, float]:
    """``run_search`` with its defaults; returns the study and the range test's samples and seconds."""
    cfg = parse_config({**config_of(task, seed), **OVERRIDES})
    url = f"sqlite:///{folder}/{task.name}-{seed}.db"
    started = time.time()
    run_search(cfg, n_trials=n_trials, storage=url, study_name="s")
    study = optuna.load_study(study_name="s", storage=url)
    range_samples = sum(int(stored["steps"]) * int(stored.get("batch_size") or 0)
                        for key, stored in study.user_attrs.items() if key.startswith("tunekit.lr_range."))
    trial_seconds = sum(t.user_attrs.get("seconds", 0.0) for t in study.trials)
    range_seconds = max(0.0, time.time() - started - trial_seconds)  # the range test and the study's overhead
    return study, range_samples, range_seconds


def _trial_samples(t: optuna.trial.FrozenTrial) -> int:
    if "samples" in t.user_attrs:  # plain Optuna's trials
        return int(t.user_attrs["samples"])
    return int(t.user_attrs.get("steps", 0)) * int(t.user_attrs.get("recipe", {}).get("batch_size") or 0)


def trace(study: optuna.Study, start_samples: int = 0, start_seconds: float = 0.0) -> list[tuple[int, float, float]]:
    """(cumulative samples, cumulative seconds, best so far) after each trial, in trial order."""
    samples, seconds, best, out = start_samples, start_seconds, math.inf, []
    for t in sorted(study.trials, key=lambda t: t.number):
        samples += _trial_samples(t)
        seconds += float(t.user_attrs.get("seconds", 0.0))
        if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value):
            best = min(best, t.value)
        out.append((samples, seconds, best))
    return out


def critical_refits(task: Task, seed: int, study: optuna.Study) -> tuple[int, int]:
    """Trials pruned as critical on a finite loss, refitted without the stop: (how many, how many recovered)."""
    from tunekit.callbacks import Diagnoser

    cfg = parse_config(config_of(task, seed))
    count = recovered = 0
    if task.own:  # its recipe is the searched keys only, set on its own optimizer: not refitted here
        return 0, 0
    for t in study.trials:
        diagnosis = t.user_attrs.get("diagnosis") or {}
        critical = [f for f in diagnosis.get("findings", []) if f["severity"] == "critical"]
        if t.state != TrialState.PRUNED or not critical or critical[0]["evidence"].get("loss") in ("nan", "inf"):
            continue
        count += 1
        recipe = Recipe.from_dict(t.user_attrs["recipe"])
        pl.seed_everything(seed, verbose=False)
        model = cfg.make_model()
        model.recipe = recipe
        initial = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
        data = cfg.data_kwargs(batch_size=recipe.batch_size)
        with quiet_lightning():
            start = float(initial.validate(model, verbose=False, **data)[0]["val_loss"])
            trainer = pl.Trainer(**{**cfg.trainer, "logger": False, "enable_progress_bar": False,
                                    "enable_model_summary": False,
                                    "callbacks": [Diagnoser(verbose=False, save=False, stop_on_critical=False,
                                                            probes=False)]})
            trainer.fit(model, **data)
        end = float(trainer.callback_metrics.get("val_loss", math.nan))
        recovered += int(math.isfinite(end) and end < RECOVERED * start)
    return count, recovered


def pruned_refits(task: Task, seed: int, study: optuna.Study) -> tuple[int, int]:
    """The last ``REFIT_LIMIT`` trials the pruner stopped (not the Diagnoser), fitted again to their end as the
    study would have (same recipe, same trial seed): (how many refitted, how many ended within ``NEAR_BEST`` of the
    study's best)."""
    from tunekit.search import plan_search
    from tunekit.search._objective import TrialFit, trial_seed

    plan = plan_search(parse_config(config_of(task, seed)))
    best = study.best_value
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED and t.intermediate_values
              and not any(f["severity"] == "critical"
                          for f in (t.user_attrs.get("diagnosis") or {}).get("findings", []))]
    near = 0
    for t in pruned[-REFIT_LIMIT:]:
        run = TrialFit(plan, Recipe.from_dict(t.user_attrs["recipe"]), None, seed=trial_seed(seed, t.number))
        with quiet_lightning():
            run.fit()
        end = float(run.trainer.callback_metrics.get("val_loss", math.nan))
        near += int(math.isfinite(end) and end <= best + NEAR_BEST * abs(best))
    return len(pruned[-REFIT_LIMIT:]), near


def _spread(values: list[float]) -> str:
    """Mean with a 95% interval over seeds (Student's t; 0 wide for one seed), and the range."""
    return f"{_mean_ci(values)} [{min(values):.4g}, {max(values):.4g}]"


def _mean_ci(values: list[float]) -> str:
    from scipy import stats

    mean = statistics.mean(values)
    if len(values) < 2:
        return f"{mean:.4g}"
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return f"{mean:.3g} +- {half:.2g}"


def compare(baseline: optuna.Study, t: list[tuple[int, float, float]]) -> dict[str, Any]:
    """A baseline's best after its trials against tunekit's trace: where tunekit first reached it, and the shares."""
    p = trace(baseline)
    target = p[-1][2]
    reached = next(((s, sec, i + 1) for i, (s, sec, b) in enumerate(t) if b <= target), None)
    return {"best": target, "samples": p[-1][0], "seconds": p[-1][1],
            "reached_trial": reached[2] if reached else None,
            "sample_share": (reached[0] if reached else t[-1][0]) / p[-1][0],
            "time_share": (reached[1] if reached else t[-1][1]) / p[-1][1],
            "pruned": sum(x.state == TrialState.PRUNED for x in baseline.trials)}


BASELINES = (("plain", "plain Optuna (defaults)"), ("careful", "careful user (plain Optuna, careful LR ranges)"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="*", default=None)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--pruner", default=None,
                        help="tunekit's pruner: section (a name, or JSON with its options), to compare settings")
    parser.add_argument("--tpe-startup", type=int, default=None, help="tunekit's TPE n_startup_trials")
    parser.add_argument("--sampler", default=None, help="tunekit's sampler: section as JSON (replaces --tpe-startup)")
    args = parser.parse_args()
    global OVERRIDES
    pruner = json.loads(args.pruner) if args.pruner and args.pruner.startswith("{") else {"name": args.pruner}
    OVERRIDES = {**({"pruner": pruner} if args.pruner else {}),
                 **({"sampler": {"name": "tpe", "n_startup_trials": args.tpe_startup}} if args.tpe_startup else {}),
                 **({"sampler": json.loads(args.sampler)} if args.sampler else {})}
    warnings.filterwarnings("ignore")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(1)
    lines: list[str] = []

    def say(text: str) -> None:
        lines.append(text)
        print(text, flush=True)

    say(f"# python benchmarks/search/run.py {' '.join(sys.argv[1:])}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="tunekit-suite-") as tmp:
        for task in TASKS:
            if args.tasks and task.name not in args.tasks:
                continue
            for seed in range(args.seeds):
                started = time.time()
                baselines = {"plain": plain_study(task, seed, args.trials),
                             "careful": plain_study(task, seed, args.trials, careful=True)}
                ours, range_samples, range_seconds = tunekit_study(task, seed, args.trials, Path(tmp))
                t = trace(ours, range_samples, range_seconds)
                crit, rec = critical_refits(task, seed, ours)
                refit, near = pruned_refits(task, seed, ours)
                row: dict[str, Any] = {
                    "task": task.name, "held_out": task.held_out, "seed": seed, "ours_best": t[-1][2],
                    "ours_samples_total": t[-1][0], "ours_seconds_total": t[-1][1],
                    "pruned_ours": sum(x.state == TrialState.PRUNED for x in ours.trials),
                    "critical_refits": crit, "recovered": rec, "range_samples": range_samples,
                    "range_seconds": range_seconds, "pruned_refits": refit, "pruned_near_best": near,
                    **{key: compare(study, t) for key, study in baselines.items()}}
                row["wall_seconds"] = time.time() - started
                rows.append(row)
                parts = []
                for key, _ in BASELINES:
                    b = row[key]
                    parts.append(f"{key} best {b['best']:.4g} ({b['pruned']} pruned): " + (
                        f"reached at trial {b['reached_trial']}, {b['sample_share']:.2f} of its samples, "
                        f"{b['time_share']:.2f} of its time" if b["reached_trial"] else
                        f"not reached ({b['sample_share']:.2f} of its samples, {b['time_share']:.2f} of its time)"))
                say(f"{task.name:<17} seed {seed}: tunekit best {t[-1][2]:.4g} ({row['pruned_ours']} pruned); "
                    + "; ".join(parts) + f"; critical refits {crit} ({rec} recovered); pruned refits {refit} "
                    f"({near} within 1% of the best)  [{time.time() - started:.0f}s]")
    if not rows:
        return
    for key, label in BASELINES:
        say("")
        say(f"against {label}: mean over seeds +- 95% interval")
        say(f"{'task':<19}{'baseline best':>17}{'tunekit best':>17}{'reached':>9}{'samples share':>17}"
            f"{'time share':>15}{'as good':>9}")
        for name in dict.fromkeys(r["task"] for r in rows):
            group = [r for r in rows if r["task"] == name]
            label_ = name + (" *" if group[0]["held_out"] else "")
            say(f"{label_:<19}{_mean_ci([r[key]['best'] for r in group]):>17}"
                f"{_mean_ci([r['ours_best'] for r in group]):>17}"
                f"{sum(r[key]['reached_trial'] is not None for r in group):>6}/{len(group):<2}"
                f"{_mean_ci([r[key]['sample_share'] for r in group]):>17}"
                f"{_mean_ci([r[key]['time_share'] for r in group]):>15}"
                f"{sum(r['ours_best'] <= r[key]['best'] for r in group):>6}/{len(group)}")
        for group_label, group in (("development", [r for r in rows if not r["held_out"]]),
                                   ("held out (*)", [r for r in rows if r["held_out"]])):
            if group:
                say(f"{group_label}: mean samples share {statistics.mean(r[key]['sample_share'] for r in group):.2f},"
                    f" mean time share {statistics.mean(r[key]['time_share'] for r in group):.2f}; tunekit's best at "
                    f"least as good on {sum(r['ours_best'] <= r[key]['best'] for r in group)}/{len(group)} task-seeds")
    say("")
    for name in dict.fromkeys(r["task"] for r in rows):  # wall time and pruning behind each mean
        group = [r for r in rows if r["task"] == name]
        say(f"{name}: tunekit wall (range test included) {_spread([r['ours_seconds_total'] for r in group])} s, plain "
            f"{_spread([r['plain']['seconds'] for r in group])} s, careful "
            f"{_spread([r['careful']['seconds'] for r in group])} s; pruned p/c/t "
            f"{sum(r['plain']['pruned'] for r in group)}/{sum(r['careful']['pruned'] for r in group)}/"
            f"{sum(r['pruned_ours'] for r in group)}; critical refits recovered {sum(r['recovered'] for r in group)}/"
            f"{sum(r['critical_refits'] for r in group)}; pruned trials refitted "
            f"{sum(r['pruned_refits'] for r in group)}, within 1% of the best "
            f"{sum(r['pruned_near_best'] for r in group)}")
    say("(reached: seeds where tunekit's best reached the baseline's best after the same number of trials; samples "
        "share and time share: what tunekit spent, range test included, until then, over what the baseline spent; a "
        "seed that never reached it counts all tunekit spent; as good: seeds where tunekit's best <= the baseline's)")
    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n")
        (args.out.with_suffix(".json")).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
