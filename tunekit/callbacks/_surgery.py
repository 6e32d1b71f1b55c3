"""Trainer surgery: replacing the optimizer of a running fit and carrying its LR schedule over.

The only place tunekit changes a Trainer's optimizer in place (the two-stage switch, auto-remedy); the private
torch attribute it must set is commented where it is set.
"""

from __future__ import annotations

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
