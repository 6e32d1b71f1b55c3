"""The remedy catalog: each function turns the live settings into one concrete recipe change.

The values follow the "Dynaxx Precision" optimization guide (its Steps 2, 5, 6, 8 and FAQ, cited by constant below):
lower the LR by ten when a run diverges,
clip near the gradient norm a healthy step has, warm up over the first few percent of training,
use AdamW's decoupled weight decay, hand the last ~20% of training to SGD with momentum, and take
beta2 down one notch (0.9999 -> 0.999) when Adam diverges late.
"""

from __future__ import annotations

import math

from tunekit.diagnose._context import RunContext
from tunekit.diagnose._stats import fmt, nice
from tunekit.diagnose._types import Remedy, RemedyCode

# Where each constant comes from: "(zoo)" chosen on the zoo's training families (benchmarks/zoo/tune.py, each family
# scored with the values chosen on the others); "(hand)" set by hand, when the rule was written or after reading
# the zoo's runs, and not searched; otherwise the source is named (a paper, a reference text, torch, statistics).
WARMUP_FRACTION = 0.05  # (hand) warm up over ~5% of training (a short optimization glossary warms up over
# "the first few thousand steps"; Goyal et al. 2017 over 5 of 90 epochs)
MIN_WARMUP_STEPS = 10  # (hand) the shortest warmup a remedy proposes
SWITCH_TO_SGD_AT = 0.8  # Dynaxx Precision guide, Step 8: Adam for the first 80% of training, SGD for the rest
SGD_SWITCH_MOMENTUM = 0.9  # Dynaxx Precision guide, Scenarios A/B: SGD, momentum 0.9, for the final stage
ADAM_DEFAULT_LR = 1e-3  # Dynaxx Precision guide, Step 2: a good starting LR for Adam
ADAMW_WEIGHT_DECAY = 0.01  # torch's AdamW default; decoupled decay is scaled by the LR, so 1e-4 does ~nothing
SGD_WEIGHT_DECAY = 1e-4  # Dynaxx Precision guide, Step 5: start with 1e-4
MAX_WEIGHT_DECAY = {"adamw": 0.3, "sgd": 1e-2}  # (hand) beyond these the decay dominates the loss gradient
WEIGHT_DECAY_RAISE = 10.0  # (hand) weight decay already on is raised by a decade
BATCH_RAISE = 4  # (hand) a larger batch: 4x, which halves the gradient noise (its std goes as 1/sqrt(batch))
MOMENTUM_STEPS = (0.9, 0.99)  # (hand) SGD momentum is raised to 0.9, or to 0.99 when it is 0.9 already
BETA1_STEPS = (0.95, 0.99)  # (hand) Adam's beta1 is raised to 0.95, or 0.99 when it is 0.95 already
BETA1_DROP, BETA1_FLOOR = 0.1, 0.5  # (hand) Adam's beta1 is lowered by 0.1, not below 0.5
HIGH_MOMENTUM = 0.95  # SGD momentum from here up multiplies the step by 20x or more (its effective step is
# lr / (1 - momentum), Goh 2017, "Why momentum really works"): an instability may be the momentum's, not the LR's
MOMENTUM_CUT = 5.0  # (hand) lowering momentum divides its effective step by 5: 1 - momentum grows 5x (0.99 -> 0.95)
MOMENTUM_FLOOR = 0.5  # (hand) lowered momentum never goes below 0.5
BN_MIN_BATCH = 8  # BatchNorm's batch statistics are noisy below 8 samples per device: its error climbs steeply as
# the batch shrinks from 8 to 2 (Wu & He 2018, "Group Normalization", Figure 1)
BN_TARGET_BATCH = 16  # (hand) ... a batch of 16 or more per device gives it statistics close to the population's


def lower_lr(ctx: RunContext, factor: float, why: str) -> Remedy:
    new = nice(ctx.lr / factor)
    return Remedy(RemedyCode.LOWER_LR, {"lr": new}, f"Lower the learning rate from {fmt(ctx.lr)} to {fmt(new)}: {why}.")


def raise_lr(ctx: RunContext, factor: float, why: str) -> Remedy:
    new = nice(ctx.lr * factor)
    return Remedy(RemedyCode.RAISE_LR, {"lr": new}, f"Raise the learning rate from {fmt(ctx.lr)} to {fmt(new)}: {why}.")


