"""One trial: build the user's module and data module, give the module the sampled recipe, and fit it with the
Diagnoser and the pruning callback attached."""

from __future__ import annotations

import math
import os
import signal
import socket
import time
from types import MethodType
from typing import Any

import lightning.pytorch as pl
import numpy as np
import optuna
from lightning.fabric.utilities.exceptions import MisconfigurationException

from tunekit.callbacks import Diagnoser
from tunekit.callbacks.adopt import adopt_recipe, optimizers_of
from tunekit.config import TRAIN_LOSS
from tunekit.exceptions import ConfigError
from tunekit.recipe import Recipe
from tunekit.search import _attrs as A
from tunekit.search._plan import SearchPlan, several_optimizers
from tunekit.search._pruning import ValidationPruning
from tunekit.search._validation import no_validation_after_fit


class MonitorNotLogged(ConfigError):
    """The monitored metric never appeared in the first trial: every other trial would fail the same way."""


class ModuleRefused(ConfigError):
    """Lightning refused to fit the module as configured (``MisconfigurationException``: several optimizers without
    manual optimization, clipping with manual optimization, ...): every trial would fail the same way."""


class TrialFit:
    """One trial's fit, built the same way on every rank of a DDP group: the module with the recipe, the data
    module at the recipe's batch size, and a Trainer with the config's own callbacks and logger (made fresh), the
    Diagnoser and the pruning callback (``trial=None`` on a follower rank: it takes rank zero's decisions)."""

    def __init__(self, plan: SearchPlan, recipe: Recipe, trial: optuna.Trial | None, *, seed: int,
                 auto_remedy: bool = False, extra: tuple[list[Any], Any] | None = None) -> None:
        cfg = plan.config
        pl.seed_everything(seed, verbose=False)  # before the model and data are built: init and data order follow it
        # the model, the data module and the config's own callbacks and logger (fresh for this trial), made together
        self.model, self.data, config_args = cfg.fit_objects(
            **({"batch_size": recipe.batch_size} if recipe.batch_size else {}))
        if plan.uses_recipe:
            self.model.recipe = recipe  # type: ignore[assignment]
        else:
            adopt_recipe(self.model, recipe, replace=plan.replace, keys=plan.space.dimensions)
        _refuse_several_optimizers(self.model)
        self.diagnoser = Diagnoser(verbose=False, save=False, auto_remedy=auto_remedy,
                                   monitor=cfg.monitor if cfg.direction == "minimize" else "val_loss")
        callbacks: list[Any] = [*_as_list(config_args.pop("callbacks", None)), self.diagnoser]
        self.pruning: ValidationPruning | None = None
        if cfg.monitor != TRAIN_LOSS:  # tunekit's own training-loss score exists only at the end of the fit
            self.pruning = ValidationPruning(trial, cfg.monitor)
            callbacks.append(self.pruning)
        loggers: list[Any] = _as_list(config_args.pop("logger", None))
        if extra is not None:
            callbacks += extra[0]
            loggers += _as_list(extra[1])
        self.trainer = pl.Trainer(**{"enable_checkpointing": False, "enable_progress_bar": False,
                                     "enable_model_summary": False, **config_args, **recipe.trainer_kwargs(),
                                     "callbacks": callbacks, "logger": loggers or False})

    def fit(self) -> None:
        self.trainer.fit(self.model, **self.data)


