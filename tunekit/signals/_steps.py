"""The device side of the per-step signals: one row per optimizer step, read back in batches.

Each row of a preallocated ``rows x parameters`` device buffer holds the norm of every parameter's gradient (one
fused ``torch._foreach_norm`` per device/dtype group, written into the row in place); the step's micro-batch losses
stay device tensors, the param groups' LRs plain floats (LRs held as device tensors, as capturable and fused
optimizers keep them, are copied on the device, never read one by one). ``to_host`` brings everything a read-back
needs to the host in one device-to-host copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def to_host(parts: list[torch.Tensor]) -> list[np.ndarray]:
    """The values of ``parts`` (tensors on one device, any shape) on the host, each flattened into a float64 array,
    with one device-to-host copy (one ``.cpu()``): they are joined on the device first. Float64 is cast on the host
    (an MPS device has none); float32 on the device unless a part is float64."""
    sizes = [p.numel() for p in parts]
    if not sum(sizes):
        return [np.zeros(0) for _ in parts]
    wide = torch.float64 if any(p.dtype == torch.float64 for p in parts) else torch.float32
    flat = torch.cat([p.detach().reshape(-1).to(wide) for p in parts]).cpu().numpy().astype(np.float64)
    return np.split(flat, np.cumsum(sizes)[:-1])


@dataclass
class StepRows:
    """Closed steps brought to the host by ``StepBuffer.take``."""

    steps: np.ndarray  # global step of each row
    param_norms: np.ndarray  # (rows, parameters): each parameter's gradient norm
    loss: np.ndarray  # the step's loss (sum of its micro-batch losses), NaN where training_step returned none
    has_loss: np.ndarray  # bool: the step returned a loss
    lrs: list[list[float]]  # every param group's LR


class StepBuffer:
    """Up to ``rows`` per-step rows on the parameters' device.

    ``open_step`` (before the optimizer step) writes the gradient norms into the next row; ``add_loss`` (after each
    micro-batch) keeps the loss; ``close_step`` moves on; ``to_read`` lists the device tensors of the closed rows and
    ``take`` turns their host values (``to_host``) into ``StepRows``.
    """

    def __init__(self, params: list[torch.Tensor], rows: int) -> None:
        self.params = params
        self.rows = rows
        by_kind: dict[tuple[torch.device, torch.dtype], list[int]] = {}
        for i, p in enumerate(params):
            by_kind.setdefault((p.device, p.dtype), []).append(i)
        self.device = params[0].device
        self.dtype = torch.float64 if torch.float64 in {p.dtype for p in params} else torch.float32
        # Half-precision gradients are summed in float32 (their squares overflow); float32 and float64 ones as they
        # are (asking for float32 anyway takes a slower kernel on a CPU: 30% on an MLP; float64 cannot narrow).
        self._groups = [(idx, None if dtype in (torch.float32, torch.float64) else torch.float32)
                        for (_, dtype), idx in by_kind.items()]
        self._single_group = len(self._groups) == 1
        self._in_order = [i for idx, _ in self._groups for i in idx]  # parameter index of each norm in a row
        self._norms = torch.zeros(rows, len(params), dtype=self.dtype, device=self.device)  # columns: _in_order
        self.slot = 0  # the row the open (or next) step writes
        self.step = -1  # the global step whose gradients are in the open row
        self.is_open = False
        self._parts = 0  # micro-batch losses of the open row (the last ones in ``_losses``)
        self._losses: list[torch.Tensor] = []  # detached micro-batch losses not yet read back ...
        self._loss_rows: list[int] = []  # ... and the row each belongs to
        self._steps: list[int] = []
        self._lrs: list[list[float]] = []  # NaN where the LR is a device tensor (in _device_lrs)
        self._device_lrs: list[tuple[int, list[int], torch.Tensor]] = []  # (row, groups, their LRs on the device)
        self._taking: tuple[int, list[int], list[tuple[int, list[int], torch.Tensor]]] | None = None

    @property
    def full(self) -> bool:
        return self.slot == self.rows

    def open_step(self, step: int, lrs: list[float | torch.Tensor]) -> None:
        """Norms of the current gradients into the next row (called before the optimizer step)."""
        if self.is_open:  # the previous step never closed (recording was paused then): its row is rewritten
            self._steps.pop()
            self._lrs.pop()
            self._device_lrs = [d for d in self._device_lrs if d[0] != self.slot]
        self.step = step
        grads = [p.grad for p in self.params]
        row = self._norms[self.slot]
        # no_grad: a backward with create_graph=True leaves gradients that require grad
        with torch.no_grad():
            if self._single_group and not any(g is None for g in grads):
                dtype = self._groups[0][1]
                norms = (torch._foreach_norm(grads, 2) if dtype is None else  # type: ignore[arg-type]
                         torch._foreach_norm(grads, 2, dtype=dtype))  # type: ignore[arg-type]
                torch.stack(norms, out=row)
            else:
                start = 0
                for idx, dtype in self._groups:
                    present = [grads[i] if grads[i] is not None else self.params[i].new_zeros(()) for i in idx]
                    found = (torch._foreach_norm(present, 2) if dtype is None  # type: ignore[arg-type]
                             else torch._foreach_norm(present, 2, dtype=dtype))  # type: ignore[arg-type]
                    if self._single_group or found[0].device == self.device:
                        torch.stack(found, out=row[start:start + len(idx)])
                    else:  # a model spread over devices: its norms join the buffer's device
                        row[start:start + len(idx)] = torch.stack(found).to(self.device)
                    start += len(idx)
        self._steps.append(step)
        self._lrs.append(self._host_lrs(lrs))
        self.is_open = True

    def _host_lrs(self, lrs: list[float | torch.Tensor]) -> list[float]:
        """The LRs as floats; the ones held as tensors on a device are copied there and read with the row (a CPU
        tensor of a model on an accelerator is read at once: host memory, no wait)."""
        on_device = [i for i, lr in enumerate(lrs) if isinstance(lr, torch.Tensor)
                     and (lr.device.type != "cpu" or self.device.type == "cpu")]
        if on_device:
            values = torch.stack([lrs[i].detach() for i in on_device]).to(self.device, self.dtype)  # type: ignore[union-attr]
            self._device_lrs.append((self.slot, on_device, values))
        return [float("nan") if i in on_device else float(lr) for i, lr in enumerate(lrs)]

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
        return self._norms[self.slot].sum()

    def close_step(self) -> None:
        self.is_open = False
        self._parts = 0
        self.slot += 1

    def to_read(self) -> list[torch.Tensor]:
        """The device tensors of the closed rows: their norms, their micro-batch losses, their device-held LRs
        (for ``to_host``; ``take`` reads them back in this order)."""
        n = self.slot
        closed = [i for i, r in enumerate(self._loss_rows) if r < n]
        device_lrs = [d for d in self._device_lrs if d[0] < n]
        self._taking = (n, closed, device_lrs)
        empty = self._norms.new_zeros(0)
        return [self._norms[:n],
                torch.stack([self._losses[i].reshape(()) for i in closed]) if closed else empty,
                torch.cat([d[2] for d in device_lrs]) if device_lrs else empty]

    def take(self, host: list[np.ndarray]) -> StepRows:
        """The closed rows from their host values (``to_host(to_read())``); the open row, if any, moves to row 0."""
        assert self._taking is not None, "take() follows to_read()"
        n, closed, device_lrs = self._taking
        self._taking = None
        norms = host[0].reshape(n, len(self.params))
        if not self._single_group:  # back to parameter order
            norms = norms[:, np.argsort(self._in_order)]
        loss = np.zeros(n)
        has_loss = np.zeros(n, dtype=bool)
        if closed:
            rows = [self._loss_rows[i] for i in closed]
            np.add.at(loss, rows, host[1])
            has_loss[rows] = True
        loss[~has_loss] = np.nan
        lrs = self._lrs[:n]
        at = 0
        for row, groups, _ in device_lrs:
            for g in groups:
                lrs[row][g] = float(host[2][at])
                at += 1
        out = StepRows(np.asarray(self._steps[:n], dtype=float), norms, loss, has_loss, lrs)
        self._losses = [t for t, r in zip(self._losses, self._loss_rows, strict=True) if r >= n]
        self._loss_rows = [0 for r in self._loss_rows if r >= n]
        self._device_lrs = [(0, g, v) for r, g, v in self._device_lrs if r >= n]
        if self.is_open and n:  # the open row's norms move to the top
            self._norms[0].copy_(self._norms[n])
        self.slot = 0
        self._steps, self._lrs = self._steps[n:], self._lrs[n:]
        return out
