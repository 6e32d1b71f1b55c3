"""The curve rules against the implementations they re-state."""

import numpy as np
import pytest
from lightning.pytorch.tuner.lr_finder import _LRFinder

from tunekit.lr_finder import lightning_suggestion, smoothed, valley_suggestion
from tunekit.lr_finder._curve import divergence_index


def _curve(n=100, seed=0):
    rng = np.random.default_rng(seed)
    lrs = np.logspace(-7, 1, n)
    x = np.log10(lrs)
    loss = 2.3 - 1.8 / (1 + np.exp(-(x + 3) * 2)) + np.where(x > -0.5, (x + 0.5) ** 2 * 6, 0)
    return lrs, loss + rng.normal(0, 0.02, n)


@pytest.mark.parametrize("seed", range(3))
def test_lightning_rule_matches_lightnings_own_suggestion(seed):
    lrs, loss = _curve(seed=seed)
    finder = _LRFinder(mode="exponential", lr_min=1e-7, lr_max=10, num_training=100)
    finder.results = {"lr": lrs.tolist(), "loss": loss.tolist()}
    assert lightning_suggestion(lrs, loss) == pytest.approx(finder.suggestion())


def test_valley_rule_takes_the_longest_fall():
    lrs = np.logspace(-6, 0, 60)
    loss = np.concatenate([np.full(20, 2.3), np.linspace(2.3, 0.5, 30), np.linspace(0.6, 3.0, 10)])
    # fastai trims the first 10% and the last 5 points: indices 6..54. The longest strictly falling run is the last
    # flat 2.3 (index 19) then the 29 falling points (indices 21..49; index 20 is 2.3 again): 30 long, ending at
    # trimmed index 43, so it starts at 43 - 30 = 13; the pick is 13 + int(30 / 3) + int(10 / 2) = 28 of the
    # trimmed curve, index 6 + 28 = 34 of the sweep.
    assert valley_suggestion(lrs, loss) == lrs[34]


def test_smoothing_and_divergence_match_the_lightning_recording():
    loss = np.array([2.0, 1.9, 1.8, 1.7, 9.0, 50.0, 400.0])
    expected, avg = [], 0.0
    for i, x in enumerate(loss):
        avg = 0.98 * avg + 0.02 * x
        expected.append(avg / (1 - 0.98 ** (i + 1)))
    np.testing.assert_allclose(smoothed(loss), expected)
    assert divergence_index(smoothed(loss)) == 5
    assert divergence_index(np.array([1.0, 0.9, np.nan])) == 2
    assert divergence_index(np.array([1.0, 0.9, 0.8])) is None
