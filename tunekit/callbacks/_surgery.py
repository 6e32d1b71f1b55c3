"""Trainer surgery: replacing the optimizer of a running fit and carrying its LR schedule over.

The only place tunekit changes a running fit's optimizer and LR (the two-stage switch, auto-remedy's LR programs);
the private torch attribute it must set is commented where it is set.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch


def swap_to_sgd(trainer: Any, base_lrs: list[float], momentum: float) -> torch.optim.SGD:
    """Replace the Trainer's optimizer by SGD over the same param groups, LR schedule continued.

    Each group's SGD LR is ``base_lr * m(step)`` with ``m`` the running schedule's multiplier now, so the
    schedule's shape goes on where it was (no restart of warmup or cosine).
    """
    old = trainer.optimizers[0]
    groups = []
    for group, base in zip(old.param_groups, base_lrs, strict=True):
        multiplier = group["lr"] / group.get("initial_lr", group["lr"])
        groups.append({"params": group["params"], "weight_decay": group.get("weight_decay", 0.0),
                       "lr": base * multiplier, "initial_lr": base})
    sgd = torch.optim.SGD(groups, lr=groups[0]["lr"], momentum=momentum)
    for config in trainer.lr_scheduler_configs:
        config.scheduler = _continue_schedule(config.scheduler, sgd, base_lrs)
    trainer.optimizers = [sgd]
    return sgd


def _continue_schedule(scheduler: Any, optimizer: torch.optim.Optimizer, base_lrs: list[float]) -> Any:
    if isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
        # A new LambdaLR on the same multipliers; its constructor takes one step, so start one back.
        lrs = [g["lr"] for g in optimizer.param_groups]
        new = torch.optim.lr_scheduler.LambdaLR(optimizer, scheduler.lr_lambdas, last_epoch=scheduler.last_epoch - 1)
        for group, lr in zip(optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        # Private: the constructor's step left ``get_last_lr()`` one step behind; torch has no setter for it.
        new._last_lr = lrs
        return new
    scheduler.optimizer = optimizer  # other schedulers read their optimizer and base LRs each step
    scheduler.base_lrs = list(base_lrs)
    return scheduler


@dataclass
class LRProgram:
    """A multiplier on top of whatever LR schedule the fit runs, from ``start`` for ``length`` steps: a restarted
    warmup ramps up to 1 (then stays at 1); a cosine falls from 1 to 0 over the rest of the fit."""

    kind: str  # "warmup" or "cosine"
    start: int
    length: int

    def factor(self, step: int) -> float:
        t = step - self.start
        if t < 0:
            return 1.0
        if self.kind == "warmup":
            return min(1.0, (t + 1) / max(1, self.length))
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t / max(1, self.length))))


class LiveLR:
    """Applies LR programs to a running optimizer each step, on top of what its scheduler sets: the base is the LR
    the scheduler computed at its last step (when it stepped since the last application), else the base used last
    time (re-based when the LR is changed by other means), multiplied by every program's factor.

    Once ``held`` (a schedule that decayed too early or warms up too long replaced for the rest of the fit), the
    scheduler no longer sets the base: it stays what ``hold`` set, and the programs alone shape the LR (the scheduler
    still steps, and its LR is overwritten before every optimizer step)."""

    def __init__(self) -> None:
        self.programs: list[LRProgram] = []
        self.held = False
        self._base: list[float] | None = None
        self._epoch: int | None = None

    def hold(self, base: list[float], programs: list[LRProgram]) -> None:
        """From now on each group's LR is its ``base`` times the factors of ``programs`` (which replace the ones
        running), whatever the scheduler computes."""
        self.programs = list(programs)
        self.held, self._base = True, [float(b) for b in base]

    def apply(self, optimizer: torch.optim.Optimizer, step: int, schedulers: list[Any]) -> None:
        if not (self.programs or self.held):
            return
        mine = [s for s in schedulers if getattr(s, "optimizer", None) is optimizer]
        scheduler = mine[-1] if mine else None
        epoch = getattr(scheduler, "last_epoch", None)
        if self.held and self._base is not None:
            base = self._base
        elif scheduler is not None and epoch != self._epoch:
            base = [float(x) for x in scheduler.get_last_lr()]
        elif self._base is not None:
            base = self._base
        else:
            base = [float(g["lr"]) for g in optimizer.param_groups]
        factor = math.prod(p.factor(step) for p in self.programs)
        for g, b in zip(optimizer.param_groups, base, strict=True):
            g["lr"] = b * factor
        self._base, self._epoch = list(base), epoch

    def rebase(self, optimizer: torch.optim.Optimizer) -> None:
        """The optimizer's LRs were just set by other means: they are the base from now on."""
        self._base = [float(g["lr"]) for g in optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {"programs": [dataclasses.asdict(p) for p in self.programs], "base": self._base, "held": self.held}

    def load_state_dict(self, state: dict[str, Any] | list[dict[str, Any]]) -> None:
        state = {"programs": state} if isinstance(state, list) else state
        self.programs = [LRProgram(**p) for p in state.get("programs", [])]
        self._base = state.get("base")
        self.held = bool(state.get("held", False))
