"""Rule for overfitting: validation loss rising while the training loss keeps falling."""

from __future__ import annotations

import numpy as np

from tunekit.diagnose import _remedies as R
from tunekit.diagnose._record import RunContext, RunRecord
from tunekit.diagnose._stats import fmt, median
from tunekit.diagnose._types import Finding, FindingCode, Severity

GAP_MIN_CHECKS = 4  # validation checks needed before a trend means anything
GAP_RISE = 0.10  # validation loss 10% above its best ...
GAP_CHECKS_AFTER_BEST = 2  # ... at least two checks after the best one (one rise can be noise)
TRAIN_STILL_FALLING = 0.95  # ... while the training loss went on below 95% of its value at the best check


def _train_loss_before(record: RunRecord, step: int, span: int) -> float:
    keep = (record.steps < step) & (record.steps >= step - span)
    return median(record.loss[keep]) if keep.any() else float("nan")


def check_generalization_gap(record: RunRecord, ctx: RunContext) -> Finding | None:
    """Validation loss turned up after its best check while training loss kept going down."""
    val = record.val_loss
    if len(val) < GAP_MIN_CHECKS or not np.isfinite(val).all():
        return None
    best = int(np.argmin(val))
    checks_after = len(val) - 1 - best
    rise = float(val[-1] / max(val[best], 1e-12) - 1)
    if checks_after < GAP_CHECKS_AFTER_BEST or rise < GAP_RISE:
        return None
    span = int(np.median(np.diff(record.val_steps))) if len(val) > 1 else 50
    train_at_best = _train_loss_before(record, int(record.val_steps[best]), span)
    train_now = _train_loss_before(record, int(record.val_steps[-1]), span)
    if not train_now < TRAIN_STILL_FALLING * train_at_best:
        return None
    best_step = int(record.val_steps[best])
    remedies = [R.add_weight_decay(ctx)]
    if ctx.is_adam:
        remedies.append(R.switch_to_sgd(ctx))
    remedies.append(R.early_stop(best_step))
    return Finding(
        FindingCode.GENERALIZATION_GAP, Severity.WARNING, best_step,
        f"validation loss rose {rise:.0%} from its best ({fmt(float(val[best]))} at step {best_step}) to "
        f"{fmt(float(val[-1]))} while the training loss fell from {fmt(train_at_best)} to {fmt(train_now)}: "
        "the model is overfitting",
        {"best_val_loss": float(val[best]), "best_step": best_step, "val_loss": float(val[-1]),
         "train_loss": train_now, "train_loss_at_best": train_at_best}, tuple(remedies),
    )
