"""Annealed Gaussian gradient noise (Neelakantan et al. 2015, "Adding gradient noise improves learning for very deep
networks"): the recipe's ``grad_noise``, added by ``tunekit.callbacks.GradientNoise`` to a fit and by the what-if
probes to a fork, the same way in both.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

ANNEAL_POWER = 0.55  # the variance decays as eta / (1 + t) ** 0.55 (Neelakantan et al. 2015, their gamma)


def noise_std(std: float, step: int) -> float:
    """The noise's standard deviation at optimizer step ``step`` (0-based, counted from the start of the fit) for
    ``std`` at step 0.

    Example:
        >>> round(noise_std(1.0, 0), 6), round(noise_std(1.0, 99), 4)
        (1.0, 0.2818)
    """
    return std * (1 + step) ** (-ANNEAL_POWER / 2)


def add_grad_noise(params: Iterable[torch.Tensor], std: float, step: int) -> None:
    """Add ``N(0, noise_std(std, step) ** 2)`` to the gradient of each of ``params`` (those that have one), drawn from
    torch's global generator on the gradient's device, in the order given (an optimizer's param groups)."""
    sigma = noise_std(std, step)
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p.grad.add_(torch.randn_like(p.grad), alpha=sigma)
