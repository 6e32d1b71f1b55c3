"""The LR schedule of a recipe: linear warmup, then constant or cosine decay, as a step multiplier."""

from __future__ import annotations

import math


class ScheduleMultiplier:
    """``m(step)``: the factor the base LR is multiplied by at an optimizer step (0-based).

    Linear warmup from ``1 / warmup_steps`` to 1 over the first ``warmup_steps`` steps, then 1 for a
    ``constant`` schedule or a cosine from 1 down to 0 at ``total_steps`` for ``cosine``. A plain object
    (not a lambda) so ``LambdaLR.state_dict`` saves it with checkpoints.

    Example:
        >>> m = ScheduleMultiplier(warmup_steps=2, total_steps=10, schedule="cosine")
        >>> [round(m(s), 3) for s in (0, 1, 2, 6, 10)]
        [0.5, 1.0, 1.0, 0.5, 0.0]
    """

    def __init__(self, warmup_steps: int = 0, total_steps: int | None = None, schedule: str = "constant") -> None:
        if schedule == "cosine" and not total_steps:
            raise ValueError("A cosine schedule needs the number of training steps: set Recipe(max_steps=...) or "
                             "train with a Trainer whose max_epochs/max_steps fix it.")
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps) if total_steps else None
        self.schedule = schedule

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.schedule != "cosine" or not self.total_steps:
            return 1.0
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return 0.5 * (1.0 + math.cos(math.pi * progress))
