"""Small LightningModules for the examples, tests and benchmarks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "gelu": nn.GELU, "identity": nn.Identity,
}


class MLP(pl.LightningModule):
    """A multi-layer perceptron that logs ``train_loss`` and ``val_loss`` (and ``val_acc`` when classifying).

    Args:
        in_features, out_features: input width; number of classes (or 1 for regression).
        task: ``classification`` (cross-entropy) or ``regression`` (mean squared error).
        hidden: widths of the hidden layers.
        activation: ``relu``, ``sigmoid``, ``tanh``, ``gelu`` or ``identity`` (a deep linear network).
        init_std: if given, every weight is drawn from N(0, init_std^2) and biases are zero.
        dropout: dropout probability after each hidden layer.
        optimizer: ``adam``, ``adamw`` or ``sgd`` (used when no ``recipe`` is given).
        lr, momentum, betas, weight_decay: the optimizer's settings.
    """

    def __init__(self, in_features: int = 64, out_features: int = 10, task: str = "classification",
                 hidden: Sequence[int] = (128,),
                 activation: str = "relu", init_std: float | None = None, dropout: float = 0.0,
                 optimizer: str = "adam", lr: float = 1e-3, momentum: float = 0.0,
                 betas: tuple[float, float] = (0.9, 0.999), weight_decay: float = 0.0) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, but got {activation=}.")
        if task not in ("classification", "regression"):
            raise ValueError(f"task must be 'classification' or 'regression', but got {task=}.")
        self.save_hyperparameters()
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), _ACTIVATIONS[activation]()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)
        if init_std is not None:
            for m in self.net.modules():
                if isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, std=init_std)
                    nn.init.zeros_(m.bias)
        self.optimizer_name = optimizer
        self.lr = lr

        self.task = task

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.task == "regression":
            return nn.functional.mse_loss(out.squeeze(-1), y)
        return nn.functional.cross_entropy(out, y)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self.loss(self(x), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        out = self(x)
        self.log("val_loss", self.loss(out, y), prog_bar=True)
        if self.task == "classification":
            self.log("val_acc", (out.argmax(-1) == y).float().mean(), prog_bar=True)

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        if self.optimizer_name == "sgd":
            return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=hp["momentum"],
                                   weight_decay=hp["weight_decay"])
        if self.optimizer_name in ("adam", "adamw"):
            cls = torch.optim.Adam if self.optimizer_name == "adam" else torch.optim.AdamW
            return cls(self.parameters(), lr=self.lr, betas=tuple(hp["betas"]), weight_decay=hp["weight_decay"])
        raise ValueError(f"optimizer must be 'adam', 'adamw' or 'sgd', but got {self.optimizer_name!r}.")
