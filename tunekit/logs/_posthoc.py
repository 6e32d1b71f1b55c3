"""Diagnosing a run logged without tunekit: its logged series as a ``RunRecord``, the same rules, and what could not
be decided from what was logged."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tunekit.diagnose import Diagnosis, Finding, Remedy, RemedyCode, RunContext, diagnose
from tunekit.exceptions import ConfigError
from tunekit.logs._series import GRAD_NORM_KEYS, LOSS_KEYS, LR_KEYS, VAL_KEYS, Logged
from tunekit.record import RunRecord, initial_loss_of

UPDATE_RATIO_KEY = "tunekit/update_ratio"
RULE_POINTS = 80  # the rules read windows of about 40 points: fewer logged points leave most of them silent


@dataclass
class LoggedRun:
    """A logged run read back: the record, the settings known, the series used, and what could not be decided."""

    record: RunRecord
    context: RunContext
    keys: dict[str, str | None]
    every: int
    undecided: list[str] = field(default_factory=list)

    def diagnose(self) -> Diagnosis:
        if math.isfinite(self.context.lr):
            return diagnose(self.record, self.context)
        # No LR logged: diagnosed at a unit LR, so an LR remedy's value is the factor to apply to the run's own.
        unit = dataclasses.replace(self.context, lr=1.0)
        return Diagnosis(_as_factor(f) for f in diagnose(self.record, unit).findings)


def _as_factor(finding: Finding) -> Finding:
    """A finding whose LR remedies name a factor of the (unknown) LR instead of a value."""
    remedies = []
    for r in finding.remedies:
        change = {k: v for k, v in r.change.items() if k != "lr"}
        if r.code in (RemedyCode.LOWER_LR, RemedyCode.RAISE_LR):
            head = r.message.split(" from ")[0]
            r = Remedy(r.code, change, f"{head} to about {float(r.change['lr']):.2g}x its value (the run's learning "
                                       "rate was not logged).")
        elif r.code == RemedyCode.DECAY_LR:  # the schedule starts from the run's own LR
            r = Remedy(r.code, change, r.message.replace(" from 1", " from the run's learning rate"))
        remedies.append(r)  # other LR values (Adam's default for a switch) are absolute
    return dataclasses.replace(finding, remedies=tuple(remedies))


def _align(logged: Logged, name: str | None, steps: np.ndarray, fill: bool = False) -> np.ndarray:
    """A series at ``steps``: its value logged at that step (the latest before it with ``fill``), else NaN."""
    out = np.full(len(steps), np.nan)
    if name is None:
        return out
    s, v = logged.series[name]
    if fill:
        idx = np.searchsorted(s, steps, side="right") - 1
        ok = idx >= 0
        out[ok] = v[idx[ok]]
        return out
    lookup = dict(zip(s.tolist(), v.tolist(), strict=True))
    return np.array([lookup.get(float(t), np.nan) for t in steps])


def from_logged(logged: Logged, *, loss: str | None = None, grad_norm: str | None = None, lr: str | None = None,
                val_loss: str | None = None, optimizer: str = "sgd") -> LoggedRun:
    """Read the run's series (each key guessed from common names unless given) into a record the rules take."""
    loss_key = logged.find(LOSS_KEYS, loss)
    if loss_key is None:
        names = ", ".join(sorted(logged.series)[:12]) or "none"
        hint = f"no series {loss!r}" if loss else "no training loss among the logged series"
        raise ConfigError(f"{logged.source}: {hint} (logged: {names}); give --loss KEY.")
    steps, values = logged.series[loss_key]
    finite_steps = steps[np.isfinite(steps)]
    keys = {"loss": loss_key, "grad_norm": logged.find(GRAD_NORM_KEYS, grad_norm), "lr": logged.find(LR_KEYS, lr),
            "val_loss": logged.find(VAL_KEYS, val_loss)}
    for what, given in (("grad_norm", grad_norm), ("lr", lr), ("val_loss", val_loss)):
        if given is not None and keys[what] is None:
            raise ConfigError(f"{logged.source}: no series {given!r} to read the {what} from.")
    int_steps = finite_steps.astype(int)
    lrs = _align(logged, keys["lr"], finite_steps, fill=True)
    layers = logged.layers()
    layer_norms = np.column_stack([_align(logged, n, finite_steps) for n in layers.values()]) if layers else \
        np.zeros((len(int_steps), 0))
    val = logged.series[keys["val_loss"]] if keys["val_loss"] else (np.zeros(0), np.zeros(0))
    updates = logged.series.get(UPDATE_RATIO_KEY, (np.zeros(0), np.zeros(0)))
    bad = ~np.isfinite(values)
    record = RunRecord(
        steps=int_steps, loss=values, grad_norm=_align(logged, keys["grad_norm"], finite_steps), lr=lrs,
        layer_names=tuple(layers), layer_grad_norms=layer_norms,
        update_steps=updates[0].astype(int), update_ratio=updates[1],
        val_steps=val[0].astype(int), val_loss=val[1],
        first_nonfinite_step=int(int_steps[int(np.argmax(bad))]) if bad.any() else None,
        initial_loss=initial_loss_of(values), total_steps=None,
    )
    finite_lrs = lrs[np.isfinite(lrs)]
    context = RunContext(optimizer=optimizer, lr=float(finite_lrs[-1]) if len(finite_lrs) else math.nan)
    every = int(np.median(np.diff(int_steps))) if len(int_steps) > 1 else 1
    return LoggedRun(record, context, keys, every, _undecided(record, keys, every))


def _undecided(record: RunRecord, keys: dict[str, Any], every: int) -> list[str]:
    notes = []
    if not record.layer_names:
        notes.append("vanishing_gradients and saddle_stall need per-layer gradient norms, which were not logged "
                     "(the saddle check used the global norm; vanishing gradients could not be checked)")
    if keys["grad_norm"] is None:
        notes.append("exploding_gradients needs gradient norms, which were not logged")
    if not len(record.update_steps):
        notes.append("slow_convergence was judged from the loss alone (the update/weight ratio was not logged)")
    if keys["val_loss"] is None:
        notes.append("generalization_gap needs a validation loss, which was not logged")
    if keys["lr"] is None:
        notes.append("the learning rate was not logged: remedies name a factor, not a new value")
    if every > 1:
        notes.append(f"the loss was logged every {every} steps: spikes between logged steps are not seen")
    if len(record) < RULE_POINTS:
        notes.append(f"only {len(record)} points were logged: rules that read windows of about 40 points stay "
                     "silent (log every step, or more often, for a fuller diagnosis)")
    return notes
