"""Auto-remedy: a finding's remedy applied to the running fit, and the fit carried on.

One in-memory snapshot of the training state (weights, optimizer state, schedulers, grad scaler) is kept on the
device: taken at the start of the fit, then at a check where the run is healthy and its validation loss is no worse
than its best, when a new validation loss reached that best since the last snapshot or the last snapshot is older
than ``SNAPSHOT_MAX_AGE`` of the steps so far. A snapshot costs a copy of the weights and of the optimizer state
(Adam: three times the weights' bytes; 0.7-0.9 of a training step for an MLP of 0.6M weights on a CPU,
``benchmarks/snapshot_cost.py``) and holds that much device memory. Checks without a new best validation loss
(a fit without validation, or between validation runs) copy only when the snapshot is stale, so their copies grow
with the logarithm of the fit's length, and a rollback repeats at most a quarter of the steps done (plus one check
interval). What each finding gets:

* ``divergence``, ``exploding_gradients``: back to the snapshot; SGD momentum lowered when that is the first
  remedy (momentum near 1), otherwise the LR cut (the probe's, when one ran) and clipping at a healthy step's
  gradient norm; spikes whose remedies were tried on forks without any beating the unchanged run are left alone
  (a larger batch, BatchNorm's remedy, cannot be applied inside a running fit: it stays a recommendation);
* ``early_instability``: back to the snapshot; a warmup restarted from there;
* ``slow_convergence`` or ``plateau`` that a setting explains (its first remedy one of ``SETTING_FIXES``, from
  ``tunekit.diagnose.rules._settings``): that remedy, when the live fit can take it: ``loosen_clipping``, the
  Trainer's ``gradient_clip_val``; ``lower_weight_decay``, every decaying param group's ``weight_decay``;
  ``postpone_decay`` (a cosine from the base LR over the planned steps) and ``shorten_warmup`` (a warmup of 5% of
  them), the fit's schedule replaced by the fixed one from step 0, so the LR now is what it gives at this step (the
  rule's ``lr_if_fixed``; the running scheduler still steps but no longer sets the LR, ``LiveLR.hold``; a warmup's
  fix holds the base LR after it, whatever the scheduler did after its warmup). Not the LR levers below: a larger LR
  or a decay does not free a run held back by its clipping or its weight decay;
* ``plateau`` (noise floor): a cosine decay of the LR over what is left of the fit;
* ``slow_convergence``: the LR raised by the factor found (the probe's, when one ran);
* ``oscillation``: the LR cut by the factor found;
* ``saddle_stall``: momentum (or Adam's beta1) raised;
* ``generalization_gap``: Adam: the rest of the fit with SGD and momentum; otherwise more weight decay; a gap that
  comes back after that: back to the snapshot (the best validation loss) and stop.

A divergence, an early instability or a setting fault acts at the check that finds it (a setting fault's evidence is
the setting, measured, not a symptom that comes and goes; on the broken fits of ``tests/callbacks/
test_setting_faults.py`` strong weight decay's finding is there at every other check, so it would never be
confirmed twice in a row; a wrong one is undone by its verification). Every other finding acts when a probe
confirmed it, or when it is still there at the next check (``CONFIRMING_CHECKS``): gradient spikes, a flat stretch
or a rise of the validation loss seen at one check are often gone at the next, and a healthy run must not be
steered by them. A too-low LR is raised only when the updates themselves are tiny (under ``SLOW_UPDATE_RATIO`` of
the weights): a probe's larger LR wins over a few steps on healthy runs too, and loses over the rest of the fit.
The rules then judge the fit from the intervention on. At most ``max_interventions`` per fit.

Every intervention a fork can make (an LR, momentum, beta1 or weight decay, clipping, a warmup, a replaced schedule
as the LR it gives now; not a cosine decay over the rest of the fit, the switch to SGD or stopping) is verified: the
fit holds the next ``VERIFY_TRAIN`` training batches (and ``EVAL_BATCHES`` more), then one fork trains
``VERIFY_STEPS`` steps on them from the state before the intervention, unchanged, and one from where the
intervention started (the snapshot it rolled back to, or the same state) with the change; both are measured on the
held-out batches. The intervention stays when its fork beat the unchanged one by the probes' margin (``PROBE_GAIN``,
and twice the comparison's noise); otherwise it is undone: the weights, optimizer state and grad scaler go back to
where they were before it (the steps trained under it are dropped, the LR schedulers stay at the fit's step with
their base LRs as before), clipping and the LR programs as they were, and the event is marked ``undone`` with the
reason; the same remedy is not applied to that finding again. The verification costs two forks (``verify_steps`` in
the event's evidence) and holds two more copies of the weights and optimizer state while it waits; a checkpoint
taken meanwhile does not carry it.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import lightning.pytorch as pl

from tunekit.callbacks._probing import MAX_STEPS, TRAIN_BATCHES
from tunekit.callbacks._surgery import LiveLR, LRProgram, swap_to_sgd
from tunekit.diagnose import Diagnosis, Finding, FindingCode, Intervention, RemedyCode, RunContext, Severity
from tunekit.diagnose._probes import FORKABLE, PROBE_GAIN, ProbeReport
from tunekit.diagnose._stats import nice
from tunekit.diagnose.rules import SLOW_UPDATE_RATIO
from tunekit.probes import EVAL_BATCHES, TrainingState, probe_reason, verify_change
from tunekit.probes._verify import CHANGED
from tunekit.recipe import apply_to_groups, rescale_schedule
from tunekit.record import RunRecord
from tunekit.utilities.lightning import grad_scaler_of, planned_steps

SGD_MOMENTUM = 0.9  # the SGD stage a generalization gap hands over to
SGD_LR_FACTOR = 10.0  # ... starts at 10x Adam's LR, times (1 - momentum) (a typical SWATS outcome)
MIN_WARMUP = 10  # a restarted warmup spans at least this many steps
WARMUP_SHARE = 0.05  # ... or 5% of the fit
CONFIRMING_CHECKS = 2  # (auto-remedy benchmark) checks in a row a finding must be seen at before it steers the fit
SNAPSHOT_MAX_AGE = 0.25  # a snapshot older than 25% of the steps so far is refreshed at a healthy check (bounds the
# steps a rollback repeats against the copies a long fit makes)
AT_ONCE = (FindingCode.DIVERGENCE, FindingCode.EARLY_INSTABILITY)  # acted on at the check that finds them
VERIFY_TRAIN = TRAIN_BATCHES  # batches the verification forks train on (the probes' own number) ...
VERIFY_STEPS = MAX_STEPS  # ... for the probes' longest fork
SCHEDULE_FIXES = (RemedyCode.POSTPONE_DECAY, RemedyCode.SHORTEN_WARMUP)  # the fit's LR schedule replaced from now on
SETTING_FIXES = (RemedyCode.LOOSEN_CLIPPING, RemedyCode.LOWER_WEIGHT_DECAY, *SCHEDULE_FIXES)  # (rules._settings)


@dataclass
class _Pending:
    """An intervention waiting for its verification: the states its two forks start from, what to put back."""

    before: TrainingState  # the fit just before the intervention (the unchanged fork starts here)
    start: TrainingState  # where the intervention's fork starts (the snapshot it rolled back to, or ``before``)
    change: dict[str, Any]  # the change as a fork makes it (``lr``: the LR the fit stepped at after it)
    clip: float | None  # the Trainer's clipping before the intervention
    own_clip: float | None  # auto-remedy's clipping before it
    programs: dict[str, Any]  # the LR programs before it
    batches: list[Any] = dataclasses.field(default_factory=list)


@dataclass
class _Plan:
    finding: FindingCode
    remedy: RemedyCode
    change: dict[str, Any]
    rollback: bool
    evidence: dict[str, Any]


def _first(finding: Finding, *codes: RemedyCode) -> dict[str, Any] | None:
    remedy = next((r for r in finding.remedies if r.code in codes and r.change), None)
    return dict(remedy.change) if remedy is not None else None


class AutoRemedy:
    """The interventions of one fit (see the module's docstring)."""

    def __init__(self, max_interventions: int = 3) -> None:
        self.max_interventions = max_interventions
        self.events: list[Intervention] = []
        self.live = LiveLR()
        self.clip: float | None = None
        self.sgd_lrs: list[float] | None = None  # set once a generalization gap switched Adam to SGD
        self.skip_reason: str | None = None
        self._snapshot: TrainingState | None = None
        self.snapshot_step = 0
        self._best_val = math.inf
        self._vals_at_snapshot = 0  # validation losses known when the snapshot was taken
        self._seen: dict[FindingCode, int] = {}  # warning findings: checks in a row each has been seen at
        self._pending: _Pending | None = None
        self._need = VERIFY_TRAIN + EVAL_BATCHES  # micro-batches a verification holds (set at the fit's start)
        self._seen_step = -1
        self._stepped = False
        self._undone: set[tuple[FindingCode, RemedyCode]] = set()
        self._judged_from = 0  # the step of the last undo: the rules judge the fit from here too

    @property
    def since(self) -> int:
        """The step the rules judge the fit from: the last intervention's, or the last undo's (0 before any)."""
        return max(self.events[-1].step if self.events else 0, self._judged_from)

    # ------------------------------------------------------------------ lifecycle
    def before_fit(self, trainer: pl.Trainer) -> None:
        """Before the optimizer state is restored from a checkpoint: an optimizer swapped before it is swapped
        again, so the saved state loads into the optimizer it came from."""
        if self.sgd_lrs is not None and trainer.optimizers and type(trainer.optimizers[0]).__name__ != "SGD":
            swap_to_sgd(trainer, self.sgd_lrs, SGD_MOMENTUM)

    def start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.skip_reason = probe_reason(trainer, module)
        self._need = VERIFY_TRAIN * trainer.accumulate_grad_batches + EVAL_BATCHES
        if self.clip is not None:
            trainer.gradient_clip_val = self.clip
        if self.skip_reason is None:
            self._take(trainer, module)

    def before_step(self, trainer: pl.Trainer) -> None:
        if trainer.optimizers:
            self.live.apply(trainer.optimizers[0], trainer.global_step,
                            [c.scheduler for c in trainer.lr_scheduler_configs])

    def _take(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        schedulers = [c.scheduler for c in trainer.lr_scheduler_configs]
        self._snapshot = TrainingState.take(module, trainer.optimizers[0], schedulers, grad_scaler_of(trainer))
        self.snapshot_step = trainer.global_step

    def keep(self, trainer: pl.Trainer, module: pl.LightningModule, diagnosis: Diagnosis, record: RunRecord) -> None:
        """At a check: the new snapshot, when the run is healthy now and its validation loss no worse than its best."""
        if self.skip_reason is not None or not diagnosis.is_healthy or not len(record) or self._pending is not None:
            return
        if not math.isfinite(record.loss[-1]):
            return
        new_best = False
        if len(record.val_loss):
            latest = float(record.val_loss[-1])
            if not latest <= self._best_val:
                return
            self._best_val = latest
            new_best = len(record.val_loss) > self._vals_at_snapshot
        stale = trainer.global_step - self.snapshot_step > SNAPSHOT_MAX_AGE * trainer.global_step
        if new_best or stale or self._snapshot is None:
            self._take(trainer, module)
            self._vals_at_snapshot = len(record.val_loss)

    # ------------------------------------------------------------------ acting
    def act(self, trainer: pl.Trainer, module: pl.LightningModule, diagnosis: Diagnosis, ctx: RunContext,
            record: RunRecord) -> Intervention | None:
        """Apply the first finding's intervention, if it has one (all DDP ranks act on rank zero's plan)."""
        plan = self._plan(trainer, diagnosis, ctx, record)
        if trainer.world_size > 1:
            plan = trainer.strategy.broadcast(plan, src=0)
        if plan is None:
            return None
        optimizer = trainer.optimizers[0]
        schedulers = [c.scheduler for c in trainer.lr_scheduler_configs]
        evidence = dict(plan.evidence)
        verify = _forkable(plan)
        before = TrainingState.take(module, optimizer, schedulers, grad_scaler_of(trainer)) if verify else None
        clip, own_clip, programs = trainer.gradient_clip_val, self.clip, copy.deepcopy(self.live.state_dict())
        if plan.rollback and self._snapshot is not None:
            self._snapshot.restore(module, optimizer, schedulers, grad_scaler_of(trainer), grads=False)
            evidence["rolled_back_to"] = self.snapshot_step
        change = plan.change
        step = trainer.global_step
        total = planned_steps(trainer) or step + 1
        if plan.remedy in SCHEDULE_FIXES:
            self._replace_schedule(optimizer, schedulers, change, step, total)
            evidence["lr_now"] = float(optimizer.param_groups[0]["lr"])
        else:
            if not self.live.programs:
                self.live.rebase(optimizer)
            if "lr" in change:  # a new base LR: every group, and the running schedule, by the same factor
                factor = float(change["lr"]) / ctx.lr if ctx.lr > 0 else 1.0
                apply_to_groups(optimizer, {"lr": float(optimizer.param_groups[0]["lr"]) * factor})
                rescale_schedule(optimizer, schedulers, factor)
                self.live.rebase(optimizer)
            if "warmup_steps" in change:
                self.live.programs.append(LRProgram("warmup", step, int(change["warmup_steps"])))
            if change.get("schedule") == "cosine":
                self.live.programs.append(LRProgram("cosine", step, max(1, total - step)))
        apply_to_groups(optimizer, {k: v for k, v in change.items() if k in ("momentum", "beta1", "weight_decay")})
        if "gradient_clip_val" in change:
            self.clip = trainer.gradient_clip_val = float(change["gradient_clip_val"])
        if change.get("switch_to_sgd_at") is not None:
            adam = optimizer.param_groups
            self.sgd_lrs = [SGD_LR_FACTOR * g.get("initial_lr", g["lr"]) * (1 - SGD_MOMENTUM) for g in adam]
            swap_to_sgd(trainer, self.sgd_lrs, SGD_MOMENTUM)
        if plan.remedy is RemedyCode.EARLY_STOP:
            trainer.should_stop = True
        event = Intervention(step, plan.finding, plan.remedy, change, evidence)
        self.events.append(event)
        self._seen.clear()
        if before is not None:
            start = self._snapshot if plan.rollback and self._snapshot is not None else before
            forked = {k: v for k, v in change.items() if k != "lr"}
            if "lr" in change or plan.remedy in SCHEDULE_FIXES:
                forked["lr"] = float(optimizer.param_groups[0]["lr"])  # the LR the fit steps at after the change
            if plan.remedy in SCHEDULE_FIXES:  # a fork's few steps at the schedule's LR now
                forked = {"lr": forked["lr"]}
            self._pending = _Pending(before, start, forked, clip, own_clip, programs)
        return event

    def _replace_schedule(self, optimizer: Any, schedulers: list[Any], change: dict[str, Any], step: int,
                          total: int) -> None:
        """The fit's LR schedule replaced by the recipe's fixed one (``change``: a cosine from ``lr`` over the
        ``total`` planned steps, or a warmup of ``warmup_steps``) from step 0, so the LR now is what the fixed schedule
        gives at ``step`` (the rule's ``lr_if_fixed``); the running scheduler no longer sets it (``LiveLR.hold``)."""
        bases = [float(g.get("initial_lr", g["lr"])) for g in optimizer.param_groups]
        if "lr" in change and bases[0] > 0:
            bases = [b * float(change["lr"]) / bases[0] for b in bases]
        programs = []
        if "warmup_steps" in change:
            programs.append(LRProgram("warmup", 0, int(change["warmup_steps"])))
        if change.get("schedule") == "cosine":
            programs.append(LRProgram("cosine", 0, max(1, total)))
        self.live.hold(bases, programs)
        self.live.apply(optimizer, step, schedulers)

    # ------------------------------------------------------------------ verifying
    @property
    def verifying(self) -> bool:
        """An intervention waits for its verification."""
        return self._pending is not None

    def hold(self, trainer: pl.Trainer, batch: Any) -> None:
        """Keep a training batch for a waiting verification (called at the end of every training batch)."""
        self._stepped = trainer.global_step != self._seen_step
        self._seen_step = trainer.global_step
        if self._pending is not None:
            self._pending.batches = (self._pending.batches + [batch])[-self._need:]

    def ready(self) -> bool:
        """A waiting verification has its batches, and the fit is between optimizer steps."""
        return self._pending is not None and len(self._pending.batches) >= self._need and self._stepped

    def verify(self, trainer: pl.Trainer, module: pl.LightningModule) -> Intervention:
        """Run the waiting verification: the last intervention stays, or is undone (see the module's docstring).
        Returns the event as recorded now (``evidence["verified"]``; ``undone`` and ``reason`` when undone)."""
        pending, self._pending = self._pending, None
        assert pending is not None, "verify() without a waiting verification"
        event = self.events[-1]
        report = verify_change(trainer, module, event.finding, pending.before, pending.start, pending.change,
                               pending.clip, pending.batches, VERIFY_STEPS)
        won = report.helps(CHANGED, PROBE_GAIN)
        gain = report.gain(CHANGED)
        evidence = {**event.evidence, "verify_steps": round(report.cost_steps, 1),
                    "verified": {"won": won, "gain": round(gain, 5) if math.isfinite(gain) else str(gain),
                                 "steps": VERIFY_STEPS, "forks": [o.to_dict() for o in report.outcomes]}}
        if won:
            self.events[-1] = dataclasses.replace(event, evidence=evidence)
            return self.events[-1]
        self._undo(trainer, module, pending)
        self._undone.add((event.finding, event.remedy))
        evidence["undone_at"] = trainer.global_step
        self.events[-1] = dataclasses.replace(event, evidence=evidence, undone=True, reason=_reason(report))
        return self.events[-1]

    def _undo(self, trainer: pl.Trainer, module: pl.LightningModule, pending: _Pending) -> None:
        optimizer = trainer.optimizers[0]
        schedulers = [c.scheduler for c in trainer.lr_scheduler_configs]
        at = [getattr(s, "last_epoch", None) for s in schedulers]
        pending.before.restore(module, optimizer, schedulers, grad_scaler_of(trainer), grads=False)
        for scheduler, epoch in zip(schedulers, at, strict=True):
            if epoch is not None:  # the schedule goes on at the fit's step, from its base LRs as they were
                scheduler.last_epoch = epoch
        trainer.gradient_clip_val = pending.clip
        self.clip = pending.own_clip
        self.live.load_state_dict(pending.programs)
        self._judged_from = trainer.global_step

    def _plan(self, trainer: pl.Trainer, diagnosis: Diagnosis, ctx: RunContext, record: RunRecord) -> _Plan | None:
        warnings = [f for f in diagnosis.findings if f.severity is not Severity.INFO]
        self._seen = {f.code: self._seen.get(f.code, 0) + 1 for f in warnings}
        if self.skip_reason is not None or len(self.events) >= self.max_interventions or self._pending is not None:
            return None
        for finding in warnings:
            plan = self._plan_for(trainer, finding, ctx, record)
            if plan is not None and (plan.finding, plan.remedy) in self._undone:
                continue  # tried on this fit, and its fork lost to carrying on unchanged
            if plan is not None and (finding.code in AT_ONCE or plan.remedy in SETTING_FIXES
                                     or "probes" in finding.evidence or self._seen[finding.code] >= CONFIRMING_CHECKS):
                return plan
        return None

    def _plan_for(self, trainer: pl.Trainer, f: Finding, ctx: RunContext, record: RunRecord) -> _Plan | None:
        code, evidence = f.code, {"message": f.message}
        first = f.remedies[0] if f.remedies else None
        if code in (FindingCode.PLATEAU, FindingCode.SLOW_CONVERGENCE) and first is not None and \
                first.code in SETTING_FIXES:
            return _setting_plan(trainer, f, evidence)  # a setting holds the run back: not the LR's levers
        if code in (FindingCode.DIVERGENCE, FindingCode.EXPLODING_GRADIENTS):
            if f.evidence.get("recovers"):
                return None  # the probe saw it come back down on its own
            tried = f.evidence.get("verified")
            if code is FindingCode.EXPLODING_GRADIENTS and isinstance(tried, dict) and tried.get("winner") is None:
                return None  # its remedies were tried on forks and none beat carrying on unchanged
            first = f.remedies[0] if f.remedies else None
            if first is not None and first.code is RemedyCode.LOWER_MOMENTUM and first.change:
                return _Plan(code, RemedyCode.LOWER_MOMENTUM, dict(first.change), True, evidence)
            lower = _first(f, RemedyCode.LOWER_LR) or {"lr": nice(ctx.lr / 10)}
            clip = _first(f, RemedyCode.CLIP_GRADIENTS) or {}
            return _Plan(code, RemedyCode.LOWER_LR, {**lower, **clip}, True, evidence)
        if code is FindingCode.EARLY_INSTABILITY:
            total = record.total_steps or record.last_step + 1
            warmup = _first(f, RemedyCode.ADD_WARMUP) or {"warmup_steps": max(MIN_WARMUP, round(WARMUP_SHARE * total))}
            return _Plan(code, RemedyCode.ADD_WARMUP, warmup, True, evidence)
        if code is FindingCode.PLATEAU:
            return _Plan(code, RemedyCode.DECAY_LR, {"schedule": "cosine"}, False, evidence)
        if code is FindingCode.SLOW_CONVERGENCE:
            ratio = f.evidence.get("update_ratio")
            if not (isinstance(ratio, float) and ratio < SLOW_UPDATE_RATIO):
                return None  # steps of a healthy size: a larger LR only looks better over a probe's few steps
            raise_lr = _first(f, RemedyCode.RAISE_LR)
            return _Plan(code, RemedyCode.RAISE_LR, raise_lr, False, evidence) if raise_lr else None
        if code is FindingCode.OSCILLATION:
            cut = _first(f, RemedyCode.LOWER_LR)
            return _Plan(code, RemedyCode.LOWER_LR, cut, False, evidence) if cut else None
        if code is FindingCode.SADDLE_STALL:
            momentum = _first(f, RemedyCode.RAISE_MOMENTUM)
            return _Plan(code, RemedyCode.RAISE_MOMENTUM, momentum, False, evidence) if momentum else None
        if code is FindingCode.GENERALIZATION_GAP:
            if any(e.finding is FindingCode.GENERALIZATION_GAP for e in self.events):
                return _Plan(code, RemedyCode.EARLY_STOP, {}, True, evidence)
            if ctx.is_adam and self.sgd_lrs is None:
                return _Plan(code, RemedyCode.SWITCH_TO_SGD, {"switch_to_sgd_at": round(
                    trainer.global_step / max(1, record.total_steps or trainer.global_step), 3),
                    "momentum": SGD_MOMENTUM}, False, evidence)
            decay = _first(f, RemedyCode.ADD_WEIGHT_DECAY)
            if decay is not None:
                decay = {k: v for k, v in decay.items() if k == "weight_decay"}
                return _Plan(code, RemedyCode.ADD_WEIGHT_DECAY, decay, False, evidence)
        return None

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict[str, Any]:
        return {"events": [e.to_dict() for e in self.events], "programs": self.live.state_dict(), "clip": self.clip,
                "sgd_lrs": self.sgd_lrs, "best_val": self._best_val}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.events = [Intervention.from_dict(e) for e in state.get("events", [])]
        self.live.load_state_dict(state.get("programs", []))
        self.clip = state.get("clip")
        self.sgd_lrs = state.get("sgd_lrs")
        self._best_val = float(state.get("best_val", math.inf))
        self._undone = {(e.finding, e.remedy) for e in self.events if e.undone}
        self._judged_from = max((int(e.evidence.get("undone_at", 0)) for e in self.events if e.undone), default=0)


def _setting_plan(trainer: pl.Trainer, f: Finding, evidence: dict[str, Any]) -> _Plan | None:
    """The first remedy of a stall a setting explains (``rules._settings``), when the live fit can take it: looser
    clipping than the Trainer's, less weight decay than a group has, a fixed schedule whose LR now
    (``evidence["lr_if_fixed"]``) is above the fit's."""
    remedy = f.remedies[0]
    change, groups = dict(remedy.change), trainer.optimizers[0].param_groups
    if remedy.code is RemedyCode.LOOSEN_CLIPPING:
        clip = trainer.gradient_clip_val
        ok = clip is not None and float(clip) < float(change.get("gradient_clip_val", 0.0))
    elif remedy.code is RemedyCode.LOWER_WEIGHT_DECAY:
        ok = "weight_decay" in change and any(float(g.get("weight_decay", 0.0)) > float(change["weight_decay"])
                                              for g in groups)
    else:
        fixed = f.evidence.get("lr_if_fixed")
        ok = isinstance(fixed, float) and math.isfinite(fixed) and fixed > float(groups[0]["lr"])
        evidence["lr_if_fixed"] = fixed
    return _Plan(f.code, remedy.code, change, False, evidence) if ok else None


def _forkable(plan: _Plan) -> bool:
    """A fork can make this intervention's change (see the module's docstring): a fixed schedule as the LR it
    gives now."""
    if plan.remedy in SCHEDULE_FIXES:
        return True
    return bool(plan.change) and set(plan.change) <= FORKABLE and plan.remedy is not RemedyCode.EARLY_STOP


def _reason(report: ProbeReport) -> str:
    control, changed = report.outcomes[0], report.outcomes[1]

    def pct(o: Any) -> str:
        return "blew up" if not math.isfinite(o.loss_change) else f"{o.loss_change:+.1%}"

    return (f"tried on forks for {changed.steps} steps from where it was applied, it did not beat carrying on "
            f"unchanged: held-out loss {pct(changed)} with it, {pct(control)} unchanged")
