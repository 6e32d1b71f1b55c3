"""Small LightningModules for the examples, tests and benchmarks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

from tunekit.callbacks import RecipeMixin
from tunekit.recipe import Recipe

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "gelu": nn.GELU, "identity": nn.Identity,
}


class SupervisedModule(RecipeMixin, pl.LightningModule):
    """A module trained on ``(x, y)`` batches with a ``Recipe``: cross-entropy for ``task="classification"``, mean
    squared error for ``"regression"``; logs ``train_loss``, ``val_loss`` (and ``val_acc`` when classifying).
    Subclasses set ``self.task`` and ``self.recipe`` and define ``forward``."""

    task: str = "classification"

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


class MLP(SupervisedModule):
    """A multi-layer perceptron that logs ``train_loss`` and ``val_loss`` (and ``val_acc`` when classifying).

    Args:
        in_features, out_features: input width; number of classes (or 1 for regression).
        task: ``classification`` (cross-entropy) or ``regression`` (mean squared error).
        hidden: widths of the hidden layers.
        activation: ``relu``, ``sigmoid``, ``tanh``, ``gelu`` or ``identity`` (a deep linear network).
        init_std: if given, every weight is drawn from N(0, init_std^2) and biases are zero.
        dropout: dropout probability after each hidden layer.
        optimizer, lr, momentum, beta1, beta2, weight_decay, warmup_steps, schedule, switch_to_sgd_at: the
            module's ``Recipe`` (``self.recipe``; assign another one to train with it).
    """

    def __init__(self, in_features: int = 64, out_features: int = 10, task: str = "classification",
                 hidden: Sequence[int] = (128,),
                 activation: str = "relu", init_std: float | None = None, dropout: float = 0.0,
                 optimizer: str = "adam", lr: float = 1e-3, momentum: float = 0.0, beta1: float = 0.9,
                 beta2: float = 0.999, weight_decay: float = 0.0, warmup_steps: int = 0, schedule: str = "constant",
                 switch_to_sgd_at: float | None = None) -> None:
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
        self.net: nn.Module = nn.Sequential(*layers)
        if init_std is not None:
            for m in self.net.modules():
                if isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, std=init_std)
                    nn.init.zeros_(m.bias)
        self.recipe = Recipe(optimizer=optimizer, lr=lr, momentum=momentum, beta1=beta1, beta2=beta2,
                             weight_decay=weight_decay, warmup_steps=warmup_steps, schedule=schedule,
                             switch_to_sgd_at=switch_to_sgd_at)
        self.task = task

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)



class SequenceGRU(MLP):
    """A GRU regressor over a sequence given flattened (``length * width`` features, as ``SequenceSumDataModule``
    gives it), its last state read out: on the sequence-sum task its loss sits on a plateau near its start before
    the GRU learns to carry a running total.

    Args:
        length, width: the sequence shape.
        hidden: the GRU's state size.
        optimizer, lr, momentum, ...: the module's ``Recipe``, as for ``MLP``.
    """

    def __init__(self, length: int = 16, width: int = 4, hidden: int = 32, optimizer: str = "sgd", lr: float = 0.05,
                 momentum: float = 0.9, beta1: float = 0.9, beta2: float = 0.999, weight_decay: float = 0.0,
                 warmup_steps: int = 0, schedule: str = "constant", switch_to_sgd_at: float | None = None) -> None:
        super().__init__(in_features=length * width, out_features=1, task="regression", hidden=(), optimizer=optimizer,
                         lr=lr, momentum=momentum, beta1=beta1, beta2=beta2, weight_decay=weight_decay,
                         warmup_steps=warmup_steps, schedule=schedule, switch_to_sgd_at=switch_to_sgd_at)
        self.length, self.width = length, width
        self.gru = nn.GRU(width, hidden, batch_first=True)
        self.net = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x.view(len(x), self.length, self.width))
        return self.net(out[:, -1])
