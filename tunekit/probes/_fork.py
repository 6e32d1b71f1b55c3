"""Short runs of the live module on held batches: the forks of a what-if probe, and the loss they end at.

Each fork trains the module itself (its own ``training_step``, optimizer, clipping, precision and gradient
accumulation) for a few steps on the same batches, in a loop of its own: no Lightning hook runs, the module's
``self.log`` is muted, and the Trainer's counters and loaders are never touched. The caller restores the state
between forks (``TrainingState``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from lightning.pytorch.utilities.enums import GradClipAlgorithmType

from tunekit.recipe import add_grad_noise, apply_to_groups

WARMUP_START = 0.1  # a restarted warmup ramps the LR from 10% of its value to all of it over the fork


@contextlib.contextmanager
def muted_logging(module: Any) -> Iterator[None]:
    """``module.log``/``log_dict`` do nothing inside (a fork's losses must not reach the run's metrics)."""
    saved = {name: module.__dict__.get(name) for name in ("log", "log_dict")}
    module.log = lambda *args, **kwargs: None
    module.log_dict = lambda *args, **kwargs: None
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                module.__dict__.pop(name, None)
            else:
                module.__dict__[name] = value


def step_loss(output: Any) -> torch.Tensor | None:
    """The loss a ``training_step`` returned (a tensor, or a dict with ``"loss"``); None when it skipped the batch."""
    if isinstance(output, Mapping):
        output = output.get("loss")
    return output if isinstance(output, torch.Tensor) else None


def batch_length(batch: Any) -> int | None:
    """The number of samples in a batch: the first dimension of its first tensor."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() else None
    values = batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, (list, tuple)) else ()
    return next((n for n in (batch_length(v) for v in values) if n is not None), None)


