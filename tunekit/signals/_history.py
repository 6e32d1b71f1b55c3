"""The host side of the signals: bounded tables of every read-back step, the validation losses, and the
``RunRecord`` the rules read; what a checkpoint saves of a run's signals."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from tunekit.record import INITIAL_STEPS, RunRecord, initial_loss_of
from tunekit.signals._buffer import BoundedTable
from tunekit.signals._steps import StepRows

FIXED_COLS = 4  # step, loss, global grad norm, lr; then one column per layer


class SignalHistory:
    """Per-step rows (loss, global and per-layer gradient norm, LR), update ratios, validation losses and
    per-group LRs, each in a ``BoundedTable`` of ``capacity`` rows."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.layer_names: tuple[str, ...] = ()
        self.table: BoundedTable | None = None  # step, loss, grad_norm, lr, per-layer norms
        self.updates = BoundedTable(2, capacity)  # step, update/weight ratio
        self.val = BoundedTable(2, capacity)  # step, validation loss
        self.lrs: BoundedTable | None = None  # step, LR of each param group
        self.first_nonfinite_step: int | None = None
        self.nonfinite_batch: dict[str, Any] | None = None
        self.initial_loss: float | None = None
        self.total_steps: int | None = None
        self.grad_scaler = False
        self._initial_rows = 0  # steps the initial loss was read from
        self.version = 0  # bumped by every change, so a record built once serves until the next
        self._cached: tuple[int, RunRecord] | None = None

    def set_layers(self, layers: tuple[str, ...]) -> None:
        if self.table is not None and layers != self.layer_names:
            raise ValueError("The model's layers differ from the ones recorded in the restored state: "
                             "resume with the same model.")
        self.layer_names = layers
        if self.table is None:
            self.table = BoundedTable(FIXED_COLS + len(layers), self.capacity)

    def add_steps(self, rows: StepRows, membership: np.ndarray) -> None:
        """Fold read-back steps in: per-layer and global norms from the per-parameter ones."""
        if not len(rows.steps):
            return
        sq = np.square(rows.param_norms.astype(np.float64))  # float32 squares overflow past 1.8e19
        with np.errstate(invalid="ignore", over="ignore"):  # a non-finite norm stays non-finite in its layer
            layer = np.sqrt(sq @ membership)
        total = np.sqrt(sq.sum(axis=1))
        lrs = self._group_lrs(rows.lrs)
        self.table.append(np.column_stack([rows.steps, rows.loss, total, lrs[:, 0], layer]))  # type: ignore[union-attr]
        self.lrs.append(np.column_stack([rows.steps, lrs]))  # type: ignore[union-attr]
        # the start is read from the first steps, whichever read-back brings them
        if self._initial_rows < INITIAL_STEPS:
            first = self.table.data[:INITIAL_STEPS, 1]  # type: ignore[union-attr]
            self.initial_loss = initial_loss_of(first)
            self._initial_rows = len(first)
        bad = rows.has_loss & ~np.isfinite(rows.loss)
        if not self.grad_scaler:  # under fp16 loss scaling an inf gradient is a skipped step, not a failure
            bad |= ~np.isfinite(total)
        if bad.any():  # the exact first bad step: the live watch may have seen it a step late
            self.note_nonfinite(int(rows.steps[int(np.argmax(bad))]))
        self.version += 1

    def add_updates(self, rows: np.ndarray) -> None:
        if len(rows):
            self.updates.append(rows)
            self.version += 1

    def add_validation(self, step: int, value: float) -> None:
        self.val.append(np.array([[float(step), float(value)]]))
        self.version += 1

    def note_nonfinite(self, step: int) -> None:
        if self.first_nonfinite_step is None or step < self.first_nonfinite_step:
            self.first_nonfinite_step = step
            self.version += 1

    def set_nonfinite_batch(self, found: dict[str, Any] | None) -> None:
        """What the batches of the first non-finite step held (see ``RecentBatches.inspect``)."""
        self.nonfinite_batch = found
        self.version += 1

    def _group_lrs(self, lrs: list[list[float]]) -> np.ndarray:
        """Rows of per-group LRs, padded/cut to the groups seen at the first step (param groups rarely change)."""
        if self.lrs is None:
            self.lrs = BoundedTable(1 + max(1, len(lrs[0])), self.capacity)
        width = self.lrs.n_cols - 1
        return np.asarray([(row + [row[-1]] * width)[:width] for row in lrs], dtype=float)

    def record(self) -> RunRecord:
        """The series recorded so far (built once per change: every monitor asks after each read-back)."""
        if self._cached is not None and self._cached[0] == self.version:
            return self._cached[1]
        data = self.table.data if self.table is not None else np.zeros((0, FIXED_COLS))
        record = RunRecord(
            steps=data[:, 0].astype(int), loss=data[:, 1].copy(), grad_norm=data[:, 2].copy(), lr=data[:, 3].copy(),
            layer_names=self.layer_names, layer_grad_norms=data[:, FIXED_COLS:].copy(),
            update_steps=self.updates.data[:, 0].astype(int), update_ratio=self.updates.data[:, 1].copy(),
            val_steps=self.val.data[:, 0].astype(int), val_loss=self.val.data[:, 1].copy(),
            group_lrs=self.lrs.data[:, 1:].copy() if self.lrs is not None else np.zeros((0, 0)),
            first_nonfinite_step=self.first_nonfinite_step, initial_loss=self.initial_loss,
            total_steps=self.total_steps, grad_scaler=self.grad_scaler, nonfinite_batch=self.nonfinite_batch,
        )
        self._cached = (self.version, record)
        return record

    def state_dict(self) -> dict[str, Any]:
        return {
            "layer_names": list(self.layer_names),
            "table": torch.from_numpy(self.table.state()) if self.table is not None else None,
            "updates": torch.from_numpy(self.updates.state()),
            "val": torch.from_numpy(self.val.state()),
            "lrs": torch.from_numpy(self.lrs.state()) if self.lrs is not None else None,
            "first_nonfinite_step": self.first_nonfinite_step,
            "nonfinite_batch": self.nonfinite_batch,
            "initial_loss": self.initial_loss,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.layer_names = tuple(state.get("layer_names", ()))
        table = state.get("table")
        if table is not None:
            self.table = BoundedTable(table.shape[1], self.capacity)
            self.table.load(table.numpy())
        if "updates" in state:
            self.updates.load(state["updates"].numpy())
        if "val" in state:
            self.val.load(state["val"].numpy())
        lrs = state.get("lrs")
        if lrs is not None:
            self.lrs = BoundedTable(lrs.shape[1], self.capacity)
            self.lrs.load(lrs.numpy())
        self.first_nonfinite_step = state.get("first_nonfinite_step")
        self.nonfinite_batch = state.get("nonfinite_batch")
        self.initial_loss = state.get("initial_loss")
        self._initial_rows = INITIAL_STEPS if self.initial_loss is not None else 0
        self.version += 1
