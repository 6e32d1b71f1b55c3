"""Step-time overhead of tunekit's Diagnoser against no callback and the tools a user would use instead.

Model: MLP 64-512-512-512-10 on sklearn's digits, batch 64, CPU, one thread. The step time is a training
epoch's time over its steps (loader, forward, backward, optimizer and every callback; no validation),
measured as the process's CPU time (``time.process_time``: one thread, no loader workers, so other load
on the machine does not inflate it).

Two measurements:

* **paired blocks** (the precise one): in each fit, tunekit's recorder (or Lightning's grad-norm
  logging) is switched on and off on alternate blocks of ``--block`` steps, so "with" and "without" run in the
  same process, on the same allocator state, milliseconds apart (on this shared VM the machine's speed drifts
  by several percent within a second, so short blocks pair better than whole epochs). A step is timed from one
  batch start to the next, so its hooks, the periodic read-backs and rule checks count. Reported: the median
  of the per-pair ratios, and the ratio of the total on-time to the total off-time with a bootstrap 90%
  interval. With the recorder off the Diagnoser's hooks still run (and return at once), so the ratio is the
  cost of the recording, the read-backs, the logging and the checks; the few microseconds Lightning spends
  calling one more callback's hooks are in the separate-fits figure.
* **separate fits**, interleaved in random order within each round: none, Diagnoser, Lightning's
  documented ``self.log_dict(grad_norm(self, norm_type=2))`` in ``on_before_optimizer_step``, and
  ``wandb.watch(model, log="all", log_freq=1)`` with W&B offline (``--no-wandb`` skips it), which cannot
  be switched per epoch. Noisier: fits differ by a few percent on their own.

    python benchmarks/overhead.py [--fits 6] [--epochs 20] [--block 4] [--rounds 6] [--no-wandb]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import statistics
import tempfile
import time
import warnings
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities import grad_norm
from torch.utils.data import DataLoader, TensorDataset

from tunekit.callbacks import Diagnoser
from tunekit.examples import MLP

HIDDEN = (512, 512, 512)


class EpochTimer(Callback):
    """CPU time per optimizer step of each training epoch (the separate-fits measurement)."""

    def __init__(self) -> None:
        self.per_step: list[float] = []

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start, self._step0 = time.process_time(), trainer.global_step

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        steps = trainer.global_step - self._step0
        self.per_step.append((time.process_time() - self._start) / max(steps, 1))


class BlockTimer(Callback):
    """Switches ``toggle`` on and off on alternate blocks of ``block`` steps and times each step (CPU time from
    one batch start to the next); steps that span an epoch boundary are left out."""

    def __init__(self, toggle: Any, block: int) -> None:
        self.toggle, self.block = toggle, block
        self.steps: list[tuple[int, bool, float]] = []  # (block index, on, seconds)
        self._last: tuple[float, int, bool] | None = None

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        now, step = time.process_time(), trainer.global_step
        if self._last is not None and batch_idx > 0:
            start, prev, on = self._last
            self.steps.append((prev // self.block, on, now - start))
        on = (step // self.block) % 2 == 1
        self.toggle(trainer, pl_module, on)
        self._last = (time.process_time(), step, on)

    def pairs(self, skip_steps: int) -> list[tuple[float, float]]:
        """(on, off) mean step times of adjacent block pairs, after ``skip_steps`` of warm-up."""
        blocks: dict[int, list[float]] = {}
        kinds: dict[int, bool] = {}
        for b, on, t in self.steps:
            if b * self.block >= skip_steps:
                blocks.setdefault(b, []).append(t)
                kinds[b] = on
        out = []
        for b in sorted(blocks):
            if kinds[b] and (b - 1) in blocks and not kinds[b - 1]:
                out.append((statistics.mean(blocks[b]), statistics.mean(blocks[b - 1])))
        return out


class LightningGradNorm(MLP):
    """Lightning's documented way to track gradient norms (switchable for the paired measurement)."""

    track = True

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.track:
            self.log_dict(grad_norm(self, norm_type=2))


def _loader() -> DataLoader[Any]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    data = TensorDataset(torch.tensor(x, dtype=torch.float32), torch.tensor(y))
    return DataLoader(data, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))


def _trainer(epochs: int, callbacks: list[Callback], logger: Any) -> pl.Trainer:
    return pl.Trainer(max_epochs=epochs, callbacks=callbacks, logger=logger, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                      num_sanity_val_steps=0, log_every_n_steps=50)


