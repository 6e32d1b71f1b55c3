"""The Diagnoser's pipeline checks: the live module, optimizers, loader and schedulers inspected early in a fit.

* at the start of the fit: modules in eval mode (``eval_mode``), schedulers stepped at the wrong interval
  (``schedule_interval``), read from ``trainer.lr_scheduler_configs``;
* over the first ``CHECK_AT_STEP`` optimizer steps: which trainable parameters get a gradient; at that step, those
  that got none or are in no optimizer (``no_gradient``, ``not_in_optimizer``), and eval mode again;
* over the first ``CLEARING_WINDOW`` steps: whether each step's gradient is still there at the next backward
  (``gradients_never_cleared``), one watched parameter, one hook;
* over the first ``FINGERPRINT_BATCHES`` batches of the first epoch: whether they are all the same
  (``repeated_batch``);
* the checks on values (``tunekit.callbacks._pipeline_values``): the scale of the first batches' columns
  (``input_scale``), a one-batch fit when the loss stalls near its start (``unfittable_batch``), and under DDP the
  replicas' parameters every ``rank_check_every`` steps (``ranks_out_of_step``).

The gradient checks (parameters, clearing) are skipped under DeepSpeed, FSDP and ModelParallel strategies, which
keep gradients and optimizer state in their own flattened or sharded buffers rather than in ``param.grad`` and the
module's own parameters.

After those windows every hook returns on one flag test (and, under DDP, one comparison of the step with the next
replica check): nothing else runs on later steps. The rules that decide and word
each fault are in ``tunekit.diagnose.rules._pipeline``; the faults become one ``pipeline_fault`` finding.
"""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.strategies import DeepSpeedStrategy, FSDPStrategy, ModelParallelStrategy
from lightning.pytorch.utilities import rank_zero_warn

from tunekit.callbacks._pipeline_values import ValueChecks
from tunekit.diagnose import Diagnosis, Finding
from tunekit.diagnose.rules._pipeline import (
    PipelineFault,
    eval_mode_fault,
    pipeline_finding,
    repeated_batch_fault,
    schedule_interval_fault,
    uncleared_gradients_fault,
    unlearned_parameter_faults,
)
from tunekit.record import RunRecord
from tunekit.signals._pipeline import (
    ClearingWatch,
    batch_fingerprint,
    eval_mode_modules,
    mark_gradients,
    rises,
    samples_differ,
    scheduler_horizon,
    trainable_parameters,
    unlearned_parameters,
    warmup_peak,
)
from tunekit.utilities.lightning import planned_steps

CHECK_AT_STEP = 3  # optimizer steps whose gradients are looked at before a parameter is said to get none
CLEARING_WINDOW = 8  # optimizer steps over which the clearing of gradients is watched (4 observations wanted)
CLEARING_OBSERVATIONS = 4  # steps seen, then the watch's hook is removed
FINGERPRINT_BATCHES = 8  # batches of the first epoch compared for "the same batch every step"
SHARDING = (DeepSpeedStrategy, FSDPStrategy, ModelParallelStrategy)  # their optimizers hold copies or shards


def schedule_entries(trainer: pl.Trainer) -> list[dict[str, Any]]:
    """Each LR scheduler's interval, frequency and horizon (or LambdaLR warmup end) with the fit's planned epochs
    and optimizer steps, for ``schedule_interval_fault``; none under manual optimization, where the module steps its
    schedulers itself and Lightning ignores the interval."""
    module = trainer.lightning_module
    if module is None or not module.automatic_optimization:
        return []
    steps = planned_steps(trainer)
    batches = trainer.num_training_batches
    if not steps or not isinstance(batches, int) or not math.isfinite(batches) or batches < 1:
        return []
    epochs = math.ceil(steps / math.ceil(batches / max(1, trainer.accumulate_grad_batches)))
    entries = []
    for config in trainer.lr_scheduler_configs:
        scheduler = config.scheduler
        entry: dict[str, Any] = {"scheduler": type(scheduler).__name__, "interval": config.interval,
                                 "frequency": int(config.frequency), "epochs": epochs, "steps": steps}
        horizon = scheduler_horizon(scheduler)
        if horizon is not None:
            entry.update(horizon_name=horizon[0], horizon=horizon[1], warmup=rises(scheduler))
        elif isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR) and config.interval == "epoch":
            entry["warmup_peak"] = warmup_peak(scheduler.lr_lambdas[0], steps)
        entries.append(entry)
    return entries


