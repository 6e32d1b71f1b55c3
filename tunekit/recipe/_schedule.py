"""The LR schedule of a recipe as a per-step multiplier of the base LR: a linear warmup, then one of these schedules
(step, exponential and cosine decay after a warmup: Step 6 of the "Dynaxx Precision" optimization guide; cosine with
warm restarts: Loshchilov & Hutter 2017, SGDR; one-cycle: Smith 2018).

| ``schedule`` | multiplier after the warmup (``t``: steps since it ended) | torch's equivalent |
|---|---|---|
| ``constant`` | 1 | |
| ``cosine`` | from 1 down to 0 at the last step | ``CosineAnnealingLR`` |
| ``step`` | ``decay_factor ** (t // step_every)`` | ``StepLR`` |
| ``exponential`` | ``decay_rate ** t`` | ``ExponentialLR`` |
| ``one_cycle`` | up from ``1/25`` to 1 over the first 30%, then down to ``1/25e4`` (cosine ramps) | ``OneCycleLR`` |
| ``cosine_restarts`` | cosine over ``cycle_steps``, restarting, each ``restart_mult`` x longer | ``...WarmRestarts`` |
| ``plateau`` | 1: the cuts are made by ``ReduceLROnPlateau`` on the metric (see ``_build``) | ``ReduceLROnPlateau`` |

A plain object (not a lambda) so ``LambdaLR.state_dict`` saves it with checkpoints, and one multiplier for every
schedule so the two-stage switch carries any of them over to SGD unchanged.
"""

from __future__ import annotations

import math

from tunekit.exceptions import ConfigError

SCHEDULES = ("constant", "cosine", "step", "exponential", "one_cycle", "cosine_restarts", "plateau")
ONE_CYCLE_PCT_START = 0.3  # one-cycle: the share of steps spent rising to the peak (torch's and fastai's default)
ONE_CYCLE_DIV = 25.0  # ... starting from the peak / 25 ...
ONE_CYCLE_FINAL_DIV = 1e4  # ... and ending at the start / 1e4
NEEDS_TOTAL = ("cosine", "one_cycle")  # schedules whose shape depends on the run's length


class ScheduleMultiplier:
    """``m(step)``: the factor the base LR is multiplied by at an optimizer step (0-based).

    Example:
        >>> m = ScheduleMultiplier(warmup_steps=2, total_steps=10, schedule="cosine")
        >>> [round(m(s), 3) for s in (0, 1, 2, 6, 10)]
        [0.5, 1.0, 1.0, 0.5, 0.0]
        >>> m = ScheduleMultiplier(schedule="step", step_every=3, decay_factor=0.1)
        >>> [round(m(s), 3) for s in range(7)]
        [1.0, 1.0, 1.0, 0.1, 0.1, 0.1, 0.01]

    Raises:
        ConfigError: ``cosine`` or ``one_cycle`` without ``total_steps``, ``step`` without ``step_every``,
            ``cosine_restarts`` without ``cycle_steps`` (the message names the setting to give).
    """

    def __init__(self, warmup_steps: int = 0, total_steps: int | None = None, schedule: str = "constant", *,
                 step_every: int | None = None, decay_factor: float = 0.1, decay_rate: float = 0.999,
                 cycle_steps: int | None = None, restart_mult: int = 1) -> None:
        if schedule in NEEDS_TOTAL and not total_steps:
            raise ConfigError(f"A {schedule} schedule needs the number of training steps: set Recipe(max_steps=...) or "
                              "train with a Trainer whose max_epochs/max_steps fix it.")
        if schedule == "step" and not step_every:
            raise ConfigError("A step schedule needs step_every (the steps between cuts).")
        if schedule == "cosine_restarts" and not cycle_steps:
            raise ConfigError("A cosine_restarts schedule needs cycle_steps (the steps of its first cycle).")
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps) if total_steps else None
        self.schedule = schedule
        self.step_every, self.decay_factor, self.decay_rate = step_every, decay_factor, decay_rate
        self.cycle_steps, self.restart_mult = cycle_steps, restart_mult

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        t = step - self.warmup_steps
        span = max(1, (self.total_steps or 0) - self.warmup_steps)
        if self.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t / span)))
        if self.schedule == "step":
            return self.decay_factor ** (t // int(self.step_every))  # type: ignore[arg-type]
        if self.schedule == "exponential":
            return self.decay_rate**t
        if self.schedule == "one_cycle":
            return one_cycle(t, span)
        if self.schedule == "cosine_restarts":
            return cosine_restarts(t, int(self.cycle_steps), int(self.restart_mult))  # type: ignore[arg-type]
        return 1.0


def one_cycle(step: int, total: int) -> float:
    """torch's ``OneCycleLR`` (two phases, cosine annealing) as a multiplier of its peak."""
    start = 1 / ONE_CYCLE_DIV
    end = start / ONE_CYCLE_FINAL_DIV
    rise = float(ONE_CYCLE_PCT_START * total) - 1
    last = total - 1
    if step <= rise:
        low, high, pct = start, 1.0, step / rise if rise > 0 else 1.0
    else:
        low, high, pct = 1.0, end, (step - rise) / (last - rise) if last > rise else 1.0
    return high + (low - high) / 2.0 * (math.cos(math.pi * min(1.0, pct)) + 1)


def cosine_restarts(step: int, cycle: int, mult: int) -> float:
    """torch's ``CosineAnnealingWarmRestarts`` (to zero) as a multiplier."""
    if mult == 1:
        t_cur, t_i = step % cycle, cycle
    else:
        n = int(math.log(step / cycle * (mult - 1) + 1, mult))
        t_cur, t_i = step - cycle * (mult**n - 1) // (mult - 1), cycle * mult**n
    return 0.5 * (1.0 + math.cos(math.pi * t_cur / t_i))
