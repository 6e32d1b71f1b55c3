"""A snapshot of the training state that a fork may change, restored exactly afterwards.

What a fork touches: the module's parameters and buffers (BatchNorm statistics), the optimizer's state and
param groups, the LR schedulers, the fp16 grad scaler, the current gradients, and the train/eval modes. The RNG
states are isolated around the whole probe by Lightning's ``isolate_rng``. Everything is copied on its own
device and freed when the probe ends: one copy of the weights and the optimizer state, for a few seconds.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class TrainingState:
    module: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    schedulers: list[dict[str, Any]]
    scaler: dict[str, Any] | None
    grads: list[torch.Tensor | None]
    modes: dict[str, bool]

    @classmethod
    def take(cls, module: torch.nn.Module, optimizer: torch.optim.Optimizer, schedulers: list[Any],
             scaler: Any = None) -> TrainingState:
        params = list(module.parameters())
        return cls(
            module={k: v.detach().clone() for k, v in module.state_dict(keep_vars=True).items()},
            optimizer=copy.deepcopy(optimizer.state_dict()),
            schedulers=[copy.deepcopy(s.state_dict()) for s in schedulers],
            scaler=copy.deepcopy(scaler.state_dict()) if scaler is not None else None,
            grads=[p.grad for p in params],  # the tensors themselves: the forks make new ones
            modes={name: m.training for name, m in module.named_modules()},
        )

    def restore(self, module: torch.nn.Module, optimizer: torch.optim.Optimizer, schedulers: list[Any],
                scaler: Any = None, grads: bool = True) -> None:
        """Put everything back (``grads=False`` leaves the gradients alone, between forks)."""
        with torch.no_grad():
            for name, value in module.state_dict(keep_vars=True).items():
                value.copy_(self.module[name])  # in place: the optimizer keeps pointing at the same tensors
        optimizer.load_state_dict(self.optimizer)
        for scheduler, state in zip(schedulers, self.schedulers, strict=True):
            scheduler.load_state_dict(state)
        if scaler is not None and self.scaler is not None:
            scaler.load_state_dict(self.scaler)
        for name, m in module.named_modules():
            if name in self.modes:
                m.training = self.modes[name]
        for p, g in zip(module.parameters(), self.grads, strict=True):
            p.grad = g if grads else None
