"""Remedies for settings that hold a run back while its learning rate is fine: clipping far below the gradient
norm, weight decay far too strong, a schedule that decayed too early, a warmup over most of the run.

Each is an absolute recipe change computed from the live run (the measured gradient norm, the planned steps), so
``Recipe.apply`` can make it and a fork can try it.
"""

from __future__ import annotations

from tunekit.diagnose._context import RunContext
from tunekit.diagnose._remedies import ADAMW_WEIGHT_DECAY, MIN_WARMUP_STEPS, SGD_WEIGHT_DECAY, WARMUP_FRACTION
from tunekit.diagnose._stats import fmt, nice
from tunekit.diagnose._types import Remedy, RemedyCode

CLIP_HEADROOM = 2.0  # a loosened clip sits at twice the median gradient norm: ordinary steps pass whole, spikes
# (the 5x-median steps the spike rule counts) are still cut
STRONG_DECAY = 1e-3  # weight decay that would shrink the weights by over 0.1% per step without the gradient (e-fold
# within 1000 steps) is far too strong: twice the strongest usual recipe (SGD lr 0.1, momentum 0.9, L2 5e-4, the
# CIFAR ResNets: 5e-4 per step); AdamW at its defaults (lr 1e-3, 1e-2) shrinks by 1e-5 per step
WEIGHT_DECAY_CUT = 10.0  # weight decay is cut at least tenfold ...
# ... and not above the usual starting value: torch's AdamW default 1e-2 (``ADAMW_WEIGHT_DECAY``) for decoupled
# decay, the guide's 1e-4 (``SGD_WEIGHT_DECAY``, Step 5) for L2 with SGD


def loosen_clipping(ctx: RunContext, grad_norm: float) -> Remedy:
    """Clip at ``CLIP_HEADROOM`` times the measured (pre-clip) median gradient norm ``grad_norm``."""
    new = nice(CLIP_HEADROOM * grad_norm, 2)
    scale = (ctx.gradient_clip_val or 0.0) / max(grad_norm, 1e-30)
    return Remedy(RemedyCode.LOOSEN_CLIPPING, {"gradient_clip_val": new},
                  f"Raise gradient_clip_val from {fmt(ctx.gradient_clip_val or 0.0)} to {fmt(new)} (twice the median "
                  f"gradient norm, {fmt(grad_norm)}): at {fmt(ctx.gradient_clip_val or 0.0)} every step is cut to "
                  f"{scale:.1%} of its size, so the run crawls whatever the learning rate; clipping is meant to cut "
                  "only the spikes (or remove it: gradient_clip_val=None).")


def decay_per_step(ctx: RunContext) -> float | None:
    """How much weight decay alone shrinks the weights per step (a fraction): ``lr * weight_decay`` for decoupled
    decay (AdamW), ``lr * weight_decay / (1 - momentum)`` for SGD's L2 (momentum accumulates it as it does the
    gradient); None for optimizers whose L2 term is rescaled per parameter (Adam, RMSprop, ...)."""
    if not ctx.weight_decay:
        return 0.0
    if ctx.optimizer == "adamw":
        return ctx.current_lr * ctx.weight_decay
    if ctx.optimizer == "sgd":
        return ctx.current_lr * ctx.weight_decay / max(1.0 - (ctx.momentum or 0.0), 1e-3)
    return None


def decay_causes(ctx: RunContext) -> list[Remedy]:
    """``lower_weight_decay`` when the decay is far too strong (``STRONG_DECAY``), for the rules whose symptom it can
    cause: weights held small pass a vanishing gradient back, and (behind normalization) a larger effective step."""
    d = decay_per_step(ctx)
    if d is None or d <= STRONG_DECAY:
        return []
    return [lower_weight_decay(ctx, f"it shrinks the weights by {d:.2%} per step on its own (the usual recipes: "
                                    "under 0.05%), which outweighs the loss's gradient")]


def usual_weight_decay(ctx: RunContext) -> float:
    """The usual starting weight decay for this optimizer: decoupled (AdamW) 1e-2, L2 1e-4."""
    return ADAMW_WEIGHT_DECAY if ctx.optimizer == "adamw" else SGD_WEIGHT_DECAY


def lower_weight_decay(ctx: RunContext, why: str) -> Remedy:
    """Weight decay cut at least ``WEIGHT_DECAY_CUT``-fold, to at most the usual starting value."""
    new = nice(min(ctx.weight_decay / WEIGHT_DECAY_CUT, usual_weight_decay(ctx)), 2)
    kind = "decoupled weight decay" if ctx.optimizer == "adamw" else "weight decay"
    return Remedy(RemedyCode.LOWER_WEIGHT_DECAY, {"weight_decay": new},
                  f"Lower {kind} from {fmt(ctx.weight_decay)} to {fmt(new)} (the usual starting value for "
                  f"{ctx.optimizer} is {fmt(usual_weight_decay(ctx))}): {why}.")


def postpone_decay(ctx: RunContext, total_steps: int | None, why: str) -> Remedy:
    """A cosine over the planned steps from the base LR (``schedule: cosine`` reaches zero at the last step)."""
    start = ctx.lr
    over = f"over the planned {total_steps} steps" if total_steps else "over the whole run"
    return Remedy(RemedyCode.POSTPONE_DECAY, {"schedule": "cosine", "lr": nice(start)},
                  f"Decay the learning rate with a cosine from {fmt(start)} {over} (schedule: cosine) instead: "
                  f"{why}.")


def shorten_warmup(ctx: RunContext, total_steps: int | None, why: str) -> Remedy:
    """A warmup over ``WARMUP_FRACTION`` of the planned steps (the same span ``add_warmup`` gives)."""
    steps = max(MIN_WARMUP_STEPS, round(WARMUP_FRACTION * total_steps) if total_steps else MIN_WARMUP_STEPS)
    return Remedy(RemedyCode.SHORTEN_WARMUP, {"warmup_steps": int(steps)},
                  f"Shorten the warmup to {steps} steps ({WARMUP_FRACTION:.0%} of the planned steps, the usual "
                  f"span): {why}.")
