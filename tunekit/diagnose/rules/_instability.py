"""Rules for runs that blow up: divergence, exploding gradients, early instability, oscillation."""

from __future__ import annotations

import numpy as np

from tunekit.diagnose import _remedies as R
from tunekit.diagnose._context import RunContext
from tunekit.diagnose._stats import (
    IQR_PER_SIGMA,
    MEDIAN_SE,
    TARGET_UPDATE_RATIO,
    best_block_median,
    fmt,
    halves_change,
    median,
    recent_window,
    relative_iqr,
    robust_sigma,
    rolling_median,
    smooth,
)
from tunekit.diagnose._types import Finding, FindingCode, RemedyCode, Severity
from tunekit.record import RunRecord

# Where each constant comes from: "(zoo)" chosen on the zoo's training families (benchmarks/zoo/tune.py, each family
# scored with the values chosen on the others); "(hand)" set by hand, when the rule was written or after reading
# the zoo's runs, and not searched; otherwise the source is named (a paper, a reference text, torch, statistics).
GROWTH_WINDOW = 5  # (hand) steps over which the pre-divergence growth of the gradient norm is measured
LATE_DIVERGENCE_FRACTION = 0.5  # (hand) a divergence after half the planned steps is "late" (the stale beta2 of
# the Dynaxx Precision guide's FAQ)
LATE_DIVERGENCE_MIN_STEPS = 1000  # (hand) ... or after this many steps when the plan is unknown
LATE_ADAM_BETA2 = 0.95  # (hand) late Adam spikes get a lower beta2 first unless it is this low already (its floor)
DIVERGED_LOSS_FACTOR = 1.5  # (hand) a finite loss 1.5x the initial one: worse than the untrained model ...
DIVERGED_BEST_FACTOR = 3.0  # (hand) ... and 3x the best it reached: it learned, then lost it all
WRECKING_UPDATE = 0.1  # (hand) a first update that moves the weights by 10% of their size (100x a healthy step) ...
WRECKED_LEVEL = 0.8  # (zoo) ... in a run whose loss is still within 20% of its start has wrecked the network
# (a linear model starting near zero weights takes a first step that large too, and learns)
SPIKES_LATE = 0.25  # (hand) spikes still coming in the last quarter of the run are a warning however low the loss
HUGE_UPDATES = 0.05  # (hand) updates that keep moving the weights by 5% of their size (50x a healthy step) all run
# long ...
HUGE_UPDATE_SAMPLES = 3  # (hand) ... over at least this many samples after the first: the steps are far too large
BLOW_UP_FACTOR = 100.0  # (hand) or the loss blew up to 100x its initial value and the run never got below its start
LR_CUT = (10.0, 1000.0)  # a diverged run's LR is divided by its update ratio over the target, within these
# bounds: at least the Dynaxx Precision guide's "reduce by a factor of 10" (Step 2), at most three decades in one remedy
SPIKE_FACTOR = 5.0  # (zoo) a gradient norm 5x the median of the steps before it is a spike
SPIKE_HISTORY = 49  # (hand) steps in that median (odd: one middle value)
SPIKE_LOSS_FACTOR = 1.5  # (hand) a spike counts only if the loss after it is 1.5x the loss before (it did damage)
SPIKE_MIN_DAMAGE = 0.1  # (hand) ... and rose by at least 10% of the initial loss (near zero loss, 1.5x is noise)
MIN_SPIKES = 2  # (hand) one damaging spike can be bad luck; two make a pattern
SEVERE_LOSS_JUMP = 10.0  # (hand) a spike that sends the loss to 10x its level before it is a warning however low the
# loss has come (near a minimum Adam's stale second moment can make 1000x jumps on a loss that looks converged)
EARLY_FRACTION = 0.1  # (hand) "early" = the first 10% of the planned steps
EARLY_MIN_STEPS = 30  # (hand) ... but at least this many steps
EARLY_SPIKE_FACTOR = 1.3  # (hand) early loss (smoothed) rising 30% above the initial loss is an early blow-up
LEARNED_AFTER = 0.2  # (zoo) an early blow-up (or spikes) is only a hint once the run got below 20% of its start
OSCILLATION_MIN_STEPS = 40  # (hand) need this many steps before calling a loss curve oscillating
OSCILLATION_AMPLITUDE = 0.5  # (hand) window's loss interquartile range over its median: swings of half the level
OSCILLATION_LEVEL = 0.8  # (hand) ... while the loss is above 80% of its initial value (it never got going) ...
OSCILLATION_REGRESSION = 0.25  # (zoo) ... or it lost a quarter of the progress it had made: (level - best) over
# (initial - best), so a loss swinging near zero after real progress is not called oscillating
OSCILLATION_PROGRESS = -0.05  # (hand) ... and the window's second half is not 5% lower than its first
SMOOTH_STEPS = 9  # (hand) running-median width used to find the best loss reached (single batches are noisy)
RECENT_FRACTION = 0.1  # (hand) divergence and recovery are judged on the last 10% of the run ...
RECENT_RANGE = (5, 100)  # (hand) ... at least 5 and at most 100 steps
DIVERGENCE_MIN_STEPS = 10  # (hand) a finite-loss divergence needs this many steps to be told from noise
NEVER_LEARNED = 0.9  # (hand) a blown-up run whose recent loss is above 90% of its start never learned
LATE_LOOKBACK = 50  # (hand) steps before a late divergence whose loss says whether the run had been learning ...
LATE_LEARNED = 0.7  # (hand) ... it had, if their median was under 70% of the initial loss
SPIKE_DAMAGE_LAG = 6  # (hand) a spike's damage is read from the losses this many steps after it
DAMAGE_WINDOW = 5  # (hand) medians of this many losses before and after a spike
EARLY_SMOOTH = 9  # (hand) running-median width of the early loss (a blow-up lasts a few steps; noise does not)
EARLY_NOISE = 3.0  # (hand) ... whose peak must also clear the start by three standard deviations of the batch noise
OSCILLATION_FRACTION = 0.25  # (hand) oscillation is judged on the last quarter of the run ...
OSCILLATION_MAX_STEPS = 400  # (hand) ... at most this many steps
OSCILLATION_BEST_BLOCKS = 4  # (hand) the best level before the window: medians of blocks a quarter of the window long
EARLY_LR_CUT = 3.0  # (hand) early instability and spikes: a third of the LR
OSCILLATION_LR_CUT = 3.0  # (hand) oscillation: a third of the LR (half a decade: enough to stop jumping across
# the valley)
WARMUP_HEAD_MIN = 3  # (hand) a warmup is read from the first 10% of the LRs, at least this many ...
WARMUP_START_FRACTION = 0.5  # (hand) ... starting below half the run's peak LR


