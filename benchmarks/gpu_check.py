"""One prepared script for a GPU machine: what only an accelerator can show about the signals layer.

    python benchmarks/gpu_check.py [--device cuda] [--out benchmarks/results/gpu_check.txt]

Checks, each printed as ok/FAIL with its numbers:

1. the non-finite watch's accelerator path: a run pushed to NaN (SGD at lr 50) is stopped within two steps of the
   first bad step (the device keeps the step and a non-blocking copy brings it back), and diagnosed
   ``divergence`` at that step;
2. fp16 with a GradScaler (``precision="16-mixed"``): a healthy run's skipped (inf-gradient) steps are not taken for
   a divergence, the norms are of the unscaled gradients;
3. bf16 (``precision="bf16-mixed"``): finite norms, a healthy diagnosis;
4. the Diagnoser's step-time overhead on the GPU: the paired-blocks method of ``overhead.py`` (recorder on and off
   on alternate blocks of steps in one fit), wall time with a device sync at each block boundary;
5. host syncs per step: ``torch.cuda.set_sync_debug_mode("warn")`` warns at every synchronizing CUDA call; the
   warnings of a fit with the Diagnoser (probes off, checks at the read-backs) against the same fit without it,
   per step (the recorder's budget: none per step, one copy per read-back, plus what a check reads).

All of it runs in about two minutes on one GPU (under five with start-up).

Never needed by ``make test``; with ``--device cpu`` it runs the checks that make sense on a CPU (1, 3, 4), which
is how the script itself is tested here.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader, TensorDataset

from tunekit.callbacks import Diagnoser
from tunekit.examples import MLP, DigitsDataModule

BLOCK = 8  # steps per on/off block of the overhead measurement
WIDE = (2048, 2048, 2048)  # a model large enough that a GPU step is not all launch latency


def _trainer(device: str, **kwargs: Any) -> pl.Trainer:
    return pl.Trainer(accelerator=device, devices=1, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, **kwargs)


def check_nan_stop(device: str) -> tuple[bool, str]:
    pl.seed_everything(0, verbose=False)
    d = Diagnoser(verbose=False, save=False)
    trainer = _trainer(device, max_epochs=10, callbacks=[d])
    trainer.fit(MLP(optimizer="sgd", lr=50.0), datamodule=DigitsDataModule())
    bad = d.recorder.first_nonfinite_step
    top = d.diagnosis.findings[0] if d.diagnosis.findings else None
    ok = (bad is not None and top is not None and top.code.value == "divergence" and top.step == bad
          and bad < trainer.global_step <= bad + 3)
    return ok, f"first bad step {bad}, stopped at {trainer.global_step}, top finding {top and top.code.value}"


def check_precision(device: str, precision: str) -> tuple[bool, str]:
    pl.seed_everything(0, verbose=False)
    d = Diagnoser(verbose=False, save=False)
    _trainer(device, max_epochs=4, callbacks=[d], precision=precision).fit(MLP(lr=1e-3),
                                                                           datamodule=DigitsDataModule())
    record = d.recorder.record()
    finite = float(torch.tensor(record.grad_norm).isfinite().float().mean())
    ok = d.diagnosis.is_healthy and record.first_nonfinite_step is None and finite > 0.9
    return ok, (f"{precision}: {finite:.0%} of steps with finite norms, median norm "
                f"{statistics.median(record.grad_norm.tolist()):.3g}, findings {d.diagnosis.codes}")


class _Blocks(Callback):
    def __init__(self, diagnoser: Diagnoser, device: str) -> None:
        self.d, self.device, self.times, self._t = diagnoser, device, {True: [], False: []}, None

    def _sync(self) -> float:
        if self.device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        step = trainer.global_step
        if step % BLOCK:
            return
        now = self._sync()
        if self._t is not None and step > 4 * BLOCK:  # warm-up blocks left out
            self.times[self._on].append((now - self._t) / BLOCK)
        self._on = (step // BLOCK) % 2 == 1
        if self.d.attached:
            self.d.recorder.enabled = self._on
        self._t = now


def check_overhead(device: str) -> tuple[bool, str]:
    pl.seed_everything(0, verbose=False)
    x, y = torch.randn(8192, 64), torch.randint(0, 10, (8192,))
    loader = DataLoader(TensorDataset(x, y), batch_size=256, shuffle=True)
    d = Diagnoser(verbose=False, save=False)
    blocks = _Blocks(d, device)
    _trainer(device, max_epochs=8, callbacks=[blocks, d], limit_val_batches=0).fit(MLP(hidden=WIDE), loader)
    pairs = list(zip(blocks.times[True], blocks.times[False], strict=False))
    ratios = [on / off for on, off in pairs]
    ratio = statistics.median(ratios)
    off_ms = statistics.median(blocks.times[False]) * 1e3
    return ratio < 1.05, f"median on/off {ratio:.3f}x over {len(pairs)} block pairs, step {off_ms:.2f} ms without"


def _count_syncs(device: str, with_diagnoser: bool) -> tuple[int, int]:
    """Synchronizing CUDA calls during a fit (counted from set_sync_debug_mode's warnings), and its steps."""
    pl.seed_everything(0, verbose=False)
    callbacks = [Diagnoser(verbose=False, save=False, probes=False, curvature=False)] if with_diagnoser else []
    trainer = _trainer(device, max_epochs=4, callbacks=callbacks, limit_val_batches=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            trainer.fit(MLP(lr=1e-3), datamodule=DigitsDataModule())
        finally:
            torch.cuda.set_sync_debug_mode(0)
    syncs = sum("synchronizing" in str(w.message).lower() for w in caught)
    return syncs, trainer.global_step


def check_syncs(device: str) -> tuple[bool, str]:
    base, steps = _count_syncs(device, with_diagnoser=False)
    watched, _ = _count_syncs(device, with_diagnoser=True)
    extra = (watched - base) / max(1, steps)
    read_backs = steps // 64 + 1  # the recorder's default flush_every, and the read at the end of the fit
    return extra <= 2 * read_backs / steps + 0.05, (
        f"{watched} syncs with the Diagnoser, {base} without, over {steps} steps: {extra:.3f} extra per step "
        f"({read_backs} read-backs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--out", type=Path, default=None, help="also write the report here")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run this on a GPU machine (or --device cpu for the CPU checks)")
    lines = [f"# python benchmarks/gpu_check.py --device {args.device}",
             f"device: {torch.cuda.get_device_name(0) if args.device == 'cuda' else 'cpu'}, torch {torch.__version__}"]
    checks = [("non-finite watch stops a NaN run", lambda: check_nan_stop(args.device)),
              ("bf16-mixed", lambda: check_precision(args.device, "bf16-mixed"))]
    if args.device == "cuda":
        checks.insert(1, ("fp16-mixed with GradScaler", lambda: check_precision(args.device, "16-mixed")))
    checks.append(("Diagnoser overhead", lambda: check_overhead(args.device)))
    if args.device == "cuda":
        checks.append(("host syncs per step", lambda: check_syncs(args.device)))
    failed = 0
    for name, run in checks:
        ok, detail = run()
        failed += not ok
        lines.append(f"{'ok  ' if ok else 'FAIL'}  {name}: {detail}")
        print(lines[-1], flush=True)
    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n")
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
