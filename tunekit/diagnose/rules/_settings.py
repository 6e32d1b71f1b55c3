"""Settings that hold a run back while its learning rate is fine, read from the recorded series and the live
settings: clipping far below the gradient norm, weight decay far too strong, a schedule that decayed to nearly
nothing early in the plan, a warmup over most of the plan.

They look like a too-low LR on the loss curve (a loss that falls slowly or stops), and a larger LR is the wrong
lever: ``check_setting_faults`` names the setting and its fix, as a ``slow_convergence`` finding when the loss is
still near its start and a ``plateau`` when it came down and stopped; the stall rules stand aside for it
(``setting_fault``). Its evidence names the setting (``"setting"``), and the probes try its remedy on a fork.
"""

from __future__ import annotations

import math

import numpy as np

from tunekit.diagnose import _setting_remedies as S
from tunekit.diagnose._context import RunContext
from tunekit.diagnose._stats import TARGET_UPDATE_RATIO, fmt, halves_change, median, recent_window
from tunekit.diagnose._types import Finding, FindingCode, Remedy, RemedyCode, Severity
from tunekit.record import RunRecord

MIN_STEPS = 40  # fewer steps than this say nothing about progress
WINDOW_FRACTION = 0.3  # progress is judged on the last 30% of the run (as the stall rules do) ...
WINDOW_MAX = 1000  # ... at most this many steps
NEAR_START = 0.7  # a loss above 70% of its start has barely learned (the stall rules' SLOW_PROGRESS)
CONVERGED = 0.02  # below 2% of the initial loss the run has converged: nothing holds it back
FLAT_CHANGE = -0.02  # a window whose second half is not 2% below its first is flat
TIGHT_CLIP = 0.1  # clipping at under a tenth of the median (pre-clip) gradient norm shrinks every step 10x or more
DECAYED = 0.01  # a schedule that has brought the LR under 1% of its peak has stopped the run ...
EARLY_DECAY = 0.5  # ... early when it got there within the first half of the planned steps
WARMUP_START = 0.5  # a warmup starts the LR under half its peak ...
LONG_WARMUP = 0.4  # ... and is far too long when the peak comes after 40% of the planned steps: the usual warmup is
# ~5% (Goyal et al. 2017: 5 of 90 epochs; the glossary's "first few hundred/thousand steps"), and one-cycle's 30%
# rise (Smith 2018) is the longest common one
SMOOTH = 9  # losses in the medians that say where the loss was when the LR ran out, and where it is now
PEAK_SHARE = 0.99  # the warmup ended where the LR first reached 99% of its peak


def _level(record: RunRecord) -> tuple[float, int]:
    n = recent_window(len(record), WINDOW_FRACTION, MIN_STEPS, WINDOW_MAX)
    return median(record.loss[-n:]), n


def _code(level: float, initial: float) -> FindingCode:
    return FindingCode.SLOW_CONVERGENCE if level > NEAR_START * initial else FindingCode.PLATEAU


def _planned(record: RunRecord) -> int:
    return int(record.total_steps or (record.last_step + 1))


def _update_ratio(record: RunRecord, since: int) -> float:
    keep = record.update_steps >= since
    ratios = record.update_ratio[keep] if keep.any() else record.update_ratio[-1:]
    return median(ratios) if len(ratios) else math.nan


def _tight_clipping(record: RunRecord, ctx: RunContext, n: int) -> tuple[Remedy, str, dict[str, float]] | None:
    clip = ctx.gradient_clip_val
    g = median(record.grad_norm[-n:])  # recorded before clipping
    if not clip or not (math.isfinite(g) and g > 0) or clip >= TIGHT_CLIP * g:
        return None
    ratio = _update_ratio(record, int(record.steps[-n]))
    if ctx.is_adam and not (math.isfinite(ratio) and ratio < TARGET_UPDATE_RATIO):
        return None  # Adam's step does not scale with the gradient: clipping shrinks it only if the steps show it
    said = f"gradient clipping at {fmt(clip)} cuts every step to {clip / g:.1%} of its size (median gradient norm " \
        f"{fmt(g)})" + (f", so each update moves the weights by only {fmt(ratio)} of their size"
                        if math.isfinite(ratio) else "")
    return S.loosen_clipping(ctx, g), said, {"gradient_clip_val": clip, "grad_norm": g, "update_ratio": ratio}


def _strong_decay(record: RunRecord, ctx: RunContext, n: int) -> tuple[Remedy, str, dict[str, float]] | None:
    d = S.decay_per_step(ctx)
    if d is None or d <= S.STRONG_DECAY:
        return None
    said = f"weight decay {fmt(ctx.weight_decay)} at lr {fmt(ctx.current_lr)} shrinks the weights by {d:.2%} per " \
        f"step on its own (they would fall e-fold in {1 / d:.0f} steps without the gradient), so it holds them too " \
        "small to fit the data"
    why = "decay that strong outweighs the loss's gradient"
    return S.lower_weight_decay(ctx, why), said, {"weight_decay": ctx.weight_decay, "decay_per_step": d}


