"""Small numpy helpers the rules share: windows, robust levels, trends, nice numbers."""

from __future__ import annotations

import math
import warnings

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import median_filter
from scipy.stats import iqr, median_abs_deviation, norm

TARGET_UPDATE_RATIO = 1e-3  # a healthy step moves the weights by ~1e-3 of their size (Karpathy's rule of thumb)
# The normal distribution's constants the noise estimates use, computed, not typed (one definition for every module):
IQR_PER_SIGMA = float(norm.ppf(0.75) - norm.ppf(0.25))  # its interquartile range is 1.349 standard deviations
MEDIAN_SE = math.sqrt(math.pi / 2)  # the standard error of a median of n samples is 1.2533 sigma / sqrt(n)


def recent_window(n_steps: int, fraction: float, minimum: int, maximum: int) -> int:
    """The number of most recent steps a rule looks at: a fraction of the run, clamped."""
    return int(min(n_steps, max(minimum, min(maximum, round(fraction * n_steps)))))


def median(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(np.median(x)) if len(x) else float("nan")


def robust_sigma(x: np.ndarray, center: float | np.ndarray | None = None) -> float:
    """The standard deviation of normal noise in ``x``, estimated from its median absolute deviation (1.4826 MADs,
    ``scipy.stats.median_abs_deviation(scale="normal")``), so a few spikes do not inflate it. The deviations are
    from ``x``'s median, or from ``center`` (a level, or a curve as long as ``x``: a smoothed loss). Non-finite
    values are left out; NaN when none is left.

    Example:
        >>> round(robust_sigma(np.array([1.0, 2.0, 3.0, 4.0, 100.0])), 4)
        1.4826
    """
    x = np.asarray(x, dtype=float)
    if center is not None:
        x = x - center
    x = x[np.isfinite(x)]
    if not len(x):
        return float("nan")
    return float(median_abs_deviation(x, center=None if center is None else _zero, scale="normal"))


def _zero(x: np.ndarray, axis: int | None = None) -> float:
    return 0.0  # deviations already taken from the given center


def relative_iqr(x: np.ndarray) -> float:
    """The interquartile range of ``x``'s finite values over their median (``scipy.stats.iqr``); NaN when none."""
    finite = x[np.isfinite(x)]
    if not len(finite):
        return float("nan")
    return float(iqr(finite)) / max(float(np.median(finite)), 1e-12)


def halves_change(x: np.ndarray) -> float:
    """Relative change of the median from the first half of ``x`` to the second (negative = falling)."""
    x = x[np.isfinite(x)]
    if len(x) < 4:
        return 0.0
    half = len(x) // 2
    first, second = float(np.median(x[:half])), float(np.median(x[half:]))
    return (second - first) / max(abs(first), 1e-12)


def best_block_median(x: np.ndarray, block: int) -> float:
    """The lowest median over consecutive blocks of ``block`` values (inf when there are none): the best
    level a noisy loss held for a while, not a lucky stretch of a few batches."""
    n = len(x) // block
    if n == 0:
        return float("inf")
    blocks = x[len(x) - n * block :].reshape(n, block)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmin(np.nanmedian(blocks, axis=1)))


def rolling_median(x: np.ndarray, window: int) -> np.ndarray:
    """Median of the ``window`` values *before* each index (the first entry is NaN; the first windows
    are padded with the first value)."""
    out = np.full(len(x), np.nan)
    if len(x) <= 1:
        return out
    w = window | 1  # an odd width has one middle value
    if np.isnan(x).any():
        padded = np.concatenate([np.full(w - 1, x[0]), x])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows
            out[1:] = np.nanmedian(sliding_window_view(padded, w)[: len(x) - 1], axis=1)
        return out
    out[1:] = median_filter(x, size=w, mode="nearest", origin=w // 2)[:-1]
    return out


def smooth(x: np.ndarray, window: int) -> np.ndarray:
    """Centered running median of ``x`` (robust to single-batch spikes); same length as ``x``. Near the ends the
    window shrinks to the values there are (padding with the end value would repeat one noisy batch).

    Example:
        >>> smooth(np.array([9.0, 1.0, 2.0, 1.0, 2.0, 1.0]), 3).tolist()
        [5.0, 2.0, 1.0, 2.0, 1.0, 1.5]
    """
    if len(x) == 0 or window <= 1:
        return x.astype(float)
    w = min(window, len(x)) | 1
    if not np.isnan(x).any():
        out = median_filter(x.astype(float), size=w, mode="nearest")
        half = w // 2
        for i in range(min(half, len(x))):
            out[i] = np.median(x[: i + half + 1])
            out[len(x) - 1 - i] = np.median(x[len(x) - 1 - i - half :])
        return out
    left = w // 2
    padded = np.concatenate([np.full(left, np.nan), x, np.full(w - 1 - left, np.nan)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(sliding_window_view(padded, w), axis=1)


def nice(value: float, digits: int = 2) -> float:
    """``value`` rounded to ``digits`` significant digits, so a remedy says 0.0003, not 0.000299847."""
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.{digits}g}")


def fmt(value: float) -> str:
    """A number as a person would write it in a message."""
    if not math.isfinite(value):
        return str(value)
    return f"{value:.3g}"