def _healthy_grad_norm(grad_norm: np.ndarray, before: int) -> float | None:
    early = grad_norm[:before]
    early = early[np.isfinite(early)]
    return float(np.median(early)) if len(early) else None


def check_divergence(record: RunRecord, ctx: RunContext) -> Finding | None:
    """The loss became non-finite, or rose far above where it started and stayed there."""
    if record.first_nonfinite_step is not None:
        return _nonfinite(record, ctx)
    if record.initial_loss is None or len(record) < DIVERGENCE_MIN_STEPS:
        return None
    n = recent_window(len(record), RECENT_FRACTION, *RECENT_RANGE)
    recent = median(record.loss[-n:])
    sm = smooth(record.loss, SMOOTH_STEPS)
    best = float(np.nanmin(sm))
    if _blew_up_and_never_learned(record, recent):
        peak = float(np.nanmax(record.loss))
        start = int(record.steps[int(np.nanargmax(record.loss > BLOW_UP_FACTOR * record.initial_loss))])
        dead = dead_layers(record)
        return Finding(
            FindingCode.DIVERGENCE, Severity.CRITICAL, start,
            f"the loss blew up to {fmt(peak)} ({fmt(peak / record.initial_loss)}x its initial "
            f"{fmt(record.initial_loss)}) at step {start}, and its recent loss {fmt(recent)} is "
            f"{recent / record.initial_loss:.0%} of where it started: it is not learning"
            + (f"; {', '.join(dead)} get no gradient at all any more (dead units)" if dead else ""),
            {"loss_peak": peak, "loss": recent, "initial_loss": record.initial_loss, "lr": ctx.lr,
             "dead_layers": list(dead)},
            (*R.instability_causes(ctx),
             R.lower_lr(ctx, lr_cut(record, ctx, start), "steps this large throw the weights out of any useful "
                        "region"),
             R.clip_gradients(ctx, _healthy_grad_norm(record.grad_norm, 1))),
        )
    if not (recent > DIVERGED_LOSS_FACTOR * max(record.initial_loss, 1e-12) and recent > DIVERGED_BEST_FACTOR * best):
        return _wrecked(record, ctx, recent)
    start_i = int(np.argmax(sm > DIVERGED_LOSS_FACTOR * record.initial_loss))
    start = int(record.steps[start_i])
    remedies = [*R.instability_causes(ctx),
                R.lower_lr(ctx, lr_cut(record, ctx, start), "the loss climbed far above its starting value, the "
                           "mark of steps that overshoot"),
                R.clip_gradients(ctx, _healthy_grad_norm(record.grad_norm, max(1, start_i)))]
    return Finding(
        FindingCode.DIVERGENCE, Severity.CRITICAL, start,
        f"the loss rose to {fmt(recent)}, {recent / record.initial_loss:.1f}x its initial {fmt(record.initial_loss)} "
        f"(its best was {fmt(best)}), from step {start} on, and has not come back",
        {"loss": recent, "initial_loss": record.initial_loss, "best_loss": best, "lr": ctx.lr}, tuple(remedies),
    )


