"""The device side of the per-step signals: a ring of rows, one per optimizer step, read back in batches.

Each row holds the norm of every parameter's gradient (one fused ``torch._foreach_norm`` per device/dtype
group, written into a preallocated device buffer); the step's micro-batch losses stay device tensors and the
param groups' LRs plain floats until ``read`` copies everything to the host in one transfer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class StepRows:
    """Closed steps brought to the host by ``StepBuffer.read``."""

    steps: np.ndarray  # global step of each row
    param_norms: np.ndarray  # (rows, parameters): each parameter's gradient norm
    loss: np.ndarray  # the step's loss (sum of its micro-batch losses), NaN where training_step returned none
    has_loss: np.ndarray  # bool: the step returned a loss
    lrs: list[list[float]]  # every param group's LR


class StepBuffer:
    """A ring of ``rows`` per-step rows on the parameters' device.

    ``open_step`` (before the optimizer step) fills the next row with the gradient norms; ``add_loss`` (after
    each micro-batch) keeps the loss; ``close_step`` moves on; ``read`` brings the closed rows to the host.
    """

    def __init__(self, params: list[torch.Tensor], rows: int) -> None:
        self.params = params
        self.rows = rows
        by_kind: dict[tuple[torch.device, torch.dtype], list[int]] = {}
        for i, p in enumerate(params):
            by_kind.setdefault((p.device, p.dtype), []).append(i)
        self._groups = list(by_kind.values())
        self._single_group = len(self._groups) == 1
        self.device = params[0].device
        self._norms = torch.zeros(rows, len(params), device=self.device)
        self._row_views = list(self._norms.unbind(0))  # views made once, not indexed per step
        self._order = torch.tensor([i for g in self._groups for i in g], device=self.device)
        self.slot = 0  # the row the open (or next) step writes
        self.step = -1  # the global step whose gradients are in the open row
        self.is_open = False
        self._parts = 0  # micro-batch losses of the open row (the last ones in ``_losses``)
        self._losses: list[torch.Tensor] = []  # detached micro-batch losses not yet read back ...
        self._loss_rows: list[int] = []  # ... and the row each belongs to
        self._steps: list[int] = []
        self._lrs: list[list[float]] = []

    @property
    def full(self) -> bool:
        return self.slot == self.rows

    def open_step(self, step: int, lrs: list[float]) -> None:
        """Norms of the current gradients into the next row (called before the optimizer step)."""
        if self.is_open:  # the previous step never closed (recording was paused then): drop it
            self._steps.pop()
            self._lrs.pop()
        self.step = step
        grads = [p.grad for p in self.params]
        row = self._row_views[self.slot]
        # no_grad: a backward with create_graph=True leaves gradients that require grad
        with torch.no_grad():
            if self._single_group and not any(g is None for g in grads):
                torch.stack(torch._foreach_norm(grads, 2, dtype=torch.float32), out=row)  # type: ignore[arg-type]
            else:
                norms: list[torch.Tensor] = []
                for group in self._groups:
                    present = [grads[i] if grads[i] is not None else self.params[i].new_zeros(()) for i in group]
                    found = torch._foreach_norm(present, 2, dtype=torch.float32)  # type: ignore[arg-type]
                    norms.extend(n.to(self.device) for n in found)
                row.index_copy_(0, self._order, torch.stack(norms))
        self._steps.append(step)
        self._lrs.append(lrs)
        self.is_open = True

    def add_loss(self, loss: torch.Tensor) -> None:
        self._losses.append(loss.detach() if loss.requires_grad else loss)  # Lightning's is detached already
        self._loss_rows.append(self.slot)
        self._parts += 1

    def step_loss(self) -> torch.Tensor | None:
        """The open step's loss: the sum of its micro-batch losses (each already divided by the accumulation)."""
        n = self._parts
        if n == 0:
            return None
        return self._losses[-1] if n == 1 else torch.stack(self._losses[-n:]).sum()

    def step_norms(self) -> torch.Tensor:
        """The open row: the open step's per-parameter gradient norms (on the device)."""
        return self._row_views[self.slot]

    def close_step(self) -> None:
        self.is_open = False
        self._parts = 0
        self.slot += 1

    def read(self) -> StepRows:
        """The closed rows on the host (one transfer); the open row, if any, moves to the front."""
        n = self.slot
        norms = self._norms[:n].detach().cpu().double().numpy()
        loss = np.zeros(n)
        has_loss = np.zeros(n, dtype=bool)
        closed = [i for i, r in enumerate(self._loss_rows) if r < n]
        if closed:
            values = torch.stack([self._losses[i] for i in closed]).detach().double().cpu().numpy()
            rows = [self._loss_rows[i] for i in closed]
            np.add.at(loss, rows, values.reshape(len(closed)))
            has_loss[rows] = True
        loss[~has_loss] = np.nan
        out = StepRows(np.asarray(self._steps[:n], dtype=float), norms, loss, has_loss, self._lrs[:n])
        if n < self.rows:  # keep the open row (a step whose loss is still accumulating)
            self._norms[0].copy_(self._norms[n])
        still_open = [(t, 0) for t, r in zip(self._losses, self._loss_rows, strict=True) if r >= n]
        self._losses = [t for t, _ in still_open]
        self._loss_rows = [r for _, r in still_open]
        self.slot = 0
        self._steps, self._lrs = self._steps[n:], self._lrs[n:]
        return out
