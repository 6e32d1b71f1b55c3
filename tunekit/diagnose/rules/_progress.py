"""Rules for runs that stop making progress: saddle stall, too-low LR, plateau, vanishing gradients.

The first three look alike on a loss curve (a flat line) and need opposite remedies, so they are told
apart by the gradient and the update size (guide, Step 1: "if it's small but loss is high, you might be
near a saddle point ... always check the gradient norm"):

| finding | loss | gradient norm | update/weight ratio | remedy |
|---|---|---|---|---|
| saddle_stall | flat, near its start | tiny relative to the loss | tiny | momentum, higher LR, gradient noise, init |
| slow_convergence | falling slowly, near its start | healthy | tiny | higher LR |
| plateau | flat, well below its start | healthy (noise) | healthy | decay the LR (cosine, on plateau, a step) |
"""

from __future__ import annotations

import numpy as np

from tunekit.diagnose import _remedies as R
from tunekit.diagnose import _setting_remedies as S
from tunekit.diagnose._context import RunContext
from tunekit.diagnose._stats import TARGET_UPDATE_RATIO, fmt, halves_change, median, recent_window, smooth
from tunekit.diagnose._types import Finding, FindingCode, RemedyCode, Severity
from tunekit.diagnose.rules._settings import setting_fault
from tunekit.record import RunRecord

# Where each constant comes from: "(zoo)" chosen on the zoo's training families (benchmarks/zoo/tune.py, each family
# scored with the values chosen on the others); "(hand)" set by hand, when the rule was written or after reading
# the zoo's runs, and not searched; otherwise the source is named (a paper, a reference text, torch, statistics).
STALL_MIN_STEPS = 40  # (hand) fewer steps than this say nothing about progress
FLAT_CHANGE = -0.02  # (hand) a window whose second half is not 2% below its first half is flat
SADDLE_HIGH_LOSS = 0.8  # (hand) a saddle stall sits near where training started: loss above 80% of the initial
STALL_BAND = 0.03  # (hand) the stall began where the (smoothed) loss last left a 3% band around its stalled level
SADDLE_GRAD_TO_LOSS = 1e-2  # (hand) gradient norm under 1% of the loss value is "tiny": first-order steps crawl
SLOW_PROGRESS = 0.7  # (zoo) after the first window, a loss still above 70% of the initial is slow progress
SLOW_UPDATE_RATIO = 1e-4  # (hand) updates under 1e-4 of the weights per step are too small (healthy ~1e-3)
STILL_FALLING = -0.05  # (hand) a window whose second half is 5% below its first is still falling steadily
SLOW_RAISE = (3.0, 100.0)  # (hand) a too-low LR is raised towards the healthy update ratio, by 3x to 100x
SLOW_RAISE_BLIND = 10.0  # (hand) ... or by 10x when no update ratio was sampled
SADDLE_RAISE = 10.0  # (hand) a saddle's LR remedy: ten times larger steps
WINDOW_FRACTION = 0.3  # (hand) the stall rules look at the last 30% of the run ...
WINDOW_MAX = 1000  # (hand) ... at most this many steps
STALL_SMOOTH = 9  # (hand) running-median width used to find where the loss went flat
VANISHING_MIN_STEPS = 10  # (hand) steps needed before per-layer medians mean anything
LEARNING_FRACTION = 0.5  # (hand) a run whose loss halved is learning: vanishing gradients there are only a hint
PLATEAU_PROGRESS = 0.7  # (hand) a plateau comes after real progress: loss below 70% of the initial
PLATEAU_FLOOR = 0.02  # (hand) below 2% of the initial loss the run has converged, it is not stuck
PLATEAU_LR_CONSTANT = 1.25  # (hand) LR max/min over the window under this = no decay is happening
PLATEAU_STEP_CUT = 10.0  # a plateau's second remedy: one step decay by ten (the Dynaxx Precision guide's factor,
# Step 2)
VANISHING_RATIO = 1e-3  # first/last layer gradient-norm ratio under 1e-3 (AUTOTRAINER's threshold)
VANISHING_MIN_LAYERS = 3  # (hand) the ratio means little for networks of one or two layers