def dead_layers(record: RunRecord) -> tuple[str, ...]:
    """Layers whose gradient norm was positive once and is exactly zero over the recent window: every unit in them
    is dead (ReLUs pushed negative for every input), so nothing reaches or passes them."""
    norms = record.layer_grad_norms
    if norms.ndim != 2 or not norms.shape[1] or len(norms) < DIVERGENCE_MIN_STEPS:
        return ()
    n = recent_window(len(record), RECENT_FRACTION, *RECENT_RANGE)
    with np.errstate(invalid="ignore"):
        alive_once = np.nanmax(norms[:-n], axis=0) > 0 if len(norms) > n else np.zeros(norms.shape[1], bool)
        dead_now = np.all(norms[-n:] == 0, axis=0)
    return tuple(name for name, a, d in zip(record.layer_names, alive_once, dead_now, strict=True) if a and d)


def _wrecked(record: RunRecord, ctx: RunContext, recent: float) -> Finding | None:
    """The first update was far too large and the run has not learned since: units died or saturated at once (the
    loss stays finite, so nothing else calls it divergence)."""
    first = record.update_ratio[record.update_steps == record.steps[0]] if len(record) else np.array([])
    if not len(first) or not first[0] > WRECKING_UPDATE or recent < WRECKED_LEVEL * (record.initial_loss or 0.0):
        return None
    ratio, initial = float(first[0]), float(record.initial_loss or 1.0)
    return Finding(
        FindingCode.DIVERGENCE, Severity.WARNING, int(record.steps[0]),
        f"the first update moved the weights by {ratio:.0%} of their size (a healthy step moves them by about "
        f"{TARGET_UPDATE_RATIO:.0e}) and the loss has not come down since ({fmt(recent)}, "
        f"{recent / initial:.0%} of its start): steps this large wreck the network at once",
        {"update_ratio": ratio, "loss": recent, "initial_loss": record.initial_loss, "lr": ctx.lr},
        (R.lower_lr(ctx, lr_cut(record, ctx), "a step that size kills units or saturates layers before anything is "
                    "learned"), R.add_warmup(record.total_steps)),
    )


