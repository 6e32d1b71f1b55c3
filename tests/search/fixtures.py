"""Classes the search tests' configs name by class path."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from tunekit.examples import MLP


class FixedBatchData(pl.LightningDataModule):
    """A data module whose batch size cannot be set (no batch_size argument)."""

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(TensorDataset(torch.randn(64, 64), torch.randint(0, 10, (64,))), batch_size=16)


class NoRecipeModel(pl.LightningModule):
    """Trains with its own optimizer and ignores any recipe."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(64, 10)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.cross_entropy(self.layer(x), y)

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class SlowMLP(MLP):
    """An MLP whose steps take a little wall-clock time, so a worker can be killed mid-trial."""

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        import time

        time.sleep(0.05)
        return super().training_step(batch, batch_idx)


class FitCounter(pl.Callback):
    """A callback a config names in trainer.callbacks: records each instance that saw a fit start."""

    fits: list[int] = []

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        FitCounter.fits.append(id(self))


class RankWitness(pl.Callback):
    """Writes what each rank of a fit trained with (one JSON line per fit, a file per rank): the optimizer, its LR,
    the batch size and the samples this rank saw."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.samples = 0

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self.samples += len(batch[0])

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        import json
        from pathlib import Path

        optimizer = trainer.optimizers[0]
        line = {"rank": trainer.global_rank, "world": trainer.world_size, "optimizer": type(optimizer).__name__,
                "lr": optimizer.param_groups[0]["lr"], "batch_size": trainer.train_dataloader.batch_size,
                "samples": self.samples, "steps": trainer.global_step}
        with (Path(self.folder) / f"rank{trainer.global_rank}.jsonl").open("a") as f:
            f.write(json.dumps(line) + "\n")


class BodyHead(pl.LightningModule):
    """A user's module with two optimizers: SGD (momentum 0.9) on the body at 0.05, Adam on the head at 1e-3, stepped
    by hand (``manual=False`` leaves Lightning's automatic optimization on, which cannot train two optimizers).
    ``late=True`` builds them from ``self.trainer`` (so they cannot be counted before a fit). Logs train_loss and
    val_loss; classifies sklearn's digits (64 features, 10 classes)."""

    def __init__(self, manual: bool = True, late: bool = False) -> None:
        super().__init__()
        self.automatic_optimization = not manual
        self.late = late
        self.body = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU())
        self.head = torch.nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self(x), y)
        if not self.automatic_optimization:
            optimizers = self.optimizers()
            for opt in optimizers:
                opt.zero_grad()
            self.manual_backward(loss)
            for opt in optimizers:
                opt.step()
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self) -> Any:
        if self.late:
            _ = self.trainer.max_epochs  # a module that reads its Trainer here
        return [torch.optim.SGD(self.body.parameters(), lr=0.05, momentum=0.9),
                torch.optim.Adam(self.head.parameters(), lr=1e-3)]


class LRsSeen(pl.Callback):
    """Records, at the start of each fit, every param group's LR of every optimizer: ``[[lr, ...], ...]``."""

    seen: list[list[list[float]]] = []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        LRsSeen.seen.append([[g["lr"] for g in opt.param_groups] for opt in trainer.optimizers])


class NoValData(pl.LightningDataModule):
    """sklearn's digits for training only: no val_dataloader."""

    def __init__(self, batch_size: int = 64) -> None:
        super().__init__()
        self.batch_size = batch_size

    def train_dataloader(self) -> DataLoader[Any]:
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        return DataLoader(TensorDataset(torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y)),
                          batch_size=self.batch_size, shuffle=True)


class EmptyValData(NoValData):
    """A validation loader with nothing in it (a split that came out empty)."""

    def val_dataloader(self) -> DataLoader[Any]:
        return DataLoader(TensorDataset(torch.zeros(0, 64), torch.zeros(0, dtype=torch.long)), batch_size=64)
