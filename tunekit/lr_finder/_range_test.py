"""``lr_range_test``: a range test to find where training diverges, then short confirmation runs.

A range-test curve alone answers "where does the loss fall fastest", not "which LR gives the lowest loss
after training", and the rules that read it (Lightning's steepest slope, fastai's valley) miss by up to an
order of magnitude on ordinary tasks. So the curve only bounds the search: a few LRs at and below the point
of lowest loss are each trained briefly from the same initial weights and scored, the better ones trained
longer (successive halving), and the best one is the suggestion.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from contextlib import nullcontext
from typing import Any

import lightning.pytorch as pl
import numpy as np
from lightning.pytorch.utilities.seed import isolate_rng
from scipy.ndimage import median_filter

from tunekit.diagnose._stats import MEDIAN_SE, robust_sigma
from tunekit.exceptions import ConfigError
from tunekit.lr_finder._curve import MEDIAN_WIDTH, divergence_index, smoothed
from tunekit.lr_finder._result import Candidate, LRRangeResult
from tunekit.lr_finder._runs import RunLog, evaluate, run_program
from tunekit.lr_finder._state import ModelSnapshot

log = logging.getLogger(__name__)

MIN_DROP = 0.02  # the sweep must lower the (median-smoothed) loss by 2% somewhere, or the model does not learn
NOISE_SIGMAS = 3.0  # ... and by 3 standard errors of the running median, from the loss's step-to-step noise at the
# sweep's start (a robust MAD estimate), or what looks like a fall is noise on a plateau
LEARNED = 0.95  # a confirmation run that does not end below 95% of the loss the sweep started at learned nothing
LADDER = (1.0, 0.316, 0.1, 0.0316, 0.01)  # candidates: the sweep's lowest-loss LR times these, half a decade
# apart: the best LR for a whole training run sits 1 to 20 times below the point where a sweep's loss bottoms out
KEEP = 2  # candidates that go on to the second rung
FIRST_RUNG_SHARE = 0.5  # share of the confirmation steps spent on the first rung (the rest on the survivors)
TOLERANCE = 0.15  # a lower LR scoring within 15% of the best is preferred: the higher one's edge is riskier
# The pick is not corrected for the real run's length (there is no budget argument): measured at 1x and 4x budgets
# (benchmarks/lr_budget.py), the best LR fell 3-7x for Adam and did not move for SGD; a (budget / horizon) ** 0.25
# correction helped the Adam tasks and hurt the SGD ones (geometric mean 1.58x the 4x grid best against 1.42x without)
LONGER_SWEEP = 3  # a sweep that saw no fall is run again this many times longer, when the budget allows
SCORE_TAIL = 0.2  # without validation data, a run is scored by its mean training loss over its last 20% of steps


def lr_range_test(
    model: pl.LightningModule,
    train_dataloaders: Any = None,
    datamodule: pl.LightningDataModule | None = None,
    *,
    val_dataloaders: Any = None,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    max_steps: int = 300,
    sweep_steps: int = 60,
    monitor: str = "val_loss",
    seed: int = 0,
    trainer_kwargs: dict[str, Any] | None = None,
    progress: bool = False,
) -> LRRangeResult:
    """Suggest a learning rate for ``model`` on its data, in at most ``max_steps`` optimizer steps.

    Every count here is of optimizer steps: under ``accumulate_grad_batches=k`` in ``trainer_kwargs`` a step is
    ``k`` micro-batches, each LR of the sweep gets one such step, and its loss is their mean.

    The module's own ``configure_optimizers`` is used (any optimizer, any param groups; the groups keep
    their LR ratios and the suggestion is the first group's LR). The model is left exactly as it was found:
    weights and buffers, train/eval modes, its ``lr``/``learning_rate``/``recipe`` attributes, its Trainer
    link, and the torch/numpy/python RNG states.

    Args:
        model: the LightningModule.
        train_dataloaders, datamodule: the training data, as for ``Trainer.fit`` (one of them).
        val_dataloaders: validation data to score the confirmation runs on (a datamodule's own validation
            loader is used when it has one); without it they are scored on their training loss.
        min_lr, max_lr: the range of the sweep.
        max_steps: optimizer steps to spend in all (sweep and confirmation runs).
        sweep_steps: optimizer steps of the exponential sweep (it stops early once the loss blows up).
        monitor: the validation metric the confirmation runs are scored on.
        seed: seed of every run (the same data order for each LR).
        trainer_kwargs: extra ``Trainer`` arguments for the runs (``accelerator``, ``precision``, ...).
        progress: show a progress bar.

    Returns:
        An ``LRRangeResult`` with ``.suggestion`` (None with ``.reason`` when the model does not learn at any
        LR in the range), ``.lrs``, ``.losses``, ``.steps``, ``.bounds`` and ``.plot()``.

    Example:
        >>> from tunekit import lr_range_test
        >>> from tunekit.examples import MLP, DigitsDataModule
        >>> result = lr_range_test(MLP(), datamodule=DigitsDataModule())  # doctest: +SKIP
        >>> result.suggestion, result.steps  # doctest: +SKIP
        (0.0031, 300)
    """
    _check(model, train_dataloaders, datamodule, min_lr, max_lr, max_steps, sweep_steps)
    data: dict[str, Any] = ({"datamodule": datamodule} if datamodule is not None
                            else {"train_dataloaders": train_dataloaders})
    val_data = {"datamodule": datamodule} if datamodule is not None else {"val_dataloaders": val_dataloaders}
    kwargs = dict(trainer_kwargs or {})
    snapshot = ModelSnapshot.take(model)
    bar = _progress(progress)
    try:
        with isolate_rng(), bar if bar is not None else nullcontext():
            task = bar.add_task("LR range test", total=max_steps) if bar is not None else None

            def advance(n: int) -> None:
                if bar is not None:
                    bar.advance(task, n)

            result = _sweep(model, data, min_lr, max_lr, sweep_steps, seed, kwargs, advance)
            longer = min(LONGER_SWEEP * sweep_steps, max_steps - result.steps - 2 * len(LADDER))
            if result.suggestion is None and result.flat and longer > sweep_steps:
                # no fall within the sweep says little about a loss that starts on a plateau: sweep again,
                # more slowly, from the same weights
                snapshot.weights_to(model)
                spent = result.steps
                result = _sweep(model, data, min_lr, max_lr, longer, seed, kwargs, advance)
                result.steps += spent
            if result.suggestion is not None:
                with tempfile.TemporaryDirectory(prefix="tunekit-lr-") as workdir:
                    _confirm(model, data, val_data, snapshot, result, max_steps, min_lr, seed, kwargs, monitor,
                             workdir, advance)
            return result
    finally:
        snapshot.restore(model)


def _confirm(model: pl.LightningModule, data: dict[str, Any], val_data: dict[str, Any], snapshot: ModelSnapshot,
             result: LRRangeResult, max_steps: int, min_lr: float, seed: int, kwargs: dict[str, Any], monitor: str,
             workdir: str, advance: Any) -> None:
    """Successive halving over a ladder of LRs below the sweep's best point; sets ``result.suggestion``."""
    ladder = [max(min_lr, result.suggestion * f) for f in LADDER]  # type: ignore[operator]
    budget = max_steps - result.steps
    first = max(1, int(budget * FIRST_RUNG_SHARE) // len(ladder))

    def run(lr: float, until: int, rung: int, resume: str | None) -> Candidate:
        if resume is None:
            snapshot.weights_to(model)
        save = os.path.join(workdir, f"{lr:.6g}.ckpt")
        record, spent = run_program(model, data, lambda s: lr, until, stop_on_divergence=True, seed=seed,
                                    trainer_kwargs=kwargs, resume=resume, save=save)
        result.steps += spent
        advance(spent)
        score = math.inf
        if not record.diverged and record.losses:
            val = evaluate(model, val_data, monitor, kwargs)
            if val is not None:
                result.scored_on = monitor
                score = val if math.isfinite(val) else math.inf
            else:
                tail = record.losses[-max(1, int(SCORE_TAIL * len(record.losses))):]
                score = float(np.mean(tail)) if np.isfinite(tail).all() else math.inf
        candidate = Candidate(lr=float(lr), steps=until, score=score, rung=rung)
        result.candidates.append(candidate)
        return candidate

    rung1 = [run(lr, first, 0, None) for lr in ladder]
    alive = sorted((c for c in rung1 if math.isfinite(c.score)), key=lambda c: c.score)[:KEEP]
    if not alive:
        result.suggestion, result.reason = None, "every confirmation run diverged"
        return
    start = float(np.median(np.asarray(result.losses[:MEDIAN_WIDTH], dtype=float)))
    if result.scored_on == "train_loss" and alive[0].score > LEARNED * start:
        result.suggestion, result.flat = None, True
        result.reason = (f"no confirmation run learned (the best ended at {alive[0].score:.3g} from {start:.3g}): "
                         "the loss may start on a plateau longer than the test's runs")
        return
    more = (max_steps - result.steps) // len(alive)
    final = alive
    if more > 0:  # the survivors train on from where the first rung left them (optimizer state too)
        final = [run(c.lr, first + more, 1, os.path.join(workdir, f"{c.lr:.6g}.ckpt")) for c in alive]
    result.suggestion = _pick(final, rung1)
    top = max(c.lr for c in rung1 if math.isfinite(c.score))
    result.bounds = (result.suggestion / 10, max(result.suggestion * 3, top))


def _pick(final: list[Candidate], rung1: list[Candidate]) -> float:
    """The best final candidate, but the lower LR when it scores within ``TOLERANCE`` of the best, and one
    notch down when the notch above the pick diverged (it sits at the edge of stability)."""
    ok = [c for c in final if math.isfinite(c.score)] or [c for c in rung1 if math.isfinite(c.score)]
    best = min(ok, key=lambda c: c.score)
    pick = min((c for c in ok if c.score <= (1 + TOLERANCE) * best.score), key=lambda c: c.lr)
    ladder = sorted(rung1, key=lambda c: c.lr)
    i = next(k for k, c in enumerate(ladder) if math.isclose(c.lr, pick.lr))
    if i + 1 < len(ladder) and not math.isfinite(ladder[i + 1].score) and i > 0 and math.isfinite(ladder[i - 1].score):
        return ladder[i - 1].lr
    return pick.lr


def _sweep(model: pl.LightningModule, data: dict[str, Any], min_lr: float, max_lr: float, steps: int, seed: int,
           kwargs: dict[str, Any], advance: Any) -> LRRangeResult:
    """An exponential sweep from ``min_lr`` to ``max_lr`` over ``steps`` steps, read into a provisional result."""
    ratio = (max_lr / min_lr) ** (1 / max(1, steps - 1))
    sweep, spent = run_program(model, data, lambda s: min_lr * ratio**s, steps, stop_on_divergence=True, seed=seed,
                               trainer_kwargs=kwargs)
    advance(spent)
    return _read_sweep(sweep, spent)


def _read_sweep(sweep: RunLog, spent: int) -> LRRangeResult:
    lrs, losses = np.asarray(sweep.lrs), np.asarray(sweep.losses, dtype=float)
    result = LRRangeResult(suggestion=None, reason=None, lrs=lrs.tolist(), losses=losses.tolist(), steps=spent)
    if len(losses) < 5:
        result.reason = f"the sweep took only {len(losses)} steps: give it more data or more sweep_steps"
        return result
    finite = np.where(np.isfinite(losses), losses, np.inf)
    stop = divergence_index(smoothed(finite))
    if stop is not None:
        result.diverged_at = float(lrs[stop])
    usable = median_filter(finite, size=MEDIAN_WIDTH, mode="nearest")[: stop if stop is not None else len(finite)]
    if len(usable) < 3:
        result.reason = f"the loss blew up at the start of the sweep (lr {lrs[0]:.2g}): lower min_lr"
        return result
    best = int(np.argmin(usable))
    start = usable[: max(3, len(usable) // 3)]  # the sweep's first third: LRs too small to move the loss
    sigma = robust_sigma(finite[: len(start)], center=float(np.median(start)))  # per-step noise
    noise = NOISE_SIGMAS * MEDIAN_SE * sigma / math.sqrt(MEDIAN_WIDTH)  # ... of a running median of MEDIAN_WIDTH steps
    if not usable[best] < min((1 - MIN_DROP) * usable[0], usable[0] - noise):
        result.reason = (f"the loss did not fall at any learning rate from {lrs[0]:.2g} to {lrs[len(usable) - 1]:.2g} "
                         f"within {len(losses)} sweep steps (a loss that starts on a plateau, or a model that does "
                         "not learn)")
        result.flat = True
        return result
    result.suggestion = float(lrs[best])  # provisional: the candidates fan out below it
    return result


def _check(model: Any, train: Any, datamodule: Any, min_lr: float, max_lr: float, max_steps: int,
           sweep_steps: int) -> None:
    if not isinstance(model, pl.LightningModule):
        raise ConfigError(f"model must be a LightningModule, but got {type(model).__name__}.")
    if (train is None) == (datamodule is None):
        raise ConfigError("pass the training data as exactly one of train_dataloaders=... or datamodule=....")
    if not 0 < min_lr < max_lr:
        raise ConfigError(f"need 0 < min_lr < max_lr, but got {min_lr=} and {max_lr=}.")
    if sweep_steps < 10:
        raise ConfigError(f"sweep_steps must be >= 10 to read a curve, but got {sweep_steps=}.")
    if max_steps < sweep_steps + 2 * len(LADDER):
        raise ConfigError(f"max_steps={max_steps} leaves too few steps for confirmation runs after the sweep's "
                          f"{sweep_steps}: raise max_steps or lower sweep_steps.")


def _progress(enabled: bool) -> Any:
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    # on stderr: stdout carries results, and a transient bar leaves a blank line behind where it was drawn
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
                    TimeElapsedColumn(), transient=True, console=Console(stderr=True))
