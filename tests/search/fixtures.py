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
