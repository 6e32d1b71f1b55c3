"""What-if probes, the pure part: which forks a finding asks for, what their outcomes are, and how the outcomes
re-label look-alikes and re-rank remedies.

A probe forks the live training state, trains a few steps under each candidate (the unchanged control among
them) on the same batches, and compares the loss each ends at on held-out batches (``tunekit.probes`` runs it).
What the outcomes say (``read_probes``):

* a stall (``slow_convergence``, ``saddle_stall``, ``plateau``): forks at a larger LR (10x, or towards a healthy
  update size, up to 1000x) and at a 10x smaller one. The larger one helps, near the start: the LR is too low
  (``slow_convergence``); the smaller one helps: a noise floor (``plateau``); neither, with clearly negative
  curvature: a saddle; neither without: the rule's evidence stands where it is strong (tiny updates), otherwise
  it is only a hint. A ``saddle_stall`` also forks its pushes that are not a step size (more momentum, annealed
  gradient noise) and, while it stays a saddle, its remedies are ranked by their forks (as an instability's are);
  a noise floor gets reduce-on-plateau among its decays, its cut the smaller LR that helped.
* ``oscillation``: forks at 0.3x and 0.1x the LR. One helps: confirmed, and cut by the factor that helped most
  (or below the edge of stability, when the curvature was measured); neither: the swings are noise (a hint).
* ``divergence`` on a finite loss: the unchanged run and a 10x smaller LR. The unchanged one comes back down below
  where the run started: it recovers on its own (a warning, not critical: the fit is not stopped).
* ``exploding_gradients``, ``early_instability`` (and a finite divergence's other remedies): each remedy a fork can
  apply (``FORKABLE``: an LR, momentum or beta, weight decay, clipping, a warmup, a larger batch made of several held
  batches) is trained beside the unchanged run; the remedies are re-ranked by what they did, the winner first, and
  the finding says what won and by how much, or that no candidate beat the unchanged run.

Everything here is plain data and can be replayed on recorded outcomes with other thresholds.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tunekit.diagnose import _remedies as R
from tunekit.diagnose._context import RunContext
from tunekit.diagnose._stats import TARGET_UPDATE_RATIO, fmt, nice
from tunekit.diagnose._types import Finding, FindingCode, Remedy, RemedyCode, Severity

# Where each constant comes from: "(zoo)" chosen on the zoo's training families (benchmarks/zoo/tune.py, each family
# scored with the values chosen on the others); "(hand)" set by hand, when the rule was written or after reading
# the zoo's runs, and not searched; otherwise the source is named (a paper, a reference text, torch, statistics).
PROBE_GAIN = 0.005  # (zoo) a fork "helps" when it ends 0.5% of the starting loss below the unchanged fork ...
NOISE_SIGMAS = 2.0  # (hand) ... and by twice the standard error of that gain over the held-out batches
CLEARLY_NEGATIVE = 0.1  # (hand) curvature: the most negative eigenvalue beyond 10% of the largest one is a saddle
EDGE_MARGIN = 0.5  # (hand) an LR past the stability edge is cut to half the edge: room for the sharpness to grow back
FASTER = 3.0  # (hand) a larger-LR fork confirms a too-low LR when it makes 3x the unchanged one's progress or more
NEAR_START = 0.8  # (hand) a stall whose loss is above 80% of the initial one has barely started learning
LEARNED_MOST = 0.1  # (zoo) a run below 10% of its initial loss has learned most of the way: that a larger LR still
# falls faster over a few steps is a hint there, not a warning (2 of 22 healthy zoo runs, at 2% and 8% of their start,
# were warned that their LR was too low)
RECOVERED = 0.9  # (hand) a finite divergence whose unchanged fork comes back under 90% of its loss ...
NEVER_RECOVERED = 1.0  # (hand) ... and below the loss the run started from recovers on its own (above it: not learning)
STALLS = (FindingCode.SLOW_CONVERGENCE, FindingCode.SADDLE_STALL, FindingCode.PLATEAU)
VERIFIED = (FindingCode.EXPLODING_GRADIENTS, FindingCode.EARLY_INSTABILITY)  # their remedies are tried on forks
PROBED = (*STALLS, FindingCode.OSCILLATION, FindingCode.DIVERGENCE, *VERIFIED)
FORKABLE = frozenset({"lr", "momentum", "beta1", "beta2", "weight_decay", "gradient_clip_val", "warmup_steps",
                      "batch_size", "grad_noise"})  # the recipe keys a fork can change (optimizer, batches, gradients)
MAX_REMEDY_FORKS = 4  # (hand) remedies tried per probe (the control besides): the probe budget pays for each
UP, DOWN, HALF_DOWN = 10.0, 0.1, 1 / math.sqrt(10)  # (hand) the LR factors the forks try
MAX_UP = 1000.0  # (hand) a too-low LR's fork jumps at most three decades


@dataclass(frozen=True)
class Candidate:
    """One fork: a label for people and the absolute recipe change it trains under ({} for the control)."""

    label: str
    change: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProbeOutcome:
    """Where one fork ended: the held-out loss at the fork point and after ``steps`` steps (NaN: it blew up), and
    the same per held-out batch (what the noise of a comparison is read from)."""

    label: str
    change: Mapping[str, Any]
    steps: int
    loss_before: float
    loss_after: float
    batches_before: tuple[float, ...] = ()
    batches_after: tuple[float, ...] = ()

    @property
    def loss_change(self) -> float:
        """Relative change of the held-out loss over the fork (negative: it fell)."""
        if not math.isfinite(self.loss_after):
            return math.inf
        return (self.loss_after - self.loss_before) / max(abs(self.loss_before), 1e-12)

    def to_dict(self) -> dict[str, Any]:
        change = self.loss_change
        out = {"label": self.label, "change": dict(self.change), "steps": self.steps,
               "loss_change": round(change, 5) if math.isfinite(change) else "inf"}
        if self.batches_before:
            out["batch_changes"] = [round((a - b) / max(abs(b), 1e-12), 5) if math.isfinite(a) else "inf"
                                    for b, a in zip(self.batches_before, self.batches_after, strict=True)]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], loss_before: float = 1.0) -> ProbeOutcome:
        change = data["loss_change"]
        after = math.nan if change == "inf" else loss_before * (1 + float(change))
        per = data.get("batch_changes", [])
        before = tuple(loss_before for _ in per)
        per_after = tuple(math.nan if c == "inf" else loss_before * (1 + float(c)) for c in per)
        return cls(data["label"], dict(data["change"]), int(data["steps"]), loss_before, after, before, per_after)


@dataclass(frozen=True)
class ProbeReport:
    """The outcomes of one probe (the control first), with the curvature measured there, if any."""

    step: int
    finding: FindingCode
    outcomes: tuple[ProbeOutcome, ...]
    curvature: Mapping[str, Any] | None = None  # top, bottom, trace, hvps, preconditioned
    cost_steps: float = 0.0  # training steps' worth of compute the probe spent

    @property
    def control(self) -> ProbeOutcome:
        return self.outcomes[0]

    def gain(self, label: str) -> float:
        """How far below the control's the fork ``label`` ended, as a share of the starting loss (-inf: blew up)."""
        fork = next((o for o in self.outcomes if o.label == label), None)
        if fork is None:
            return -math.inf
        if not math.isfinite(fork.loss_after):
            return -math.inf
        control = self.control.loss_after if math.isfinite(self.control.loss_after) else math.inf
        return (control - fork.loss_after) / max(abs(fork.loss_before), 1e-12)

    def gain_noise(self, label: str) -> float:
        """The standard error of ``gain`` from its spread over the held-out batches (0 without per-batch losses)."""
        fork = next((o for o in self.outcomes if o.label == label), None)
        control = self.control
        if fork is None or len(fork.batches_after) < 2 or len(control.batches_after) != len(fork.batches_after):
            return 0.0
        gains = [(c - f) / max(abs(b), 1e-12) for c, f, b in zip(control.batches_after, fork.batches_after,
                                                                   fork.batches_before, strict=True)]
        if not all(math.isfinite(g) for g in gains):
            return 0.0
        mean = sum(gains) / len(gains)
        var = sum((g - mean) ** 2 for g in gains) / (len(gains) - 1)
        return math.sqrt(var / len(gains))

    def helps(self, label: str, gain: float) -> bool:
        """The fork ended clearly below the control: by more than ``gain`` and than twice the comparison's noise."""
        return self.gain(label) > max(gain, NOISE_SIGMAS * self.gain_noise(label))

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "finding": self.finding.value, "cost_steps": round(self.cost_steps, 1),
                "forks": [o.to_dict() for o in self.outcomes], "curvature": dict(self.curvature or {}) or None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProbeReport:
        return cls(int(data["step"]), FindingCode(data["finding"]),
                   tuple(ProbeOutcome.from_dict(o) for o in data["forks"]), data.get("curvature"),
                   float(data.get("cost_steps", 0.0)))


