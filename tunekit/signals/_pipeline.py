"""What the training program's own objects show early in a fit: which parameters get gradients and are optimized,
whether gradients are cleared between steps, whether batches differ, which modules are in eval mode, and the
horizon of each LR scheduler. Plain torch; the decisions are ``tunekit.diagnose.rules._pipeline``'s.

Each inspection runs once (or over the first few steps only): none adds work to the steps after that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from tunekit.signals._data import _tensors

# Where each constant comes from: "(hand)" set by hand and not searched; otherwise the source is named.
WARMUP_START_SHARE = 0.5  # (hand) a LambdaLR multiplier that starts under this share of its peak and rises: a warmup
PEAK_SHARE = 0.99  # (hand) ... and the scheduler step where it first gets within 1% of its peak ends the warmup
LAMBDA_PROBES = 64  # points (log-spaced) at which a LambdaLR multiplier is evaluated
FINGERPRINT_VALUES = 2  # per tensor of a batch: its mean (a short last batch of one repeated sample matches) and
# its first element


def trainable_parameters(module: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """``(name, parameter)`` of every parameter with ``requires_grad`` (shared ones once)."""
    return [(name, p) for name, p in module.named_parameters() if p.requires_grad]


def mark_gradients(params: Sequence[tuple[str, nn.Parameter]], seen: set[str]) -> None:
    """Add to ``seen`` the names of the parameters that hold a gradient now (one pass, no device work)."""
    seen.update(name for name, p in params if p.grad is not None)


def unlearned_parameters(params: Sequence[tuple[str, nn.Parameter]], seen: set[str],
                         optimizers: Iterable[torch.optim.Optimizer]) -> tuple[list[str], list[str]]:
    """Of the trainable ``params``: those never seen with a gradient, and those that got one but are in no param
    group of ``optimizers`` (a parameter in neither is listed only as without a gradient)."""
    optimized = {id(p) for opt in optimizers for group in opt.param_groups for p in group["params"]}
    no_gradient = [name for name, _ in params if name not in seen]
    not_optimized = [name for name, p in params if name in seen and id(p) not in optimized]
    return no_gradient, not_optimized


class ClearingWatch:
    """Whether the gradient an optimizer step applied is still in ``param.grad`` when the next backward adds to it.

    A hook on ``param`` runs before autograd accumulates a new gradient into ``param.grad``; after each optimizer
    step (``arm``) the first such call notes whether ``param.grad`` is still non-zero (cleared means ``None`` or all
    zeros: ``zero_grad`` with or without ``set_to_none``). The note stays on the device until ``carried`` reads
    them all back at once. ``remove`` takes the hook off.
    """

    def __init__(self, name: str, param: nn.Parameter) -> None:
        self.name, self._param = name, param
        self._armed = False
        self._notes: list[torch.Tensor | bool] = []
        self._handle = param.register_hook(self._before_accumulate)

    def _before_accumulate(self, grad: torch.Tensor) -> None:
        if self._armed:
            self._armed = False
            held = self._param.grad
            self._notes.append(False if held is None else held.detach().ne(0).any())

    def arm(self) -> None:
        self._armed = True

    @property
    def seen(self) -> int:
        return len(self._notes)

    def carried(self) -> list[bool]:
        """One flag per optimizer step seen: its gradient was still there at the next backward."""
        return [bool(n) for n in self._notes]

    def applied_by(self, optimizer: torch.optim.Optimizer) -> bool:
        """Whether ``optimizer`` updates the watched parameter."""
        return any(p is self._param for group in optimizer.param_groups for p in group["params"])

    def remove(self) -> None:
        self._handle.remove()
        self._armed = False


def _all_tensors(batch: Any) -> Iterator[torch.Tensor]:
    if isinstance(batch, torch.Tensor):
        yield batch
    elif isinstance(batch, Mapping):
        for value in batch.values():
            yield from _all_tensors(value)
    elif isinstance(batch, Sequence) and not isinstance(batch, (str, bytes)):
        for value in batch:
            yield from _all_tensors(value)


def batch_fingerprint(batch: Any) -> torch.Tensor | None:
    """A cheap summary of a batch that two different batches almost never share: per tensor (any dtype), its mean
    and its first element, in float32, shape ``(FINGERPRINT_VALUES * tensors,)``, on the batch's device (no host
    sync); None when the batch holds no non-empty tensor. float32, not float64: MPS has no float64; two batches whose
    sums differ by less than float32's resolution (about 1 in 1.7e7) share a fingerprint, which two different
    batches of real data practically never do."""
    parts = [torch.stack([t.detach().sum(dtype=torch.float32) / t.numel(), t.detach().reshape(-1)[0].to(torch.float32)])
             for t in _all_tensors(batch) if t.numel()]
    if not parts:
        return None
    device = parts[0].device
    return torch.cat([p.to(device) for p in parts])


def samples_differ(batch: Any) -> bool:
    """Whether the batch's first tensor with a batch dimension holds at least two different samples (rows): False
    for one sample copied across the batch (a ``__getitem__`` that ignores its index), or no such tensor. One
    comparison on the device and one read-back; called once per fit."""
    for t in _all_tensors(batch):
        if t.ndim >= 1 and t.shape[0] > 1:
            return bool((t.detach() != t.detach()[:1]).any())
    return False


_MODE_MATTERS: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd, nn.MultiheadAttention, nn.RNNBase,
)


def _mode_matters(module: nn.Module) -> bool:
    """BatchNorm (and InstanceNorm with running statistics), dropout, and attention or RNN layers with dropout."""
    if isinstance(module, nn.modules.instancenorm._InstanceNorm):
        return bool(module.track_running_stats)
    if isinstance(module, (nn.MultiheadAttention, nn.RNNBase)):
        return float(module.dropout) > 0
    return isinstance(module, _MODE_MATTERS)


def eval_mode_modules(root: nn.Module, root_name: str = "model") -> list[dict[str, Any]]:
    """The outermost modules of ``root`` in eval mode, each ``{"module", "type", "affected": ["name (Type)", ...]
    (the modules within it whose mode matters), "parameters", "trainable" (parameter tensors, all and with
    requires_grad)}``; ``root`` itself is called ``root_name``."""
    found: list[dict[str, Any]] = []
    for name, module in root.named_modules():
        if module.training:
            continue
        label = name or root_name
        outer = next((f for f in found if not f["_prefix"] or name.startswith(f["_prefix"])), None)
        if outer is None:
            params = list(module.parameters())
            outer = {"module": label, "type": type(module).__name__, "affected": [],
                     "parameters": len(params), "trainable": sum(p.requires_grad for p in params),
                     "_prefix": f"{name}." if name else ""}
            found.append(outer)
        if _mode_matters(module):
            outer["affected"].append(f"{label} ({type(module).__name__})")
    return [{k: v for k, v in f.items() if k != "_prefix"} for f in found]


def scheduler_horizon(scheduler: Any) -> tuple[str, int] | None:
    """The scheduler steps a scheduler's shape spans, with the setting that says so (``("T_max", 1000)``), for the
    schedules that have one; None for open-ended ones (StepLR, ExponentialLR, restarts, plateau)."""
    sched = torch.optim.lr_scheduler
    if isinstance(scheduler, sched.OneCycleLR):
        return "total_steps", int(scheduler.total_steps)
    if isinstance(scheduler, sched.CosineAnnealingLR):
        return "T_max", int(scheduler.T_max)
    if isinstance(scheduler, (sched.LinearLR, sched.PolynomialLR, sched.ConstantLR)):
        return "total_iters", int(scheduler.total_iters)
    if isinstance(scheduler, sched.MultiStepLR) and scheduler.milestones:
        return "last milestone", int(max(scheduler.milestones))
    if isinstance(scheduler, sched.SequentialLR):
        last = scheduler_horizon(scheduler._schedulers[-1])  # torch keeps its parts only privately
        if last is not None:
            return "milestones + last scheduler", int(scheduler._milestones[-1]) + last[1]
    return None


def rises(scheduler: Any) -> bool:
    """Whether a scheduler only ramps the LR up to its base (a LinearLR from a lower factor, a ConstantLR): a
    warmup, which does no harm when it ends early."""
    sched = torch.optim.lr_scheduler
    if isinstance(scheduler, sched.LinearLR):
        return float(scheduler.end_factor) >= float(scheduler.start_factor)
    return isinstance(scheduler, sched.ConstantLR) and float(scheduler.factor) <= 1


def warmup_peak(multiplier: Callable[[int], float], horizon: int) -> int | None:
    """Where a LambdaLR multiplier ``m(k)`` ends its warmup: the first probed ``k`` (log-spaced up to ``horizon``)
    where it gets within 1% of its peak, when it starts below ``WARMUP_START_SHARE`` of that peak; None when it is
    not a warmup (or cannot be evaluated)."""
    ks = np.unique(np.concatenate([[0], np.geomspace(1, max(2, horizon), LAMBDA_PROBES).astype(int)]))
    try:
        values = np.array([float(multiplier(int(k))) for k in ks])
    except Exception:  # a user's lambda may need state this probe cannot give it: no verdict then
        return None
    peak = float(values.max()) if len(values) and np.isfinite(values).all() else 0.0
    if peak <= 0 or values[0] >= WARMUP_START_SHARE * peak:
        return None
    return int(ks[int(np.argmax(values >= PEAK_SHARE * peak))])


def column_square_sums(batch: Any) -> dict[str, tuple[list[int], torch.Tensor]]:
    """Per 1-D or 2-D real floating-point tensor of a batch (a table's columns; a 1-D tensor is one column, e.g. a
    regression target), keyed by its path in the batch: its shape and the sum of squares of each column, float32 of
    shape ``(columns,)``, on its device (no host sync; float32 because MPS has no float64, and it holds squares of
    values up to about 1e17 before it overflows). Integer tensors (labels, token ids) and tensors of 3 or more
    dimensions (images, sequences) are left out."""
    found = {}
    for path, tensor in _tensors(batch):
        if tensor.is_complex() or tensor.dim() not in (1, 2) or not tensor.numel():
            continue
        table = tensor.detach().reshape(tensor.shape[0], -1)
        found[path] = (list(tensor.shape), table.to(torch.float32).square().sum(dim=0))
    return found


def parameter_checksums(params: Sequence[tuple[str, nn.Parameter]]) -> torch.Tensor:
    """Per parameter tensor, its sum (accumulated in float32) and its Euclidean norm (one fused
    ``torch._foreach_norm`` in the parameters' own dtype), as float32 of shape ``(2, len(params))`` on the
    parameters' device (float32: MPS has no float64); no copy of the weights and no host sync. Equal replicas give
    equal checksums (the same reduction over the same values)."""
    if not params:
        return torch.zeros(2, 0, dtype=torch.float32)
    tensors = [p.detach() for _, p in params]
    sums = torch.stack([t.sum(dtype=torch.float32) for t in tensors])
    norms = torch.stack([n.to(torch.float32) for n in torch._foreach_norm(tensors)])
    return torch.stack([sums, norms.to(sums.device)])