def _spike_cut(ctx: RunContext) -> float:
    """How much to divide the LR by for spikes or an early instability: a third (``EARLY_LR_CUT``), or for Adam and
    kin far above Adam's usual LR, down to it, as ``lr_cut`` does for a divergence (a new user's Adam at lr 1.0 was
    told 0.33 and then 0.11, each still spiking; 1e-3 was the best of a grid)."""
    if ctx.is_adam and ctx.lr > 0:
        return float(min(max(EARLY_LR_CUT, ctx.lr / R.ADAM_DEFAULT_LR), LR_CUT[1]))
    return EARLY_LR_CUT


def lr_cut(record: RunRecord, ctx: RunContext, before_step: int | None = None) -> float:
    """How much to divide a diverged run's LR by, clamped to ``LR_CUT`` (10 without evidence).

    SGD: its first measured update/weight ratio over the healthy 1e-3 (the first sample is taken at step 0, before
    anything blew up): SGD at lr 50 on digits moves the weights by 7x their size in one step, a cut of 1000, not 10.

    Adam and kin: Adam's first update moves every coordinate by the LR itself (``m / sqrt(v)`` is the gradient's
    sign at step 1), so its update ratio measures the LR against the weights' scale, not the gradient's size, and
    SGD's healthy 1e-3 cuts it several times too deep (a digits MLP at Adam lr 0.2: 1000x to 2e-4, where 1e-3 is
    best). The cut brings the LR to Adam's usual good value ``ADAM_DEFAULT_LR`` (or a tenth of it, if lower)."""
    if ctx.is_adam and ctx.lr > 0:
        return float(np.clip(ctx.lr / R.ADAM_DEFAULT_LR, *LR_CUT))
    keep = record.update_steps <= (before_step if before_step is not None else record.last_step)
    ratios = record.update_ratio[keep]
    ratios = ratios[np.isfinite(ratios)]
    if not len(ratios):
        return LR_CUT[0]
    return float(np.clip(ratios[0] / TARGET_UPDATE_RATIO, *LR_CUT))


def _blew_up_and_never_learned(record: RunRecord, recent: float) -> bool:
    initial = record.initial_loss or 0.0
    with np.errstate(invalid="ignore"):
        blew = bool(np.any(record.loss > BLOW_UP_FACTOR * initial))
    return initial > 0 and blew and recent >= NEVER_LEARNED * initial


