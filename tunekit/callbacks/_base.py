"""The base of tunekit's monitors: a thin Lightning shell over the Trainer's shared ``SignalRecorder``.

A monitor has two kinds of hooks. Its Lightning hooks run only on the monitor that feeds the Trainer's
recorder (the first one set up, see ``SignalHub``); that one tells every subscribed monitor through the
*signal hooks*, which subclasses override:

* ``on_attach``: the fit started and the recorder is bound;
* ``on_signals``: new steps reached the host (a read-back), or a step went non-finite;
* ``on_validation``: a validation run ended;
* ``on_finish``: the fit ended and the last steps were read back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from tunekit.callbacks._context import read_context
from tunekit.callbacks._hub import SignalHub, hub_for
from tunekit.callbacks._manual import ManualLoss
from tunekit.diagnose import Finding, RunContext, diagnose
from tunekit.diagnose.rules import Rule
from tunekit.exceptions import ConfigError
from tunekit.record import RunRecord
from tunekit.signals import SignalRecorder
from tunekit.utilities.lightning import grad_scaler_of, planned_steps


class Monitor(Callback):
    """Base class of the monitors: records the shared signals and logs this monitor's metrics.

    Subclasses set ``rules`` (the diagnosis rules this monitor answers for), may override ``metrics(record)``
    (values logged through the Trainer's loggers under ``tunekit/``) and the signal hooks.

    Args:
        log_metrics: log this monitor's metrics through the Trainer's loggers.
        flush_every: optimizer steps between read-backs of the device buffer (see ``SignalRecorder``).
        update_ratio_every: steps between update/weight ratio samples; 0 turns them off.
    """

    rules: ClassVar[tuple[Rule, ...]] = ()

    def __init__(self, *, log_metrics: bool = True, flush_every: int = 64, update_ratio_every: int = 100) -> None:
        if flush_every < 1:
            raise ConfigError(f"flush_every must be >= 1, but got {flush_every=}.")
        if update_ratio_every < 0:
            raise ConfigError(f"update_ratio_every must be >= 0 (0 turns it off), but got {update_ratio_every=}.")
        self.log_metrics = log_metrics
        self._settings = {"flush_every": flush_every, "update_ratio_every": update_ratio_every}
        self._key: dict[str, Any] = {"log_metrics": log_metrics, **self._settings}  # tells two of a class apart
        self._hub: SignalHub | None = None
        self._context = RunContext()
        self._logged_step = -1
        self._manual = ManualLoss()  # the loss of a module that optimizes by hand (the feeder reads it)

    @property
    def state_key(self) -> str:
        return self._generate_state_key(**self._key)

    # ------------------------------------------------------------------ Lightning hooks (the feeder acts)
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self.attach(hub_for(trainer, **self._settings))

    def attach(self, hub: SignalHub) -> None:
        """Listen to ``hub`` (a Diagnoser attaches the monitors it runs itself this way)."""
        self._hub = hub
        hub.subscribe(self)

    @property
    def _feeds(self) -> bool:
        return self._hub is not None and self._hub.feeder is self

    def _subscribers(self) -> list[Monitor]:
        return list(self._hub.monitors) if self._hub is not None else []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._feeds:
            return
        self._manual.attach(pl_module)
        if not self.recorder.is_bound_to(pl_module):
            self.recorder.bind(pl_module, total_steps=planned_steps(trainer),
                               grad_scaler=grad_scaler_of(trainer) is not None, world_size=trainer.world_size,
                               accumulate=trainer.accumulate_grad_batches)
        for monitor in self._subscribers():
            monitor.on_attach(trainer, pl_module)

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        if self._feeds:
            self._hub.recorder.capture_gradients(  # type: ignore[union-attr]
                trainer.global_step, [g["lr"] for g in optimizer.param_groups])

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        if not self._feeds:
            return
        recorder = self._hub.recorder  # type: ignore[union-attr]
        flushes = recorder.flushes
        nonfinite = recorder.capture_loss(self._manual.loss(outputs, trainer), trainer.global_step, batch, batch_idx)
        if nonfinite or recorder.flushes != flushes:
            for monitor in self._subscribers():
                monitor.on_signals(trainer, pl_module, nonfinite=nonfinite)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._feeds and not trainer.sanity_checking and trainer.state.fn == "fit":
            for monitor in self._subscribers():
                monitor.on_validation(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._manual.detach()
        if self._feeds and self.recorder.started:
            self.recorder.flush()  # the last few steps, which no periodic read-back has brought yet
            for monitor in self._subscribers():
                monitor.on_finish(trainer, pl_module)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._manual.detach()  # also after a fit that raised (on_train_end never ran)

    # ------------------------------------------------------------------ signal hooks (every subscriber)
    def on_attach(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """The fit started and the recorder is bound to its module."""
        self._context = read_context(trainer, pl_module)

    def on_signals(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *, nonfinite: bool) -> None:
        """New signals reached the host (a read-back, or a non-finite step): log this monitor's metrics."""
        self._log_new(trainer)

    def on_validation(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """A validation run of the fit ended."""

    def on_finish(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """The fit ended; the recorder holds every step."""
        self._log_new(trainer)

    # ------------------------------------------------------------------ logging
    @property
    def attached(self) -> bool:
        """Whether a fit has attached this monitor to its signals yet."""
        return self._hub is not None and self._hub.recorder.started

    @property
    def recorder(self) -> SignalRecorder:
        if self._hub is None:
            raise RuntimeError(f"{type(self).__name__} is not attached to a fitting Trainer yet: pass it in "
                               "Trainer(callbacks=[...]) and call trainer.fit().")
        return self._hub.recorder

    def _log_new(self, trainer: pl.Trainer) -> None:
        """Log what this monitor shows for the rows that reached the host since it last logged."""
        if not (self.log_metrics and trainer.loggers):
            return
        record = self.recorder.record(flush=False)  # only what the last read-back brought: no extra sync
        every = max(1, trainer.log_every_n_steps)  # type: ignore[attr-defined]
        new = int(np.searchsorted(record.steps, self._logged_step, side="right"))  # steps are in order
        rows = new + np.flatnonzero((record.steps[new:] + 1) % every == 0)
        points = [(int(record.steps[i]), self.step_metrics(record, int(i))) for i in rows]
        points += self.sampled_metrics(record, self._logged_step)
        if not points:
            return  # nothing due at the Trainer's logging cadence: the state is logged with the next rows
        for step, values in sorted(points, key=lambda p: p[0]):
            metrics = {k: v for k, v in values.items() if math.isfinite(v)}
            for logger in trainer.loggers:
                mine = {k: v for k, v in metrics.items() if self.logs_to(logger, k)}
                if mine:
                    logger.log_metrics(mine, step=step)
        if len(record):
            self._logged_step = record.last_step
            state = {k: v for k, v in self.metrics(record).items() if math.isfinite(v)}
            if state:
                for logger in trainer.loggers:
                    logger.log_metrics(state, step=record.last_step)

    def logs_to(self, logger: Any, key: str) -> bool:
        """Whether ``key`` goes to ``logger`` (all keys by default)."""
        return True

    def step_metrics(self, record: RunRecord, index: int) -> dict[str, float]:
        """Per-step values to log for the entry ``index`` of ``record`` (none by default)."""
        return {}

    def sampled_metrics(self, record: RunRecord, after_step: int) -> list[tuple[int, dict[str, float]]]:
        """Values sampled at their own steps (not every step), logged whenever they are new."""
        return []

    def metrics(self, record: RunRecord) -> dict[str, float]:
        """This monitor's state, logged at each read-back (none by default)."""
        return {}

    # ------------------------------------------------------------------ results
    @property
    def findings(self) -> list[Finding]:
        """What this monitor's rules find in the run so far (most important first)."""
        if not self.attached:
            return []
        return list(diagnose(self.recorder.record(), self._context, self.active_rules).findings)

    @property
    def active_rules(self) -> tuple[Rule, ...]:
        """The rules this monitor runs."""
        return self.rules

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"logged_step": self._logged_step}
        if self._feeds:  # the shared signals are saved once, by the monitor that feeds them
            state["signals"] = self.recorder.state_dict()
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        self._logged_step = int(state_dict.get("logged_step", -1))
        signals = state_dict.get("signals")
        if signals is not None and self._hub is not None:
            self._hub.recorder.load_state_dict(signals)