def lr_label(factor: float) -> str:
    return f"lr x{nice(factor, 2):g}"


def _up_factor(finding: Finding) -> float:
    """How far up a stall's larger-LR fork goes: towards a healthy update size (a run whose steps move the weights
    by 1e-6 of their size shows nothing in a few steps at 10x), at least 10x, at most 1000x."""
    ratio = finding.evidence.get("update_ratio")
    if finding.code is FindingCode.SLOW_CONVERGENCE and isinstance(ratio, float) and math.isfinite(ratio) and ratio > 0:
        return float(min(MAX_UP, max(UP, nice(TARGET_UPDATE_RATIO / ratio, 1))))
    return UP


def remedy_label(remedy: Remedy) -> str:
    """The fork label of a remedy: its code and change (``lower_momentum momentum=0.95``)."""
    return " ".join([remedy.code.value, *(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                           for k, v in remedy.change.items())])


def remedy_candidates(finding: Finding, ctx: RunContext) -> list[Candidate]:
    """A fork for each of the finding's remedies that a fork can apply (at most ``MAX_REMEDY_FORKS``, in the
    finding's order). A remedy's ``lr`` is a base LR; the fork steps at the LR a running schedule makes of it."""
    out = []
    scale = ctx.current_lr / ctx.lr if ctx.lr > 0 else 1.0
    for remedy in finding.remedies:
        if not remedy.change or not set(remedy.change) <= FORKABLE:
            continue
        change = dict(remedy.change)
        if "lr" in change:
            change["lr"] = float(change["lr"]) * scale
        out.append(Candidate(remedy_label(remedy), change))
    return out[:MAX_REMEDY_FORKS]


