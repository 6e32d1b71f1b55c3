"""What the Diagnoser's pipeline checks cost: the time spent inside them over a fit, against the fit's step time.

Model and data as ``benchmarks/overhead.py`` (MLP 64-512-512-512-10 on sklearn's digits, batch 64, CPU, one
thread). Every entry point of the checks (``PipelineChecks.start``, ``before_optimizer_step``, ``batch_end``,
``finish`` and the gradient hook) is wrapped with a ``time.perf_counter`` clock; the wall time of the fit's steps
is taken from batch start to batch start. The checks work only in the first few steps (3 for the parameters, up to
8 for the gradient-clearing watch and the batch fingerprints); after that the Diagnoser's hooks test one flag, and
the cost of that test is timed on its own.

    python benchmarks/pipeline_overhead.py [--steps 200] [--fits 3]
"""

from __future__ import annotations

import argparse
import functools
import logging
import time
import timeit
import warnings
from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader, TensorDataset

from tunekit.callbacks import Diagnoser
from tunekit.callbacks._pipeline_checks import PipelineChecks
from tunekit.examples import MLP, DigitsDataModule
from tunekit.signals._pipeline import ClearingWatch

HIDDEN = (512, 512, 512)  # the model of benchmarks/overhead.py
SPENT: dict[str, float] = {}


def _clocked(cls: type, name: str) -> None:
    original: Callable[..., Any] = getattr(cls, name)

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            SPENT[name] = SPENT.get(name, 0.0) + time.perf_counter() - start

    setattr(cls, name, timed)


class StepClock(Callback):
    """Wall time from one batch start to the next."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._last: float | None = None

    def on_train_batch_start(self, *args: Any) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.times.append(now - self._last)
        self._last = now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--fits", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    for name in ("start", "before_optimizer_step", "batch_end", "finish"):
        _clocked(PipelineChecks, name)  # batch_end holds the input-scale check of the first 4 batches
    _clocked(ClearingWatch, "_before_accumulate")
    data = DigitsDataModule(batch_size=64)
    data.setup()
    loader = DataLoader(TensorDataset(*data.train_set.tensors), batch_size=64, shuffle=True)
    for fit in range(args.fits):
        SPENT.clear()
        pl.seed_everything(fit, verbose=False)
        diagnoser, clock = Diagnoser(verbose=False, save=False, probes=False), StepClock()
        trainer = pl.Trainer(max_steps=args.steps, callbacks=[diagnoser, clock], logger=False,
                             enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
        trainer.fit(MLP(hidden=HIDDEN), loader)
        step = sorted(clock.times)[len(clock.times) // 2]
        spent = sum(SPENT.values())
        print(f"fit {fit}: {args.steps} steps, median step {step * 1e3:.2f} ms; in the pipeline checks "
              f"{spent * 1e3:.2f} ms in all = {spent / step:.2f} steps' worth = {spent / sum(clock.times):.3%} "
              f"of this fit's step time; by part (ms): " + ", ".join(f"{k} {v * 1e3:.2f}" for k, v in SPENT.items()))
    pipeline = diagnoser._pipeline
    flag = min(timeit.repeat(lambda: pipeline.active, number=100_000, repeat=5)) / 100_000
    # on_train_batch_end: the flag, the DDP replica flag (False on one device) and the latest batch kept
    batch_end = min(timeit.repeat(lambda: (pipeline.active or pipeline.values.watching_ranks, setattr(diagnoser,
                                  "_batch", None)), number=100_000, repeat=5)) / 100_000
    per_step = flag + batch_end
    print(f"after the windows: per step a flag test, and at batch end two flag tests and the latest batch kept, "
          f"{per_step * 1e9:.0f} ns = {per_step / step:.5%} of a step")


if __name__ == "__main__":
    main()
