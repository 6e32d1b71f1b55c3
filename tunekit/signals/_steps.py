"""The device side of the per-step signals: one row per optimizer step, read back in batches.

Each row holds the norm of every parameter's gradient (one fused ``torch._foreach_norm`` per device/dtype
group, left on the device); the step's micro-batch losses stay device tensors and the param groups' LRs plain
floats until ``read`` stacks everything in one op and copies it to the host in one transfer.
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
    """Up to ``rows`` per-step rows on the parameters' device.

    ``open_step`` (before the optimizer step) takes the gradient norms of the next row; ``add_loss`` (after each
    micro-batch) keeps the loss; ``close_step`` moves on; ``read`` brings the closed rows to the host.
    """

    def __init__(self, params: list[torch.Tensor], rows: int) -> None:
        self.params = params
        self.rows = rows
        by_kind: dict[tuple[torch.device, torch.dtype], list[int]] = {}
        for i, p in enumerate(params):
            by_kind.setdefault((p.device, p.dtype), []).append(i)
        self.device = params[0].device
        # Half-precision gradients are summed in float32 (their squares overflow); float32 ones as they are
        # (asking for float32 anyway takes a slower kernel on a CPU: 30% on an MLP).
        self._groups = [(idx, None if dtype == torch.float32 else torch.float32) for (_, dtype), idx in by_kind.items()]
        self._single_group = len(self._groups) == 1
        self._in_order = [i for idx, _ in self._groups for i in idx]  # parameter index of each norm in a row
        self._norms: list[list[torch.Tensor]] = []  # one list of 0-dim device tensors per step
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
            self._norms.pop()
        self.step = step
        grads = [p.grad for p in self.params]
        # no_grad: a backward with create_graph=True leaves gradients that require grad
        with torch.no_grad():
            if self._single_group and not any(g is None for g in grads):
                dtype = self._groups[0][1]
                norms = list(torch._foreach_norm(grads, 2) if dtype is None else  # type: ignore[arg-type]
                             torch._foreach_norm(grads, 2, dtype=dtype))  # type: ignore[arg-type]
            else:
                norms = []
                for idx, dtype in self._groups:
                    present = [grads[i] if grads[i] is not None else self.params[i].new_zeros(()) for i in idx]
                    found = (torch._foreach_norm(present, 2) if dtype is None  # type: ignore[arg-type]
                             else torch._foreach_norm(present, 2, dtype=dtype))  # type: ignore[arg-type]
                    norms.extend(n.to(self.device, torch.float32) for n in found)
        self._norms.append(norms)
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

    def step_norm_sum(self) -> torch.Tensor:
        """The sum of the open step's per-parameter gradient norms (on the device): NaN/inf if any is."""
        return torch.stack(self._norms[-1]).sum()

    def close_step(self) -> None:
        self.is_open = False
        self._parts = 0
        self.slot += 1

    def read(self) -> StepRows:
        """The closed rows on the host (one stack, one transfer); the open row, if any, stays."""
        n = self.slot
        if n:
            flat = torch.stack([t for row in self._norms[:n] for t in row]).view(n, len(self.params))
            norms = flat.detach().cpu().double().numpy()
            if not self._single_group:  # back to parameter order
                norms = norms[:, np.argsort(self._in_order)]
        else:
            norms = np.zeros((0, len(self.params)))
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
        still_open = [(t, 0) for t, r in zip(self._losses, self._loss_rows, strict=True) if r >= n]
        self._losses = [t for t, _ in still_open]
        self._loss_rows = [r for _, r in still_open]
        self.slot = 0
        self._steps, self._lrs, self._norms = self._steps[n:], self._lrs[n:], self._norms[n:]
        return out