def panel_core(finding: Finding, panel: list[Candidate]) -> int:
    """How many of ``panel``'s first forks a probe needs: a saddle's pushes (its last forks) may be left out when
    the budget cannot pay for them, the other panels are tried whole or not at all."""
    if finding.code is FindingCode.SADDLE_STALL:
        return min(len(panel), 3)  # the control and the two step sizes
    return len(panel)


def setting_candidates(finding: Finding, ctx: RunContext) -> list[Candidate]:
    """The forks of a stall a setting explains (``rules._settings``): each remedy a fork can apply as it is (looser
    clipping, less weight decay), and a schedule's fix as the LR it would step at now (``lr_if_fixed``)."""
    schedules = (RemedyCode.POSTPONE_DECAY, RemedyCode.SHORTEN_WARMUP)
    as_is = dataclasses.replace(finding, remedies=tuple(r for r in finding.remedies if r.code not in schedules))
    out = remedy_candidates(as_is, ctx)
    fixed = finding.evidence.get("lr_if_fixed")
    if isinstance(fixed, float) and math.isfinite(fixed) and fixed > ctx.current_lr:
        out += [Candidate(remedy_label(r), {"lr": nice(fixed)}) for r in finding.remedies if r.code in schedules]
    return out[:MAX_REMEDY_FORKS]


