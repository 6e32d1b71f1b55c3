"""What was in the batch when the loss went non-finite: the recent batches held by reference, and where in them
the NaN/inf values are.

Nothing is computed on the hot path: each training batch is kept by reference (no copy) in a short ring, and only
when a step turns non-finite are that step's batches searched (a device sync then is fine: the run is broken).
The cost while the run is healthy is a deque append per batch and the memory of the last few batches.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch

# Where each constant comes from: "(hand)" set by hand and not searched; otherwise the source is named.
HELD_STEPS = 3  # (hand) optimizer steps of batches kept: the non-finite watch of an accelerator reports a step 1-2 late
MAX_LISTED = 10  # rows or columns named in a report; the count says how many there were


def _tensors(batch: Any, path: str = "batch") -> Iterator[tuple[str, torch.Tensor]]:
    """Every floating-point tensor in a batch (a tensor, or nested tuples, lists and mappings), with its path."""
    if isinstance(batch, torch.Tensor):
        if batch.is_floating_point() or batch.is_complex():
            yield path, batch
    elif isinstance(batch, Mapping):
        for key, value in batch.items():
            yield from _tensors(value, f"{path}[{key!r}]")
    elif isinstance(batch, Sequence) and not isinstance(batch, (str, bytes)):
        for i, value in enumerate(batch):
            yield from _tensors(value, f"{path}[{i}]")


def _listed(indices: torch.Tensor) -> list[int]:
    return [int(i) for i in indices[:MAX_LISTED].tolist()]


def nonfinite_cells(batch: Any) -> list[dict[str, Any]]:
    """Where a batch holds NaN/inf: one entry per tensor that has any, with its path in the batch, its shape, the
    number of bad values, the samples (indices along dim 0, the batch dimension) and, for a table (2-D), the
    columns holding them (at most ``MAX_LISTED`` of each, with their counts).

    Example:
        >>> x = torch.zeros(4, 3); x[2, 1] = float("nan")
        >>> (cell,) = nonfinite_cells((x, torch.tensor([0, 1, 0, 1])))
        >>> cell["tensor"], cell["values"], cell["rows"], cell["columns"]
        ('batch[0]', 1, [2], [1])
    """
    found = []
    for path, tensor in _tensors(batch):
        bad = ~torch.isfinite(tensor.detach())
        if not bool(bad.any()):
            continue
        entry: dict[str, Any] = {"tensor": path, "shape": list(tensor.shape), "values": int(bad.sum())}
        if tensor.dim() >= 1:
            rows = torch.nonzero(bad.reshape(tensor.shape[0], -1).any(dim=1)).flatten().cpu()
            entry.update(rows=_listed(rows), row_count=len(rows))
        if tensor.dim() == 2:
            columns = torch.nonzero(bad.any(dim=0)).flatten().cpu()
            entry.update(columns=_listed(columns), column_count=len(columns))
        found.append(entry)
    return found


class RecentBatches:
    """The training batches of the last ``HELD_STEPS`` optimizer steps, by reference, with their step and index."""

    def __init__(self, accumulate: int = 1) -> None:
        self._held: deque[tuple[int, int, Any]] = deque(maxlen=HELD_STEPS * max(1, accumulate))

    def hold(self, step: int, batch_idx: int, batch: Any) -> None:
        self._held.append((step, batch_idx, batch))

    def clear(self) -> None:
        self._held.clear()

    def inspect(self, step: int) -> dict[str, Any] | None:
        """The non-finite values in the batches of optimizer step ``step``: ``{"step", "batches": [{"batch_idx",
        "cells": [...]}]}`` when any of its batches holds some, ``{"step", "batches": []}`` when its batches were
        all finite, None when they are no longer held."""
        batches = [(idx, batch) for s, idx, batch in self._held if s == step]
        if not batches:
            return None
        faulty = [{"batch_idx": idx, "cells": cells} for idx, batch in batches if (cells := nonfinite_cells(batch))]
        return {"step": step, "batches": faulty}
