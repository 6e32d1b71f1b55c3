"""Labels from outcomes: a run's label is its injected cause, confirmed by its control; the rest are dropped.

* healthy: it learned (final validation loss under ``LEARNED`` of the initial loss) and did not give much of that
  back at the end (the final validation loss gave back under ``GAVE_BACK`` of the progress to its best);
* a cause: its control trained well (as above) and the run is clearly worse than the control (``WORSE`` x its
  validation loss, or non-finite); for ``overfit`` the run's own validation loss also turned up (``ROSE`` x its
  best). A run the cause did no harm (within ``HARMLESS`` of its control) is healthy; one in between is dropped.
"""

from __future__ import annotations

import math
from typing import Any

LEARNED = 0.9  # a run learned when its final validation loss is under 90% of the initial training loss
GAVE_BACK = 0.15  # ... and not given back over 15% of the way from the initial loss to its best validation loss
WORSE = 1.1  # a broken run ends at least 10% worse than its control
HARMLESS = 1.03  # within 3% of its control, the injected cause did no harm: a healthy run
ROSE = 1.1  # an overfitting run's validation loss ends 10% above its best


def trained_well(result: dict[str, Any]) -> bool:
    val, best, initial = result["val"], result["best_val"], result["initial_loss"]
    if not (math.isfinite(val) and initial):
        return False
    return val < LEARNED * initial and (val - best) <= GAVE_BACK * (initial - best)


def label(run: dict[str, Any], control: dict[str, Any] | None) -> tuple[str | None, str]:
    """The run's label (a cause, "healthy", or None to drop it) and why."""
    cause = run["spec"]["cause"]
    if cause == "healthy":
        if not trained_well(run):
            return None, "a healthy recipe that did not train well"
        if run["val"] >= ROSE * run["best_val"]:
            return None, "a healthy recipe that overfits on its own"
        return "healthy", "trained well"
    if control is None or not trained_well(control):
        return None, "its control did not train well either"
    val, ref = run["val"], control["val"]
    if math.isfinite(val) and val <= HARMLESS * ref:
        return ("healthy", f"the cause did no harm ({val:.4g} vs its control's {ref:.4g})") if trained_well(run) \
            else (None, "no worse than its control, but did not train well")
    if math.isfinite(val) and val < WORSE * ref:
        return None, f"only a little worse than its control ({val:.4g} vs {ref:.4g})"
    if cause == "overfit" and not (math.isfinite(val) and val >= ROSE * run["best_val"]):
        return None, "worse than its control, but its validation loss did not turn up"
    return cause, f"{val:.4g} vs its control's {ref:.4g}"
