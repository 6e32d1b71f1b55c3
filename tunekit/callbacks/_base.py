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
from tunekit.exceptions import ConfigError
from tunekit.signals import SignalRecorder


class _Shared:
    """What the monitors of one Trainer share: the recorder, and who subscribed (the first one feeds it)."""

    def __init__(self, recorder: SignalRecorder) -> None:
        self.recorder = recorder
        self.monitors: list[Monitor] = []


_SHARED: WeakKeyDictionary[pl.Trainer, _Shared] = WeakKeyDictionary()


def _shared_for(trainer: pl.Trainer, **settings: Any) -> _Shared:
    shared = _SHARED.get(trainer)
    if shared is None:
        shared = _SHARED[trainer] = _Shared(SignalRecorder(**settings))
    return shared


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

    def __init__(self, *, log_metrics: bool = True, flush_every: int = 32, update_ratio_every: int = 100) -> None:
        if flush_every < 1:
            raise ConfigError(f"flush_every must be >= 1, but got {flush_every=}.")
        if update_ratio_every < 0:
            raise ConfigError(f"update_ratio_every must be >= 0 (0 turns it off), but got {update_ratio_every=}.")
        self.log_metrics = log_metrics
        self._settings = {"flush_every": flush_every, "update_ratio_every": update_ratio_every}
        self._recorder: SignalRecorder | None = None
        self._shared: _Shared | None = None
        self._context = RunContext()
        self._logged_step = -1

    # ------------------------------------------------------------------ lifecycle
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        self._shared = _shared_for(trainer, **self._settings)
        self._recorder = self._shared.recorder
        if self not in self._shared.monitors:
            self._shared.monitors.append(self)

    @property
    def _feeds(self) -> bool:
        """The first monitor of a Trainer feeds the recorder; the others hear of read-backs from it."""
        return self._shared is not None and self._shared.monitors[0] is self

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        recorder = self.recorder
        if not recorder.is_bound_to(pl_module):
            recorder.bind(pl_module, total_steps=_planned_steps(trainer),
                          grad_scaler=getattr(trainer.precision_plugin, "scaler", None) is not None,
                          world_size=trainer.world_size)
        self._context = read_context(trainer, pl_module)

    @property
    def attached(self) -> bool:
        """Whether a fit has attached this monitor to its signals yet."""
        return self._recorder is not None and self._recorder.table is not None

    @property
    def recorder(self) -> SignalRecorder:
        if self._recorder is None:
            raise RuntimeError(f"{type(self).__name__} is not attached to a fitting Trainer yet: pass it in "
                               "Trainer(callbacks=[...]) and call trainer.fit().")
        return self._recorder

    # ------------------------------------------------------------------ per step
    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        if self._feeds:
            self.recorder.capture_gradients(trainer.global_step, [g["lr"] for g in optimizer.param_groups])

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        if not self._feeds:
            return
        recorder = self.recorder
        flushes = recorder.flushes
        nonfinite = recorder.capture_loss(outputs, trainer.global_step)
        if nonfinite or recorder.flushes != flushes:
            for monitor in list(self._shared.monitors):  # type: ignore[union-attr]
                monitor.on_signals(trainer, pl_module, nonfinite=nonfinite)

    def on_signals(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *, nonfinite: bool) -> None:
        """New signals reached the host (a read-back, or a non-finite step): log this monitor's metrics."""
        self._log_new(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._recorder is not None and self._recorder.table is not None:
            self._recorder.flush()  # the last few steps, which no periodic read-back has brought yet
            self._log_new(trainer)

    def _log_new(self, trainer: pl.Trainer) -> None:
        """Log what this monitor shows for the rows that reached the host since it last logged."""
        if not (self.log_metrics and trainer.loggers):
            return
        record = self.recorder.record(flush=False)  # only what the last read-back brought: no extra sync
        every = max(1, trainer.log_every_n_steps)  # type: ignore[attr-defined]
        rows = np.flatnonzero((record.steps > self._logged_step) & ((record.steps + 1) % every == 0))
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
        if self._recorder is None or self._recorder.table is None:
            return []
        return list(diagnose(self._recorder.record(), self._context, self.active_rules).findings)

    @property
    def active_rules(self) -> tuple[Rule, ...]:
        """The rules this monitor runs."""
        return self.rules

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
