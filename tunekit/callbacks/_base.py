"""The base of tunekit's monitors: a thin Lightning shell over the run's shared ``SignalRecorder``.

Every monitor of one Trainer shares one recorder, so the signals are computed once per step however
many monitors are attached: the first monitor whose hook runs does the work, the others find it done.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar
from weakref import WeakKeyDictionary

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from tunekit.callbacks._context import read_context
from tunekit.diagnose import Finding, RunContext, RunRecord, diagnose
from tunekit.diagnose.rules import Rule
from tunekit.signals import SignalRecorder

_RECORDERS: WeakKeyDictionary[pl.Trainer, SignalRecorder] = WeakKeyDictionary()


def recorder_for(trainer: pl.Trainer, **settings: Any) -> SignalRecorder:
    """The recorder shared by all monitors of ``trainer`` (created by the first to ask, with its settings)."""
    recorder = _RECORDERS.get(trainer)
    if recorder is None:
        recorder = _RECORDERS[trainer] = SignalRecorder(**settings)
    return recorder


def _planned_steps(trainer: pl.Trainer) -> int | None:
    try:
        steps = trainer.estimated_stepping_batches
    except Exception:  # no loader length (iterable datasets): the plan is unknown
        return None
    return int(steps) if steps is not None and math.isfinite(steps) else None


class Monitor(Callback):
    """Base class of the monitors: records the shared signals and logs this monitor's metrics.

    Subclasses set ``rules`` (the diagnosis rules this monitor answers for) and may override
    ``metrics(record)`` (values logged through the Trainer's loggers under ``tunekit/``).

    Args:
        log_metrics: log this monitor's metrics through the Trainer's loggers.
        flush_every: optimizer steps between read-backs of the device buffer (see ``SignalRecorder``).
        update_ratio_every: steps between update/weight ratio samples; 0 turns them off.
    """

    rules: ClassVar[tuple[Rule, ...]] = ()

    def __init__(self, *, log_metrics: bool = True, flush_every: int = 32, update_ratio_every: int = 50) -> None:
        if flush_every < 1:
            raise ValueError(f"flush_every must be >= 1, but got {flush_every=}.")
        if update_ratio_every < 0:
            raise ValueError(f"update_ratio_every must be >= 0 (0 turns the ratio off), but got {update_ratio_every=}.")
        self.log_metrics = log_metrics
        self._settings = {"flush_every": flush_every, "update_ratio_every": update_ratio_every}
        self._recorder: SignalRecorder | None = None
        self._context = RunContext()
        self._logged_step = -1
        self._flushes_seen = 0

    # ------------------------------------------------------------------ lifecycle
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._recorder = recorder_for(trainer, **self._settings)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        recorder = self.recorder
        if not recorder.is_bound_to(pl_module):
            recorder.bind(pl_module, total_steps=_planned_steps(trainer),
                          grad_scaler=getattr(trainer.precision_plugin, "scaler", None) is not None,
                          world_size=trainer.world_size)
        self._context = read_context(trainer, pl_module)

    @property
    def recorder(self) -> SignalRecorder:
        if self._recorder is None:
            raise RuntimeError(f"{type(self).__name__} is not attached to a fitting Trainer yet: pass it in "
                               "Trainer(callbacks=[...]) and call trainer.fit().")
        return self._recorder

    # ------------------------------------------------------------------ per step
    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        if self._recorder is not None:
            self._recorder.capture_gradients(trainer.global_step, optimizer.param_groups[0]["lr"])

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        recorder = self._recorder
        if recorder is None:
            return
        recorder.capture_loss(outputs, trainer.global_step, (trainer.current_epoch, batch_idx, trainer.global_step))
        if recorder.flushes != self._flushes_seen:
            self._flushes_seen = recorder.flushes
            self._on_flush(trainer, pl_module)

    def _on_flush(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """New rows reached the host: log what this monitor shows."""
        if not (self.log_metrics and trainer.loggers):
            return
        record = self.recorder.record(flush=False)  # only what the last read-back brought: no extra sync
        every = max(1, trainer.log_every_n_steps)
        rows = np.flatnonzero((record.steps > self._logged_step) & ((record.steps + 1) % every == 0))
        for i in rows:
            metrics = {k: v for k, v in self.step_metrics(record, int(i)).items() if math.isfinite(v)}
            if metrics:
                for logger in trainer.loggers:
                    logger.log_metrics(metrics, step=int(record.steps[i]))
        if len(record):
            self._logged_step = record.last_step
            state = {k: v for k, v in self.metrics(record).items() if math.isfinite(v)}
            if state:
                for logger in trainer.loggers:
                    logger.log_metrics(state, step=record.last_step)

    def step_metrics(self, record: RunRecord, index: int) -> dict[str, float]:
        """Per-step values to log for the entry ``index`` of ``record`` (none by default)."""
        return {}

    def metrics(self, record: RunRecord) -> dict[str, float]:
        """This monitor's state, logged at each read-back (none by default)."""
        return {}

    # ------------------------------------------------------------------ results
    @property
    def findings(self) -> list[Finding]:
        """What this monitor's rules find in the run so far (most important first)."""
        if self._recorder is None or self._recorder.table is None:
            return []
        return list(diagnose(self._recorder.record(), self._context, self.rules).findings)

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"logged_step": self._logged_step}
        if self._recorder is not None:
            state["signals"] = self._recorder.state_dict()
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        self._logged_step = int(state_dict.get("logged_step", -1))
        signals = state_dict.get("signals")
        if signals is not None and self._recorder is not None:
            self._recorder.load_state_dict(signals)
