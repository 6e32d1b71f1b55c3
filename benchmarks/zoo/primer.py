"""The baseline tunekit must beat: the loss-pattern table of "ML Optimization; A Primer" applied literally to the
loss curves.

The table (that primer's, an SGD-to-AdamW overview): a loss that explodes -> lower the LR (and clip); a loss that
does not decrease -> raise the LR; a loss that oscillates -> lower the LR (and add momentum); a loss that plateaus -> a
schedule; a validation loss that turns up -> stop at its best. Applied here to what a loss curve alone shows (the
training loss and the validation checks), with the same kinds of thresholds as tunekit's rules, and a fixed
10x/3x for the LR changes (the table gives no size). It returns the finding code tunekit would use for the same
pattern, so both are scored by the zoo's ``CAUSES`` in one way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tunekit.diagnose import Finding, FindingCode, Remedy, RemedyCode, Severity
from tunekit.record import RunRecord

EXPLODED = 1.5  # the recent loss over the start: exploded (or any non-finite loss)
FLAT = 0.8  # the recent loss still above 80% of its start: not decreasing
SWINGS = 0.5  # the last quarter's loss interquartile range over its median: oscillating
PLATEAU_CHANGE = 0.02  # the last quarter's halves within 2% of each other after progress: a plateau
VAL_ROSE = 1.1  # the last validation check 10% above the best: stop at the best


def _finding(code: FindingCode, remedy: Remedy) -> Finding:
    return Finding(code, Severity.WARNING, 0, "the primer's table", {}, (remedy,))


def primer(result: dict[str, Any]) -> Finding | None:
    """The primer table's verdict on a zoo run (None: nothing wrong), with its one remedy."""
    record = RunRecord.from_dict(result["record"])
    lr = float(result["context"]["lr"])
    loss = record.loss
    start = record.initial_loss or float("nan")
    if not len(loss) or not np.isfinite(start):
        return None
    n = max(5, len(loss) // 4)
    recent = loss[-n:]
    level = float(np.nanmedian(recent)) if np.isfinite(recent).any() else float("inf")
    if record.first_nonfinite_step is not None or level > EXPLODED * start:
        return _finding(FindingCode.DIVERGENCE, Remedy(RemedyCode.LOWER_LR, {"lr": lr / 10}, "explodes"))
    q1, q3 = np.nanpercentile(recent, [25, 75])
    if (q3 - q1) / max(level, 1e-12) > SWINGS:
        return _finding(FindingCode.OSCILLATION, Remedy(RemedyCode.LOWER_LR, {"lr": lr / 3}, "oscillates"))
    if level > FLAT * start:
        return _finding(FindingCode.SLOW_CONVERGENCE, Remedy(RemedyCode.RAISE_LR, {"lr": lr * 10}, "flat"))
    val = record.val_loss[np.isfinite(record.val_loss)]
    if len(val) >= 3 and val[-1] > VAL_ROSE * val.min():
        best = int(record.val_steps[int(np.argmin(record.val_loss))])
        return _finding(FindingCode.GENERALIZATION_GAP, Remedy(RemedyCode.EARLY_STOP, {"max_steps": best}, "stop"))
    half = len(recent) // 2
    if abs(float(np.nanmedian(recent[half:])) / max(float(np.nanmedian(recent[:half])), 1e-12) - 1) < PLATEAU_CHANGE:
        return _finding(FindingCode.PLATEAU, Remedy(RemedyCode.DECAY_LR, {"schedule": "cosine"}, "plateaus"))
    return None
