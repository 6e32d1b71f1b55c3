"""The zoo's model families that ``tunekit.examples`` does not have: a recurrent net over sequences, a residual
MLP with normalization, an autoencoder. Each trains with a ``Recipe`` and logs ``train_loss`` and ``val_loss``."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tunekit import Recipe
from tunekit.examples import SupervisedModule


class _Zoo(SupervisedModule):
    """Shared: the recipe from keyword arguments, the loss by task (``SupervisedModule``), an init scale."""

    def __init__(self, task: str, recipe: dict[str, Any]) -> None:
        super().__init__()
        self.task = task
        self.recipe = Recipe.from_dict(recipe)

    def scale_init(self, scale: float) -> None:
        if scale != 1.0:
            with torch.no_grad():
                for p in self.parameters():
                    if p.dim() >= 2:
                        p.mul_(scale)


class SeqRNN(_Zoo):
    """A GRU or LSTM over a sequence given flattened (``steps`` x ``width`` features), its last state read out."""

    def __init__(self, in_features: int, out_features: int, task: str = "classification", cell: str = "gru",
                 hidden: int = 32, steps: int = 8, init_scale: float = 1.0, **recipe: Any) -> None:
        super().__init__(task, recipe)
        self.steps, self.width = steps, in_features // steps
        self.rnn = (nn.GRU if cell == "gru" else nn.LSTM)(self.width, hidden, batch_first=True)
        self.head = nn.Linear(hidden, out_features)
        self.scale_init(init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x.view(len(x), self.steps, self.width))
        return self.head(out[:, -1])


class ResMLP(_Zoo):
    """Residual blocks ``x + W2 act(W1 norm(x))`` with LayerNorm or BatchNorm, between an input and a head layer."""

    def __init__(self, in_features: int, out_features: int, task: str = "classification", width: int = 64,
                 blocks: int = 3, norm: str = "layer", init_scale: float = 1.0, **recipe: Any) -> None:
        super().__init__(task, recipe)
        self.inp = nn.Linear(in_features, width)
        norm_cls = nn.LayerNorm if norm == "layer" else nn.BatchNorm1d
        self.blocks = nn.ModuleList(nn.Sequential(norm_cls(width), nn.Linear(width, 2 * width), nn.ReLU(),
                                                  nn.Linear(2 * width, width)) for _ in range(blocks))
        self.head = nn.Linear(width, out_features)
        self.scale_init(init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)
        return self.head(h)


class AutoEncoder(_Zoo):
    """An MLP autoencoder: the loss is the mean squared reconstruction error of the features (labels unused)."""

    def __init__(self, in_features: int, out_features: int = 0, task: str = "reconstruction", hidden: int = 32,
                 bottleneck: int = 8, depth: int = 1, activation: str = "relu", init_scale: float = 1.0,
                 **recipe: Any) -> None:
        super().__init__("reconstruction", recipe)
        act = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "identity": nn.Identity}[activation]
        widths = [in_features] + [hidden] * depth + [bottleneck]
        enc: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=False):
            enc += [nn.Linear(a, b), act()]
        dec: list[nn.Module] = []
        back = widths[::-1]
        for a, b in zip(back[:-1], back[1:], strict=False):
            dec += [nn.Linear(a, b), act()]
        self.net = nn.Sequential(*enc, *dec[:-1])
        self.scale_init(init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, _ = batch
        loss = nn.functional.mse_loss(self(x), x)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, _ = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), x))
