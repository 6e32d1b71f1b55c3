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
    """Copies of what a fork changes, taken with ``take`` and put back bit for bit with ``restore``.

    Attributes:
        module: the module's ``state_dict`` (parameters and buffers), each tensor cloned on its own device.
        optimizer: a deep copy of the optimizer's ``state_dict`` (moments, step counts, param groups and their LRs).
        schedulers: deep copies of each LR scheduler's ``state_dict``, in the order given.
        scaler: a deep copy of the fp16 grad scaler's ``state_dict``, or None without one.
        grads: each parameter's ``.grad`` tensor itself (not a copy: forks make new gradients), None where unset.
        modes: ``module.training`` of every submodule by its qualified name (``""``: the module itself).

    Memory: one more copy of the weights and buffers and of the optimizer state (Adam: two weight-sized tensors),
    on their devices, for as long as the object lives.

    Example:
        >>> net = torch.nn.Linear(2, 1)
        >>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
        >>> state = TrainingState.take(net, opt, schedulers=[])
        >>> with torch.no_grad():
        ...     _ = net.weight.add_(1.0)
        >>> state.restore(net, opt, schedulers=[])
        >>> bool(torch.equal(net.weight, state.module["weight"]))
        True
    """

    module: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    schedulers: list[dict[str, Any]]
    scaler: dict[str, Any] | None
    grads: list[torch.Tensor | None]
    modes: dict[str, bool]

    @classmethod
    def take(cls, module: torch.nn.Module, optimizer: torch.optim.Optimizer, schedulers: list[Any],
             scaler: Any = None) -> TrainingState:
        """Copy the state of ``module``, ``optimizer``, each of ``schedulers`` and ``scaler`` (a
        ``torch.amp.GradScaler``, or None); nothing is changed."""
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
        """Put everything back, in place, into the same objects ``take`` was given (``grads=False`` leaves the
        gradients alone, between forks).

        Raises:
            KeyError: ``module`` has a tensor the snapshot does not (not the module it was taken from).
            ValueError: a different number of schedulers or parameters than at ``take``.
        """
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
