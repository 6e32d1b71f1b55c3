"""Annealed Gaussian gradient noise (Neelakantan et al. 2015), added before each optimizer step."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

from tunekit.exceptions import ConfigError
from tunekit.recipe._noise import ANNEAL_POWER, add_grad_noise, noise_std

__all__ = ["ANNEAL_POWER", "GradientNoise", "noise_std"]


class GradientNoise(Callback):
    """Adds ``N(0, sigma_t^2)`` to every gradient before the optimizer step, ``sigma_t = noise_std(std, t)``.

    The noise is drawn from torch's global generator (``seed_everything`` makes it repeatable) on the gradient's
    device; ``t`` is the Trainer's ``global_step``, so a resumed fit goes on with the annealed size. The noise is
    added before gradient clipping (Lightning clips after ``on_before_optimizer_step``).

    Args:
        std: the standard deviation at step 0 (> 0); ``eta`` of the paper is ``std ** 2``.

    Example:
        >>> trainer = pl.Trainer(max_steps=100, callbacks=[GradientNoise(0.01)])  # doctest: +SKIP
    """

    def __init__(self, std: float = 0.1) -> None:  # 0.1: variance 0.01, the smallest eta Neelakantan et al. tried
        if not std > 0:
            raise ConfigError(f"std must be > 0, but got {std=}.")
        self.std = float(std)

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        add_grad_noise([p for g in optimizer.param_groups for p in g["params"]], self.std, trainer.global_step)