def merge_batches(batches: Sequence[Any]) -> Any:
    """One batch made of several (tensors joined along the batch dimension; anything else taken from the first):
    the batch a larger ``batch_size`` would have drawn."""
    first = batches[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(list(batches)) if first.dim() else first
    if isinstance(first, Mapping):
        return type(first)({k: merge_batches([b[k] for b in batches]) for k in first})  # type: ignore[call-arg]
    if isinstance(first, (list, tuple)):
        merged = [merge_batches([b[i] for b in batches]) for i in range(len(first))]
        return type(first)(*merged) if hasattr(first, "_fields") else type(first)(merged)
    return first


def _larger_batches(batches: Sequence[Any], size: int, steps: int) -> tuple[list[Any], int]:
    """The held batches regrouped into batches of about ``size`` samples, and the steps that see as many samples
    as ``steps`` of the original ones (a larger batch is compared at equal data, not at equal steps)."""
    now = batch_length(batches[0]) or size
    k = max(1, min(len(batches), round(size / now)))
    if k == 1:
        return list(batches), steps
    grouped = [merge_batches(batches[i:i + k]) for i in range(0, len(batches) - k + 1, k)]
    return grouped, max(1, steps // k)


class Fork:
    """Runs forks of a live fit.

    Args:
        module: the LightningModule (its ``training_step`` is called directly).
        optimizer: the fit's optimizer (one optimizer, automatic optimization).
        precision: the Trainer's precision plugin (``train_step_context`` gives autocast; ``scaler`` fp16 scaling).
        clip: the Trainer's gradient clipping threshold, or None.
        accumulate: micro-batches per optimizer step.
        clip_algorithm: the Trainer's ``gradient_clip_algorithm`` (``"norm"`` or ``"value"``).
        step: the fit's optimizer step at the fork (``global_step``): a ``grad_noise`` change is annealed from it,
            as the recipe's ``GradientNoise`` would anneal it at those steps of the fit.
    """

    def __init__(self, module: Any, optimizer: torch.optim.Optimizer, precision: Any, clip: float | None,
                 accumulate: int, clip_algorithm: Any = "norm", step: int = 0) -> None:
        self.module, self.optimizer, self.precision = module, optimizer, precision
        self.clip, self.accumulate = clip, max(1, accumulate)
        self.clip_algorithm = GradClipAlgorithmType(clip_algorithm or "norm")
        self.scaler = getattr(precision, "scaler", None)
        self.params = [p for p in module.parameters() if p.requires_grad]
        self.start_step = int(step)
        self.steps_done = 0  # optimizer steps the forks took (the cost)
        self.evaluations = 0  # forward passes spent evaluating

    def evaluate(self, batches: Sequence[Any]) -> float:
        """The mean loss over ``batches`` in eval mode (no dropout, BatchNorm's running statistics)."""
        values = self.evaluate_each(batches)
        finite = [v for v in values if math.isfinite(v)]
        return sum(values) / len(values) if values and len(finite) == len(values) else math.nan

    def evaluate_each(self, batches: Sequence[Any]) -> list[float]:
        """The loss of each of ``batches`` in eval mode (NaN where a batch gave none)."""
        training = self.module.training
        self.module.eval()
        values = []
        try:
            with torch.no_grad(), muted_logging(self.module), self.precision.train_step_context():
                for i, batch in enumerate(batches):
                    loss = step_loss(self.module.training_step(batch, i))
                    values.append(float(loss) if loss is not None else math.nan)
        finally:
            self.module.train(training)
        self.evaluations += len(batches)
        return values

    def train(self, change: Mapping[str, Any], batches: Sequence[Any], steps: int) -> float:
        """Apply ``change`` to the optimizer and train ``steps`` optimizer steps, cycling through ``batches``;
        returns the mean training loss of the last steps (NaN when the fork blew up). A ``batch_size`` in the change
        joins held batches into larger ones and takes fewer steps, so the fork sees the same samples. A
        ``grad_noise`` adds the recipe's annealed noise to the (unscaled) gradients before clipping, at the size it
        has at each of these steps of the fit, drawn from torch's global generator as ``GradientNoise`` draws it."""
        apply_to_groups(self.optimizer, {k: v for k, v in change.items()
                                         if k not in ("warmup_steps", "batch_size", "grad_noise")})
        noise = float(change.get("grad_noise") or 0.0)
        if change.get("batch_size"):
            batches, steps = _larger_batches(batches, int(change["batch_size"]), steps)
        clip = change.get("gradient_clip_val", self.clip)
        peaks = [g["lr"] for g in self.optimizer.param_groups]
        warmup = int(change.get("warmup_steps", 0))
        losses: list[float] = []
        micro = 0
        with muted_logging(self.module):
            for step in range(steps):
                if warmup:
                    ramp = WARMUP_START + (1 - WARMUP_START) * min(1.0, step / max(1, min(warmup, steps) - 1))
                    for g, peak in zip(self.optimizer.param_groups, peaks, strict=True):
                        g["lr"] = peak * ramp
                total = 0.0
                for _ in range(self.accumulate):
                    batch = batches[micro % len(batches)]
                    with self.precision.train_step_context():
                        loss = step_loss(self.module.training_step(batch, micro))
                    micro += 1
                    if loss is None:
                        continue
                    loss = loss / self.accumulate
                    (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
                    total += float(loss.detach())
                if not math.isfinite(total):
                    self.optimizer.zero_grad(set_to_none=True)
                    return math.nan
                losses.append(total)
                if self.scaler is not None:
                    self.scaler.unscale_(self.optimizer)
                if noise:
                    add_grad_noise([p for g in self.optimizer.param_groups for p in g["params"]], noise,
                                   self.start_step + step)
                if clip:  # as the Trainer clips: by norm or by value, through the precision plugin
                    self.precision.clip_gradients(self.optimizer, float(clip), self.clip_algorithm)
                if self.scaler is not None:
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                else:
                    self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.steps_done += 1
        tail = losses[-max(1, len(losses) // 4):]
        return sum(tail) / len(tail) if tail else math.nan
