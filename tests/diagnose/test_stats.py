"""The noise estimates the rules share, against the hand formulas they replaced (numpy on a fixed input)."""

import math

import numpy as np
import pytest

from tunekit.diagnose._stats import IQR_PER_SIGMA, MEDIAN_SE, relative_iqr, robust_sigma

X = np.array([3.1, 2.9, 3.4, 2.2, 9.0, 3.0, np.nan, 2.8, np.inf, 3.3])


def test_robust_sigma_is_the_normal_scaled_mad():
    finite = X[np.isfinite(X)]
    assert robust_sigma(X) == pytest.approx(1.482602218 * np.median(np.abs(finite - np.median(finite))), rel=1e-9)
    curve = np.linspace(2.0, 4.0, len(X))
    keep = np.isfinite(X - curve)
    assert robust_sigma(X, center=curve) == pytest.approx(1.482602218 * np.median(np.abs((X - curve)[keep])), rel=1e-9)
    assert robust_sigma(X, center=3.0) == pytest.approx(1.482602218 * np.median(np.abs(finite - 3.0)), rel=1e-9)
    assert math.isnan(robust_sigma(np.array([np.nan])))


def test_relative_iqr_is_numpys_quartiles_over_the_median():
    finite = X[np.isfinite(X)]
    q1, mid, q3 = np.percentile(finite, [25, 50, 75])
    assert relative_iqr(X) == pytest.approx((q3 - q1) / mid, rel=1e-12)
    assert math.isnan(relative_iqr(np.array([np.inf])))


def test_normal_constants():
    rng = np.random.default_rng(0)
    draws = rng.normal(0.0, 1.0, 200_000)
    q1, q3 = np.percentile(draws, [25, 75])
    assert pytest.approx(q3 - q1, rel=1e-2) == IQR_PER_SIGMA and pytest.approx(1.3490, abs=1e-4) == IQR_PER_SIGMA
    medians = np.median(rng.normal(0.0, 1.0, (4000, 101)), axis=1)
    assert pytest.approx(np.std(medians) * math.sqrt(101), rel=0.05) == MEDIAN_SE
