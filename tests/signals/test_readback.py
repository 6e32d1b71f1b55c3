"""The read-back's cost on a real fit: one device-to-host copy each, however many rows and samples it brings."""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch

from tests.callbacks.helpers import fit
from tunekit.callbacks import GradNormMonitor
from tunekit.signals import SignalRecorder
from tunekit.signals._steps import to_host

# every way a tensor's value reaches the host: a copy (.cpu) or a read that waits for the device
HOST_READS = ("cpu", "item", "tolist", "__float__", "__int__", "__bool__")


def test_one_device_to_host_copy_per_read_back(tmp_path, monkeypatch):
    """``SignalRecorder.flush`` (the read-back) claims one ``.cpu()`` and no scalar read; counted on the real
    methods, wrapped, during every read-back of a fit with update-ratio samples among the rows."""
    calls: Counter[str] = Counter()
    inside: list[bool] = []
    for name in HOST_READS:
        real = getattr(torch.Tensor, name)

        def counting(self, *args, _real=real, _name=name, **kwargs):
            if inside:
                calls[_name] += 1
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    real_flush = SignalRecorder.flush
    per_flush: list[Counter[str]] = []

    def flush(self):
        calls.clear()
        inside.append(True)
        try:
            real_flush(self)
        finally:
            inside.pop()
        if self._steps is not None and self.flushes:
            per_flush.append(Counter(calls))

    monkeypatch.setattr(SignalRecorder, "flush", flush)
    monitor = GradNormMonitor(flush_every=16, update_ratio_every=5)
    trainer = fit(tmp_path, {}, [monitor], epochs=2)
    record = monitor.recorder.record(flush=False)
    assert trainer.global_step == 46 and len(record) == 46 and len(record.update_steps) == 10
    reads = [c for c in per_flush if c]
    assert len(reads) >= 46 // 16  # the full buffers, then what the end of the fit left
    assert all(c == Counter(cpu=1) for c in reads), reads


def test_to_host_joins_parts_of_any_shape_and_dtype():
    parts = [torch.arange(6.0).reshape(2, 3), torch.tensor([0.5], dtype=torch.float16), torch.zeros(0)]
    out = to_host(parts)
    assert [a.tolist() for a in out] == [[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], [0.5], []]
    assert all(a.dtype == np.float64 for a in out)
    assert [a.tolist() for a in to_host([torch.zeros(0), torch.zeros(0, 2)])] == [[], []]


def _linear_steps(rec: SignalRecorder, model: torch.nn.Module, opt: torch.optim.Optimizer, n: int,
                  first: int = 0) -> list[float]:
    norms = []
    for step in range(first, first + n):
        loss = model(torch.ones(4, 3, dtype=next(model.parameters()).dtype)).square().mean()
        loss.backward()
        norms.append(float(torch.nn.utils.get_total_norm([p.grad for p in model.parameters()])))
        rec.capture_gradients(step, [g["lr"] for g in opt.param_groups])
        opt.step()
        opt.zero_grad()
        rec.capture_loss(loss.detach(), step + 1)
    return norms


def test_lrs_held_as_tensors_are_read_with_the_rows():
    """Adam with a tensor LR (as capturable/fused optimizers keep it), changed in place by its scheduler."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=torch.tensor(0.01))
    rec = SignalRecorder(flush_every=3)
    rec.bind(model, total_steps=None, grad_scaler=False, world_size=1)
    for step in range(5):
        _linear_steps(rec, model, opt, 1, first=step)
        opt.param_groups[0]["lr"].mul_(0.5)  # in place, as a scheduler of a tensor LR does
    np.testing.assert_allclose(rec.record().lr, [0.01 / 2**k for k in range(5)], rtol=1e-6)


def test_float64_models_are_recorded_in_float64():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2).double()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    rec = SignalRecorder(flush_every=2)
    rec.bind(model, total_steps=None, grad_scaler=False, world_size=1)
    norms = _linear_steps(rec, model, opt, 5)
    np.testing.assert_allclose(rec.record().grad_norm, norms, rtol=1e-12)