def paired(tool: str, epochs: int, block: int, logdir: str) -> list[tuple[float, float]]:
    """(on, off) step times of adjacent blocks in one fit."""
    pl.seed_everything(0, verbose=False)
    if tool == "diagnoser":
        diagnoser = Diagnoser(verbose=False, save=False)
        model: MLP = MLP(hidden=HIDDEN)

        def toggle(trainer: pl.Trainer, pl_module: pl.LightningModule, on: bool) -> None:
            if diagnoser.attached:
                diagnoser.recorder.enabled = on

        callbacks: list[Callback] = [diagnoser]
    else:
        model = LightningGradNorm(hidden=HIDDEN)

        def toggle(trainer: pl.Trainer, pl_module: pl.LightningModule, on: bool) -> None:
            pl_module.track = on  # type: ignore[attr-defined]

        callbacks = []
    timer = BlockTimer(toggle, block)
    _trainer(epochs, [timer, *callbacks], CSVLogger(logdir, name=tool)).fit(model, _loader())
    return timer.pairs(skip_steps=2 * 23)  # the first two epochs warm up


def _ratio_of_totals(pairs: list[tuple[float, float]], rng: random.Random) -> tuple[float, float, float]:
    """sum(on) / sum(off), with a bootstrap 90% interval over the pairs."""
    def ratio(sample: list[tuple[float, float]]) -> float:
        return sum(on for on, _ in sample) / sum(off for _, off in sample)

    boots = sorted(ratio([pairs[rng.randrange(len(pairs))] for _ in pairs]) for _ in range(1000))
    return ratio(pairs), boots[50], boots[949]


def separate(config: str, epochs: int, logdir: str) -> float:
    pl.seed_everything(0, verbose=False)
    timer = EpochTimer()
    model = (LightningGradNorm if config == "lightning" else MLP)(hidden=HIDDEN)
    callbacks: list[Callback] = [timer] + ([Diagnoser(verbose=False, save=False)] if config == "diagnoser" else [])
    logger: Any = CSVLogger(logdir, name=config)
    if config == "wandb_watch":
        from lightning.pytorch.loggers import WandbLogger

        logger = WandbLogger(save_dir=logdir, offline=True, project="tunekit-overhead")
        logger.watch(model, log="all", log_freq=1)
    _trainer(epochs, callbacks, logger).fit(model, _loader())
    if config == "wandb_watch":
        import wandb

        wandb.finish()
    return statistics.median(timer.per_step[1:])


def _quartiles(values: list[float]) -> str:
    q = statistics.quantiles(values, n=4)
    return f"{q[0]:.3f}-{q[2]:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fits", type=int, default=6, help="fits per tool in the paired measurement")
    parser.add_argument("--epochs", type=int, default=20, help="epochs per paired fit (even)")
    parser.add_argument("--block", type=int, default=4, help="steps per on/off block in the paired measurement")
    parser.add_argument("--rounds", type=int, default=6, help="rounds of separate fits")
    parser.add_argument("--no-wandb", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as logdir:
        pairs: dict[str, list[tuple[float, float]]] = {"diagnoser": [], "lightning": []}
        for f in range(args.fits):
            for tool in rng.sample(list(pairs), k=2):
                pairs[tool] += paired(tool, args.epochs, args.block, logdir)
            print(f"paired fit {f + 1}/{args.fits}: " + "  ".join(
                f"{t} {statistics.median(on / off for on, off in p):.3f}x" for t, p in pairs.items()), flush=True)
        configs = ["none", "diagnoser", "lightning"] + ([] if args.no_wandb else ["wandb_watch"])
        times: dict[str, list[float]] = {c: [] for c in configs}
        for r in range(args.rounds):
            for c in rng.sample(configs, k=len(configs)):
                times[c].append(separate(c, 4, logdir))
            print(f"round {r + 1}/{args.rounds}: " + "  ".join(f"{c} {times[c][-1] * 1e3:.2f} ms" for c in configs),
                  flush=True)
    print("\nMLP 64-512-512-512-10, sklearn digits, batch 64, CPU, 1 thread")
    if args.fits:
        n = min(len(p) for p in pairs.values())
        print(f"\npaired blocks of {args.block} steps ({n} pairs per tool): ratio = on / off")
        print(f"{'tool':<12}{'median':>9}   {'q1-q3':>13}   {'total on/off':>12}   {'90% interval':>13}")
        for tool, p in pairs.items():
            ratios = [on / off for on, off in p]
            total, low, high = _ratio_of_totals(p, rng)
            print(f"{tool:<12}{statistics.median(ratios):>8.3f}x   {_quartiles(ratios)}   {total:>11.3f}x   "
                  f"{low:.3f}-{high:.3f}")
    if not args.rounds:
        return
    base = times["none"]
    print(f"\nseparate fits ({args.rounds} rounds): ratio = config / none in the same round")
    print(f"{'config':<12}{'ms/step':>9}{'ratio':>9}   {'q1-q3':>13}")
    for c in configs:
        ratios = [t / b for t, b in zip(times[c], base, strict=True)]
        print(f"{c:<12}{statistics.median(times[c]) * 1e3:>9.3f}{statistics.median(ratios):>8.3f}x   "
              f"{_quartiles(ratios)}")


if __name__ == "__main__":
    main()