def _window(record: RunRecord) -> int:
    return recent_window(len(record), WINDOW_FRACTION, STALL_MIN_STEPS, WINDOW_MAX)


def _update_ratio(record: RunRecord, since_step: int) -> float:
    """The median update/weight ratio sampled since ``since_step``; the latest sample when the window holds none
    (samples come every ``update_ratio_every`` steps, and a window can be shorter)."""
    keep = record.update_steps >= since_step
    if keep.any():
        return median(record.update_ratio[keep])
    return float(record.update_ratio[-1]) if len(record.update_ratio) else float("nan")


def _weight_grad_norm(record: RunRecord, n: int) -> float:
    """The largest per-layer (weight) gradient norm over the last ``n`` steps, or the global norm when
    no per-layer norms were recorded. At a saddle every layer's weight gradient is tiny; the global norm
    is not, since the output bias still sees the full error."""
    norms = record.layer_grad_norms
    if norms.ndim == 2 and norms.shape[1]:
        return float(np.max(np.median(norms[-n:], axis=0)))
    return median(record.grad_norm[-n:])


def saddle_grad_to_loss(record: RunRecord) -> float:
    """The saddle rule's statistic: the largest layer's weight-gradient norm over the loss, in its window."""
    n = _window(record)
    return _weight_grad_norm(record, n) / max(median(record.loss[-n:]), 1e-12) if len(record) else float("nan")


def plateau_window_change(record: RunRecord) -> float:
    """The plateau rule's statistic: relative change of the loss from the first half of its window to the second
    (negative while it still falls, about zero on a plateau)."""
    return halves_change(record.loss[-_window(record):])


def check_saddle_stall(record: RunRecord, ctx: RunContext) -> Finding | None:
    """Loss flat near its starting value while the gradient is tiny: a saddle region, not a minimum (unless a setting
    explains the stall: weight decay that strong also holds the weights and their gradient near zero)."""
    if record.initial_loss is None or len(record) < STALL_MIN_STEPS or setting_fault(record, ctx) is not None:
        return None
    n = _window(record)
    loss = record.loss[-n:]
    level, g = median(loss), _weight_grad_norm(record, n)
    grad_to_loss = g / max(level, 1e-12)
    if not (halves_change(loss) > FLAT_CHANGE and level > SADDLE_HIGH_LOSS * record.initial_loss
            and grad_to_loss < SADDLE_GRAD_TO_LOSS):
        return None
    outside = np.flatnonzero(np.abs(smooth(record.loss, STALL_SMOOTH) - level) > STALL_BAND * level)
    start = int(record.steps[min(outside[-1] + 1, len(record) - 1) if len(outside) else 0])  # since it went flat
    remedies = [R.raise_momentum(ctx, "velocity built up carries the weights through the flat region")]
    if (ctx.is_adam and (ctx.beta1 or 0.9) >= 0.95) or (not ctx.is_adam and (ctx.momentum or 0) >= 0.9):
        remedies = []  # momentum is already high; a larger step is the next lever
    remedies.append(R.raise_lr(ctx, SADDLE_RAISE, "larger steps leave the near-zero-gradient region sooner"))
    remedies.append(R.add_grad_noise(ctx, record.last_step))
    init = R.note(RemedyCode.CHANGE_INIT, "Initialize the weights at a larger scale (Xavier/Kaiming or orthogonal): "
                  "a small init starts deep networks right at a saddle.")
    # Stuck from the first step: the init put it there, and no step size gets out in time (measured on the
    # deep linear network: momentum and a 10x LR left it at chance, the default init trained it).
    remedies.insert(0, init) if start == int(record.steps[0]) else remedies.append(init)
    return Finding(
        FindingCode.SADDLE_STALL, Severity.WARNING, start,
        f"the loss has stayed near {fmt(level)} ({level / record.initial_loss:.0%} of its initial value) since step "
        f"{start} while the largest layer gradient norm is only {fmt(g)}: a saddle region, not a minimum",
        {"loss": level, "grad_norm": g, "grad_to_loss": grad_to_loss, "initial_loss": record.initial_loss,
         "lr": ctx.lr}, tuple(remedies),
    )


