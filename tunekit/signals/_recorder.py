"""``SignalRecorder``: per-step training signals of one fit, computed on the device and read back every few steps.

The hot path (``capture_gradients`` and ``capture_loss``, once per optimizer step) issues a handful of fused
kernels and no host sync on an accelerator (``StepBuffer``, ``NonFiniteWatch``, ``UpdateSampler``); every
``flush_every`` steps the buffered rows (and the update-ratio samples) reach the host in one device-to-host copy
and are folded into bounded tables (``SignalHistory``), from which ``record()`` builds the ``RunRecord`` the rules
read.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

import torch

from tunekit.record import RunRecord
from tunekit.signals._data import RecentBatches
from tunekit.signals._history import SignalHistory
from tunekit.signals._layers import layer_membership, layer_of
from tunekit.signals._steps import StepBuffer, to_host
from tunekit.signals._updates import UpdateSampler
from tunekit.signals._watch import NonFiniteWatch


class SignalRecorder:
    """Records loss, gradient norms (global and per layer), LR and update/weight ratio of a run.

    Args:
        flush_every: optimizer steps between read-backs of the device buffer.
        update_ratio_every: steps between samples of the update-to-weight ratio (each sample holds a
            copy of the weights for one step); 0 turns it off.
        capacity: rows kept per table; older rows are thinned beyond it (see ``BoundedTable``).
    """

    def __init__(self, flush_every: int = 64, update_ratio_every: int = 100, capacity: int = 4096) -> None:
        if flush_every < 1:
            raise ValueError(f"flush_every must be >= 1, but got {flush_every=}.")
        if update_ratio_every < 0:
            raise ValueError(f"update_ratio_every must be >= 0 (0 turns it off), but got {update_ratio_every=}.")
        self.flush_every = flush_every
        self.update_ratio_every = update_ratio_every
        self.history = SignalHistory(capacity)
        self.enabled = True  # False pauses recording (e.g. for a phase of training not worth watching)
        self.check_loss_every_step = True
        self.flushes = 0  # read-backs that brought new rows (monitors log after each)
        self._steps: StepBuffer | None = None
        self._updates: UpdateSampler | None = None
        self._watch: NonFiniteWatch | None = None
        self._batches = RecentBatches()
        self._inspected = False  # the batches of the first non-finite step were searched (or are gone)
        self._module: weakref.ref[torch.nn.Module] | None = None

    # ------------------------------------------------------------------ binding
    def bind(self, module: torch.nn.Module, *, total_steps: int | None, grad_scaler: bool, world_size: int,
             accumulate: int = 1) -> None:
        """Prepare the device buffers for ``module``'s trainable parameters (once per fit, after device setup);
        ``accumulate`` is the micro-batches per optimizer step (how many recent batches to hold)."""
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        if not named:
            raise ValueError("The model has no trainable parameters: there are no gradients to monitor.")
        params: list[torch.Tensor] = [p for _, p in named]
        layers = list(dict.fromkeys(layer_of(n) for n, _ in named))
        self.history.set_layers(tuple(layers))
        self._membership = layer_membership([n for n, _ in named], [p.dim() for p in params], layers)
        self._steps = StepBuffer(params, self.flush_every)
        self._updates = UpdateSampler(params, self._steps.device)
        self._watch = NonFiniteWatch(self._steps.device)
        self._batches = RecentBatches(accumulate)
        self.history.total_steps = total_steps
        self.history.grad_scaler = grad_scaler
        # In DDP the gradients are all-reduced, so a decision on them is the same on every rank; the loss is
        # per rank, so it joins the decision only at the (reduced) periodic checks.
        self.check_loss_every_step = world_size == 1
        self._module = weakref.ref(module)

    def is_bound_to(self, module: torch.nn.Module) -> bool:
        return self._module is not None and self._module() is module

    # ------------------------------------------------------------------ hot path
    def capture_gradients(self, global_step: int, lrs: list[float | torch.Tensor]) -> None:
        """Norms of the current gradients into the open row (called before the optimizer step), with the LR
        of each param group (a float, or a tensor as capturable and fused optimizers hold it: read with the row)."""
        steps = self._steps
        if steps is None or not self.enabled or global_step == steps.step:
            return
        steps.open_step(global_step, lrs)
        if self.update_ratio_every and global_step % self.update_ratio_every == 0:
            self._updates.before(global_step)  # type: ignore[union-attr]

    def capture_loss(self, loss: Any, global_step: int, batch: Any = None, batch_idx: int = -1) -> bool:
        """Keep a micro-batch's loss (once per batch) and a reference to the batch; close the step when the
        optimizer stepped. Returns True on a new non-finite step."""
        steps = self._steps
        if steps is None or not self.enabled:
            return False
        if batch is not None:  # the step this micro-batch belongs to: the open one it closes, or the next
            closes = steps.is_open and global_step > steps.step
            self._batches.hold(steps.step if closes else global_step, batch_idx, batch)
        if isinstance(loss, dict):
            loss = loss.get("loss")
        if isinstance(loss, torch.Tensor):
            steps.add_loss(loss)
        if not steps.is_open or global_step <= steps.step:  # still accumulating this step
            return False
        if self._updates.pending:  # type: ignore[union-attr]
            self._updates.after()  # type: ignore[union-attr]
        new_bad = False
        if self.history.first_nonfinite_step is None:
            watched = steps.step_loss() if self.check_loss_every_step or self.history.grad_scaler else None
            bad = self._watch.check(steps.step_norm_sum() if watched is None else watched,  # type: ignore[union-attr]
                                    steps.step)
            if bad is not None:
                self.history.note_nonfinite(bad)
                new_bad = True
        steps.close_step()
        if steps.full:
            self.flush()
        self._inspect_batches()
        return new_bad

    def _inspect_batches(self) -> None:
        """Once the first non-finite step is known: search its batches for NaN/inf (``RunRecord.nonfinite_batch``)."""
        step = self.history.first_nonfinite_step
        if step is None or self._inspected:
            return
        self._inspected = True
        self.history.set_nonfinite_batch(self._batches.inspect(step))

    # ------------------------------------------------------------------ host side
    def flush(self) -> None:
        """Copy the closed steps and the update-ratio samples to the host and fold them into the tables: one
        device-to-host copy (one ``.cpu()``, no ``.item()``), none when there is nothing to read."""
        if self._steps is None:
            return
        steps, updates = self._steps.to_read(), self._updates.to_read()  # type: ignore[union-attr]
        host = to_host(steps + updates)
        rows = self._steps.take(host[:len(steps)])
        if len(rows.steps):
            self.history.add_steps(rows, self._membership)
            self.flushes += 1
        self.history.add_updates(self._updates.take(host[len(steps):]))  # type: ignore[union-attr]
        self._inspect_batches()

    def add_validation(self, step: int, value: float) -> None:
        self.history.add_validation(step, value)

    def record(self, flush: bool = True) -> RunRecord:
        """The recorded series so far; ``flush`` reads back the steps still on the device first."""
        if flush:
            self.flush()
        return self.history.record()

    def reset_nonfinite(self) -> None:
        """Forget a non-finite step (the fit was rolled back to a healthy state before it)."""
        self.history.first_nonfinite_step = None
        self.history.set_nonfinite_batch(None)
        self._inspected = False
        if self._watch is not None:
            self._watch.reset()

    # the history's state, read through the recorder
    @property
    def first_nonfinite_step(self) -> int | None:
        return self.history.first_nonfinite_step

    @property
    def initial_loss(self) -> float | None:
        return self.history.initial_loss

    @property
    def started(self) -> bool:
        """Whether a fit has bound the recorder (or a checkpoint restored its tables)."""
        return self.history.table is not None

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict[str, Any]:
        self.flush()
        return self.history.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.history.load_state_dict(state)
