"""The search suite's tasks: six shapes of training, each a tunekit config (the search with ``lr: auto``) and the
naive space a user would give plain Optuna.

  dev       mlp_digits        MLP on digits, AdamW, 4 epochs (epoch-based)
  dev       char_lm           2-layer character transformer on Python source, AdamW, 150 optimizer steps,
                              validated every 30 steps (trained by steps; several validations, one epoch)
  held out  cnn_digits        2-conv CNN on digits, Adam, 3 epochs
  held out  gru_sum           GRU summing a 64-step sequence, SGD with momentum, 3 epochs (its loss starts on a
                              plateau near 1.0 at every LR below the edge)
  held out  two_stage_cancer  MLP on breast cancer, SGD or AdamW-then-SGD, 8 epochs
  held out  own_adamw_diabetes  a user's own module (``OwnAdamW``: no Recipe, its own configure_optimizers with AdamW
                              at its lr and weight_decay arguments), an MLP regressing diabetes progression (MSE on
                              standardized targets), 6 epochs, trials under a second; tunekit searches it unchanged
                              (lr, weight decay and batch size set on its own optimizer), plain Optuna passes the
                              sampled lr and weight_decay to its __init__ as a user would

"dev" tasks chose the search's defaults (pruner, startup trials); the held-out ones never did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

from tunekit.examples import PythonSourceDataModule

NAIVE_LR = (1e-5, 1.0)  # plain Optuna's LR range: what a user who has not run a range test searches
CAREFUL_LR = {"adam": (1e-4, 1e-2), "sgd": (1e-3, 1e-1)}  # the ranges a careful user writes (issue 24): Adam and
# AdamW 1e-4..1e-2 around their 1e-3 default, SGD with momentum 1e-3..1e-1


class OwnAdamW(pl.LightningModule):
    """A user's module as written without tunekit: an MLP regressor whose ``configure_optimizers`` returns AdamW."""

    def __init__(self, in_features: int = 10, hidden: int = 32, lr: float = 1e-3, weight_decay: float = 1e-2) -> None:
        super().__init__()
        self.lr, self.weight_decay = lr, weight_decay
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x).squeeze(-1), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self.net(x).squeeze(-1), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)


@dataclass
class Task:
    name: str
    held_out: bool
    config: dict[str, Any]  # model, data, trainer (tunekit's config; both methods build the fit from it)
    space: dict[str, Any]  # the search: section without lr (tunekit adds lr: auto; plain Optuna the naive range)
    optimizer: str | list[str] = "adamw"
    extra: dict[str, Any] = field(default_factory=dict)
    own: bool = False  # the module keeps its own optimizer: tunekit's search names no optimizer


def _vocab() -> int:
    return PythonSourceDataModule().vocab_size


BATCH = {"low": 16, "high": 256, "log": True}
ADAM_SPACE = {"weight_decay": [1.0e-6, 1.0e-1], "batch_size": BATCH, "beta1": [0.5, 0.99], "beta2": [0.9, 0.9999]}

TASKS = [
    Task("mlp_digits", False, {
        "model": {"class_path": "tunekit.examples.MLP", "init_args": {"hidden": [128]}},
        "data": {"class_path": "tunekit.examples.DigitsDataModule", "init_args": {"batch_size": 64}},
        "trainer": {"max_epochs": 4}}, ADAM_SPACE),
    Task("char_lm", False, {
        "model": {"class_path": "tunekit.examples.CharTransformer",
                  "init_args": {"vocab_size": 0, "d_model": 48, "n_layers": 2, "n_heads": 4, "context": 32}},
        "data": {"class_path": "tunekit.examples.PythonSourceDataModule",
                 "init_args": {"batch_size": 32, "context": 32, "train_windows": 8192, "val_windows": 256}},
        "trainer": {"max_steps": 150, "val_check_interval": 30, "check_val_every_n_epoch": None,
                    "limit_val_batches": 4}},
        {**ADAM_SPACE, "batch_size": {"low": 16, "high": 128, "log": True}}),
    Task("cnn_digits", True, {
        "model": {"class_path": "tunekit.examples.DigitsCNN", "init_args": {"channels": [8, 16]}},
        "data": {"class_path": "tunekit.examples.DigitsDataModule", "init_args": {"batch_size": 64}},
        "trainer": {"max_epochs": 3}}, {"weight_decay": [1.0e-6, 1.0e-1], "batch_size": BATCH},
        optimizer="adam"),
    Task("gru_sum", True, {
        "model": {"class_path": "tunekit.examples.SequenceGRU", "init_args": {"length": 64, "hidden": 16}},
        "data": {"class_path": "tunekit.examples.SequenceSumDataModule",
                 "init_args": {"batch_size": 16, "length": 64, "examples": 1500}},
        "trainer": {"max_epochs": 3}}, {"momentum": [0.5, 0.99], "batch_size": {"low": 8, "high": 128, "log": True}},
        optimizer="sgd"),
    Task("two_stage_cancer", True, {
        "model": {"class_path": "tunekit.examples.MLP",
                  "init_args": {"in_features": 30, "out_features": 2, "hidden": [64]}},
        "data": {"class_path": "tunekit.examples.BreastCancerDataModule", "init_args": {"batch_size": 32}},
        "trainer": {"max_epochs": 8}},
        {"momentum": [0.5, 0.99], "weight_decay": [1.0e-6, 1.0e-1], "batch_size": {"low": 8, "high": 128, "log": True}},
        optimizer=["sgd", "adamw_then_sgd"]),
    Task("own_adamw_diabetes", True, {
        "model": {"class_path": "tasks.OwnAdamW", "init_args": {}},
        "data": {"class_path": "tunekit.examples.DiabetesDataModule", "init_args": {"batch_size": 16}},
        "trainer": {"max_epochs": 6}},
        {"weight_decay": [1.0e-6, 1.0e-1], "batch_size": {"low": 8, "high": 64, "log": True}}, own=True),
]


def config_of(task: Task, seed: int) -> dict[str, Any]:
    """The task's tunekit config at ``seed`` (model init, data order and split, sampler)."""
    config = {k: dict(v) for k, v in task.config.items()}
    model_args = dict(config["model"].get("init_args", {}))
    if model_args.get("vocab_size") == 0:
        model_args["vocab_size"] = _vocab()
    config["model"] = {**config["model"], "init_args": model_args}
    config["data"] = {**config["data"], "init_args": {**config["data"].get("init_args", {}), "seed": seed}}
    config["trainer"] = {**config["trainer"], "enable_checkpointing": False}
    optimizer = task.optimizer
    named = {} if task.own else {"optimizer": optimizer if isinstance(optimizer, list) else [optimizer]}
    return {**config, "monitor": "val_loss", "seed": seed, "search": {**named, "lr": "auto", **task.space}}