def _nonfinite(record: RunRecord, ctx: RunContext) -> Finding:
    s = int(record.first_nonfinite_step)  # type: ignore[arg-type]
    idx = np.searchsorted(record.steps, s)
    loss_at = float(record.loss[idx]) if idx < len(record) else float("nan")
    before = record.grad_norm[:idx]
    before = before[np.isfinite(before)]
    window = before[-GROWTH_WINDOW:]
    gmax = float(window.max()) if len(window) else float("nan")
    base = float(np.median(before[:-GROWTH_WINDOW])) if len(before) > GROWTH_WINDOW else (
        float(before[0]) if len(before) else float("nan"))
    growth = gmax / base if base and np.isfinite(base) and base > 0 else float("nan")
    lr_at = float(record.lr[idx]) if idx < len(record) else ctx.lr
    norm_at = float(record.grad_norm[idx]) if idx < len(record) else float("nan")
    evidence = {"loss": loss_at, "grad_norm": norm_at, "grad_norm_max": gmax, "grad_norm_growth": growth,
                "lr": lr_at}
    # name the quantity that was not finite, by its measured value
    what, value = ("the loss", _word(loss_at)) if not np.isfinite(loss_at) else ("the gradient norm", _word(norm_at))
    # The scale of a healthy step: the first step (taken before any update could blow up), or the
    # stretch before the blow-up when that is lower.
    healthy = float(min(before[0], median(before[:-GROWTH_WINDOW]))) if len(before) > GROWTH_WINDOW else (
        float(before[0]) if len(before) else None)
    if s == 0:
        remedies = [
            R.note(RemedyCode.CHECK_PIPELINE,
                   "The loss was not finite on the very first batch, before any update, so the learning rate is not "
                   "the cause: check the data for NaN/inf, the labels' range and the loss function."),
            R.note(RemedyCode.NORMALIZE_INPUTS, "Standardize the inputs (zero mean, unit variance): huge raw features "
                   "overflow the first layer."),
            R.lower_lr(ctx, LR_CUT[0], "if the data is clean, a smaller step is the next thing to try"),
        ]
        message = f"{what} was {value} at the first step, before any update"
    elif ctx.is_adam and _is_late(record, s):
        remedies = [R.lower_beta2(ctx),
                    R.decay_lr(ctx, "decaying the step to zero keeps late steps from outgrowing a stale second moment"),
                    R.clip_gradients(ctx, healthy),
                    R.lower_lr(ctx, LR_CUT[0], "a smaller step leaves more room for error")]
        message = (f"{what} became {value} at step {s}, late in a run that had been training well: with "
                   f"beta2={ctx.beta2} Adam's second-moment estimate can go stale")
    else:
        cut = lr_cut(record, ctx, s)
        why = "the steps overshoot until the loss blows up"
        if cut > LR_CUT[0]:
            why += f" (the first step moved the weights by {fmt(cut * TARGET_UPDATE_RATIO)} of their size)"
        remedies = [*R.instability_causes(ctx), R.lower_lr(ctx, cut, why), R.clip_gradients(ctx, healthy)]
        if s < _early_limit(record) and not _has_warmup(record):
            remedies.append(R.add_warmup(record.total_steps, at_least=2 * s))
        grew = f" after the gradient norm grew {fmt(growth)}x in {GROWTH_WINDOW} steps" if growth >= 2 else ""
        message = f"{what} became {value} at step {s}{grew}, at lr {fmt(lr_at)}"
    return Finding(FindingCode.DIVERGENCE, Severity.CRITICAL, s, message, evidence, tuple(remedies))


def _word(value: float) -> str:
    return "NaN" if np.isnan(value) else ("inf" if np.isinf(value) else fmt(value))


def _is_late(record: RunRecord, step: int) -> bool:
    if record.total_steps:
        late = step >= LATE_DIVERGENCE_FRACTION * record.total_steps
    else:
        late = step >= LATE_DIVERGENCE_MIN_STEPS
    if not late or record.initial_loss is None:
        return False
    idx = int(np.searchsorted(record.steps, step))
    earlier = record.loss[max(0, idx - LATE_LOOKBACK) : idx]
    return bool(len(earlier)) and median(earlier) < LATE_LEARNED * record.initial_loss  # it had been learning


def _early_limit(record: RunRecord) -> int:
    planned = record.total_steps or (record.last_step + 1)
    return max(EARLY_MIN_STEPS, int(EARLY_FRACTION * planned))


def _has_warmup(record: RunRecord) -> bool:
    """A schedule that starts the LR below its later peak (linear warmup and kin)."""
    head = record.lr[: max(WARMUP_HEAD_MIN, int(EARLY_FRACTION * len(record.lr)))]
    return len(head) >= WARMUP_HEAD_MIN and head[0] < WARMUP_START_FRACTION * float(np.max(record.lr))