def clip_gradients(ctx: RunContext, healthy_norm: float | None) -> Remedy:
    """Clip at the norm a healthy step had, so ordinary steps pass and spikes are cut. Without a measured healthy
    norm (nothing finite recorded, or a log without gradient norms) the change names no threshold: a number that
    was not measured is not given."""
    healthy = nice(healthy_norm, 1) if healthy_norm is not None and math.isfinite(healthy_norm) and \
        healthy_norm > 0 else None
    if ctx.gradient_clip_val and (healthy is None or ctx.gradient_clip_val <= healthy):
        value = nice(ctx.gradient_clip_val / 2, 1)
        why = f"clipping at {fmt(ctx.gradient_clip_val)} did not hold the spikes; halve it"
    elif healthy is not None:
        value = healthy
        why = f"a healthy step's gradient norm was about {fmt(value)}, so this cuts only the spikes"
    else:
        return Remedy(RemedyCode.CLIP_GRADIENTS, {},
                      "Clip gradients at about the norm a healthy step has (Trainer(gradient_clip_val=...)): no "
                      "healthy gradient norm was measured here, so log it (or let tunekit's Diagnoser watch the "
                      "run) to choose the threshold.")
    return Remedy(RemedyCode.CLIP_GRADIENTS, {"gradient_clip_val": value},
                  f"Clip gradients at norm {fmt(value)} (Trainer(gradient_clip_val={fmt(value)})): {why}.")


def add_warmup(total_steps: int | None, at_least: int = 0) -> Remedy:
    steps = max(MIN_WARMUP_STEPS, at_least, round(WARMUP_FRACTION * total_steps) if total_steps else 0)
    return Remedy(RemedyCode.ADD_WARMUP, {"warmup_steps": int(steps)},
                  f"Warm the learning rate up linearly over the first {steps} steps: early gradients are "
                  "large and poorly calibrated, and a full-size step on them knocks the model off course.")


def decay_lr(ctx: RunContext, why: str) -> Remedy:
    return Remedy(RemedyCode.DECAY_LR, {"schedule": "cosine", "lr": nice(ctx.lr)},
                  f"Decay the learning rate with a cosine schedule from {fmt(ctx.lr)}: {why}.")


def step_decay(ctx: RunContext, at_step: int, factor: float, why: str) -> Remedy:
    """Cut the LR by ``factor`` at ``at_step`` (and every ``at_step`` steps after): a step schedule placed where
    the run stopped improving."""
    at = max(1, int(at_step))
    return Remedy(RemedyCode.DECAY_LR, {"schedule": "step", "step_every": at, "decay_factor": nice(factor),
                                        "lr": nice(ctx.lr)},
                  f"Cut the learning rate by {fmt(1 / factor)}x at step {at}, where the loss went flat (a step "
                  f"schedule from {fmt(ctx.lr)}): {why}.")


def raise_momentum(ctx: RunContext, why: str) -> Remedy:
    if ctx.is_adam:
        new = BETA1_STEPS[0] if (ctx.beta1 or 0.9) < BETA1_STEPS[0] else BETA1_STEPS[1]
        return Remedy(RemedyCode.RAISE_MOMENTUM, {"beta1": new},
                      f"Raise Adam's beta1 from {fmt(ctx.beta1 or 0.9)} to {new}: {why}.")
    current = ctx.momentum or 0.0
    new = MOMENTUM_STEPS[0] if current < MOMENTUM_STEPS[0] else MOMENTUM_STEPS[1]
    return Remedy(RemedyCode.RAISE_MOMENTUM, {"momentum": new},
                  f"Raise SGD momentum from {fmt(current)} to {new}: {why}.")


def lower_momentum(ctx: RunContext) -> Remedy:
    """SGD's momentum lowered so that its effective step ``lr / (1 - momentum)`` is ``MOMENTUM_CUT`` times smaller."""
    current = ctx.momentum or 0.0
    new = nice(max(MOMENTUM_FLOOR, 1 - MOMENTUM_CUT * (1 - current)), 2)
    amplify = 1 / max(1 - current, 1e-9)
    cut = (1 - new) / max(1 - current, 1e-9)
    return Remedy(RemedyCode.LOWER_MOMENTUM, {"momentum": new},
                  f"Lower SGD momentum from {fmt(current)} to {fmt(new)}: at {fmt(current)} the effective step is "
                  f"{amplify:.0f}x the learning rate (lr / (1 - momentum)) and the velocity overshoots; this cuts "
                  f"the effective step {cut:.0f}x and keeps the learning rate.")