def probe_panel(finding: Finding, ctx: RunContext) -> list[Candidate]:
    """The forks that tell a finding's look-alikes apart (the control first); empty when forks say nothing."""
    control = Candidate("unchanged")
    factors: tuple[float, ...]
    extra: list[Candidate] = []
    if finding.evidence.get("setting"):
        setting = setting_candidates(finding, ctx)
        return [control, *setting] if setting else []
    if finding.code in VERIFIED:
        candidates = remedy_candidates(finding, ctx) if finding.severity is not Severity.INFO else []
        return [control, *candidates] if candidates else []
    if finding.code in STALLS:
        factors = (_up_factor(finding), DOWN)
        if finding.code is FindingCode.SADDLE_STALL:  # its pushes that are not a step size, tried beside them
            extra = [c for c in remedy_candidates(finding, ctx) if "lr" not in c.change]
    elif finding.code is FindingCode.OSCILLATION:
        factors = (HALF_DOWN, DOWN)
    elif finding.code is FindingCode.DIVERGENCE and finding.severity is Severity.CRITICAL \
            and not isinstance(finding.evidence.get("loss"), str) and "first_nonfinite_step" not in finding.evidence:
        factors = (DOWN,)
    else:
        return []
    now = ctx.current_lr
    if not now > 0:
        return []  # a schedule that has run down to zero: no step size to try
    panel = [control] + [Candidate(lr_label(f), {"lr": nice(now * f)}) for f in factors]
    panel += extra[:MAX_REMEDY_FORKS - len(factors)]
    if finding.code is FindingCode.DIVERGENCE:  # the remedies that are not an LR cut, tried beside it
        panel += [c for c in remedy_candidates(finding, ctx) if "lr" not in c.change][:MAX_REMEDY_FORKS - 1]
    return panel


def read_probes(finding: Finding, report: ProbeReport, ctx: RunContext,
                gain: float | None = None, negative: float | None = None) -> Finding:
    """The finding as the probe's outcomes have it: re-labelled, re-ranked, or downgraded; its evidence holds what
    was tried (``evidence["probes"]``) and the curvature (``sharpness``, ``min_eigenvalue``). ``gain`` and
    ``negative`` default to ``PROBE_GAIN`` and ``CLEARLY_NEGATIVE``."""
    gain = PROBE_GAIN if gain is None else gain
    negative = CLEARLY_NEGATIVE if negative is None else negative
    evidence = {**finding.evidence, "probes": [o.to_dict() for o in report.outcomes],
                "probe_steps": round(report.cost_steps, 1)}
    curv = report.curvature or {}
    if curv.get("top") is not None and math.isfinite(curv.get("top", math.nan)):
        evidence["sharpness"] = curv["top"]
        evidence["min_eigenvalue"] = curv["bottom"]
    tried = _tried(report)
    if finding.evidence.get("setting"):  # a setting explains the stall: its remedy was tried, never a relabel
        return _read_verified(finding, report, evidence, gain)
    if finding.code in STALLS:
        return _read_stall(finding, report, ctx, evidence, tried, gain, negative)
    if finding.code is FindingCode.OSCILLATION:
        return _read_oscillation(finding, report, ctx, evidence, tried, gain)
    if finding.code in VERIFIED:
        return _read_verified(finding, report, evidence, gain)
    if finding.code is FindingCode.DIVERGENCE:
        return _read_divergence(finding, report, evidence, tried, gain)
    return dataclasses.replace(finding, evidence=evidence)