def _spikes(record: RunRecord) -> np.ndarray:
    """Indices of steps whose gradient norm spiked and the loss after it rose (damaging spikes)."""
    g = record.grad_norm
    if len(g) < DIVERGENCE_MIN_STEPS:
        return np.array([], dtype=int)
    base = rolling_median(g, SPIKE_HISTORY)
    with np.errstate(invalid="ignore"):
        candidates = np.flatnonzero((g > SPIKE_FACTOR * base) & (base > 0))  # a dead network has no baseline
    candidates = candidates[candidates + SPIKE_DAMAGE_LAG < len(g)]  # a spike needs steps after it to show damage
    if not len(candidates):
        return candidates
    trailing = rolling_median(record.loss, DAMAGE_WINDOW)  # median of the losses before each step ...
    before, after = trailing[candidates], trailing[candidates + SPIKE_DAMAGE_LAG]  # ... and of those after the spike
    floor = SPIKE_MIN_DAMAGE * (record.initial_loss or 0.0)
    with np.errstate(invalid="ignore"):
        hurt = after > np.maximum(SPIKE_LOSS_FACTOR * before, before + floor)
    return candidates[hurt]


def check_exploding_gradients(record: RunRecord, ctx: RunContext) -> Finding | None:
    """Gradient-norm spikes that knock the loss up (the loss still finite), recurring after the first steps (spikes
    only at the start are an early instability)."""
    limit = _early_limit(record)
    spikes = np.array([i for i in _spikes(record) if record.steps[i] >= limit], dtype=int)
    if len(spikes) < MIN_SPIKES:
        return None
    i = int(spikes[0])
    base = float(rolling_median(record.grad_norm, SPIKE_HISTORY)[i])
    worst = float(np.max(record.grad_norm[spikes]))
    healthy = median(record.grad_norm)
    clip = R.clip_gradients(ctx, healthy)
    lower = R.lower_lr(ctx, _spike_cut(ctx), "smaller steps keep a steep wall from throwing the weights far")
    # the order of "ML Optimization; A Primer" for exploding losses: lower the LR, then clip; a cause that is not the
    # LR goes first: for Adam spiking late in a run that had learned, its stale second moment (the Dynaxx Precision
    # guide's FAQ: lower beta2)
    late_adam = ctx.is_adam and (ctx.beta2 or 0.999) > LATE_ADAM_BETA2 and _is_late(record, int(record.steps[i]))
    remedies = (*R.instability_causes(ctx), *((R.lower_beta2(ctx),) if late_adam else ()), lower, clip)
    recent = median(record.loss[-recent_window(len(record), RECENT_FRACTION, *RECENT_RANGE):])
    still_coming = record.steps[int(spikes[-1])] >= record.steps[0] + (1 - SPIKES_LATE) * (record.last_step -
                                                                                        record.steps[0])
    jump = _worst_loss_jump(record, spikes)
    shaken_off = record.initial_loss is not None and recent < LEARNED_AFTER * record.initial_loss and \
        not still_coming and not jump >= SEVERE_LOSS_JUMP
    return Finding(
        FindingCode.EXPLODING_GRADIENTS, Severity.INFO if shaken_off else Severity.WARNING, int(record.steps[i]),
        f"{len(spikes)} gradient-norm spikes (up to {fmt(worst)}, {fmt(worst / base)}x the typical {fmt(base)}) "
        f"each pushed the loss up, the first at step {int(record.steps[i])}"
        + (f"; the worst sent the loss to {fmt(jump)}x its level before it" if jump >= SEVERE_LOSS_JUMP else ""),
        {"spikes": len(spikes), "grad_norm_max": worst, "grad_norm_median": healthy, "loss_jump": jump,
         "lr": ctx.lr},
        remedies,
    )


def _worst_loss_jump(record: RunRecord, spikes: np.ndarray) -> float:
    """The largest rise of the loss a spike caused: the highest loss in the few steps after it over the median of
    the losses before it."""
    jumps = []
    for i in spikes:
        before = median(record.loss[max(0, i - DAMAGE_WINDOW):i])
        after = record.loss[i:i + SPIKE_DAMAGE_LAG + 1]
        after = after[np.isfinite(after)]
        if len(after) and before > 0:
            jumps.append(float(after.max()) / before)
    return max(jumps, default=0.0)