def check_slow_convergence(record: RunRecord, ctx: RunContext) -> Finding | None:
    """Healthy gradients, small updates, little progress: the learning rate is too low.

    Tiny updates (under ``SLOW_UPDATE_RATIO`` of the weights) near the start are a warning on their own. Updates
    only somewhat small (under the healthy ``TARGET_UPDATE_RATIO``) on a loss near its start, or one still falling
    steadily, are a hint that a what-if probe settles: it becomes a warning when a larger LR makes the loss fall
    faster (the update size that suits a model differs from model to model; the probe does not depend on it).
    """
    if record.initial_loss is None or len(record) < 2 * STALL_MIN_STEPS or setting_fault(record, ctx) is not None:
        return None  # too short to say, or a setting explains the stall (``check_setting_faults``)
    n = _window(record)
    level = median(record.loss[-n:])
    since = int(record.steps[-n])
    ratio = _update_ratio(record, since)
    near_start = level > SLOW_PROGRESS * record.initial_loss
    converged = level < PLATEAU_FLOOR * record.initial_loss
    falling = halves_change(record.loss[-n:]) < STILL_FALLING and not converged
    if not (near_start or falling):
        return None
    g = median(record.grad_norm[-n:])
    if near_start and _weight_grad_norm(record, n) / max(level, 1e-12) < SADDLE_GRAD_TO_LOSS:
        return None  # tiny gradients: the saddle rule speaks for this run
    if np.isfinite(ratio):
        if ratio >= TARGET_UPDATE_RATIO:
            return None  # the steps are a healthy size; the problem lies elsewhere
        strong = near_start and ratio < SLOW_UPDATE_RATIO
        factor = float(np.clip(TARGET_UPDATE_RATIO / max(ratio, 1e-12), *SLOW_RAISE))
    else:
        if not falling:
            return None  # without update sizes, only a steady slow descent points at the LR
        strong, factor = False, SLOW_RAISE_BLIND
    remedies = [R.raise_lr(ctx, factor, "the updates are small next to the weights, so each step changes little")]
    if not ctx.is_adam:
        remedies.append(R.switch_optimizer(ctx, "Adam scales each parameter's step and is less sensitive to the LR"))
    ratio_text = f", each update moves the weights by {fmt(ratio)} of their size" if np.isfinite(ratio) else ""
    where = (f"the loss is still {fmt(level)} ({level / record.initial_loss:.0%} of its initial value)" if near_start
             else f"the loss is still falling steadily ({fmt(level)}, {level / record.initial_loss:.0%} of its start)")
    return Finding(
        FindingCode.SLOW_CONVERGENCE, Severity.WARNING if strong else Severity.INFO, since,
        f"after {record.last_step + 1} steps {where} with healthy gradients{ratio_text}: the learning rate "
        + ("is too low" if strong else "may be too low"),
        {"loss": level, "initial_loss": record.initial_loss, "update_ratio": ratio, "grad_norm": g, "lr": ctx.lr,
         "still_falling": falling},
        tuple(remedies),
    )


def validations_since(record: RunRecord, step: int) -> int | None:
    """The validation epochs the run had from ``step`` on (what reduce-on-plateau counts); None without any."""
    if not len(record.val_steps):
        return None
    return int(np.count_nonzero(record.val_steps >= step))


