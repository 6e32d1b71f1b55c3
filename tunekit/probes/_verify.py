"""``verify_change``: did a change made to a running fit beat carrying on unchanged? Two forks on the same batches.

Auto-remedy calls it a few steps after it intervened, with the batches the fit trained on since: one fork starts
from the state before the intervention and trains unchanged, the other from the state the intervention started
from (the snapshot it rolled back to, or the same state) and trains with the change; both are measured on held-out
batches neither trained on. The live fit is put back exactly afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities.seed import isolate_rng

from tunekit.diagnose import FindingCode
from tunekit.diagnose._probes import Candidate, ProbeOutcome, ProbeReport
from tunekit.probes._fork import Fork
from tunekit.probes._runner import EVAL_BATCHES, EVAL_COST, _mean, _mean_over_ranks, probe_cost
from tunekit.probes._state import TrainingState
from tunekit.utilities.lightning import grad_scaler_of

UNCHANGED, CHANGED = "unchanged", "intervention"  # the two forks' labels


def verify_change(trainer: pl.Trainer, module: pl.LightningModule, finding: FindingCode, before: TrainingState,
                  start: TrainingState, change: Mapping[str, Any], clip: float | None, batches: Sequence[Any],
                  steps: int) -> ProbeReport:
    """Train ``steps`` optimizer steps from ``before`` unchanged (clipping at ``clip``, the fit's threshold before
    the change) and from ``start`` under ``change`` (a fork-able recipe change, ``tunekit.diagnose._probes.FORKABLE``),
    on ``batches`` (the last ``EVAL_BATCHES`` held out to measure both on). The report's control is the unchanged
    fork, its other outcome is labelled ``"intervention"``; ``finding`` is the code the intervention answered. The
    live state is restored exactly (RNG included). Under DDP call it on every rank: the losses are averaged across
    ranks."""
    optimizer = trainer.optimizers[0]
    schedulers = [config.scheduler for config in trainer.lr_scheduler_configs]
    scaler = grad_scaler_of(trainer)
    held, train = list(batches[-EVAL_BATCHES:]), list(batches[:-EVAL_BATCHES])
    fork = Fork(module, optimizer, trainer.precision_plugin, clip, trainer.accumulate_grad_batches,
                trainer.gradient_clip_algorithm, trainer.global_step)
    candidates = (Candidate(UNCHANGED), Candidate(CHANGED, dict(change)))
    results: list[tuple[list[float], list[float]]] = []
    with isolate_rng():
        now = TrainingState.take(module, optimizer, schedulers, scaler)
        try:
            for state, candidate in zip((before, start), candidates, strict=True):
                state.restore(module, optimizer, schedulers, scaler, grads=False)
                first = fork.evaluate_each(held)
                ended = fork.train(candidate.change, train, steps)
                after = fork.evaluate_each(held) if math.isfinite(ended) else [math.nan] * len(held)
                results.append((first, after))
            results = _mean_over_ranks(trainer, results)
        finally:
            now.restore(module, optimizer, schedulers, scaler, grads=True)
    outcomes = tuple(ProbeOutcome(c.label, dict(c.change), steps, _mean(b), _mean(a), tuple(b), tuple(a))
                     for c, (b, a) in zip(candidates, results, strict=True))
    # each fork evaluates twice (its start, its end): one evaluation more than a probe's forks
    accumulate = trainer.accumulate_grad_batches
    cost = probe_cost(2, steps, 0, accumulate) + EVAL_BATCHES * EVAL_COST / max(1, accumulate)
    return ProbeReport(trainer.global_step, finding, outcomes, None, cost)
