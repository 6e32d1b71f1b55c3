"""The one callback a user adds: turns on the monitors, runs the rules, reports the diagnosis."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info

from tunekit.callbacks._base import Monitor
from tunekit.callbacks._context import read_context
from tunekit.callbacks._pipeline_checks import PipelineChecks
from tunekit.callbacks._probing import Prober
from tunekit.callbacks._remedy import AutoRemedy
from tunekit.callbacks._reporters import reporters_for
from tunekit.callbacks.divergence import DivergenceMonitor
from tunekit.callbacks.generalization_gap import GeneralizationGapMonitor
from tunekit.callbacks.grad_norm import GradNormMonitor
from tunekit.callbacks.oscillation import OscillationMonitor
from tunekit.callbacks.plateau import PlateauMonitor
from tunekit.callbacks.saddle import SaddleMonitor
from tunekit.diagnose import Diagnosis, diagnose
from tunekit.diagnose.rules import ALL_RULES, Rule
from tunekit.exceptions import ConfigError
from tunekit.utilities.files import write_atomic

log = logging.getLogger(__name__)

DEFAULT_MONITORS: tuple[type[Monitor], ...] = (
    GradNormMonitor, DivergenceMonitor, PlateauMonitor, SaddleMonitor, OscillationMonitor, GeneralizationGapMonitor,
)


class Diagnoser(Monitor):
    """Diagnoses a training run: what is going wrong and what to change.

    Adding this one callback turns on the default monitors (gradient norms, divergence, plateau, saddle
    stall, oscillation, generalization gap; any the user added to the Trainer are used as they are, the
    rest are attached to the Trainer's signals by this callback rather than added as Trainer callbacks, see
    ``monitors``), runs the
    diagnosis rules every ``check_every_n_steps`` steps and at the end of the fit, writes
    ``<log dir>/tunekit/diagnosis.json`` (and the recorded curves, thinned, to ``signals.json`` beside it, for
    ``tunekit report``) and prints a table on rank zero.

    Args:
        check_every_n_steps: the least number of steps between runs of the rules during the fit. The rules run at
            read-backs (every ``flush_every`` steps), so with the defaults (100 and 64) they run at steps 128, 256,
            384, ...: the first read-back at least this many steps after the last check. Checking between
            read-backs would cost a device-to-host copy of its own.
        stop_on_critical: stop the fit when a finding turns critical (divergence); the decision is reduced
            across ranks. A non-finite loss stops the fit within one step (see ``DivergenceMonitor``).
        monitor: the logged validation loss (named as in Lightning's ``EarlyStopping(monitor=...)``), for the
            overfitting rule.
        probes: what-if probes: when a check finds a stall, oscillation or a finite divergence, fork the training
            state, train a few steps under each candidate remedy (and unchanged) on the same batches, compare, and
            restore the state exactly; the finding is re-labelled and its remedies re-ranked by what they did
            (``evidence["probes"]``). The run's own trajectory is unchanged.
        probe_budget: the probes' share of the fit's planned steps (their compute, forks and curvature together).
        curvature: let the probes measure the Hessian's extreme eigenvalues (about 20 steps' worth each time) to
            tell a saddle from a flat minimum and to find the edge of stability.
        auto_remedy: apply a finding's remedy to the running fit and carry on (roll back to the last healthy
            snapshot and cut the LR on a divergence, restart a warmup, decay the LR at a noise floor, ...; see
            ``tunekit.callbacks._remedy``); each intervention is listed in the diagnosis (``interventions``). One
            in-memory copy of the weights and optimizer state is kept for it.
        max_interventions: the most interventions in one fit.
        pipeline_checks: look at the training program early in the fit (see ``tunekit.callbacks._pipeline_checks``):
            trainable parameters that get no gradient or are in no optimizer, gradients never cleared, the same
            batch every step, modules in eval mode, a scheduler stepped at the wrong interval; one
            ``pipeline_fault`` finding names the objects at fault. Nothing runs after the first few steps.
        check_input_scale: with ``pipeline_checks``, measure each column of the first 4 training batches' 1-D and
            2-D float tensors (features, a regression target); columns with a root mean square over 30 are named
            with a ``normalize_inputs`` remedy (integer tensors and images are left alone).
        fit_one_batch: with ``pipeline_checks``, when the loss has stalled near its start (still above 70% of its
            initial value after 80 steps, and no divergence, instability or vanishing gradients explain it), train
            a fork on the latest batch alone with Adam (at most 30 steps at each of two LRs, then restore the state
            exactly); a model that cannot bring that batch's loss below half its start is a critical
            ``pipeline_fault`` (a detached graph, a frozen network, labels that do not match the inputs), and the
            stall findings' LR remedies are withdrawn. Once per fit.
        rank_check_every: with ``pipeline_checks`` under DDP (2+ ranks), compare the replicas' parameters (each
            tensor's sum and norm, gathered from every rank) every this many optimizer steps and at the end of
            the fit; replicas that differ are named, with the first parameter that differs. 0 turns it off.
        dirpath: where to write ``diagnosis.json``; defaults to ``<trainer.log_dir>/tunekit``. ``None`` with
            ``save=False`` writes nothing.
        save: write ``diagnosis.json`` at the end of the fit.
        verbose: print the diagnosis table at the end of the fit (rank zero only).
        flush_every, update_ratio_every: see ``Monitor``.

    Example:
        >>> import lightning.pytorch as pl
        >>> from tunekit.callbacks import Diagnoser
        >>> diagnoser = Diagnoser()
        >>> trainer = pl.Trainer(max_epochs=3, callbacks=[diagnoser])  # doctest: +SKIP
        >>> trainer.fit(model, datamodule=dm)  # doctest: +SKIP
        >>> diagnoser.diagnosis.codes  # doctest: +SKIP
        ['divergence']
    """

    rules = ALL_RULES

    def __init__(
        self,
        *,
        check_every_n_steps: int = 100,
        stop_on_critical: bool = True,
        monitor: str = "val_loss",
        dirpath: str | Path | None = None,
        save: bool = True,
        verbose: bool = True,
        probes: bool = True,
        probe_budget: float = 0.05,
        curvature: bool = True,
        auto_remedy: bool = False,
        max_interventions: int = 3,
        pipeline_checks: bool = True,
        check_input_scale: bool = True,
        fit_one_batch: bool = True,
        rank_check_every: int = 100,
        flush_every: int = 64,
        update_ratio_every: int = 100,
    ) -> None:
        super().__init__(log_metrics=False, flush_every=flush_every, update_ratio_every=update_ratio_every)
        if check_every_n_steps < 1:
            raise ConfigError(f"check_every_n_steps must be >= 1, but got {check_every_n_steps=}.")
        if not monitor:
            raise ConfigError("monitor must name the logged validation loss, e.g. monitor='val_loss'.")
        if not 0 <= probe_budget < 1:
            raise ConfigError(f"probe_budget must be a share of the fit's steps in [0, 1), but got {probe_budget=}.")
        if max_interventions < 0:
            raise ConfigError(f"max_interventions must be >= 0, but got {max_interventions=}.")
        if rank_check_every < 0:
            raise ConfigError(f"rank_check_every must be >= 0 (0 turns the DDP replica check off), but got "
                              f"{rank_check_every=}.")
        self.probes = probes
        self._prober = Prober(probe_budget, curvature=curvature)
        self.auto_remedy = auto_remedy
        self._remedy = AutoRemedy(max_interventions)
        self.check_every_n_steps = check_every_n_steps
        self.pipeline_checks = pipeline_checks
        self._pipeline = PipelineChecks(check_input_scale, fit_one_batch, rank_check_every)
        self._batch: Any = None  # the latest training batch (a reference), for the one-batch fit
        self.stop_on_critical = stop_on_critical
        self.monitor = monitor
        self.dirpath = Path(dirpath) if dirpath is not None else None
        self.save = save
        self.verbose = verbose
        self._diagnosis = Diagnosis()
        self._rules: tuple[Rule, ...] = ALL_RULES
        self._monitors: list[Monitor] = []
        self._defaults: list[Monitor] = []
        for cls in DEFAULT_MONITORS:
            kwargs: dict[str, Any] = {**self._settings}
            if cls is GeneralizationGapMonitor:
                kwargs["monitor"] = monitor
            if cls is DivergenceMonitor and auto_remedy:
                kwargs["check_finite"] = False  # a non-finite loss is rolled back here (or stops the fit here)
            self._defaults.append(cls(**kwargs))
        self._own: list[Monitor] = []  # the defaults this Diagnoser attaches (the user added no such monitor)
        self._last_check = -1
        self._reporters: list[Any] = []
        self.stop_reason: str | None = None
        self.saved_path: Path | None = None

    @property
    def diagnosis(self) -> Diagnosis:
        """The latest diagnosis: updated during the fit, final after it."""
        return self._diagnosis

    @property
    def monitors(self) -> list[Monitor]:
        """The monitors in use: those the user added to the Trainer, and the defaults attached here for the rest."""
        return list(self._monitors)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage != "fit":
            return
        callbacks: list[Callback] = trainer.callbacks  # type: ignore[attr-defined]
        users = [cb for cb in callbacks if isinstance(cb, Monitor) and not isinstance(cb, Diagnoser)]
        # The defaults listen to the Trainer's signals without being Trainer callbacks: Lightning pays about a
        # microsecond per callback for each of the dozen hooks of every step.
        self._own = [m for m in self._defaults if not any(isinstance(u, type(m)) for u in users)]
        for monitor in self._own:
            monitor.attach(self._hub)  # type: ignore[arg-type]
        self._monitors = users + self._own
        self._rules = tuple(rule for rule in ALL_RULES if any(rule in m.rules for m in self._monitors))
        self._reporters = reporters_for(trainer.loggers) if trainer.is_global_zero else []

    @property
    def probe_steps(self) -> float:
        """Training steps' worth of compute the what-if probes spent in this fit."""
        return self._prober.spent

    @property
    def interventions(self) -> list[Any]:
        """What auto-remedy applied to this fit (``tunekit.Intervention``s)."""
        return list(self._remedy.events)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.auto_remedy:
            self._remedy.before_fit(trainer)

    def on_attach(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_attach(trainer, pl_module)
        if self.probes:
            self._prober.start(trainer, pl_module)
        if self.auto_remedy:
            self._remedy.start(trainer, pl_module)
        if self.pipeline_checks:
            self._pipeline.start(trainer, pl_module)

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        super().on_before_optimizer_step(trainer, pl_module, optimizer)
        if self._pipeline.active:  # the first few steps only
            self._pipeline.before_optimizer_step(trainer, pl_module, optimizer)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if self.auto_remedy:
            self._remedy.before_step(trainer)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        if self.auto_remedy and self.attached:  # before this batch's check: a batch trained before an intervention
            self._verify(trainer, pl_module, batch)  # is not held for its verification
        self._batch = batch
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        pipeline = self._pipeline  # the early-step checks, or under DDP a replica comparison that may be due
        if pipeline.active or (pipeline.values.watching_ranks
                               and trainer.global_step >= pipeline.values.next_rank_check):
            pipeline.batch_end(trainer, batch, batch_idx)
        if not (self.probes and self.attached):
            return
        self._prober.hold(trainer, batch)
        if self._prober.ready() and self._prober.run(trainer, pl_module) is not None:
            self._check(trainer, pl_module, may_stop=True)  # the probed finding, read through its probe

    def _verify(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any) -> None:
        """Hold the batch for a waiting verification of the last intervention; run it once it has its batches."""
        self._remedy.hold(trainer, batch)
        if not self._remedy.ready():
            return
        event = self._remedy.verify(trainer, pl_module)
        if event.undone:
            self.recorder.reset_nonfinite()
            self._prober.reports.clear()
            rank_zero_info(f"tunekit: undid {event.remedy.value} {dict(event.change)} (applied at step {event.step} "
                           f"for {event.finding.value}): {event.reason}")
        self._diagnosis = Diagnosis(self._diagnosis.findings, self._remedy.events)

    @property
    def active_rules(self) -> tuple[Rule, ...]:
        """The rules of the monitors attached to the Trainer (all of them by default)."""
        return self._rules

    def on_signals(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *, nonfinite: bool) -> None:
        # Checks run at read-backs (every ``flush_every`` steps, the same steps on every rank, so the
        # reduced stop decision lines up across ranks); a non-finite step is checked at once when it can be rolled back.
        if trainer.global_step - self._last_check >= self.check_every_n_steps or (nonfinite and self.auto_remedy):
            self._check(trainer, pl_module, may_stop=True)

    def _check(self, trainer: pl.Trainer, pl_module: pl.LightningModule, may_stop: bool) -> None:
        self._last_check = trainer.global_step
        self._context = read_context(trainer, pl_module)
        full = self.recorder.record()
        record = full.since(self._remedy.since) if self.auto_remedy else full  # after an intervention: from it on
        diagnosis = diagnose(record, self._context, self._rules)
        if self.pipeline_checks:  # a model that cannot fit one batch: its stall is no LR problem, and is not probed
            self._pipeline.fit_probe(trainer, pl_module, record, self._batch, diagnosis)
            diagnosis = self._pipeline.screen(diagnosis)
        if self.probes:
            diagnosis = self._prober.apply(diagnosis, self._context)
            if may_stop:
                self._prober.want(trainer, diagnosis, self._context)
            elif self._prober.final(trainer, pl_module, diagnosis, self._context) is not None:
                diagnosis = self._pipeline.screen(diagnose(record, self._context, self._rules))
                diagnosis = self._prober.apply(diagnosis, self._context)
        if self.auto_remedy and may_stop:
            event = self._remedy.act(trainer, pl_module, diagnosis, self._context, record)
            if event is not None:
                self.recorder.reset_nonfinite()
                self._prober.reports.clear()
                self._log_intervention(trainer, event)
                rank_zero_info(f"tunekit: {event.finding.value} at step {event.step}: applied {event.remedy.value} "
                               f"{dict(event.change)} and carried on")
            else:
                self._remedy.keep(trainer, pl_module, diagnosis, record)
        pipeline = self._pipeline.finding()
        self._diagnosis = Diagnosis((*diagnosis.findings, *([pipeline] if pipeline else [])), self._remedy.events)
        record = full
        for reporter in self._reporters:
            (reporter.on_check if may_stop else reporter.on_end)(trainer, record, self._diagnosis)
        if not (may_stop and self.stop_on_critical) or (self._remedy.events and
                                                         self._remedy.events[-1].step == trainer.global_step):
            return
        # a finite divergence is certain only once its probe says the run does not come back on its own
        waiting = self._prober.waiting_for is not None and self._prober.waiting_for.code.value == "divergence"
        stop = trainer.strategy.reduce_boolean_decision(self._diagnosis.is_critical and not waiting, all=False)
        if stop and not trainer.should_stop:
            first = self._diagnosis.findings[0] if self._diagnosis.is_critical else None
            self.stop_reason = f"{first.code.value}: {first.message}" if first else "critical finding on another rank"
            rank_zero_info(f"tunekit: stopping the fit, {self.stop_reason}")
            trainer.should_stop = True

    def _log_intervention(self, trainer: pl.Trainer, event: Any) -> None:
        for logger in trainer.loggers:
            logger.log_metrics({"tunekit/intervention": 1.0}, step=event.step)

    def on_finish(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._pipeline.finish(trainer)
        self._check(trainer, pl_module, may_stop=False)
        directory = self.dirpath
        if directory is None and self.save:
            directory = Path(trainer.log_dir or trainer.default_root_dir) / "tunekit"
        if trainer.is_global_zero:
            if self.save and directory is not None:
                self.saved_path = self._diagnosis.save(directory / "diagnosis.json")
                write_atomic(directory / "signals.json", json.dumps(self.recorder.record().curves(max_points=500)))
            if self.verbose:
                from rich.console import Console

                Console().print(self._diagnosis)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["last_check"] = self._last_check
        state["diagnosis"] = self._diagnosis.to_dict()
        state["monitors"] = {type(m).__name__: m.state_dict() for m in self._own}
        state["probes"] = self._prober.state_dict()
        state["auto_remedy"] = self._remedy.state_dict()
        state["pipeline"] = self._pipeline.state_dict()
        return state

    def load_state_dict(self, state_dict: Any) -> None:
        super().load_state_dict(state_dict)
        self._last_check = int(state_dict.get("last_check", -1))
        self._diagnosis = Diagnosis.from_dict(state_dict.get("diagnosis", {}))
        saved = state_dict.get("monitors", {})
        for monitor in self._own:
            monitor.load_state_dict(saved.get(type(monitor).__name__, {}))
        self._prober.load_state_dict(state_dict.get("probes", {}))
        self._remedy.load_state_dict(state_dict.get("auto_remedy", {}))
        self._pipeline.load_state_dict(state_dict.get("pipeline", {}))

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().teardown(trainer, pl_module, stage)
        self._pipeline.stop()  # also after a fit that raised
        self._batch = None
