"""Rule for overfitting: validation loss rising (or stuck far above the training loss) while the training
loss keeps falling.

The finding's code is ``generalization_gap`` although what it measures is what the field calls overfitting (the
validation loss rising from its best), not the gap between training and validation loss: the code is part of the
contract (docs/contracts.md) that stored diagnoses, the zoo and the dashboards read, so it keeps its name and the
message says "overfitting"."""

from __future__ import annotations

import numpy as np

from tunekit.diagnose import _remedies as R
from tunekit.diagnose._context import RunContext
from tunekit.diagnose._stats import fmt, median, robust_sigma
from tunekit.diagnose._types import Finding, FindingCode, Severity
from tunekit.record import RunRecord

# Where each constant comes from: "(zoo)" chosen on the zoo's training families (benchmarks/zoo/tune.py, each family
# scored with the values chosen on the others); "(hand)" set by hand, when the rule was written or after reading
# the zoo's runs, and not searched; otherwise the source is named (a paper, a reference text, torch, statistics).
GAP_MIN_CHECKS = 4  # (hand) validation checks needed before a trend means anything
GAP_RISE_WARNING = 0.10  # (zoo) validation loss 10% above its best, two checks or more after it: overfitting (warning)
GAP_RISE_INFO = 0.03  # (hand) a smaller, steady rise (3%, over three checks or more) is the start of it (info)
CHECKS_AFTER_WARNING = 2  # (hand) one rise can be noise; two make a trend
CHECKS_AFTER_INFO = 3  # (hand) ... and the info needs three checks after the best
TRAIN_STILL_FALLING = 0.95  # (hand) ... while the training loss went on below 95% of its value at the best check
TRAIN_MEMORIZED = 0.01  # (hand) or the training loss is under 1% of where it started: the training set is memorized
TRAIN_STEADY = 1.0  # (hand) ... and at no check after the best was the training loss back at its level there: a
# validation loss that swings because the training loss swings is instability, not overfitting
VAL_NOISE_SIGMAS = 2.0  # (hand) the rise must clear twice the validation loss's check-to-check noise ...


def _train_loss_before(record: RunRecord, step: int, span: int) -> float:
    keep = (record.steps < step) & (record.steps >= step - span)
    return median(record.loss[keep]) if keep.any() else float("nan")


def validation_noise(val: np.ndarray) -> float:
    """The check-to-check noise of a validation series: the robust standard deviation of its residuals around a
    three-check running median (a steady trend leaves almost none; swings leave a lot)."""
    if len(val) < 3:
        return 0.0
    padded = np.concatenate([val[:1], val, val[-1:]])
    trend = np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
    residual = val - trend
    return robust_sigma(residual)


def check_generalization_gap(record: RunRecord, ctx: RunContext) -> Finding | None:
    """Validation loss turned up after its best check while the training loss kept going down."""
    val = record.val_loss
    if len(val) < GAP_MIN_CHECKS or not np.isfinite(val).all():
        return None
    best = int(np.argmin(val))
    checks_after = len(val) - 1 - best
    rise = float(val[-1] / max(val[best], 1e-12) - 1)
    warning = rise >= GAP_RISE_WARNING and checks_after >= CHECKS_AFTER_WARNING
    info = rise >= GAP_RISE_INFO and checks_after >= CHECKS_AFTER_INFO
    if not (warning or info):
        return None
    span = int(np.median(np.diff(record.val_steps))) if len(val) > 1 else 50
    train_at_best = _train_loss_before(record, int(record.val_steps[best]), span)
    train_now = _train_loss_before(record, int(record.val_steps[-1]), span)
    memorized = record.initial_loss is not None and train_now < TRAIN_MEMORIZED * record.initial_loss
    if not (train_now < TRAIN_STILL_FALLING * train_at_best or memorized):
        return None
    later = [_train_loss_before(record, int(step), span) for step in record.val_steps[best + 1:]]
    if any(loss >= TRAIN_STEADY * train_at_best for loss in later if np.isfinite(loss)):
        return None  # the training loss came back up too: the run is unstable, not overfitting
    if val[-1] - val[best] <= VAL_NOISE_SIGMAS * validation_noise(val):
        return None
    best_step = int(record.val_steps[best])
    # Stopping at the best check is the surest fix (measured: the overfitting zoo run's validation loss fell
    # 10%, against 0.3% for AdamW's weight decay 0.01); the recipe changes come next.
    remedies = [R.early_stop(best_step), R.add_weight_decay(ctx)]
    if ctx.is_adam:
        remedies.append(R.switch_to_sgd(ctx))
    return Finding(
        FindingCode.GENERALIZATION_GAP, Severity.WARNING if warning else Severity.INFO, best_step,
        f"validation loss rose {rise:.0%} from its best ({fmt(float(val[best]))} at step {best_step}) to "
        f"{fmt(float(val[-1]))} while the training loss fell from {fmt(train_at_best)} to {fmt(train_now)}: "
        + ("the model is overfitting" if warning else "the model is starting to overfit"),
        {"best_val_loss": float(val[best]), "best_step": best_step, "val_loss": float(val[-1]),
         "train_loss": train_now, "train_loss_at_best": train_at_best}, tuple(remedies),
    )
