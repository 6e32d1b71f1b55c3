"""The update-to-weight ratio ``||w_after - w_before|| / ||w_before||``, sampled every few steps."""

from __future__ import annotations

import numpy as np
import torch


class UpdateSampler:
    """Copies the weights before a sampled optimizer step and measures how far the step moved them; the ratios
    stay on the device until ``read``.

    On an accelerator the copy is allocated for the one step and released (the caching allocator makes that
    cheap, and a copy of the weights held for the whole fit would cost device memory). On a CPU a fresh copy pays
    the operating system's page faults every time (5x the copy itself for an MLP of 2 MB), so one buffer is kept
    and reused.
    """

    def __init__(self, params: list[torch.Tensor], device: torch.device) -> None:
        self.params = params
        self.device = device
        self._reuse = device.type == "cpu"
        dtypes = {p.dtype for p in params}
        wide = torch.float64 if torch.float64 in dtypes else torch.float32
        self._norm_dtype = None if dtypes == {wide} else wide  # half precision summed in float32; never narrowed
        self._buffer: list[torch.Tensor] | None = None
        self._before: list[torch.Tensor] | None = None
        self._before_norm: torch.Tensor | None = None
        self._step = -1
        self._rows: list[torch.Tensor] = []
        self._steps: list[int] = []

    @property
    def pending(self) -> bool:
        return self._before is not None

    def before(self, step: int) -> None:
        with torch.no_grad():
            weights = [p.detach() for p in self.params]
            if self._reuse:
                if self._buffer is None:
                    self._buffer = [torch.empty_like(w) for w in weights]
                torch._foreach_copy_(self._buffer, weights)
                self._before = self._buffer
            else:
                self._before = list(torch._foreach_mul(weights, 1.0))
            self._before_norm = torch.stack(self._norms(weights))
        self._step = step

    def after(self) -> None:
        before = self._before or []
        with torch.no_grad():
            torch._foreach_sub_(before, [p.detach() for p in self.params])  # in place: before - after
            diff = torch.stack(self._norms(before))
            self._rows.append(torch.stack([diff.to(self.device).square().sum(),
                                           self._before_norm.to(self.device).square().sum()]))  # type: ignore[union-attr]
        self._steps.append(self._step)
        self._before = None

    def _norms(self, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        if self._norm_dtype is None:
            return list(torch._foreach_norm(tensors, 2))
        return list(torch._foreach_norm(tensors, 2, dtype=self._norm_dtype))

    def to_read(self) -> list[torch.Tensor]:
        """The sampled rows' squared norms on the device, (samples, 2): for ``to_host``, then ``take``."""
        return [torch.stack(self._rows) if self._rows else torch.zeros(0, 2, device=self.device)]

    def take(self, host: list[np.ndarray]) -> np.ndarray:
        """Rows of (step, ratio) sampled since the last read, from the host values of ``to_read()``."""
        if not self._rows:
            return np.zeros((0, 2))
        sums = host[0].reshape(-1, 2)
        ratio = np.sqrt(sums[:, 0]) / np.maximum(np.sqrt(sums[:, 1]), 1e-12)
        out = np.column_stack([np.asarray(self._steps, dtype=float), ratio])
        self._rows, self._steps = [], []
        return out
