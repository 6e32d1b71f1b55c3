"""Reads the live optimizer and Trainer settings into a ``RunContext`` for the remedies."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch

from tunekit.diagnose import RunContext

_OPTIMIZER_NAMES = {"SGD": "sgd", "Adam": "adam", "AdamW": "adamw"}
_SATURATING = (torch.nn.Sigmoid, torch.nn.Tanh, torch.nn.Hardtanh, torch.nn.Softsign)


def optimizer_name(optimizer: torch.optim.Optimizer) -> str:
    name = type(optimizer).__name__
    return _OPTIMIZER_NAMES.get(name, name.lower())


def train_batch_size(trainer: pl.Trainer) -> int | None:
    """The batch size of the training loader (per device), or None when it cannot be told."""
    loaders: Any = trainer.train_dataloader
    if isinstance(loaders, dict):
        loaders = next(iter(loaders.values()), None)
    elif isinstance(loaders, (list, tuple)):
        loaders = loaders[0] if loaders else None
    if loaders is None:
        return None
    size = getattr(loaders, "batch_size", None)
    if size is None and getattr(loaders, "batch_sampler", None) is not None:
        size = getattr(loaders.batch_sampler, "batch_size", None)
    return int(size) if isinstance(size, int) else None


def read_context(trainer: pl.Trainer, pl_module: pl.LightningModule) -> RunContext:
    """The settings the run uses now: LR, betas, momentum, weight decay, clipping, batch size."""
    saturating = tuple(n for n, m in pl_module.named_modules() if isinstance(m, _SATURATING))
    batchnorm = tuple(n for n, m in pl_module.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))
    clip = trainer.gradient_clip_val
    common: dict[str, Any] = {
        "gradient_clip_val": float(clip) if clip else None,
        "batch_size": train_batch_size(trainer),
        "accumulate_grad_batches": int(trainer.accumulate_grad_batches),
        "saturating_layers": saturating,
        "batchnorm_layers": batchnorm,
    }
    if not trainer.optimizers:
        return RunContext(**common)
    optimizer = trainer.optimizers[0]
    group = optimizer.param_groups[0]
    betas = group.get("betas")
    momentum = group.get("momentum")
    return RunContext(
        optimizer=optimizer_name(optimizer),
        lr=float(group.get("initial_lr", group["lr"])),  # a scheduler's base: what a recipe's ``lr`` is
        lr_now=float(group["lr"]),
        lrs=tuple(float(g["lr"]) for g in optimizer.param_groups),
        momentum=float(momentum) if momentum is not None and betas is None else None,
        beta1=float(betas[0]) if betas is not None else None,
        beta2=float(betas[1]) if betas is not None else None,
        weight_decay=float(group.get("weight_decay", 0.0) or 0.0),
        **common,
    )