def check_plateau(record: RunRecord, ctx: RunContext) -> Finding | None:
    """The loss came down, then stopped at a noise floor under a constant learning rate."""
    if record.initial_loss is None or len(record) < 2 * STALL_MIN_STEPS or setting_fault(record, ctx) is not None:
        return None  # too short to say, or a setting explains the stall (``check_setting_faults``)
    n = _window(record)
    loss, lr = record.loss[-n:], record.lr[-n:]
    level = median(loss)
    if not (PLATEAU_FLOOR * record.initial_loss < level < PLATEAU_PROGRESS * record.initial_loss):
        return None
    change = halves_change(loss)
    constant_lr = float(np.max(lr)) <= PLATEAU_LR_CONSTANT * max(float(np.min(lr)), 1e-30)
    if not (change > FLAT_CHANGE and constant_lr):
        return None
    noise = float(np.std(loss)) / max(level, 1e-12)
    flat_validations = validations_since(record, int(record.steps[-n]))
    remedies = [R.decay_lr(ctx, "the loss sits at the noise floor of this step size; a shrinking step settles "
                           "lower"),
                R.reduce_on_plateau(ctx, 1 / PLATEAU_STEP_CUT, flat_validations,
                                    "it cuts where the validation loss stops improving, without choosing when"),
                R.lower_lr(ctx, PLATEAU_STEP_CUT, "a one-off step decay does the same")]
    bigger = R.raise_batch_size(ctx, "a larger batch lowers the gradient noise that sets the floor")
    if bigger is not None:
        remedies.append(bigger)
    return Finding(
        FindingCode.PLATEAU, Severity.WARNING, int(record.steps[-n]),
        f"the loss has not improved over the last {n} steps (flat at {fmt(level)}, batch-to-batch noise "
        f"{noise:.0%}) at a constant learning rate of {fmt(ctx.lr)}",
        {"loss": level, "initial_loss": record.initial_loss, "window_change": change, "noise": noise, "lr": ctx.lr,
         "flat_validations": flat_validations}, tuple(remedies),
    )


def check_vanishing_gradients(record: RunRecord, ctx: RunContext) -> Finding | None:
    """The first layers get orders of magnitude less gradient than the last ones."""
    norms = record.layer_grad_norms
    if norms.ndim != 2 or norms.shape[1] < VANISHING_MIN_LAYERS or len(record) < VANISHING_MIN_STEPS:
        return None
    n = recent_window(len(record), WINDOW_FRACTION, VANISHING_MIN_STEPS, WINDOW_MAX)
    per_layer = np.array([median(norms[-n:, j]) for j in range(norms.shape[1])])
    live = np.flatnonzero(per_layer > 0)  # frozen or unused layers have no gradient at all
    if len(live) < VANISHING_MIN_LAYERS:
        return None
    first, last = float(per_layer[live[0]]), float(per_layer[live[-1]])
    ratio = first / last
    level = median(record.loss[-n:])
    if not ratio < VANISHING_RATIO or last < SADDLE_GRAD_TO_LOSS * level:
        return None  # no gap, or every layer's gradient is tiny (a saddle, not a vanishing chain)
    names = record.layer_names
    learning = record.initial_loss is not None and level < LEARNING_FRACTION * record.initial_loss
    arch = R.note(RemedyCode.CHANGE_ARCHITECTURE,
                  "Replace saturating activations (" + (", ".join(ctx.saturating_layers[:3]) or "sigmoid/tanh")
                  + ") with ReLU/GELU, or add normalization layers or residual connections, so the gradient reaches "
                  "the first layers.")
    init = R.note(RemedyCode.CHANGE_INIT, "Use an initialization scaled for the depth (Kaiming for ReLU, Xavier for "
                  "tanh) so each layer passes the gradient on at about the same size.")
    remedies = [*S.decay_causes(ctx), *([arch, init] if ctx.saturating_layers else [init, arch])]
    if not ctx.is_adam:
        remedies.append(R.switch_optimizer(ctx, "Adam rescales each parameter's step, so small gradients still move "
                                           "the early layers"))
    return Finding(
        FindingCode.VANISHING_GRADIENTS, Severity.INFO if learning else Severity.WARNING, int(record.steps[-n]),
        f"the first layer ({names[live[0]]}) gets {fmt(ratio)} of the gradient norm of the last ({names[live[-1]]}): "
        "the early layers barely learn",
        {"first_layer": names[live[0]], "last_layer": names[live[-1]], "first_grad_norm": first,
         "last_grad_norm": last, "ratio": ratio}, tuple(remedies),
    )