def _read_divergence(finding: Finding, report: ProbeReport, evidence: dict[str, Any], tried: str,
                     gain: float) -> Finding:
    """A finite blow-up recovers on its own only when its unchanged fork comes back down *and* ends below where the
    run started (a loss that falls from 1e27 to a dead network's constant output has not recovered)."""
    control = report.control
    start = finding.evidence.get("initial_loss")
    initial = float(start) if isinstance(start, (int, float)) else math.nan
    below_start = math.isfinite(control.loss_after) and control.loss_after < NEVER_RECOVERED * initial
    dead = finding.evidence.get("dead_layers")
    if math.isfinite(control.loss_after) and control.loss_after < RECOVERED * control.loss_before and below_start \
            and not dead:
        evidence["recovers"] = True
        return dataclasses.replace(finding, severity=Severity.WARNING, evidence=evidence,
                                   message=finding.message + f"; but left unchanged its held-out loss came back down "
                                   f"from {fmt(control.loss_before)} to {fmt(control.loss_after)}, below its start "
                                   f"({fmt(initial)}) ({tried}), so it is not stopped")
    return _read_verified(finding, report, evidence, gain, extra={RemedyCode.LOWER_LR: lr_label(DOWN)})


def _fork_for(remedy: Remedy, outcomes: Mapping[str, ProbeOutcome],
              extra: Mapping[RemedyCode, str] | None) -> str | None:
    """The fork that tried ``remedy``: the one labelled with its code (the finding's values may have moved a little
    since the probe ran), or the fork ``extra`` names for its code (an LR cut: the probe's smaller-LR fork)."""
    code = remedy.code.value
    label = next((x for x in outcomes if x == code or x.startswith(code + " ")), None)
    named = (extra or {}).get(remedy.code)
    if label is None and named in outcomes:
        label = named
    return label


def _read_verified(finding: Finding, report: ProbeReport, evidence: dict[str, Any], gain: float,
                   extra: Mapping[RemedyCode, str] | None = None, listed: bool = False) -> Finding:
    """The finding with its remedies re-ranked by their forks: those that beat the unchanged run (by more than the
    noise) first, the largest win first; then the rest in the rule's order, but those whose fork blew up last. A fork
    that merely trails the unchanged one over its few steps does not demote a remedy: a larger batch or a smaller LR
    makes less progress over 20 steps and more over the fit (BatchNorm at batch 2 on digits: a batch of 16 trails
    the unchanged fork by 8% over 20 steps and ends the fit at a fifth of its validation loss, 0.14 from 0.69).
    The message says what won and by how much, or that nothing beat the unchanged run (with what each fork did,
    unless the message ``listed`` it already)."""
    outcomes = {o.label: o for o in report.outcomes[1:]}
    won: list[tuple[float, Remedy]] = []
    rest: list[Remedy] = []
    lost: list[Remedy] = []
    for remedy in finding.remedies:
        label = _fork_for(remedy, outcomes, extra)
        if label is None:
            rest.append(remedy)
        elif report.helps(label, gain):
            won.append((report.gain(label), _confirmed(remedy, report, label)))
        elif report.gain(label) == -math.inf:  # it blew up on the fork
            lost.append(_confirmed(remedy, report, label))
        else:
            rest.append(_confirmed(remedy, report, label))
    won.sort(key=lambda pair: -pair[0])
    control = report.control
    winners = [label for label in outcomes if report.helps(label, gain)]
    best = max(winners, key=report.gain) if winners else None
    evidence["verified"] = {"winner": best, "gain": round(report.gain(best), 5) if best else None,
                            "steps": control.steps}
    if best is not None:
        fork = outcomes[best]
        said = (f"; tried on forks of the run for {control.steps} steps, {best} won: held-out loss "
                f"{_pct(fork.loss_change)} against {_pct(control.loss_change)} unchanged")
    else:
        said = f"; tried on forks of the run for {control.steps} steps, no candidate beat the unchanged run" + (
            "" if listed else f" ({_tried(report)})")
    return dataclasses.replace(finding, evidence=evidence, message=finding.message + said,
                               remedies=tuple([r for _, r in won] + rest + lost))


def _tried(report: ProbeReport) -> str:
    parts = [f"{o.label} for {o.steps} steps: loss {_pct(o.loss_change)}" for o in report.outcomes]
    return "; ".join(parts)


def _pct(change: float) -> str:
    return "blew up" if not math.isfinite(change) else f"{change:+.1%}"


