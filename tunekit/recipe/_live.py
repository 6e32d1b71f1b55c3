"""A recipe change applied to an optimizer that is already training (its param groups), without rebuilding it.

The what-if probes try a change on a fork of the run this way, and auto-remedy applies one to the run itself.
Only what lives in the param groups can change here (``lr``, ``momentum``, ``nesterov``, ``beta1``, ``beta2``,
``weight_decay``); the others (the optimizer class, the schedule, clipping, warmup) belong to the Trainer and its
schedulers and are done by the layers that own them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

GROUP_KEYS = ("lr", "momentum", "beta1", "beta2", "weight_decay")  # the recipe keys a param group holds


def group_lrs(optimizer: torch.optim.Optimizer) -> list[float]:
    return [float(g["lr"]) for g in optimizer.param_groups]


def apply_to_groups(optimizer: torch.optim.Optimizer, change: Mapping[str, Any]) -> list[str]:
    """Set the param-group keys of ``change`` on every group of ``optimizer``; returns the keys it could not set
    (the ones this optimizer has no use for, or that are not param-group keys).

    ``lr`` is the first group's new LR; the other groups keep their ratio to it (fine-tuning setups give the
    head a larger LR than the backbone). ``weight_decay`` is set only on groups that decay (biases and gains stay
    at zero). With a per-step LR scheduler running, set ``initial_lr`` too (``rescale_schedule``).

    Example:
        >>> opt = torch.optim.SGD([{"params": [torch.zeros(1)], "lr": 0.1},
        ...                        {"params": [torch.zeros(1)], "lr": 0.01}], lr=0.1, momentum=0.0)
        >>> apply_to_groups(opt, {"lr": 0.5, "momentum": 0.9, "beta1": 0.95})
        ['beta1']
        >>> [round(lr, 6) for lr in group_lrs(opt)], opt.param_groups[1]["momentum"]
        ([0.5, 0.05], 0.9)
    """
    skipped = [k for k in change if k not in GROUP_KEYS]
    groups = optimizer.param_groups
    if "lr" in change:
        new, first = float(change["lr"]), float(groups[0]["lr"])
        for i, g in enumerate(groups):
            g["lr"] = new if i == 0 or not first else float(g["lr"]) * (new / first)
    for key in ("momentum", "weight_decay"):
        if key in change:
            if key not in groups[0]:
                skipped.append(key)
                continue
            for g in groups:
                if key == "weight_decay" and not g.get("weight_decay"):
                    continue  # a group without decay (biases, gains) stays so
                g[key] = float(change[key])
    for index, key in ((0, "beta1"), (1, "beta2")):
        if key in change:
            if "betas" not in groups[0]:
                skipped.append(key)
                continue
            for g in groups:
                betas = list(g["betas"])
                betas[index] = float(change[key])
                g["betas"] = tuple(betas)
    return skipped


def rescale_schedule(optimizer: torch.optim.Optimizer, schedulers: list[Any], factor: float) -> None:
    """Multiply the base LRs of ``optimizer``'s running per-step schedulers (and every group's ``initial_lr``) by
    ``factor``, so the schedule goes on from a changed LR instead of undoing the change at its next step.

    Example:
        >>> opt = torch.optim.SGD([torch.zeros(1)], lr=0.1)
        >>> sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
        >>> apply_to_groups(opt, {"lr": 0.01}); rescale_schedule(opt, [sched], 0.1); sched.step()
        []
        >>> round(opt.param_groups[0]["lr"], 6)
        0.01
    """
    for g in optimizer.param_groups:
        if "initial_lr" in g:
            g["initial_lr"] = float(g["initial_lr"]) * factor
    for scheduler in schedulers:
        if getattr(scheduler, "optimizer", None) is optimizer and hasattr(scheduler, "base_lrs"):
            scheduler.base_lrs = [float(b) * factor for b in scheduler.base_lrs]