def tiny_batchnorm_batch(ctx: RunContext) -> bool:
    """The model normalizes with BatchNorm and its batches are too small for BatchNorm's statistics."""
    return bool(ctx.batchnorm_layers) and ctx.batch_size is not None and ctx.batch_size < BN_MIN_BATCH


def instability_causes(ctx: RunContext) -> list[Remedy]:
    """The remedies for an unstable run whose cause may not be the LR, to try before it: BatchNorm on tiny batches
    (a larger batch, or a norm that does not depend on the batch) and SGD momentum near 1 (lower momentum)."""
    out: list[Remedy] = []
    if tiny_batchnorm_batch(ctx):
        size = max(BN_TARGET_BATCH, ctx.batch_size or 1)
        layers = ", ".join(ctx.batchnorm_layers[:3]) + (" ..." if len(ctx.batchnorm_layers) > 3 else "")
        out.append(Remedy(RemedyCode.RAISE_BATCH_SIZE, {"batch_size": size},
                          f"Raise the batch size from {ctx.batch_size} to {size}: BatchNorm ({layers}) normalizes "
                          f"each batch by its own mean and variance, which {ctx.batch_size} samples estimate so "
                          "badly that every step sees a differently scaled network; a lower learning rate does "
                          "not fix that."))
        out.append(note(RemedyCode.CHANGE_ARCHITECTURE,
                        f"If memory rules out a larger batch: replace BatchNorm ({layers}) with GroupNorm or "
                        "LayerNorm, which normalize each sample on its own and do not depend on the batch size "
                        "(or accumulate gradients and freeze BatchNorm's statistics)."))
    if not ctx.is_adam and (ctx.momentum or 0.0) >= HIGH_MOMENTUM:
        out.append(lower_momentum(ctx))
    from tunekit.diagnose._setting_remedies import decay_causes  # it builds on this module's constants

    return [*out, *decay_causes(ctx)]


def lower_beta1(ctx: RunContext) -> Remedy:
    current = ctx.beta1 if ctx.beta1 is not None else 0.9
    new = nice(max(BETA1_FLOOR, current - BETA1_DROP))
    return Remedy(RemedyCode.LOWER_BETA1, {"beta1": new},
                  f"Lower Adam's beta1 from {fmt(current)} to {new}: a long first-moment average keeps "
                  "pushing past the valley floor after the gradient has turned.")


def lower_beta2(ctx: RunContext) -> Remedy:
    current = ctx.beta2 if ctx.beta2 is not None else 0.999
    new = 0.999 if current > 0.999 else (0.99 if current > 0.99 else 0.95)
    return Remedy(RemedyCode.LOWER_BETA2, {"beta2": new},
                  f"Lower Adam's beta2 from {current} to {new}: a second-moment average that long goes stale, "
                  "and the per-parameter step grows too large for the current gradient late in training.")


def add_weight_decay(ctx: RunContext) -> Remedy:
    if ctx.is_adam:
        wd = nice(min(MAX_WEIGHT_DECAY["adamw"], max(ADAMW_WEIGHT_DECAY, WEIGHT_DECAY_RAISE * ctx.weight_decay)))
        coupled = ctx.optimizer != "adamw"
        why = ("Adam's L2 penalty is rescaled per parameter by the adaptive step, so it regularizes unevenly; "
               "AdamW decouples it" if coupled else "the model fits the training set better than it generalizes")
        return Remedy(RemedyCode.ADD_WEIGHT_DECAY, {"optimizer": "adamw", "weight_decay": wd},
                      f"Use AdamW with weight decay {fmt(wd)}: {why}.")
    wd = nice(min(MAX_WEIGHT_DECAY["sgd"], max(SGD_WEIGHT_DECAY, WEIGHT_DECAY_RAISE * ctx.weight_decay)))
    return Remedy(RemedyCode.ADD_WEIGHT_DECAY, {"weight_decay": wd},
                  f"Raise weight decay from {fmt(ctx.weight_decay)} to {fmt(wd)}: the model fits the training "
                  "set better than it generalizes.")


