"""A small CNN for sklearn's 8x8 digits."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

from tunekit.callbacks import RecipeMixin
from tunekit.recipe import Recipe


class DigitsCNN(RecipeMixin, pl.LightningModule):
    """Two 3x3 convolutions and a linear head over the 8x8 digit images (given as 64 features).

    Args:
        channels: channels of the two convolutions.
        optimizer, lr, momentum, weight_decay: the module's ``Recipe``.
    """

    def __init__(self, channels: tuple[int, int] = (16, 32), optimizer: str = "adam", lr: float = 1e-3,
                 momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        super().__init__()
        self.save_hyperparameters()
        c1, c2 = channels
        self.net = nn.Sequential(
            nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(c2 * 16, 10),
        )
        self.recipe = Recipe(optimizer=optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        out = self(x)
        self.log("val_loss", nn.functional.cross_entropy(out, y))
        self.log("val_acc", (out.argmax(-1) == y).float().mean())
