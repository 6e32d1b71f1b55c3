"""Annealed Gaussian gradient noise (Neelakantan et al. 2015), added before each optimizer step."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

from tunekit.exceptions import ConfigError

ANNEAL_POWER = 0.55  # the variance decays as eta / (1 + t) ** 0.55 (Neelakantan et al. 2015, their gamma)


def noise_std(std: float, step: int) -> float:
    """The noise's standard deviation at optimizer step ``step`` (0-based) for ``std`` at step 0.

    Example:
        >>> round(noise_std(1.0, 0), 6), round(noise_std(1.0, 99), 4)
        (1.0, 0.2818)
    """
    return std * (1 + step) ** (-ANNEAL_POWER / 2)


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
        sigma = noise_std(self.std, trainer.global_step)
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        with torch.no_grad():
            for grad in grads:
                grad.add_(torch.randn_like(grad), alpha=sigma)
