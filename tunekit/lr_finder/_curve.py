"""Reading an LR range-test curve (pure numpy): smoothing, where it diverges, and the classic rules.

The rules other tools use are here too so the benchmark can compare them on the same curve: Lightning's
``lr_find`` suggestion (the steepest descent of the raw loss against the LR) and fastai's "valley" rule.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

SMOOTHING = 0.98  # EMA factor of the recorded loss (Lightning's and fastai's default)
MEDIAN_WIDTH = 7  # the sweep's loss is read through a centred running median of 7 steps (an EMA lags the LR by
# decades over a 100-step sweep; the median does not)
DIVERGE_FACTOR = 4.0  # the sweep has diverged once the smoothed loss is 4x its best (Lightning's default)


def smoothed(losses: np.ndarray, beta: float = SMOOTHING) -> np.ndarray:
    """Bias-corrected exponential moving average, as Lightning and fastai record it: ``avg_i = beta avg_(i-1) +
    (1 - beta) x_i`` from ``avg_(-1) = 0`` (a first-order filter, ``scipy.signal.lfilter``), over ``1 - beta^(i+1)``.

    Example:
        >>> smoothed(np.array([1.0, 3.0]), beta=0.5).tolist()
        [1.0, 2.3333333333333335]
    """
    x = np.asarray(losses, dtype=float)
    return lfilter([1 - beta], [1, -beta], x) / (1 - beta ** np.arange(1, len(x) + 1))


def divergence_index(smooth: np.ndarray, factor: float = DIVERGE_FACTOR) -> int | None:
    """First index where the smoothed loss is non-finite or ``factor`` times its running best."""
    best = np.inf
    for i, x in enumerate(smooth):
        if not np.isfinite(x) or (i > 0 and x > factor * best):
            return i
        best = min(best, x)
    return None


def lightning_suggestion(lrs: np.ndarray, losses: np.ndarray, skip_begin: int = 10, skip_end: int = 1) -> float | None:
    """Lightning's ``_LRFinder.suggestion``: the LR of the steepest negative gradient d(loss)/d(lr)."""
    lrs, losses = lrs[skip_begin:-skip_end], losses[skip_begin:-skip_end]
    keep = np.isfinite(losses)
    lrs, losses = lrs[keep], losses[keep]
    if len(losses) < 2:
        return None
    return float(lrs[int(np.argmin(np.gradient(losses, lrs)))])


def valley_suggestion(lrs: np.ndarray, losses: np.ndarray) -> float | None:
    """fastai's ``valley``: the longest stretch of falling loss, 1/3 + 1/6 of the way down it.

    fastai applies it to the smoothed losses with the first 10% and the last 5 points cut off.
    """
    n_all = len(losses)
    lrs, losses = lrs[n_all // 10 : n_all - 5], losses[n_all // 10 : n_all - 5]
    n = len(losses)
    if n < 2:
        return None
    lds = [1] * n
    max_start = max_end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    return float(lrs[max_start + int(sections) + int(sections / 2)])
