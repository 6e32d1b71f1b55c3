"""Character-level language modelling on Python's own source code (text that ships with Python)."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from tunekit.callbacks import RecipeMixin
from tunekit.recipe import Recipe

SOURCES = ("textwrap", "json.decoder", "json.encoder", "string", "shlex", "fnmatch", "calendar", "heapq", "bisect",
           "colorsys", "glob", "difflib", "argparse")  # stdlib modules whose source is the corpus


def python_source_text(modules: tuple[str, ...] = SOURCES) -> str:
    """The source code of some standard-library modules, concatenated (about 250 kB)."""
    return "\n".join(inspect.getsource(importlib.import_module(m)) for m in modules)


class _Windows(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    def __init__(self, ids: torch.Tensor, context: int, count: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.starts = torch.randint(0, len(ids) - context - 1, (count,), generator=generator)
        self.ids, self.context = ids, context

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = int(self.starts[i])
        chunk = self.ids[s : s + self.context + 1]
        return chunk[:-1], chunk[1:]


class PythonSourceDataModule(pl.LightningDataModule):
    """Windows of ``context`` characters of Python's source; the last 10% of the text is validation.

    Args:
        batch_size: training batch size.
        context: characters per window.
        train_windows, val_windows: windows per epoch (fixed, drawn with ``seed``).
    """

    def __init__(self, batch_size: int = 32, context: int = 64, train_windows: int = 4096, val_windows: int = 512,
                 seed: int = 0) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, but got {batch_size=}.")
        self.batch_size, self.context, self.seed = batch_size, context, seed
        self.train_windows, self.val_windows = train_windows, val_windows
        text = python_source_text()
        self.vocab = sorted(set(text))
        lookup = {c: i for i, c in enumerate(self.vocab)}
        ids = torch.tensor([lookup[c] for c in text], dtype=torch.long)
        cut = int(0.9 * len(ids))
        self.train_ids, self.val_ids = ids[:cut], ids[cut:]

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def train_dataloader(self) -> DataLoader[Any]:
        data = _Windows(self.train_ids, self.context, self.train_windows, self.seed)
        return DataLoader(data, batch_size=self.batch_size, shuffle=True,
                          generator=torch.Generator().manual_seed(self.seed))

    def val_dataloader(self) -> DataLoader[Any]:
        return DataLoader(_Windows(self.val_ids, self.context, self.val_windows, self.seed + 1), batch_size=256)


class CharTransformer(RecipeMixin, pl.LightningModule):
    """A small causal transformer over characters (pre-norm, learned positions).

    Args:
        vocab_size: number of distinct characters.
        context: maximum sequence length.
        d_model, n_layers, n_heads: the transformer's width, depth and heads.
        optimizer, lr, beta1, beta2, weight_decay, warmup_steps, schedule: the module's ``Recipe``.
        norm_first: pre-norm blocks (stable); ``False`` gives the original post-norm Transformer, which is
            known to need a warmup.
    """

    def __init__(self, vocab_size: int = 100, context: int = 64, d_model: int = 64, n_layers: int = 2,
                 n_heads: int = 4, optimizer: str = "adamw", lr: float = 1e-3, beta1: float = 0.9,
                 beta2: float = 0.999, weight_decay: float = 0.01, warmup_steps: int = 0,
                 schedule: str = "constant", norm_first: bool = True) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.position = nn.Parameter(torch.zeros(context, d_model))
        layer = nn.TransformerEncoderLayer(d_model, n_heads, 4 * d_model, dropout=0.0, batch_first=True,
                                           norm_first=norm_first)
        self.blocks = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(context), persistent=False)
        self.recipe = Recipe(optimizer=optimizer, lr=lr, beta1=beta1, beta2=beta2, weight_decay=weight_decay,
                             warmup_steps=warmup_steps, schedule=schedule)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        n = ids.shape[1]
        h = self.embed(ids) + self.position[:n]
        mask: torch.Tensor = self.mask  # type: ignore[assignment]
        h = self.blocks(h, mask=mask[:n, :n], is_causal=True)
        return self.head(self.norm(h))

    def _loss(self, batch: Any) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self(x).flatten(0, 1), y.flatten())

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val_loss", self._loss(batch))