class PipelineChecks:
    """Runs the checks above on one fit and keeps the faults found (``faults``, ``finding()``); ``values`` runs the
    checks on values, with their switches (see ``ValueChecks``)."""

    def __init__(self, input_scale: bool = True, one_batch: bool = True, rank_check_every: int = 100) -> None:
        self.values = ValueChecks(input_scale, one_batch, rank_check_every)
        self.faults: dict[str, PipelineFault] = {}
        self.active = False
        self._params: list[tuple[str, torch.nn.Parameter]] = []
        self._seen: set[str] = set()
        self._start = 0
        self._params_checked = False
        self._marked = 0  # optimizer steps whose gradients were looked at
        self._watch: ClearingWatch | None = None
        self._clearing_done = False
        self._fingerprints: list[torch.Tensor] = []
        self._fingerprint_epoch: int | None = None

    def _add(self, *faults: PipelineFault | None) -> None:
        for fault in faults:
            if fault is not None and fault.check not in self.faults:
                self.faults[fault.check] = fault
                rank_zero_warn(f"tunekit: pipeline fault: {fault.message}")

    def start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """At the start of the fit: eval-mode modules and scheduler intervals; arm the early-step checks."""
        self.stop()
        self.active = True
        self._start = trainer.global_step
        own_gradients = not isinstance(trainer.strategy, SHARDING)
        self._params = trainable_parameters(pl_module) if own_gradients else []  # [] : nothing to judge
        self._seen, self._marked, self._params_checked, self._clearing_done = set(), 0, False, not own_gradients
        self._fingerprints, self._fingerprint_epoch = [], trainer.current_epoch
        self.values.start(trainer, pl_module)
        self._add(eval_mode_fault(self._start, eval_mode_modules(pl_module, type(pl_module).__name__)),
                  schedule_interval_fault(self._start, schedule_entries(trainer)))

    def before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                              optimizer: torch.optim.Optimizer) -> None:
        """Gradients are in place and about to be applied (automatic and manual optimization alike)."""
        done = trainer.global_step - self._start  # optimizer steps taken before this one
        if not self._params_checked:
            if done < CHECK_AT_STEP:
                mark_gradients(self._params, self._seen)
                self._marked += 1
            else:
                self._check_parameters(trainer, pl_module)
        if not self._clearing_done:
            self._watch_clearing(trainer, pl_module, optimizer, done)
        self._update_active()

    def _update_active(self) -> None:
        self.active = not (self._params_checked and self._clearing_done and self._fingerprint_epoch is None
                           and not self.values.scale_open)

    def _check_parameters(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        no_gradient, not_optimized = unlearned_parameters(self._params, self._seen, trainer.optimizers)
        step = trainer.global_step
        self._add(*unlearned_parameter_faults(step, no_gradient, not_optimized, len(self._params)),
                  eval_mode_fault(step, eval_mode_modules(pl_module, type(pl_module).__name__)))
        self._params_checked = True

    def _watch_clearing(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer,
                        done: int) -> None:
        if self._watch is None:
            held = next(((n, p) for n, p in self._params if p.grad is not None), None)
            if held is None or done >= CLEARING_WINDOW:
                self._clearing_done = done >= CLEARING_WINDOW
                return
            self._watch = ClearingWatch(*held)
        if self._watch.seen >= CLEARING_OBSERVATIONS or done >= CLEARING_WINDOW:
            self._conclude_clearing(trainer, pl_module)
        elif self._watch.applied_by(optimizer):
            self._watch.arm()  # this optimizer applies the watched gradient: the next backward must find it cleared

    def _conclude_clearing(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._watch is not None:
            self._watch.remove()
            self._add(uncleared_gradients_fault(trainer.global_step, self._watch.name, self._watch.carried(),
                                                manual=not pl_module.automatic_optimization))
        self._watch, self._clearing_done = None, True

    def batch_end(self, trainer: pl.Trainer, batch: Any, batch_idx: int) -> None:
        """Fingerprint the first batches of the first epoch; compare them once enough are held or the epoch ends.
        Measure the first batches' scale; compare the DDP replicas when due."""
        if self.values.scale_open:
            self._add(self.values.measure(trainer, batch))
            self._update_active()
        if self.values.watching_ranks and trainer.global_step >= self.values.next_rank_check:
            self._add(self.values.compare_ranks(trainer))
        if self._fingerprint_epoch is None:
            return
        if trainer.current_epoch == self._fingerprint_epoch and len(self._fingerprints) < FINGERPRINT_BATCHES:
            fingerprint = batch_fingerprint(batch)
            if fingerprint is not None:
                self._fingerprints.append(fingerprint)
        if trainer.current_epoch != self._fingerprint_epoch or len(self._fingerprints) >= FINGERPRINT_BATCHES:
            self._compare_batches(trainer, batch)

    def _compare_batches(self, trainer: pl.Trainer, batch: Any = None) -> None:
        prints = [f.cpu().tolist() for f in self._fingerprints]  # one read-back, once
        whole = _yields_whole_batches(trainer) and samples_differ(batch)  # once per fit: one comparison, one read-back
        self._add(repeated_batch_fault(trainer.global_step, prints, whole_batches=whole))
        self._fingerprints, self._fingerprint_epoch = [], None
        self._update_active()

    def fit_probe(self, trainer: pl.Trainer, pl_module: pl.LightningModule, record: RunRecord, batch: Any,
                  diagnosis: Diagnosis) -> None:
        """At a check: when the loss has stalled near its start, can the model fit one batch? (once per fit)"""
        self._add(self.values.fit_probe(trainer, pl_module, record, batch, diagnosis))

    def screen(self, diagnosis: Diagnosis) -> Diagnosis:
        """The diagnosis without the stall findings when the model cannot fit one batch."""
        return self.values.screen(diagnosis, self.faults)

    def finish(self, trainer: pl.Trainer) -> None:
        """The fit ended: conclude what a fit shorter than the windows left open (the parameters, when at least one
        step was seen; the clearing watch and the batches on what they hold) and stop."""
        if not self._params_checked and self._marked:
            self._check_parameters(trainer, trainer.lightning_module)
        if self._watch is not None:
            self._conclude_clearing(trainer, trainer.lightning_module)
        if self._fingerprint_epoch is not None:
            self._compare_batches(trainer)
        self._add(*self.values.finish(trainer))
        self.stop()

    def stop(self) -> None:
        """Take the hook off (end of the fit, teardown, or a new fit)."""
        if self._watch is not None:
            self._watch.remove()
            self._watch = None
        self.active = False

    def finding(self) -> Finding | None:
        """The ``pipeline_fault`` finding for every fault found so far, or None."""
        return pipeline_finding(list(self.faults.values()))

    def state_dict(self) -> dict[str, Any]:
        return {"faults": [f.to_dict() for f in self.faults.values()]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for data in state.get("faults", []):
            fault = PipelineFault.from_dict(data)
            self.faults.setdefault(fault.check, fault)


def _yields_whole_batches(trainer: pl.Trainer) -> bool:
    """The training loader is one DataLoader whose dataset yields whole batches (``batch_size=None``: no
    collation), the way full-batch training hands the whole set over as every item."""
    loader = trainer.train_dataloader
    return isinstance(loader, torch.utils.data.DataLoader) and loader.batch_size is None