def _confirmed(remedy: Remedy, report: ProbeReport, label: str) -> Remedy:
    fork = next(o for o in report.outcomes if o.label == label)
    return Remedy(remedy.code, remedy.change, remedy.message.rstrip(".") + f" (tried: {label} for {fork.steps} "
                  f"steps, loss {_pct(fork.loss_change)}, unchanged {_pct(report.control.loss_change)}).")


def _forks(report: ProbeReport, ctx: RunContext) -> tuple[ProbeOutcome | None, ProbeOutcome | None]:
    """The fork with a larger LR and the one with a smaller LR, if the probe had them."""
    now = ctx.current_lr
    up = next((o for o in report.outcomes if o.change.get("lr", now) > now), None)
    down = next((o for o in report.outcomes if o.change.get("lr", now) < now), None)
    return up, down


def _read_stall(finding: Finding, report: ProbeReport, ctx: RunContext, evidence: dict[str, Any], tried: str,
                gain: float, negative: float) -> Finding:
    if not ctx.current_lr > 0:  # a schedule has run the LR down to zero since the probe: its forks' factors are moot
        return dataclasses.replace(finding, evidence=evidence)
    up, down = _forks(report, ctx)
    up_gain = report.gain(up.label) if up is not None else -math.inf
    down_gain = report.gain(down.label) if down is not None else -math.inf
    level, initial = finding.evidence.get("loss"), finding.evidence.get("initial_loss")
    near_start = not (isinstance(level, float) and isinstance(initial, float)) or level > NEAR_START * initial
    curv = report.curvature or {}
    top, bottom = curv.get("top", math.nan), curv.get("bottom", math.nan)
    measured = math.isfinite(bottom) and math.isfinite(top)
    saddle_curvature = measured and bottom < -negative * abs(top)
    control_progress = -report.control.loss_change if math.isfinite(report.control.loss_change) else 0.0
    up_progress = -up.loss_change if up is not None and math.isfinite(up.loss_change) else -math.inf
    # a too-low LR: progress grows with the step (about in proportion); a good one gains little from a larger step
    faster = up_progress >= FASTER * max(control_progress, 0.0)
    push = _best_push(report, gain)  # a saddle's grad-noise or momentum fork that won, if any
    if up is not None and report.helps(up.label, gain) and up_gain >= down_gain and faster and \
            not (push is not None and report.gain(push) > up_gain):
        factor = up.change["lr"] / ctx.current_lr
        learned = isinstance(level, float) and isinstance(initial, float) and level < LEARNED_MOST * initial
        if not (near_start or finding.code is FindingCode.SLOW_CONVERGENCE) or learned:
            return dataclasses.replace(finding, severity=Severity.INFO, evidence=evidence,
                                       message=finding.message + f"; a larger learning rate still makes faster "
                                       f"progress ({tried})")
        raise_lr = _confirmed(R.raise_lr(ctx, factor, "a larger step made the loss fall where the current one barely "
                                         "moves it"), report, up.label)
        rest = [r for r in finding.remedies if r.code is not RemedyCode.RAISE_LR]
        if finding.code is not FindingCode.SLOW_CONVERGENCE:
            rest = [] if ctx.is_adam else [
                R.switch_optimizer(ctx, "Adam scales each parameter's step and is less sensitive to the LR")]
        return Finding(FindingCode.SLOW_CONVERGENCE, Severity.WARNING, finding.step,
                       f"the loss barely falls and a {nice(factor, 2):g}x larger learning rate makes it fall faster "
                       f"({tried}): the learning rate {fmt(ctx.lr)} is too low", evidence, (raise_lr, *rest))
    if down is not None and report.helps(down.label, gain):
        factor = down.change["lr"] / ctx.current_lr
        decay = _confirmed(R.step_decay(ctx, finding.step, factor, "a smaller step settled lower, so the current one "
                                        "sits at its noise floor"), report, down.label)
        flat = finding.evidence.get("flat_validations")
        # reduce-on-plateau's cut, once its patience has run out, is the smaller-LR fork: tried by it
        on_plateau = _confirmed(R.reduce_on_plateau(ctx, factor, flat if isinstance(flat, int) else None,
                                                    "it cuts where the validation loss stops improving, without "
                                                    "choosing when"), report, down.label)
        rest = [on_plateau, R.decay_lr(ctx, "a cosine decay settles lower too, without choosing when"),
                R.lower_lr(ctx, 1 / factor, "a one-off cut does the same for what is left")]
        bigger = R.raise_batch_size(ctx, "a larger batch lowers the gradient noise that sets the floor")
        if bigger is not None:
            rest.append(bigger)
        return Finding(FindingCode.PLATEAU, Severity.WARNING, finding.step,
                       f"the loss is flat and a 10x smaller learning rate lowers it ({tried}): the run sits at the "
                       f"noise floor of lr {fmt(ctx.lr)}", evidence, (decay, *rest))
    if saddle_curvature:
        why = f"the Hessian has a clearly negative eigenvalue ({fmt(bottom)} against a largest of {fmt(top)})"
        remedies = finding.remedies if finding.code is FindingCode.SADDLE_STALL else _saddle_remedies(ctx, report.step)
        saddle = Finding(FindingCode.SADDLE_STALL, Severity.WARNING, finding.step,
                         f"the loss is stuck and {_moved_by(report, up, down, gain)} ({tried}), and {why}: a saddle "
                         "region, not a minimum", evidence, tuple(remedies))
        return _ranked_saddle(saddle, report, evidence, gain, up, listed=True)
    if finding.code is FindingCode.SADDLE_STALL and not measured:
        return _ranked_saddle(finding, report, evidence, gain, up)  # the rule's evidence stands; its remedies ranked
    if finding.code is FindingCode.SLOW_CONVERGENCE:
        # the rule's evidence stands (tiny updates; tiny gradients): a few steps were too few to show the way out
        return dataclasses.replace(finding, evidence=evidence,
                                   message=finding.message + f" (the probe's forks were too short to show it: {tried})")
    if finding.code is FindingCode.SADDLE_STALL:  # curvature measured, and no negative direction: not a saddle
        return Finding(FindingCode.PLATEAU, Severity.INFO, finding.step,
                       f"{finding.message}; but the Hessian has no clearly negative eigenvalue (smallest "
                       f"{fmt(bottom)}, largest {fmt(top)}) and no step size tried helped ({tried}): a flat region, "
                       "not a saddle",
                       evidence, finding.remedies)
    return Finding(finding.code, Severity.INFO, finding.step,
                   finding.message + f"; but no step size tried helped ({tried})", evidence, finding.remedies)


