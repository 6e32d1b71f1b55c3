"""The SWATS estimate of the SGD learning rate that continues an Adam run (the two-stage switch).

SWATS (Keskar & Socher 2017): with ``p`` Adam's step and ``g`` the gradient it was taken on, the SGD
learning rate whose step has the same projection on the gradient is ``gamma = p.p / -(p.g)``; over the last
Adam steps it is the LR SGD continues with (here their median, each capped as ``STEP_CAP`` says). Here
``gamma`` is divided by the schedule's multiplier at its step, so the estimate is a *base* LR and the
schedule runs on unbroken after the switch; the switch callback scales it by ``1 - momentum`` for SGD with
momentum, as SWATS' own update does. The swap itself is Trainer surgery, done by ``tunekit.callbacks.SwitchToSGD``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

STEP_CAP = 2.0  # an estimate is capped where the SGD step would be twice the Adam step it replaces: gamma grows
# without bound as the gradient turns orthogonal to Adam's step (a memorized training set), and one such step
# undoes the training


class SwatsEstimate:
    """Collects SWATS' per-param-group LR estimates over a few Adam steps; their median is the SGD LR."""

    def __init__(self, n_groups: int) -> None:
        self.samples: list[list[float]] = [[] for _ in range(n_groups)]
        self._before: list[list[torch.Tensor]] | None = None
        self._multipliers: list[float] = []

    def before_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Snapshot the weights (called just before the optimizer step)."""
        with torch.no_grad():
            self._before = [list(torch._foreach_mul([p.detach() for p in g["params"]], 1.0))
                            for g in optimizer.param_groups]
        self._multipliers = [g["lr"] / g.get("initial_lr", g["lr"]) for g in optimizer.param_groups]

    def after_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Fold in ``gamma`` of the step just taken (the gradients are still in ``.grad``)."""
        if self._before is None:
            return
        with torch.no_grad():
            for i, (group, before) in enumerate(zip(optimizer.param_groups, self._before, strict=True)):
                pairs = [(b, p) for b, p in zip(before, group["params"], strict=True) if p.grad is not None]
                if not pairs:
                    continue
                diffs = [b for b, _ in pairs]
                torch._foreach_sub_(diffs, [p.detach() for _, p in pairs])  # before - after = -step
                step_sq = float(torch.stack(torch._foreach_norm(diffs)).square().sum())
                grad_sq = float(torch.stack(torch._foreach_norm([p.grad for _, p in pairs])).square().sum())
                along = float(sum(torch.sum(d * p.grad) for d, (_, p) in zip(diffs, pairs, strict=True)))
                multiplier = self._multipliers[i]
                if along > 0 and step_sq > 0 and grad_sq > 0 and multiplier > 0:  # a descent step
                    gamma = min(step_sq / along, STEP_CAP * (step_sq / grad_sq) ** 0.5)
                    self.samples[i].append(gamma / multiplier)
        self._before = None

    def lrs(self) -> list[float | None]:
        """The median base LR per group (robust to a few wild steps), or None where no step was a descent step."""
        return [float(np.median(s)) if s else None for s in self.samples]

    def state_dict(self) -> dict[str, Any]:
        return {"samples": [list(s) for s in self.samples]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.samples = [list(s) for s in state.get("samples", [[] for _ in self.samples])]
