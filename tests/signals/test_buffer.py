import numpy as np
import pytest

from tunekit.signals import BoundedTable


def test_memory_stays_bounded_and_recent_rows_stay_exact():
    t = BoundedTable(n_cols=2, capacity=64)
    for start in range(0, 100_000, 7):
        rows = np.arange(start, start + 7, dtype=float)
        t.append(np.column_stack([rows, rows * 2]))
    assert len(t) <= 64
    steps = t.data[:, 0]
    assert steps[0] == 0  # the start of the run is kept
    assert np.all(np.diff(steps) > 0)  # still in order
    assert np.array_equal(steps[-32:], np.arange(100_002 - 32, 100_002))  # newest half at full resolution


def test_state_round_trip():
    t = BoundedTable(1, capacity=16)
    t.append(np.arange(10.0)[:, None])
    u = BoundedTable(1, capacity=16)
    u.load(t.state())
    assert np.array_equal(u.data, t.data)


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="capacity must be >= 4"):
        BoundedTable(1, capacity=2)
    with pytest.raises(ValueError, match="rows must have 2 columns"):
        BoundedTable(2).append(np.zeros((3, 1)))