def check_early_instability(record: RunRecord, ctx: RunContext) -> Finding | None:
    """The loss blew up in the first steps and then recovered: the signature of a missing warmup."""
    limit = _early_limit(record)
    if record.initial_loss is None or record.last_step < 2 * limit:
        return None
    early = record.steps < limit
    sm = smooth(record.loss[early], EARLY_SMOOTH)
    peak_i = int(np.nanargmax(sm)) if len(sm) and np.isfinite(sm).any() else 0
    peak = float(sm[peak_i]) if len(sm) else float("nan")
    spikes = [i for i in _spikes(record) if record.steps[i] < limit]
    # a rise must stand out of the batches' own noise (a regression on batches of 8 swings 2x from batch to batch)
    noise = robust_sigma(record.loss[early], center=sm) if len(sm) else 0.0
    blew_up = peak > EARLY_SPIKE_FACTOR * record.initial_loss and peak > record.initial_loss + EARLY_NOISE * noise
    if not (blew_up or spikes):
        return None
    if median(record.loss[-recent_window(len(record), RECENT_FRACTION, *RECENT_RANGE):]) >= record.initial_loss:
        return None  # it never recovered: that is divergence or a stall, not an early hiccup
    step = int(record.steps[peak_i]) if blew_up else int(record.steps[spikes[0]])
    recent = median(record.loss[-recent_window(len(record), RECENT_FRACTION, *RECENT_RANGE):])
    learned = recent < LEARNED_AFTER * record.initial_loss
    val = record.val_loss[np.isfinite(record.val_loss)]
    val_worse = len(val) >= 2 and float(val[-1]) > float(val[0])  # the training loss came back, validation did not
    severity = Severity.INFO if learned and not val_worse else Severity.WARNING
    remedies = [R.lower_lr(ctx, _spike_cut(ctx), "the first steps overshoot before the optimizer's statistics settle")]
    if not _has_warmup(record):
        remedies.insert(0, R.add_warmup(record.total_steps, at_least=2 * step))
    remedies.append(R.clip_gradients(ctx, median(record.grad_norm)))
    remedies = [*R.instability_causes(ctx), *remedies]
    what = (f"the loss rose to {fmt(peak)} ({peak / record.initial_loss:.1f}x its initial {fmt(record.initial_loss)})"
            if blew_up else f"{len(spikes)} gradient spikes hit the loss")
    return Finding(FindingCode.EARLY_INSTABILITY, severity, step,
                   f"{what} in the first {limit} steps, then the training loss recovered"
                   + (f" (to {recent / record.initial_loss:.0%} of its initial loss)" if learned
                      else f", though only to {fmt(recent)}")
                   + (f"; the validation loss did not: {fmt(float(val[-1]))} at the last validation against "
                      f"{fmt(float(val[0]))} at the first" if val_worse else ""),
                   {"early_loss_peak": peak, "initial_loss": record.initial_loss, "lr": ctx.lr}, tuple(remedies))


def _oscillation_window(record: RunRecord) -> int:
    return recent_window(len(record), OSCILLATION_FRACTION, OSCILLATION_MIN_STEPS, OSCILLATION_MAX_STEPS)


def oscillation_amplitude(record: RunRecord) -> float:
    """The oscillation rule's statistic: the loss's interquartile range over its median, in the rule's window."""
    return relative_iqr(record.loss[-_oscillation_window(record):]) if len(record) else float("nan")


def divergence_loss_ratio(record: RunRecord) -> float:
    """The divergence rule's statistic: the recent loss (median of the rule's window) over the initial loss."""
    if not record.initial_loss or not len(record):
        return float("nan")
    return median(record.loss[-recent_window(len(record), RECENT_FRACTION, *RECENT_RANGE):]) / record.initial_loss


