"""Short training runs driven by a fixed LR program: the range-test sweep and the confirmation runs.

Each run is a real ``Trainer.fit`` of the module (its own ``configure_optimizers``, any optimizer and param
groups); a callback sets every group's LR each step, keeping the ratios between groups the module chose,
and the module's own LR schedulers are set aside for the run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

from tunekit.lr_finder._curve import DIVERGE_FACTOR, SMOOTHING
from tunekit.utilities.lightning import quiet_lightning


@dataclass
class RunLog:
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    diverged: bool = False


class _LRProgram(Callback):
    def __init__(self, lr_at: Callable[[int], float], stop_on_divergence: bool) -> None:
        self.lr_at = lr_at
        self.stop_on_divergence = stop_on_divergence
        self.record = RunLog()
        self._avg = 0.0
        self._best = math.inf
        self._window: list[float] = []  # the losses of the micro-batches since the last optimizer step
        self._step_before = 0
        self.first_step = 0

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if len(trainer.optimizers) != 1:
            raise ValueError(f"the LR range test needs one optimizer, but the module configured "
                             f"{len(trainer.optimizers)}.")
        groups = trainer.optimizers[0].param_groups
        first = groups[0]["lr"] or 1.0
        self._ratios = [g["lr"] / first if first else 1.0 for g in groups]
        trainer.strategy.lr_scheduler_configs = []  # the program decides the LR, not the module's schedule

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.first_step = trainer.global_step  # after a resumed checkpoint's state is restored

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self._step_before = trainer.global_step
        lr = self.lr_at(trainer.global_step)
        for group, ratio in zip(trainer.optimizers[0].param_groups, self._ratios, strict=True):
            group["lr"] = lr * ratio

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        # one record per optimizer step, not per micro-batch: under gradient accumulation the loss of a step is the
        # mean of its micro-batches' losses (Lightning hands each one over divided by the accumulation factor)
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor):
            scale = trainer.accumulate_grad_batches if pl_module.automatic_optimization else 1
            self._window.append(float(loss) * scale)
        if trainer.global_step == self._step_before:
            return  # still accumulating
        window, self._window = self._window, []
        if not window:
            return
        value = sum(window) / len(window)
        step = len(self.record.losses)
        self.record.lrs.append(trainer.optimizers[0].param_groups[0]["lr"] / self._ratios[0])
        self.record.losses.append(value)
        self._avg = SMOOTHING * self._avg + (1 - SMOOTHING) * value
        smooth = self._avg / (1 - SMOOTHING ** (step + 1))
        if not math.isfinite(smooth) or (step > 0 and smooth > DIVERGE_FACTOR * self._best):
            self.record.diverged = True
            if self.stop_on_divergence:
                trainer.should_stop = True
        self._best = min(self._best, smooth)


def run_program(model: pl.LightningModule, data: dict[str, Any], lr_at: Callable[[int], float], steps: int, *,
                stop_on_divergence: bool, seed: int, trainer_kwargs: dict[str, Any], resume: str | None = None,
                save: str | None = None) -> tuple[RunLog, int]:
    """Train ``model`` up to optimizer step ``steps`` under the LR program; returns its log (one point per
    optimizer step) and the optimizer steps it took (under gradient accumulation a step is several
    micro-batches; a resumed run counts only its own steps). ``resume`` continues from a checkpoint of an
    earlier run (its optimizer state too); ``save`` writes one at the end."""
    pl.seed_everything(seed, verbose=False)
    program = _LRProgram(lr_at, stop_on_divergence)
    with quiet_lightning():
        trainer = pl.Trainer(max_steps=steps, callbacks=[program], **_quiet(trainer_kwargs))
        trainer.fit(model, ckpt_path=resume, **data)
        if save is not None:
            trainer.save_checkpoint(save)
    return program.record, trainer.global_step - program.first_step


def evaluate(model: pl.LightningModule, data: dict[str, Any], monitor: str,
             trainer_kwargs: dict[str, Any]) -> float | None:
    """The module's validation metric ``monitor`` on the validation data, or None without it."""
    loaders = data.get("val_dataloaders")
    datamodule = data.get("datamodule")
    if loaders is None and (datamodule is None or not _has_val(datamodule)):
        return None
    with quiet_lightning():
        trainer = pl.Trainer(**{**_quiet(trainer_kwargs), "limit_val_batches": 1.0})
        results = trainer.validate(model, dataloaders=loaders, datamodule=datamodule, verbose=False)
    value = results[0].get(monitor) if results else None
    return float(value) if value is not None else None


def _has_val(datamodule: Any) -> bool:
    method = getattr(type(datamodule), "val_dataloader", None)
    return method is not None and method is not pl.LightningDataModule.val_dataloader


def _quiet(kwargs: dict[str, Any]) -> dict[str, Any]:
    base = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
            "enable_model_summary": False, "num_sanity_val_steps": 0, "limit_val_batches": 0, "devices": 1}
    return {**base, **kwargs}