class Objective:
    """The Optuna objective of a tunekit study.

    Each trial stores on itself (``trial.user_attrs``): ``recipe`` (the sampled recipe), ``diagnosis`` (the
    Diagnoser's JSON), ``metrics`` (the final logged metrics), ``steps`` and ``seconds``. A trial whose
    diagnosis turns critical (divergence) is pruned as soon as the Diagnoser stops it; with ``auto_remedy`` it is
    repaired instead (rolled back, the LR cut, clipping on), scored, and its ``interventions`` stored. A trial
    on several devices marks itself for the follower ranks of its DDP group (``tunekit.search._ddp``).
    """

    def __init__(self, plan: SearchPlan, *, extra_callbacks: Any = None, auto_remedy: bool = False,
                 world_size: int = 1) -> None:
        self.plan = plan
        self.config = plan.config
        self.space = plan.space
        self.auto_remedy = auto_remedy
        self.extra_callbacks = extra_callbacks  # callable(trial, recipe) -> (callbacks, logger) for dashboards
        self.world_size = world_size

    def __call__(self, trial: optuna.Trial) -> float:
        cfg = self.config
        recipe = self.space.sample(trial)
        trial.set_user_attr(A.RECIPE, recipe.to_dict())
        extra = self.extra_callbacks(trial, recipe) if self.extra_callbacks is not None else None
        run = TrialFit(self.plan, recipe, trial, seed=trial_seed(cfg.seed, trial.number), auto_remedy=self.auto_remedy,
                       extra=extra)
        if self.world_size > 1:  # the follower ranks read the recipe from here and join this fit
            trial.set_user_attr(A.DDP_LEADER, leader_key())
        trainer, diagnoser = run.trainer, run.diagnoser
        started = time.time()
        try:
            run.fit()
        except MisconfigurationException as err:
            raise ModuleRefused(f"Lightning cannot fit {type(run.model).__name__} as configured: "
                                f"{str(err).strip().splitlines()[0]}") from None
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
        if run.pruning is not None and run.pruning.pruned is not None:
            raise optuna.TrialPruned(run.pruning.pruned)
        if diagnoser.diagnosis.is_critical:
            top = diagnoser.diagnosis.findings[0]
            raise optuna.TrialPruned(f"{top.code.value} at step {top.step}: {top.message}")
        value: Any = trainer.callback_metrics.get(cfg.monitor)
        if value is None and cfg.monitor == TRAIN_LOSS and diagnoser.attached:
            value = _final_train_loss(diagnoser)
        if value is None:
            logged = ", ".join(sorted(trainer.callback_metrics)) or "none"
            if run.pruning is not None and run.pruning.reported == 0:  # not one validation run
                why = no_validation_after_fit(trainer, run.model, run.data.get("datamodule"))
                raise MonitorNotLogged(f"monitor {cfg.monitor!r} was never logged in the first trial: validation "
                                       f"never ran ({why}); logged: {logged}")
            raise MonitorNotLogged(f"monitor {cfg.monitor!r} was never logged in the first trial (logged: {logged}); "
                                   "set monitor: to one of them")
        number = float(value)
        if not math.isfinite(number):
            raise optuna.TrialPruned(f"{cfg.monitor} is {number}")
        return number


def _refuse_several_optimizers(model: pl.LightningModule) -> None:
    """Where ``plan_search`` could not count the optimizers (``configure_optimizers`` reads the Trainer), count them
    when Lightning asks for them: several under automatic optimization end the search with one line, as there."""
    configure = model.configure_optimizers

    def configure_optimizers(self: pl.LightningModule) -> Any:
        conf = configure()
        count = len(optimizers_of(conf)[0])
        if count > 1 and self.automatic_optimization:
            raise ModuleRefused(several_optimizers(type(self).__name__, count))
        return conf

    model.configure_optimizers = MethodType(configure_optimizers, model)  # type: ignore[method-assign]


def trial_seed(seed: int, number: int) -> int:
    """The seed of trial ``number`` of a study seeded ``seed``: its own for each trial (each starts from its own
    init and data order, so no single draw decides the study), and the same whenever the study is run again.

    Example:
        >>> trial_seed(0, 3) == trial_seed(0, 3), trial_seed(0, 3) == trial_seed(0, 4)
        (True, False)
        >>> trial_seed(0, 1) == trial_seed(1, 0)  # not seed + number: studies seeded 0 and 1 share no trial seed
        False
    """
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


def leader_key(pid: int | None = None) -> str:
    """The rank-zero process of a DDP group, as its followers name it (host and process id)."""
    return f"{socket.gethostname()}:{os.getpid() if pid is None else pid}"


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