PUSHES = (RemedyCode.ADD_GRAD_NOISE, RemedyCode.RAISE_MOMENTUM)  # a saddle's remedies that are not a step size


def _best_push(report: ProbeReport, gain: float) -> str | None:
    """The fork of a saddle's push (gradient noise, more momentum) that beat the unchanged run by the most, if any."""
    pushes = [o.label for o in report.outcomes[1:] if o.label.split(" ")[0] in PUSHES and report.helps(o.label, gain)]
    return max(pushes, key=report.gain) if pushes else None


def _moved_by(report: ProbeReport, up: ProbeOutcome | None, down: ProbeOutcome | None, gain: float) -> str:
    steps = [o for o in (up, down) if o is not None and report.helps(o.label, gain)]
    if not steps:
        return "neither a larger nor a smaller learning rate moves it"
    return f"a {'larger' if steps[0] is up else 'smaller'} learning rate moves it only a little"


def _ranked_saddle(finding: Finding, report: ProbeReport, evidence: dict[str, Any], gain: float,
                   up: ProbeOutcome | None, listed: bool = False) -> Finding:
    """A saddle's remedies ranked by the forks that tried them (the larger-LR fork tried ``raise_lr``): the ones
    that beat the unchanged run first, the largest win first; the message says what won, or that nothing did."""
    extra = {RemedyCode.RAISE_LR: up.label} if up is not None else None
    first = finding.remedies[0] if finding.remedies else None
    if first is None or first.code is not RemedyCode.CHANGE_INIT:
        return _read_verified(finding, report, evidence, gain, extra, listed)
    # stuck from the first step: the init stays first (no fork can try it, and over the whole fit it is what got
    # the deep linear networks out; a push that wins 20 steps need not), the rest are ranked after it
    ranked = _read_verified(dataclasses.replace(finding, remedies=finding.remedies[1:]), report, evidence, gain, extra,
                            listed)
    return dataclasses.replace(ranked, remedies=(first, *ranked.remedies))


