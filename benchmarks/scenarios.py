"""Broken and healthy training runs with a known diagnosis, on sklearn's bundled data sets.

Each scenario names the finding a good diagnoser must report first (None for a healthy run) and the
remedy it should put first. Used by ``diagnosis_zoo.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import lightning.pytorch as pl

from tunekit.callbacks import Diagnoser
from tunekit.examples import MLP, DiabetesDataModule, DigitsDataModule

DATA = {"digits": DigitsDataModule, "diabetes": DiabetesDataModule}


@dataclass
class Scenario:
    name: str
    expected: str | None  # finding code, None for healthy
    remedy: str | None  # the remedy code a good diagnoser puts first
    model: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    dataset: str = "digits"
    manual_fix: dict[str, Any] = field(default_factory=dict)  # model changes standing for a non-recipe remedy


SCENARIOS = [
    Scenario("healthy_adam", None, None, {"lr": 1e-3}),
    Scenario("healthy_sgd_momentum", None, None, {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9}),
    Scenario("healthy_deep_relu", None, None, {"hidden": (256, 256, 256), "lr": 1e-3}),
    Scenario("healthy_adamw_small_batch", None, None, {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.01},
             {"batch_size": 16}, epochs=4),
    Scenario("healthy_regression_adam", None, None, {"hidden": (32,), "lr": 3e-3}, {"batch_size": 32},
             epochs=20, dataset="diabetes"),
    Scenario("nan_sgd_huge_lr", "divergence", "lower_lr", {"optimizer": "sgd", "lr": 50.0}),
    Scenario("nan_adam_huge_lr", "divergence", "lower_lr", {"hidden": (256, 256), "lr": 5.0}),
    Scenario("too_low_lr_adam", "slow_convergence", "raise_lr", {"lr": 1e-6}),
    Scenario("too_low_lr_sgd", "slow_convergence", "raise_lr", {"optimizer": "sgd", "lr": 1e-4}),
    Scenario("saddle_deep_linear", "saddle_stall", "change_init",
             {"hidden": (32,) * 6, "activation": "identity", "init_std": 0.05, "optimizer": "sgd", "lr": 0.05},
             manual_fix={"change_init": {"init_std": None}}),
    Scenario("vanishing_deep_sigmoid", "vanishing_gradients", "change_architecture",
             {"hidden": (64,) * 8, "activation": "sigmoid", "optimizer": "sgd", "lr": 0.1},
             manual_fix={"change_architecture": {"activation": "relu"}, "change_init": {"init_std": None}}),
    Scenario("overfit_small_train", "generalization_gap", "early_stop",
             {"hidden": (512, 512), "lr": 1e-3}, {"train_size": 100, "batch_size": 20}, epochs=60),
    Scenario("plateau_sgd_noise_floor", "plateau", "decay_lr", {"optimizer": "sgd", "lr": 0.1, "hidden": ()},
             {"batch_size": 8}, epochs=30, dataset="diabetes"),
    Scenario("oscillation_sgd_momentum", "oscillation", "lower_lr",
             {"optimizer": "sgd", "lr": 0.3, "momentum": 0.9}),
    Scenario("oscillation_adam_high_lr", "oscillation", "lower_lr", {"lr": 0.05, "hidden": (256, 256)}),
]


def make(scenario: Scenario, seed: int = 0, **overrides: Any) -> tuple[pl.LightningModule, pl.LightningDataModule]:
    dm = DATA[scenario.dataset](**{"seed": seed, **scenario.data})
    kwargs = {"in_features": dm.num_features, "out_features": dm.num_outputs, "task": dm.task,
              **scenario.model, **overrides}
    return MLP(**kwargs), dm


def run_scenario(scenario: Scenario, seed: int = 0, remedy: Any = None, **diagnoser: Any) -> tuple[Diagnoser,
                                                                                               pl.Trainer]:
    """Fit the scenario with a Diagnoser; with ``remedy`` (a ``Remedy``), fit it with the remedy applied: its
    recipe change (``Recipe.apply``; clipping and max_steps go to the Trainer), or the scenario's manual stand-in
    for a remedy that is not a recipe change (architecture, init)."""
    pl.seed_everything(seed, verbose=False)
    overrides = dict(scenario.manual_fix.get(remedy.code.value, {})) if remedy is not None else {}
    model, dm = make(scenario, seed, **overrides)
    trainer_kwargs: dict[str, Any] = {"max_epochs": scenario.epochs}
    if remedy is not None and remedy.change:
        model.recipe = model.recipe.apply(remedy)
        if model.recipe.batch_size:
            dm = DATA[scenario.dataset](**{"seed": seed, **scenario.data, "batch_size": model.recipe.batch_size})
        trainer_kwargs.update(model.recipe.trainer_kwargs())
    d = Diagnoser(verbose=False, save=False, **diagnoser)
    trainer = pl.Trainer(callbacks=[d], logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, **trainer_kwargs)
    trainer.fit(model, datamodule=dm)
    return d, trainer
