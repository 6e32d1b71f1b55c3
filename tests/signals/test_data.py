"""``nonfinite_cells`` and ``RecentBatches``: where a batch holds NaN/inf, checked against numpy."""

from __future__ import annotations

import numpy as np
import torch

from tunekit.signals._data import MAX_LISTED, RecentBatches, nonfinite_cells


def test_nonfinite_cells_match_numpy_on_a_table_with_nan_and_inf():
    x = torch.randn(16, 6)
    x[3, 2], x[9, 2], x[9, 5] = float("nan"), float("inf"), float("-inf")
    cells = nonfinite_cells({"x": x, "y": torch.arange(16), "w": torch.ones(16)})
    bad = ~np.isfinite(x.numpy())
    assert cells == [{"tensor": "batch['x']", "shape": [16, 6], "values": int(bad.sum()),
                      "rows": np.flatnonzero(bad.any(1)).tolist(), "row_count": 2,
                      "columns": np.flatnonzero(bad.any(0)).tolist(), "column_count": 2}]


def test_nonfinite_cells_lists_at_most_max_listed_samples_and_counts_all():
    images = torch.zeros(40, 3, 4, 4)
    images[::2, 1, 0, 0] = float("nan")  # 20 samples
    (cell,) = nonfinite_cells([images, torch.zeros(40)])
    assert cell["tensor"] == "batch[0]" and cell["values"] == 20 and cell["row_count"] == 20
    assert cell["rows"] == list(range(0, 2 * MAX_LISTED, 2)) and "columns" not in cell


def test_recent_batches_finds_the_step_and_forgets_old_ones():
    held = RecentBatches(accumulate=2)
    clean, dirty = torch.zeros(4, 2), torch.zeros(4, 2)
    dirty[1, 0] = float("nan")
    for step in range(5):  # two micro-batches a step; the dirty one is step 4's second
        held.hold(step, 2 * step, clean)
        held.hold(step, 2 * step + 1, dirty if step == 4 else clean)
    assert held.inspect(4)["batches"][0]["batch_idx"] == 9
    assert held.inspect(3) == {"step": 3, "batches": []}
    assert held.inspect(1) is None  # older than HELD_STEPS steps: no longer held
