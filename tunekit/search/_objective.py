"""One trial: build the user's module and data module, give the module the sampled recipe, and fit it
with the Diagnoser and Optuna's pruning callback attached."""

from __future__ import annotations

import math
import signal
import time
from typing import Any

import lightning.pytorch as pl
import numpy as np
import optuna

from tunekit.callbacks import Diagnoser
from tunekit.callbacks.adopt import adopt_recipe
from tunekit.config import TRAIN_LOSS
from tunekit.exceptions import ConfigError
from tunekit.search import _attrs as A
from tunekit.search._plan import SearchPlan


class MonitorNotLogged(ConfigError):
    """The monitored metric never appeared in the first trial: every other trial would fail the same way."""


class Objective:
    """The Optuna objective of a tunekit study.

    Each trial stores on itself (``trial.user_attrs``): ``recipe`` (the sampled recipe), ``diagnosis`` (the
    Diagnoser's JSON), ``metrics`` (the final logged metrics), ``steps`` and ``seconds``. A trial whose
    diagnosis turns critical (divergence) is pruned as soon as the Diagnoser stops it; with ``auto_remedy`` it is
    repaired instead (rolled back, the LR cut, clipping on), scored, and its ``interventions`` stored.
    """

    def __init__(self, plan: SearchPlan, *, extra_callbacks: Any = None, auto_remedy: bool = False) -> None:
        self.plan = plan
        self.config = plan.config
        self.space = plan.space
        self.auto_remedy = auto_remedy
        self.extra_callbacks = extra_callbacks  # callable(trial, recipe) -> (callbacks, logger) for dashboards

    def __call__(self, trial: optuna.Trial) -> float:
        from optuna_integration import PyTorchLightningPruningCallback

        cfg = self.config
        recipe = self.space.sample(trial)
        trial.set_user_attr(A.RECIPE, recipe.to_dict())
        pl.seed_everything(cfg.seed, verbose=False)  # the same init and data order for every trial
        model = cfg.make_model()
        if self.plan.uses_recipe:
            model.recipe = recipe  # type: ignore[assignment]
        else:
            adopt_recipe(model, recipe, replace=self.plan.replace, keys=self.space.dimensions)
        data = cfg.data_kwargs(**({"batch_size": recipe.batch_size} if recipe.batch_size else {}))
        diagnoser = Diagnoser(verbose=False, save=False, auto_remedy=self.auto_remedy,
                              val_metric=cfg.monitor if cfg.direction == "minimize" else "val_loss")
        config_args = cfg.trainer_args()  # the config's own callbacks and logger, fresh for this trial
        callbacks: list[Any] = [*_as_list(config_args.pop("callbacks", None)), diagnoser]
        if cfg.monitor != TRAIN_LOSS:  # tunekit's own training-loss score exists only at the end of the fit
            callbacks.append(PyTorchLightningPruningCallback(trial, monitor=cfg.monitor))
        loggers: list[Any] = _as_list(config_args.pop("logger", None))
        if self.extra_callbacks is not None:
            more, extra_logger = self.extra_callbacks(trial, recipe)
            callbacks += more
            loggers += _as_list(extra_logger)
        trainer_args = {"enable_checkpointing": False, "enable_progress_bar": False, "enable_model_summary": False,
                        **config_args, **recipe.trainer_kwargs(), "callbacks": callbacks, "logger": loggers or False}
        trainer = pl.Trainer(**trainer_args)
        started = time.time()
        pruned: optuna.TrialPruned | None = None
        try:
            trainer.fit(model, **data)
        except optuna.TrialPruned as err:
            pruned = err
        except SystemExit as err:
            # Lightning turns Ctrl-C into sys.exit(1) with SIGINT ignored; give Optuna the KeyboardInterrupt
            # it knows (it marks the trial failed) and let a second Ctrl-C work again.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt from err
        finally:
            trial.set_user_attr(A.SECONDS, round(time.time() - started, 3))
            trial.set_user_attr(A.STEPS, int(trainer.global_step))
            trial.set_user_attr(A.DIAGNOSIS, diagnoser.diagnosis.to_dict())
            trial.set_user_attr(A.METRICS, _metrics(trainer))
            if diagnoser.interventions:  # a repaired trial: what was applied to its fit
                trial.set_user_attr(A.INTERVENTIONS, [e.to_dict() for e in diagnoser.interventions])
            if diagnoser.attached:  # thinned loss/grad-norm curves for the HTML report
                trial.set_user_attr(A.CURVES, diagnoser.recorder.record().curves(max_points=150, layers=False))
        if pruned is not None:
            raise pruned
        if diagnoser.diagnosis.is_critical:
            top = diagnoser.diagnosis.findings[0]
            raise optuna.TrialPruned(f"{top.code.value} at step {top.step}: {top.message}")
        value: Any = trainer.callback_metrics.get(cfg.monitor)
        if value is None and cfg.monitor == TRAIN_LOSS and diagnoser.attached:
            value = _final_train_loss(diagnoser)
        if value is None:
            logged = ", ".join(sorted(trainer.callback_metrics)) or "none"
            raise MonitorNotLogged(f"monitor {cfg.monitor!r} was never logged in the first trial (logged: {logged}); "
                                   "set monitor: to one of them")
        number = float(value)
        if not math.isfinite(number):
            raise optuna.TrialPruned(f"{cfg.monitor} is {number}")
        return number


def _as_list(value: Any) -> list[Any]:
    if value is None or value is False or value is True:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


FINAL_SHARE = 0.1  # the tunekit/train_loss monitor: the median training loss over the last 10% of the steps


def _final_train_loss(diagnoser: Diagnoser) -> float:
    """What a module that logs no metric is scored on: its recorded training loss at the end of the fit."""
    record = diagnoser.recorder.record()
    tail = record.loss[-max(1, int(FINAL_SHARE * len(record))):]
    tail = tail[np.isfinite(tail)]
    return float(np.median(tail)) if len(tail) else math.inf


def _metrics(trainer: pl.Trainer) -> dict[str, float]:
    out = {}
    for key, value in trainer.callback_metrics.items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            continue
    return {k: v if math.isfinite(v) else str(v) for k, v in out.items()}  # type: ignore[misc]
