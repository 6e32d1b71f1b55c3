"""Runs trained and logged without tunekit (plain Lightning loggers), for the post-hoc diagnosis tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import LearningRateMonitor
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset


class PlainClassifier(pl.LightningModule):
    """Softmax regression on sklearn's digits with its raw 0-16 pixels: at ``lr=2.0`` with momentum the logits
    blow up within a few dozen steps (a divergence); at ``lr=0.01`` it trains."""

    def __init__(self, lr: float, log_grad_norm: bool = False) -> None:
        super().__init__()
        self.lr = lr
        self.log_grad_norm = log_grad_norm
        self.layer = torch.nn.Linear(64, 10)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.layer(x), y)
        self.log("train_loss", loss)
        return loss

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        if self.log_grad_norm:
            self.log_dict(pl.utilities.grad_norm(self, norm_type=2))

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.cross_entropy(self.layer(x), y))

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


def loaders() -> tuple[DataLoader[Any], DataLoader[Any]]:
    x, y = load_digits(return_X_y=True)
    data = TensorDataset(torch.tensor(x, dtype=torch.float32), torch.tensor(y))
    train, val = torch.utils.data.random_split(data, [1500, 297], generator=torch.Generator().manual_seed(0))
    return (DataLoader(train, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0)),
            DataLoader(val, batch_size=128))


def train(folder: Path, lr: float, loggers: list[Any], epochs: int = 3, log_grad_norm: bool = False,
          callbacks: list[Any] | None = None) -> None:
    """Fit with the given loggers only: no tunekit callback, logged every step."""
    pl.seed_everything(0, verbose=False)
    train_loader, val_loader = loaders()
    trainer = pl.Trainer(max_epochs=epochs, logger=loggers, log_every_n_steps=1, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=folder,
                         callbacks=callbacks or [])
    trainer.fit(PlainClassifier(lr, log_grad_norm), train_loader, val_loader)


class StepAndEpochClassifier(pl.LightningModule):
    """An MLP under Adam that memorizes 100 digits of which a fifth have random labels: its validation loss turns up
    after a few epochs. It logs ``train_loss`` with ``on_step`` and ``on_epoch``, so Lightning writes two series:
    ``train_loss_step`` every ``log_every_n_steps`` steps and ``train_loss_epoch`` once an epoch."""

    def __init__(self, lr: float = 3e-3) -> None:
        super().__init__()
        self.lr = lr
        self.net = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.cross_entropy(self.net(x), y))

    def configure_optimizers(self) -> Any:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def noisy_digits(train_size: int = 100, noise: float = 0.2) -> tuple[DataLoader[Any], DataLoader[Any]]:
    """Standardized digits: ``train_size`` training samples with a ``noise`` share of random labels, 400 clean
    validation samples."""
    x, y = load_digits(return_X_y=True)
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(x), generator=g)
    xs, ys = torch.tensor(x, dtype=torch.float32)[order], torch.tensor(y)[order]
    yt = ys[:train_size].clone()
    flip = torch.rand(train_size, generator=g) < noise
    yt[flip] = torch.randint(0, 10, (int(flip.sum()),), generator=g)
    return (DataLoader(TensorDataset(xs[:train_size], yt), batch_size=25, shuffle=True,
                       generator=torch.Generator().manual_seed(0)),
            DataLoader(TensorDataset(xs[-400:], ys[-400:]), batch_size=400))


def train_step_and_epoch(folder: Path, loggers: list[Any], epochs: int = 40) -> None:
    """Fit ``StepAndEpochClassifier`` with Lightning's default logging cadence (every 50 steps) and a
    LearningRateMonitor that also logs Adam's beta1 (``lr-Adam-momentum``)."""
    pl.seed_everything(0, verbose=False)
    train_loader, val_loader = noisy_digits()
    trainer = pl.Trainer(max_epochs=epochs, logger=loggers, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=folder,
                         callbacks=[LearningRateMonitor(log_momentum=True)])
    trainer.fit(StepAndEpochClassifier(), train_loader, val_loader)