def _saddle_remedies(ctx: RunContext, step: int) -> list[Remedy]:
    remedies = [R.raise_momentum(ctx, "velocity built up carries the weights through the flat region"),
                R.add_grad_noise(ctx, step)]
    remedies.append(R.note(RemedyCode.CHANGE_INIT, "Initialize the weights at a larger scale (Xavier/Kaiming or "
                           "orthogonal): a small init starts deep networks right at a saddle."))
    return remedies


def stability_edge(curvature: Mapping[str, Any] | None, ctx: RunContext) -> float | None:
    """The largest LR at which the measured sharpness is stable: gradient descent with momentum m diverges along
    the top eigendirection once ``lr * top > 2 (1 + m)`` (Cohen et al. 2021); Adam once its preconditioned
    sharpness times the LR exceeds ``(2 + 2 beta1) / (1 - beta1)``, 38 at beta1 = 0.9 (Cohen et al. 2022). None
    without a positive sharpness measured for this optimizer."""
    if not curvature or not math.isfinite(curvature.get("top", math.nan)) or curvature["top"] <= 0:
        return None
    top = float(curvature["top"])
    if ctx.is_adam:
        if not curvature.get("preconditioned"):
            return None
        beta1 = ctx.beta1 if ctx.beta1 is not None else 0.9
        return (2 + 2 * beta1) / ((1 - beta1) * top)
    return 2 * (1 + (ctx.momentum or 0.0)) / top


def _read_oscillation(finding: Finding, report: ProbeReport, ctx: RunContext, evidence: dict[str, Any], tried: str,
                      gain: float) -> Finding:
    edge = stability_edge(report.curvature, ctx)
    if edge is not None:
        evidence["stability_edge_lr"] = edge
    if edge is not None and ctx.current_lr > edge:
        new = nice(EDGE_MARGIN * edge * ctx.lr / ctx.current_lr)  # the base LR whose current value sits below it
        top = float((report.curvature or {})["top"])
        lower = Remedy(RemedyCode.LOWER_LR, {"lr": new},
                       f"Lower the learning rate from {fmt(ctx.lr)} to {fmt(new)}: the measured sharpness "
                       f"({fmt(top)}) puts the edge of stability at lr {fmt(edge)}, and the run (at "
                       f"{fmt(ctx.current_lr)} now) is past it.")
        rest = [r for r in finding.remedies if r.code is not RemedyCode.LOWER_LR]
        return dataclasses.replace(finding, evidence=evidence, remedies=(lower, *rest),
                                   message=finding.message + f"; the learning rate is past the edge of stability "
                                   f"({fmt(edge)}) the curvature sets")
    best = max((lr_label(HALF_DOWN), lr_label(DOWN)), key=report.gain)
    if report.helps(best, gain):
        factor = 1 / HALF_DOWN if best == lr_label(HALF_DOWN) else 1 / DOWN
        lower = _confirmed(R.lower_lr(ctx, factor, "a smaller step stopped jumping across the valley"), report, best)
        rest = [r for r in finding.remedies if r.code is not RemedyCode.LOWER_LR]
        return dataclasses.replace(finding, evidence=evidence, remedies=(lower, *rest),
                                   message=finding.message + f"; a smaller learning rate brought it down ({tried})")
    return dataclasses.replace(finding, severity=Severity.INFO, evidence=evidence,
                               message=finding.message + f"; but a smaller learning rate did not help either "
                               f"({tried}): the swings are the batches' noise")
