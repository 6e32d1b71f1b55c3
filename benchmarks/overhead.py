"""Step-time overhead of tunekit's Diagnoser against no callback and the tools a user would use instead.

Model: MLP 64-512-512-512-10 on sklearn's digits, batch 64, CPU, one thread. The step time is a training
epoch's time over its steps (loader, forward, backward, optimizer and every callback; no validation),
measured as the process's CPU time (``time.process_time``: one thread, no loader workers, so other load
on the machine does not inflate it).

Two measurements:

* **paired epochs** (the precise one): in each fit, tunekit's recorder (or Lightning's grad-norm
  logging) is switched on and off on alternate epochs, so "with" and "without" run in the same process,
  on the same allocator state, a few milliseconds apart. The ratio is the median over epoch pairs.
* **separate fits**, interleaved in random order within each round: none, Diagnoser, Lightning's
  documented ``self.log_dict(grad_norm(self, norm_type=2))`` in ``on_before_optimizer_step``, and
  ``wandb.watch(model, log="all", log_freq=1)`` with W&B offline (``--no-wandb`` skips it), which cannot
  be switched per epoch. Noisier: fits differ by a few percent on their own.

    python benchmarks/overhead.py [--fits 6] [--epochs 20] [--rounds 6] [--no-wandb]
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
    """CPU time per optimizer step of each training epoch; optionally toggles a switch every epoch."""

    def __init__(self, toggle: Any = None) -> None:
        self.per_step: list[float] = []
        self.toggle = toggle  # callable(trainer, pl_module, on: bool)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.toggle is not None:
            self.toggle(trainer, pl_module, trainer.current_epoch % 2 == 1)
        self._start, self._step0 = time.process_time(), trainer.global_step

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        steps = trainer.global_step - self._step0
        self.per_step.append((time.process_time() - self._start) / max(steps, 1))


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


def paired(tool: str, epochs: int, logdir: str) -> list[float]:
    """Per-pair ratios (on / off) of consecutive epochs in one fit."""
    pl.seed_everything(0, verbose=False)
    if tool == "diagnoser":
        diagnoser = Diagnoser(verbose=False, save=False)
        model: MLP = MLP(hidden=HIDDEN)

        def toggle(trainer: pl.Trainer, pl_module: pl.LightningModule, on: bool) -> None:
            diagnoser.recorder.enabled = on

        callbacks: list[Callback] = [diagnoser]
    else:
        model = LightningGradNorm(hidden=HIDDEN)

        def toggle(trainer: pl.Trainer, pl_module: pl.LightningModule, on: bool) -> None:
            pl_module.track = on  # type: ignore[attr-defined]

        callbacks = []
    timer = EpochTimer(toggle)
    _trainer(epochs, [timer, *callbacks], CSVLogger(logdir, name=tool)).fit(model, _loader())
    times = timer.per_step[2:]  # drop the warm-up pair
    return [times[i + 1] / times[i] for i in range(0, len(times) - 1, 2)]


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
        pair_ratios: dict[str, list[float]] = {"diagnoser": [], "lightning": []}
        for f in range(args.fits):
            for tool in rng.sample(list(pair_ratios), k=2):
                pair_ratios[tool] += paired(tool, args.epochs, logdir)
            print(f"paired fit {f + 1}/{args.fits}: " + "  ".join(
                f"{t} {statistics.median(r):.3f}x" for t, r in pair_ratios.items()), flush=True)
        configs = ["none", "diagnoser", "lightning"] + ([] if args.no_wandb else ["wandb_watch"])
        times: dict[str, list[float]] = {c: [] for c in configs}
        for r in range(args.rounds):
            for c in rng.sample(configs, k=len(configs)):
                times[c].append(separate(c, 4, logdir))
            print(f"round {r + 1}/{args.rounds}: " + "  ".join(f"{c} {times[c][-1] * 1e3:.2f} ms" for c in configs),
                  flush=True)
    print("\nMLP 64-512-512-512-10, sklearn digits, batch 64, CPU, 1 thread")
    if args.fits:
        print(f"\npaired epochs ({sum(len(r) for r in pair_ratios.values())} epoch pairs): ratio = on / off")
        print(f"{'tool':<12}{'ratio':>9}   {'q1-q3':>13}")
        for tool, ratios in pair_ratios.items():
            print(f"{tool:<12}{statistics.median(ratios):>8.3f}x   {_quartiles(ratios)}")
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