def _early_decay(record: RunRecord, ctx: RunContext, n: int) -> tuple[Remedy, str, dict[str, float]] | None:
    lr = record.lr
    finite = lr[np.isfinite(lr)]
    if not len(finite):
        return None
    peak = float(finite.max())
    if not (peak > 0 and lr[-1] < DECAYED * peak):
        return None
    after = np.flatnonzero(np.arange(len(lr)) > int(np.nanargmax(lr)))
    low = after[lr[after] < DECAYED * peak]
    at = int(record.steps[low[0]])
    planned = _planned(record)
    if at >= EARLY_DECAY * planned:
        return None
    then = median(record.loss[max(0, low[0] - SMOOTH) : low[0] + 1])
    level = median(record.loss[-SMOOTH:])
    said = f"the schedule brought the learning rate down to {fmt(float(lr[-1]))} ({float(lr[-1]) / peak:.2g} of its " \
        f"peak {fmt(peak)}) by step {at} of {planned} planned, and the loss has moved only from {fmt(then)} to " \
        f"{fmt(level)} since"
    why = f"the run spent its last {planned - at} planned steps at a learning rate too small to learn anything"
    remedy = S.postpone_decay(ctx, record.total_steps, why)
    t = min(1.0, record.last_step / max(1, planned))
    return remedy, said, {"lr_now": float(lr[-1]), "lr_peak": peak, "decayed_at": at,
                          "lr_if_fixed": ctx.lr * 0.5 * (1 + math.cos(math.pi * t))}


def _long_warmup(record: RunRecord, ctx: RunContext, n: int) -> tuple[Remedy, str, dict[str, float]] | None:
    lr = record.lr
    if not len(lr) or not np.isfinite(lr).all():
        return None
    peak = float(lr.max())
    if not (peak > 0 and lr[0] < WARMUP_START * peak):
        return None
    top = int(np.argmax(lr >= PEAK_SHARE * peak))
    ended = int(record.steps[top])
    planned = _planned(record)
    if ended < LONG_WARMUP * planned:
        return None
    still = top == len(lr) - 1
    said = (f"the learning rate is still warming up at step {ended} ({ended / planned:.0%} of {planned} planned)"
            if still else f"the warmup took {ended} steps, {ended / planned:.0%} of the {planned} planned, to reach "
            f"the peak learning rate {fmt(peak)}")
    why = "for most of the run the learning rate was a fraction of its peak"
    return S.shorten_warmup(ctx, record.total_steps, why), said, {"warmup_ended": ended, "lr_peak": peak,
                                                                  "lr_if_fixed": ctx.lr}


FAULTS = (_tight_clipping, _strong_decay, _early_decay, _long_warmup)  # the order their remedies are listed in
# the faults whose evidence is the step itself (every step cut 10x or more; an LR under 1% of its peak), which need no
# stall on top: a loss still falling at that step is falling far slower than it would
SELF_EVIDENT = (RemedyCode.LOOSEN_CLIPPING, RemedyCode.POSTPONE_DECAY)


def setting_fault(record: RunRecord, ctx: RunContext) -> Finding | None:
    """The stall a setting explains (tight clipping, strong weight decay, an early decay, a long warmup), or None.

    The loss must be far from converged (above ``CONVERGED`` of its start) and either still near its start or flat
    over the last ``WINDOW_FRACTION`` of the run, except for the ``SELF_EVIDENT`` faults (every step cut 10x by
    clipping, an LR under 1% of its peak), which hold back a loss that is still falling too; the finding is
    ``slow_convergence`` near the start, else ``plateau``.
    """
    if record.initial_loss is None or len(record) < MIN_STEPS or record.first_nonfinite_step is not None:
        return None
    level, n = _level(record)
    initial = float(record.initial_loss)
    if not (math.isfinite(level) and level > CONVERGED * initial):
        return None
    near_start = level > NEAR_START * initial
    flat = halves_change(record.loss[-n:]) > FLAT_CHANGE
    found = [f for f in (fault(record, ctx, n) for fault in FAULTS) if f is not None]
    if not (near_start or flat):  # still learning: only a setting that measurably stops the steps explains it
        found = [f for f in found if f[0].code in SELF_EVIDENT]
    if not found:
        return None
    remedies = tuple(r for r, _, _ in found)
    evidence: dict[str, object] = {"setting": remedies[0].code.value, "loss": level, "initial_loss": initial,
                                   "lr": ctx.lr}
    for _, _, figures in found:
        evidence.update(figures)
    trend = "" if near_start else (" and no longer improving" if flat else " and falling slowly")
    where = f"the loss is {fmt(level)} ({level / initial:.0%} of its start){trend}"
    return Finding(_code(level, initial), Severity.WARNING, int(record.steps[-n]),
                   f"{where}: " + "; ".join(said for _, said, _ in found), evidence, remedies)


def check_setting_faults(record: RunRecord, ctx: RunContext) -> Finding | None:
    """A rule: see ``setting_fault``."""
    return setting_fault(record, ctx)