def switch_to_sgd(ctx: RunContext) -> Remedy:
    return Remedy(RemedyCode.SWITCH_TO_SGD, {"switch_to_sgd_at": SWITCH_TO_SGD_AT, "momentum": SGD_SWITCH_MOMENTUM},
                  f"Train with {ctx.optimizer} for the first {SWITCH_TO_SGD_AT:.0%} of steps, then SGD with momentum "
                  f"{SGD_SWITCH_MOMENTUM} for the rest: SGD settles in flatter minima that generalize better.")


def switch_optimizer(ctx: RunContext, why: str) -> Remedy:
    return Remedy(RemedyCode.SWITCH_OPTIMIZER, {"optimizer": "adam", "lr": ADAM_DEFAULT_LR},
                  f"Switch from {ctx.optimizer} to Adam at lr {ADAM_DEFAULT_LR}: {why}.")


def raise_batch_size(ctx: RunContext, why: str) -> Remedy | None:
    if not ctx.batch_size:
        return None
    new = ctx.batch_size * BATCH_RAISE
    return Remedy(RemedyCode.RAISE_BATCH_SIZE, {"batch_size": new},
                  f"Raise the batch size from {ctx.batch_size} to {new} at the same learning rate: {why}.")


def early_stop(step: int) -> Remedy:
    return Remedy(RemedyCode.EARLY_STOP, {"max_steps": int(step)},
                  f"Stop at step {step}, where the validation loss was lowest (or add EarlyStopping on it).")


def note(code: RemedyCode, message: str) -> Remedy:
    """A remedy that is not a recipe change (init, architecture, data pipeline): empty ``change``."""
    return Remedy(code, {}, message)


# ---------------------------------------------------------------- gradient noise and reduce-on-plateau (issue 22)
GRAD_NOISE_STD = 0.1  # the noise's std at step 0: eta = 0.01, the smallest variance Neelakantan et al. 2015 tried
GRAD_NOISE_POWER = 0.275  # ... annealed as std / (1 + t) ** 0.275 (their gamma 0.55, halved for the std)
PLATEAU_MIN_PATIENCE = 1  # reduce-on-plateau waits at least one validation epoch without improvement ...
PLATEAU_PATIENCE_SHARE = 0.5  # ... or half the epochs the run has been flat: it would have cut within this plateau


def add_grad_noise(ctx: RunContext, step: int) -> Remedy:
    """Annealed Gaussian gradient noise (the recipe's ``grad_noise``) for a run stuck at a saddle: the gradient there
    is too small to point the way out, and noise pushes the weights off the flat directions (Neelakantan et al.
    2015; the guide's language-model scenario). ``step`` is the optimizer step now, for the size the noise has
    there."""
    now = GRAD_NOISE_STD * (1 + max(0, step)) ** -GRAD_NOISE_POWER
    return Remedy(RemedyCode.ADD_GRAD_NOISE, {"grad_noise": GRAD_NOISE_STD},
                  f"Add annealed Gaussian noise to the gradients (grad_noise: {fmt(GRAD_NOISE_STD)}, its standard "
                  f"deviation at step 0, falling as (1 + step) ** -{GRAD_NOISE_POWER}: {fmt(now)} at step {step}): "
                  "at a saddle the gradient is too small to point the way out, and the noise pushes the weights off "
                  "the flat directions.")


def reduce_on_plateau(ctx: RunContext, factor: float, flat_epochs: float | None, why: str) -> Remedy:
    """Torch's ``ReduceLROnPlateau`` on the validation loss (``schedule: plateau``), cutting by ``factor`` after
    ``plateau_patience`` validation epochs without improvement: half the epochs the run has been flat
    (``flat_epochs``), at least one; without them, the recipe's default patience is kept. The primer's remedy for a
    loss that plateaus at a constant LR (its table of loss patterns)."""
    change: dict[str, object] = {"schedule": "plateau", "plateau_factor": nice(factor), "lr": nice(ctx.lr)}
    if flat_epochs is not None and flat_epochs > 0:
        change["plateau_patience"] = max(PLATEAU_MIN_PATIENCE, int(PLATEAU_PATIENCE_SHARE * flat_epochs))
    patience = change.get("plateau_patience")
    wait = f"{patience} validation epoch{'s' if patience != 1 else ''}" if patience else "its patience"
    return Remedy(RemedyCode.DECAY_LR, change,
                  f"Reduce the learning rate on plateau (schedule: plateau, from {fmt(ctx.lr)}): cut it "
                  f"{fmt(1 / factor)}x whenever the validation loss has not improved for {wait}: {why}.")
