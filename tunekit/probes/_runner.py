"""``run_probe``: fork a live fit, train each candidate for a few steps, measure, and put everything back."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities.seed import isolate_rng

from tunekit.diagnose import Finding
from tunekit.diagnose._probes import Candidate, ProbeOutcome, ProbeReport
from tunekit.probes._fork import Fork, muted_logging, step_loss
from tunekit.probes._state import TrainingState
from tunekit.signals import Curvature, adam_preconditioner, curvature
from tunekit.utilities.lightning import grad_scaler_of

EVAL_BATCHES = 4  # held-out batches every fork is measured on (never trained on inside the probe); four give a
# first estimate of the comparison's noise
EVAL_COST = 1 / 3  # a forward pass costs about a third of a training step
HVP_COST = 2.0  # a Hessian-vector product costs about two training steps (benchmarks/curvature.py measures 2.6 on
# its small MLPs, whose per-call overhead weighs most; the budget undercounts curvature there by about a quarter)


def probe_cost(candidates: int, steps: int, hvps: int, accumulate: int = 1) -> float:
    """The compute a probe spends, in optimizer steps of the fit (the unit of ``Diagnoser(probe_budget=...)``).

    Args:
        candidates: forks trained (the unchanged control counted among them).
        steps: optimizer steps each fork trains; one costs one optimizer step of the fit.
        hvps: Hessian-vector products of the curvature measurement (0: none), ``HVP_COST`` micro-batch steps each.
        accumulate: micro-batches per optimizer step (``Trainer(accumulate_grad_batches=...)``): the held-out
            forward passes (``EVAL_BATCHES`` per fork and once before, ``EVAL_COST`` of a micro-batch step each)
            and the products run on single micro-batches, so they cost ``1 / accumulate`` of an optimizer step.

    Returns:
        ``candidates * steps + ((candidates + 1) * EVAL_BATCHES * EVAL_COST + HVP_COST * hvps) / accumulate``
        (an estimate: the constants are rough ratios, see their comments).

    Example:
        >>> round(probe_cost(candidates=3, steps=20, hvps=10), 2)
        85.33
    """
    forward = (candidates + 1) * EVAL_BATCHES * EVAL_COST
    return candidates * steps + (forward + HVP_COST * hvps) / max(1, accumulate)


def probe_reason(trainer: pl.Trainer, module: pl.LightningModule) -> str | None:
    """Why this fit cannot be probed, or None when it can."""
    if not module.automatic_optimization:
        return "the module optimizes by hand (automatic_optimization=False)"
    if len(trainer.optimizers) != 1:
        return f"the module has {len(trainer.optimizers)} optimizers"
    return None


def run_probe(trainer: pl.Trainer, module: pl.LightningModule, finding: Finding, candidates: Sequence[Candidate],
              batches: Sequence[Any], steps: int, hvps: int = 0,
              curvature_if: Callable[[ProbeReport], bool] | None = None) -> ProbeReport:
    """Fork the fit at its current state: train each candidate ``steps`` optimizer steps on ``batches`` (the
    last ``EVAL_BATCHES`` held out to measure on), measure the curvature with ``hvps`` Hessian-vector products
    (when ``curvature_if`` says so of the forks' report, or always without it), and restore the module, optimizer,
    schedulers, grad scaler, gradients and RNG exactly.

    Under DDP every rank forks on its own batches and the losses are averaged across ranks, so every rank reads
    the same outcome (call it on all ranks together).
    """
    optimizer = trainer.optimizers[0]
    schedulers = [config.scheduler for config in trainer.lr_scheduler_configs]
    scaler = grad_scaler_of(trainer)
    held, train = list(batches[-EVAL_BATCHES:]), list(batches[:-EVAL_BATCHES])
    fork = Fork(module, optimizer, trainer.precision_plugin, trainer.gradient_clip_val,
                trainer.accumulate_grad_batches, trainer.gradient_clip_algorithm, trainer.global_step)
    results: list[tuple[list[float], list[float]]] = []
    curv: dict[str, Any] | None = None
    with isolate_rng():
        state = TrainingState.take(module, optimizer, schedulers, scaler)
        try:
            before = fork.evaluate_each(held)
            for candidate in candidates:
                state.restore(module, optimizer, schedulers, scaler, grads=False)
                ended = fork.train(candidate.change, train, steps)
                after = fork.evaluate_each(held) if math.isfinite(ended) else [math.nan] * len(held)
                results.append((before, after))
            results = _mean_over_ranks(trainer, results)
            forks_only = _report(trainer, finding, candidates, results, steps, None)
            if hvps and (curvature_if is None or curvature_if(forks_only)):
                state.restore(module, optimizer, schedulers, scaler, grads=False)
                curv = _curvature(module, trainer, held[0], hvps, finding)
        finally:
            state.restore(module, optimizer, schedulers, scaler, grads=True)
    return _report(trainer, finding, candidates, results, steps, curv)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values and all(math.isfinite(v) for v in values) else math.nan


def _report(trainer: pl.Trainer, finding: Finding, candidates: Sequence[Candidate],
            results: list[tuple[list[float], list[float]]], steps: int, curv: dict[str, Any] | None) -> ProbeReport:
    outcomes = tuple(ProbeOutcome(c.label, dict(c.change), steps, _mean(b), _mean(a), tuple(b), tuple(a))
                     for c, (b, a) in zip(candidates, results, strict=True))
    cost = probe_cost(len(candidates), steps, int(curv["hvps"]) if curv else 0, trainer.accumulate_grad_batches)
    return ProbeReport(trainer.global_step, finding.code, outcomes, curv, cost)


def _curvature(module: pl.LightningModule, trainer: pl.Trainer, batch: Any, hvps: int,
               finding: Finding) -> dict[str, Any]:
    """Plain Hessian extremes (a stall: is it a saddle?), or, for Adam on an unstable run, those of the
    preconditioned Hessian its stability depends on."""
    preconditioned = finding.code.value in ("oscillation", "exploding_gradients")
    found = measure_curvature(trainer, module, batch, hvps, preconditioned=preconditioned).to_dict()
    found.pop("seconds")  # a probe report keeps what it decided on, and its cost in steps
    return found


def measure_curvature(trainer: pl.Trainer, module: pl.LightningModule, batch: Any, hvps: int, *,
                      preconditioned: bool = False) -> Curvature:
    """The Hessian's extremes on ``batch`` of the live fit, its loss being the module's own ``training_step`` (under
    the Trainer's precision, logging muted, in eval mode so dropout does not blur it); with ``preconditioned``, those
    of Adam's preconditioned Hessian (the plain one when the optimizer is not Adam or has not stepped yet). The
    module's weights, gradients and modes are left as they were."""
    optimizer = trainer.optimizers[0]
    params = [p for g in optimizer.param_groups for p in g["params"] if p.requires_grad]
    preconditioner = adam_preconditioner(optimizer) if preconditioned else None

    def loss_fn(m: Any, b: Any) -> torch.Tensor:
        with trainer.precision_plugin.train_step_context():
            loss = step_loss(m.training_step(b, 0))
        if loss is None:
            raise RuntimeError("training_step returned no loss for the held batch")
        return loss.float()

    training = module.training
    module.eval()
    try:
        with muted_logging(module):
            return curvature(module, loss_fn, batch, max_hvps=hvps, params=params, preconditioner=preconditioner)
    finally:
        module.train(training)


def _mean_over_ranks(trainer: pl.Trainer,
                     results: list[tuple[list[float], list[float]]]) -> list[tuple[list[float], list[float]]]:
    """Every per-batch loss averaged across DDP ranks (the i-th held batch of each rank together)."""
    if trainer.world_size <= 1 or not results:
        return results
    n = len(results[0][0])
    values = torch.tensor([v for before, after in results for v in before + after], dtype=torch.float64,
                          device=trainer.strategy.root_device)
    flat = trainer.strategy.reduce(values, reduce_op="mean").tolist()
    return [(flat[2 * n * i: 2 * n * i + n], flat[2 * n * i + n: 2 * n * (i + 1)]) for i in range(len(results))]