def _huge_updates(record: RunRecord, ctx: RunContext) -> Finding | None:
    """Every step keeps moving the weights by a large share of their size and the run has not learned: the LR is far
    too high (the loss can sit flat at a high noise floor, swinging or not)."""
    later = record.update_ratio[1:][np.isfinite(record.update_ratio[1:])]
    if len(later) < HUGE_UPDATE_SAMPLES or not median(later) > HUGE_UPDATES:
        return None
    level = median(record.loss[-recent_window(len(record), RECENT_FRACTION, *RECENT_RANGE):])
    if level < WRECKED_LEVEL * (record.initial_loss or 0.0):
        return None  # it learns: weights near zero make any step look large (a linear model's, say)
    ratio = median(later)
    cut = lr_cut(record, ctx) if ctx.is_adam else float(np.clip(ratio / TARGET_UPDATE_RATIO, *LR_CUT))
    return Finding(
        FindingCode.OSCILLATION, Severity.WARNING, int(record.update_steps[1]),
        f"every step moves the weights by about {ratio:.0%} of their size (a healthy step moves them by about "
        f"{TARGET_UPDATE_RATIO:.0e}): steps this large jump about instead of descending",
        {"update_ratio": ratio, "loss_level": level, "lr": ctx.lr},
        (R.lower_lr(ctx, cut, "the updates are tens of times the healthy size"), R.clip_gradients(ctx, median(
            record.grad_norm))),
    )


def check_oscillation(record: RunRecord, ctx: RunContext) -> Finding | None:
    """The loss swings up and down without net progress while still far from converged (or every step is far too
    large, see ``_huge_updates``)."""
    if record.initial_loss is None or len(record) < OSCILLATION_MIN_STEPS:
        return None
    huge = _huge_updates(record, ctx)
    if huge is not None:
        return huge
    n = _oscillation_window(record)
    window = record.loss[-n:]
    level = median(window)
    amplitude = relative_iqr(window)
    progress = halves_change(window)
    best = best_block_median(record.loss[:-n], max(SMOOTH_STEPS, n // OSCILLATION_BEST_BLOCKS))
    lost = (level - best) / (record.initial_loss - best) if record.initial_loss > best else 0.0
    far = level > OSCILLATION_LEVEL * record.initial_loss or lost > OSCILLATION_REGRESSION
    # The medians of two noisy halves differ by chance: count a fall only beyond twice its standard
    # error (IQR/1.349 estimates the spread; the median's error is 1.2533 spread/sqrt(n)).
    noise = 2 * MEDIAN_SE * (amplitude / IQR_PER_SIGMA) / np.sqrt(max(n // 2, 1))
    if not (amplitude > OSCILLATION_AMPLITUDE and far and progress > min(OSCILLATION_PROGRESS, -noise)):
        return None
    remedies = [*R.instability_causes(ctx), R.lower_lr(ctx, OSCILLATION_LR_CUT,
                                                       "the steps are large enough to jump across the valley "
                                                       "instead of down it")]
    if ctx.is_adam:
        remedies.append(R.lower_beta1(ctx))
    elif (ctx.momentum or 0.0) < 0.9:
        remedies.append(R.raise_momentum(ctx, "momentum averages out the back-and-forth and keeps the downhill part"))
    return Finding(
        FindingCode.OSCILLATION, Severity.WARNING, int(record.steps[-n]),
        f"over the last {n} steps the loss swung by {amplitude:.0%} of its level ({fmt(level)}) without coming down"
        + (f", having lost {lost:.0%} of the progress it had made (its best was {fmt(best)})"
           if lost > OSCILLATION_REGRESSION else ""),
        {"loss_level": level, "relative_amplitude": amplitude, "window_change": progress, "best_loss": best,
         "lr": ctx.lr},
        tuple(remedies),
    )
