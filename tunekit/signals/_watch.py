"""The per-step non-finite watch: a NaN/inf loss or gradient seen within a step or two, without a blocking
device sync."""

from __future__ import annotations

import math

import torch


class NonFiniteWatch:
    """Keeps the first step whose watched value was NaN/inf.

    On a CPU the value is read at once (nothing to wait for). On an accelerator the device keeps the first bad
    step in a tensor copied to pinned host memory without blocking; the host reads the copy that has landed,
    so a NaN is seen one or two steps after it happens (the exact step is settled from the read-back).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._cpu = device.type == "cpu"
        self._bad_dev: torch.Tensor | None = None
        self._bad_host = torch.full((), -1, dtype=torch.long)

    def check(self, value: torch.Tensor, step: int) -> int | None:
        """Watch ``value`` (a scalar tensor) at ``step``; returns the first bad step once it is known."""
        if self._cpu:
            return None if math.isfinite(float(value)) else step
        if self._bad_dev is None:
            self._bad_dev = torch.full((), -1, dtype=torch.long, device=self.device)
            self._bad_host = torch.full((), -1, dtype=torch.long).pin_memory()
        bad_now = ~torch.isfinite(value.to(self.device)) & (self._bad_dev < 0)
        self._bad_dev.masked_fill_(bad_now, step)
        seen = int(self._bad_host)  # what an earlier step's copy left there
        self._bad_host.copy_(self._bad_dev, non_blocking=True)
        return seen if seen >= 0 else None

    def reset(self) -> None:
        """Watch again from scratch (after the fit was rolled back to a state before the bad step)."""
        if self._bad_dev is not None:
            self._bad_dev.fill_(-1)
            self._bad_host.fill_(-1)
