"""A fixed-capacity table of rows that thins its older half as it fills, so memory stays bounded."""

from __future__ import annotations

import numpy as np


class BoundedTable:
    """Rows of floats, at most ``capacity`` of them however many are appended.

    The newest ``capacity // 2`` rows are kept at full resolution (the rules look at recent windows);
    when the table is full, every other row of the older part is dropped, so old history grows sparser
    the older it is but always spans the whole run.

    Example:
        >>> t = BoundedTable(n_cols=1, capacity=8)
        >>> for i in range(20):
        ...     t.append(np.array([[i]]))
        >>> len(t) <= 8, t.data[-4:, 0].tolist(), float(t.data[0, 0])
        (True, [16.0, 17.0, 18.0, 19.0], 0.0)
    """

    def __init__(self, n_cols: int, capacity: int = 4096) -> None:
        if capacity < 4:
            raise ValueError(f"capacity must be >= 4, but got {capacity=}.")
        self.capacity = capacity
        self._buf = np.empty((capacity, n_cols))
        self._n = 0

    @property
    def n_cols(self) -> int:
        return self._buf.shape[1]

    def __len__(self) -> int:
        return self._n

    @property
    def data(self) -> np.ndarray:
        """A read-only view of the rows held now, oldest first."""
        view = self._buf[: self._n]
        view.flags.writeable = False
        return view

    def append(self, rows: np.ndarray) -> None:
        rows = np.atleast_2d(rows)
        if rows.shape[1] != self.n_cols:
            raise ValueError(f"rows must have {self.n_cols} columns, but got {rows.shape[1]}.")
        step = self.capacity // 4  # one thinning (to <= 3/4 full) always makes room for this many
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            if self._n + len(chunk) > self.capacity:
                self._thin()
            self._buf[self._n : self._n + len(chunk)] = chunk
            self._n += len(chunk)

    def _thin(self) -> None:
        keep = self.capacity // 2
        old_end = max(0, self._n - keep)
        thinned = self._buf[:old_end:2].copy()
        recent = self._buf[old_end : self._n].copy()
        self._buf[: len(thinned)] = thinned
        self._buf[len(thinned) : len(thinned) + len(recent)] = recent
        self._n = len(thinned) + len(recent)

    def state(self) -> np.ndarray:
        return self._buf[: self._n].copy()

    def load(self, rows: np.ndarray) -> None:
        self._n = 0
        if len(rows):
            self.append(np.asarray(rows, dtype=float))
