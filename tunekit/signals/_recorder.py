"""Per-step training signals, computed once per step on the device and read back every few steps.

The hot path (``capture_gradients`` and ``capture_loss``, once per optimizer step) issues a handful of
fused kernels and no host sync on an accelerator: per-parameter gradient norms come from one
``torch._foreach_norm`` per device/dtype group and land in a preallocated device buffer; the loss is
added into the same buffer. Every ``flush_every`` steps the buffer is copied to the host in one
transfer and folded into bounded tables (per-layer and global norms are computed there, in numpy).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from tunekit.diagnose import RunRecord
from tunekit.diagnose._record import initial_loss_of
from tunekit.signals._buffer import BoundedTable

_FIXED_COLS = 4  # step, loss, global grad norm, lr


def layer_of(param_name: str) -> str:
    """The layer (module) a parameter belongs to: ``"net.0.weight"`` -> ``"net.0"``; ``"root"`` for the
    parameters of the top module itself."""
    return param_name.rsplit(".", 1)[0] if "." in param_name else "root"


def layer_membership(names: list[str], dims: list[int], layers: list[str]) -> np.ndarray:
    """A (parameters x layers) 0/1 matrix: which parameters make up each layer's gradient norm.

    A layer's norm covers its weight matrices (parameters of two or more dimensions); biases and gains
    join only in layers that have nothing else (LayerNorm, BatchNorm). A bias gradient measures the
    output error directly, so it stays large at a saddle and would hide a stalled weight.
    """
    col = {name: i for i, name in enumerate(layers)}
    has_weight = {layer_of(n) for n, d in zip(names, dims, strict=True) if d >= 2}
    member = np.zeros((len(names), len(layers)))
    for i, (n, d) in enumerate(zip(names, dims, strict=True)):
        if d >= 2 or layer_of(n) not in has_weight:
            member[i, col[layer_of(n)]] = 1.0
    return member


class SignalRecorder:
    """Records loss, gradient norms (global and per layer), LR and update/weight ratio of a run.

    Args:
        flush_every: optimizer steps between read-backs of the device buffer.
        update_ratio_every: steps between samples of the update-to-weight ratio (each sample holds a
            copy of the weights for one step); 0 turns it off.
        capacity: rows kept per table; older rows are thinned beyond it (see ``BoundedTable``).
    """

    def __init__(self, flush_every: int = 32, update_ratio_every: int = 100, capacity: int = 4096) -> None:
        if flush_every < 1:
            raise ValueError(f"flush_every must be >= 1, but got {flush_every=}.")
        if update_ratio_every < 0:
            raise ValueError(f"update_ratio_every must be >= 0 (0 turns it off), but got {update_ratio_every=}.")
        self.flush_every = flush_every
        self.update_ratio_every = update_ratio_every
        self.capacity = capacity
        self.layer_names: tuple[str, ...] = ()
        self.table: BoundedTable | None = None  # step, loss, grad_norm, lr, per-layer norms
        self.updates = BoundedTable(2, capacity)  # step, update/weight ratio
        self.val = BoundedTable(2, capacity)  # step, val loss
        self.lrs: BoundedTable | None = None  # step, LR of each param group
        self.first_nonfinite_step: int | None = None
        self.initial_loss: float | None = None
        self.total_steps: int | None = None
        self.grad_scaler = False
        self.check_loss_every_step = True
        self._bound = False
        self._module: weakref.ref[torch.nn.Module] | None = None
        self.flushes = 0  # read-backs that brought new rows (monitors log after each)
        self.enabled = True  # False pauses recording (e.g. for a phase of training not worth watching)
        self._cached: tuple[tuple[int, int, int | None], RunRecord] | None = None
        self._reset_step_state()

    def _reset_step_state(self) -> None:
        self._slot = 0
        self._grad_step = -1  # global step whose gradients are in the open slot
        self._slot_open = False
        self._open_parts = 0  # micro-batch losses of the open slot (the last ones in self._losses)
        self._losses: list[torch.Tensor] = []  # detached micro-batch losses not yet read back ...
        self._loss_slots: list[int] = []  # ... and the slot (optimizer step) each belongs to
        self._steps: list[int] = []
        self._lrs: list[list[float]] = []  # every param group's LR, per open/closed step
        self._before: list[torch.Tensor] | None = None
        self._update_rows: list[torch.Tensor] = []
        self._update_steps: list[int] = []

    # ------------------------------------------------------------------ binding
    def bind(self, module: torch.nn.Module, *, total_steps: int | None, grad_scaler: bool, world_size: int) -> None:
        """Prepare the device buffers for ``module``'s trainable parameters (once per fit, after device setup)."""
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        if not named:
            raise ValueError("The model has no trainable parameters: there are no gradients to monitor.")
        self._params = [p for _, p in named]
        self._bad_dev: torch.Tensor | None = None
        self._bad_host = torch.full((), -1, dtype=torch.long)
        layers = list(dict.fromkeys(layer_of(n) for n, _ in named))
        if self.table is not None and tuple(layers) != self.layer_names:
            raise ValueError("The model's layers differ from the ones recorded in the restored state: "
                             "resume with the same model.")
        self.layer_names = tuple(layers)
        self._membership = layer_membership([n for n, _ in named], [p.dim() for _, p in named], layers)
        if self.table is None:
            self.table = BoundedTable(_FIXED_COLS + len(layers), self.capacity)
        groups: dict[tuple[torch.device, torch.dtype], list[int]] = {}
        for i, p in enumerate(self._params):
            groups.setdefault((p.device, p.dtype), []).append(i)
        self._groups = list(groups.values())
        self._device = self._params[0].device
        self._cpu = self._device.type == "cpu"
        # one row per optimizer step on the device: the norm of each parameter's gradient
        self._dev = torch.zeros(self.flush_every, len(self._params), device=self._device)
        self._rows = list(self._dev.unbind(0))  # views made once, not indexed per step
        self._single_group = len(self._groups) == 1
        self._order = torch.tensor([i for g in self._groups for i in g], device=self._device)
        self.total_steps = total_steps
        self.grad_scaler = grad_scaler
        # In DDP the gradients are all-reduced, so a decision on them is the same on every rank; the
        # loss is per rank, so it joins the decision only at the (reduced) periodic checks.
        self.check_loss_every_step = world_size == 1
        self._reset_step_state()
        self._cached = None
        self._bound = True
        self._module = weakref.ref(module)

    def is_bound_to(self, module: torch.nn.Module) -> bool:
        return self._bound and self._module is not None and self._module() is module

    # ------------------------------------------------------------------ hot path
    def capture_gradients(self, global_step: int, lrs: list[float]) -> None:
        """Norms of the current gradients into the open slot (called before the optimizer step), with the LR
        of each param group."""
        if global_step == self._grad_step or not (self._bound and self.enabled):
            return
        self._grad_step = global_step
        if self._slot_open:  # the previous step never closed (recording was paused then): drop it
            self._steps.pop()
            self._lrs.pop()
        grads = [p.grad for p in self._params]
        row = self._rows[self._slot]
        with torch.no_grad():
            if self._single_group and not any(g is None for g in grads):
                torch.stack(torch._foreach_norm(grads, 2, dtype=torch.float32), out=row)  # type: ignore[arg-type]
            else:
                norms: list[torch.Tensor] = []
                for group in self._groups:
                    present = [grads[i] if grads[i] is not None else self._params[i].new_zeros(()) for i in group]
                    found = torch._foreach_norm(present, 2, dtype=torch.float32)  # type: ignore[arg-type]
                    norms.extend(n.to(self._device) for n in found)
                row.index_copy_(0, self._order, torch.stack(norms))
            if self.update_ratio_every and global_step % self.update_ratio_every == 0:
                weights = [p.detach() for p in self._params]
                self._before = list(torch._foreach_mul(weights, 1.0))  # one copy, released after the step
                self._before_norm = torch.stack(torch._foreach_norm(weights, 2, dtype=torch.float32))
        self._steps.append(global_step)
        self._lrs.append(lrs)
        self._slot_open = True

    def capture_loss(self, loss: Any, global_step: int) -> bool:
        """Keep a micro-batch's loss (once per batch); close the slot when the optimizer stepped.
        Returns True on a new non-finite step."""
        if not (self._bound and self.enabled):
            return False
        if isinstance(loss, dict):
            loss = loss.get("loss")
        if isinstance(loss, torch.Tensor):
            self._losses.append(loss.detach() if loss.requires_grad else loss)  # Lightning's is detached already
            self._loss_slots.append(self._slot)
            self._open_parts += 1
        if not self._slot_open or global_step <= self._grad_step:  # still accumulating this step
            return False
        return self._close_slot()

    def _close_slot(self) -> bool:
        if self._before is not None:
            self._sample_update()
        new_bad = False
        if self.first_nonfinite_step is None:
            bad_step = self._nonfinite_watch()
            if bad_step is not None:
                self.first_nonfinite_step = bad_step
                new_bad = True
        self._slot_open = False
        self._open_parts = 0
        self._slot += 1
        if self._slot == self.flush_every:
            self.flush()
        return new_bad

    def _sample_update(self) -> None:
        before = self._before or []
        with torch.no_grad():
            torch._foreach_sub_(before, [p.detach() for p in self._params])  # in place: before - after
            diff = torch.stack(torch._foreach_norm(before, 2, dtype=torch.float32))
            self._update_rows.append(torch.stack([diff.to(self._device).square().sum(),
                                                  self._before_norm.to(self._device).square().sum()]))
        self._update_steps.append(self._grad_step)
        self._before = None

    def _slot_loss(self) -> torch.Tensor | None:
        """The open slot's loss: the sum of its micro-batch losses (already divided by the accumulation)."""
        n = self._open_parts
        if n == 0:
            return None
        return self._losses[-1] if n == 1 else torch.stack(self._losses[-n:]).sum()

    def _nonfinite_watch(self) -> int | None:
        """A step whose loss (or, where said, gradient norm) is non-finite, without a blocking sync on an
        accelerator; the exact first bad step, loss or gradient, is settled from the read-back.

        What is watched each step: the loss. A non-finite gradient with a finite loss corrupts the weights,
        so the next loss shows it. Under DDP the gradient norms instead: they are all-reduced, so every
        rank sees the same and stops at the same step (the per-rank loss joins at the reduced periodic
        checks). On a CPU the value is read at once (nothing to wait for). On an accelerator the device
        keeps the first bad step in a tensor copied to pinned host memory without blocking; the host reads
        the copy that has landed, so a NaN is seen one or two steps after it happens.
        """
        watched = self._slot_loss() if self.check_loss_every_step or self.grad_scaler else None
        if watched is None:
            watched = self._rows[self._slot].sum()
        if self._cpu:
            return None if math.isfinite(float(watched)) else self._grad_step
        if self._bad_dev is None:
            self._bad_dev = torch.full((), -1, dtype=torch.long, device=self._device)
            self._bad_host = torch.full((), -1, dtype=torch.long).pin_memory()
        bad_now = ~torch.isfinite(watched.to(self._device)) & (self._bad_dev < 0)
        self._bad_dev.masked_fill_(bad_now, self._grad_step)
        seen = int(self._bad_host)  # what an earlier step's copy left there
        self._bad_host.copy_(self._bad_dev, non_blocking=True)
        return seen if seen >= 0 else None

    # ------------------------------------------------------------------ host side
    def flush(self) -> None:
        """Copy the closed slots to the host and fold them into the tables (one transfer)."""
        if not self._bound or self.table is None:
            return
        n = self._slot
        if n:
            norms = self._dev[:n].detach().cpu().double().numpy()
            loss = np.zeros(n)
            closed = [i for i, s in enumerate(self._loss_slots) if s < n]
            has_loss = np.zeros(n, dtype=bool)
            if closed:
                values = torch.stack([self._losses[i] for i in closed]).detach().double().cpu().numpy()
                slots = [self._loss_slots[i] for i in closed]
                np.add.at(loss, slots, values.reshape(len(closed)))
                has_loss[slots] = True
            loss[~has_loss] = np.nan  # a step whose training_step returned no loss
            sq = np.square(norms)
            layer = np.sqrt(sq @ self._membership)
            total = np.sqrt(sq.sum(axis=1))
            lrs = self._group_lrs(self._lrs[:n])
            rows = np.column_stack([np.asarray(self._steps[:n], float), loss, total, lrs[:, 0], layer])
            self.table.append(rows)
            self.lrs.append(np.column_stack([rows[:, 0], lrs]))  # type: ignore[union-attr]
            self.flushes += 1
            self._note_initial_loss(loss)
            bad = has_loss & ~np.isfinite(loss)
            if not self.grad_scaler:
                bad |= ~np.isfinite(total)
            if bad.any():  # the exact first bad step: the live watch may have seen it a step late
                first = int(self._steps[int(np.argmax(bad))])
                self.first_nonfinite_step = min(first, self.first_nonfinite_step or first)
        if self._update_rows:
            sums = torch.stack(self._update_rows).cpu().double().numpy()
            ratio = np.sqrt(sums[:, 0]) / np.maximum(np.sqrt(sums[:, 1]), 1e-12)
            self.updates.append(np.column_stack([np.asarray(self._update_steps, float), ratio]))
        if n < self.flush_every:  # keep the open slot (a step whose loss is still accumulating)
            self._dev[0].copy_(self._dev[n])
        open_parts = [(t, 0) for t, s in zip(self._losses, self._loss_slots, strict=True) if s >= n]
        self._losses = [t for t, _ in open_parts]
        self._loss_slots = [s for _, s in open_parts]
        self._slot = 0
        self._steps, self._lrs = self._steps[n:], self._lrs[n:]
        self._update_rows, self._update_steps = [], []

    def _group_lrs(self, lrs: list[list[float]]) -> np.ndarray:
        """Rows of per-group LRs, padded/cut to the groups seen at the first step (param groups rarely change)."""
        if self.lrs is None:
            self.lrs = BoundedTable(1 + max(1, len(lrs[0])), self.capacity)
        width = self.lrs.n_cols - 1
        return np.asarray([(row + [row[-1]] * width)[:width] for row in lrs], dtype=float)

    def _note_initial_loss(self, loss: np.ndarray) -> None:
        if self.initial_loss is None:
            self.initial_loss = initial_loss_of(loss)

    def add_validation(self, step: int, value: float) -> None:
        self.val.append(np.array([[float(step), float(value)]]))

    def record(self, flush: bool = True) -> RunRecord:
        """The recorded series so far; ``flush`` reads back the steps still on the device first."""
        if flush:
            self.flush()
        if self._cached is not None and self._cached[0] == (self.flushes, len(self.val), self.first_nonfinite_step):
            return self._cached[1]
        data = self.table.data if self.table is not None else np.zeros((0, _FIXED_COLS))
        record = RunRecord(
            steps=data[:, 0].astype(int), loss=data[:, 1].copy(), grad_norm=data[:, 2].copy(), lr=data[:, 3].copy(),
            layer_names=self.layer_names, layer_grad_norms=data[:, _FIXED_COLS:].copy(),
            update_steps=self.updates.data[:, 0].astype(int), update_ratio=self.updates.data[:, 1].copy(),
            val_steps=self.val.data[:, 0].astype(int), val_loss=self.val.data[:, 1].copy(),
            group_lrs=self.lrs.data[:, 1:].copy() if self.lrs is not None else np.zeros((0, 0)),
            first_nonfinite_step=self.first_nonfinite_step, initial_loss=self.initial_loss,
            total_steps=self.total_steps, grad_scaler=self.grad_scaler,
        )
        # Every monitor asks after each read-back; they share one copy until new rows arrive.
        self._cached = ((self.flushes, len(self.val), self.first_nonfinite_step), record)
        return record

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict[str, Any]:
        self.flush()
        return {
            "layer_names": list(self.layer_names),
            "table": torch.from_numpy(self.table.state()) if self.table is not None else None,
            "updates": torch.from_numpy(self.updates.state()),
            "val": torch.from_numpy(self.val.state()),
            "lrs": torch.from_numpy(self.lrs.state()) if self.lrs is not None else None,
            "first_nonfinite_step": self.first_nonfinite_step,
            "initial_loss": self.initial_loss,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._cached = None
        self.layer_names = tuple(state.get("layer_names", ()))
        table = state.get("table")
        if table is not None:
            self.table = BoundedTable(table.shape[1], self.capacity)
            self.table.load(table.numpy())
        self.updates.load(state["updates"].numpy()) if "updates" in state else None
        self.val.load(state["val"].numpy()) if "val" in state else None
        lrs = state.get("lrs")
        if lrs is not None:
            self.lrs = BoundedTable(lrs.shape[1], self.capacity)
            self.lrs.load(lrs.numpy())
        self.first_nonfinite_step = state.get("first_nonfinite_step")
        self.initial_loss = state.get("initial_loss")
