"""Diagnosing a run logged without tunekit: its logged series as a ``RunRecord``, the same rules, and what could not
be decided from what was logged."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tunekit.diagnose import Diagnosis, RunContext, diagnose
from tunekit.exceptions import ConfigError
from tunekit.logs._series import GRAD_NORM_KEYS, LOSS_KEYS, LR_KEYS, NOT_LR, VAL_KEYS, Logged, optimizer_of
from tunekit.logs._unmeasured import UNIT_LR, scrub
from tunekit.record import INITIAL_STEPS, RunRecord, initial_loss_of

UPDATE_RATIO_KEY = "tunekit/update_ratio"
ASSUMED_OPTIMIZER = "sgd"  # remedies need an optimizer; SGD is assumed when the log names none (and said so)
ADAM_FAMILY = ("adam", "adamw", "nadam", "radam", "adamax")  # their logged "momentum" is beta1
RULE_POINTS = 80  # the rules read windows of about 40 points: fewer logged points leave most of them silent


@dataclass
class LoggedRun:
    """A logged run read back: the record, the settings known, the series used, and what could not be decided.

    ``measured`` names the ``context`` fields read from the log; the others are ``RunContext``'s stand-ins, which
    the diagnosis never quotes (see ``scrub``).
    """

    record: RunRecord
    context: RunContext
    keys: dict[str, str | None]
    every: int
    undecided: list[str] = field(default_factory=list)
    measured: frozenset[str] = frozenset()

    def diagnose(self) -> Diagnosis:
        context = self.context if "lr" in self.measured else dataclasses.replace(self.context, lr=UNIT_LR)
        has_norm = bool(np.isfinite(self.record.grad_norm).any())
        return Diagnosis(scrub(f, self.measured, has_norm) for f in diagnose(self.record, context).findings)


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
                val_loss: str | None = None, optimizer: str | None = None) -> LoggedRun:
    """Read the run's series (each key chosen among common names unless given, see ``Logged.find``) into a record
    the rules take, with the settings the log holds: the LR, and the optimizer a LearningRateMonitor column names
    (``lr-Adam``) unless ``optimizer`` is given, with its momentum and weight decay when they were logged.

    Args:
        logged: every scalar series of the run (``read_logged(path)``: a CSVLogger ``metrics.csv``, TensorBoard event
            files, a W&B run folder).
        loss, grad_norm, lr, val_loss: the logged name of that series, when the guess is wrong (``None``: guessed;
            a gradient norm, LR or validation loss that is neither given nor found stays NaN, and is said).
        optimizer: the optimizer the run used (``sgd``, ``adam``, ...), when no logged column names it.

    Returns:
        A ``LoggedRun``: ``record`` has one row per logged step of the training loss (``steps``, ``loss`` and the
        other series aligned to those steps, NaN where not logged then; the LR carried forward from its last logged
        value; per-layer gradient norms as a ``(rows, layers)`` array), ``context`` the settings read (``measured``
        names them), ``keys`` the series used, ``every`` the median steps between logged points, ``undecided``
        what the log was too thin to decide.

    Raises:
        ConfigError: no training loss was found, or a given key was not logged.

    Example:
        >>> logged = Logged("metrics.csv")
        >>> logged.add("train_loss", list(range(100)), [2.0] * 100)
        >>> run = from_logged(logged)
        >>> run.keys["loss"], len(run.record), run.every, run.context.optimizer, sorted(run.measured)
        ('train_loss', 100, 1, 'sgd', [])
    """
    loss_key = logged.find(LOSS_KEYS, loss)
    if loss_key is None:
        names = ", ".join(sorted(logged.series)[:12]) or "none"
        hint = f"no series {loss!r}" if loss else "no training loss among the logged series"
        raise ConfigError(f"{logged.source}: {hint} (logged: {names}); give --loss KEY.")
    steps, values = logged.series[loss_key]
    finite_steps = steps[np.isfinite(steps)]
    keys = {"loss": loss_key, "grad_norm": logged.find(GRAD_NORM_KEYS, grad_norm),
            "lr": logged.find(LR_KEYS, lr, exclude=NOT_LR), "val_loss": logged.find(VAL_KEYS, val_loss)}
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
        initial_loss=_initial_loss(int_steps, values), total_steps=None,
    )
    context, measured = _context(logged, keys["lr"], lrs, optimizer)
    every = int(np.median(np.diff(int_steps))) if len(int_steps) > 1 else 1
    return LoggedRun(record, context, keys, every, _undecided(record, keys, every, measured), measured)


def _initial_loss(steps: np.ndarray, values: np.ndarray) -> float | None:
    """The loss the run started from, read by the logged step index: from the points logged in the run's first
    ``INITIAL_STEPS`` steps, or, when the first point came later (a loss logged every 50 steps, or once an epoch),
    from that point alone (the first five logged points of such a log reach hundreds of steps into training)."""
    finite = np.isfinite(values)
    if not finite.any():
        return None
    first = steps[finite][0]
    return initial_loss_of(values[(steps < max(INITIAL_STEPS, first + 1)) & finite])


def _context(logged: Logged, lr_key: str | None, lrs: np.ndarray, optimizer: str | None
             ) -> tuple[RunContext, frozenset[str]]:
    """The settings the log holds, and which ``RunContext`` fields they are."""
    measured: dict[str, Any] = {}
    finite_lrs = lrs[np.isfinite(lrs)]
    if len(finite_lrs):  # as a live run's context: the base LR a schedule multiplies (the log's peak), and now
        measured["lr"] = float(finite_lrs.max())
        if finite_lrs[-1] != finite_lrs.max():
            measured["lr_now"] = float(finite_lrs[-1])
    name = optimizer or optimizer_of(lr_key)
    if name is not None:
        measured["optimizer"] = name
    if lr_key is not None:
        momentum = _last(logged, f"{lr_key}-momentum")  # SGD's momentum, or Adam's beta1
        if momentum is not None:
            measured["beta1" if name in ADAM_FAMILY else "momentum"] = momentum
        decay = _last(logged, f"{lr_key}-weight_decay")
        if decay is not None:
            measured["weight_decay"] = decay
    context = RunContext(**{"optimizer": ASSUMED_OPTIMIZER, "lr": math.nan, **measured})
    return context, frozenset(measured)


def _last(logged: Logged, key: str) -> float | None:
    if key not in logged.series:
        return None
    values = logged.series[key][1]
    values = values[np.isfinite(values)]
    return float(values[-1]) if len(values) else None


def _undecided(record: RunRecord, keys: dict[str, Any], every: int, measured: frozenset[str]) -> list[str]:
    notes = []
    if "optimizer" not in measured:
        notes.append(f"the optimizer was not logged (LearningRateMonitor's lr-<Optimizer> column names it): remedies "
                     f"assume {ASSUMED_OPTIMIZER.upper()}; give --optimizer NAME")
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
    if len(record) and record.steps[0] > 0:
        notes.append(f"the loss was first logged at step {int(record.steps[0])}: the run's initial loss is read "
                     "there, not at step 0")
    if every > 1:
        notes.append(f"the loss was logged every {every} steps: spikes between logged steps are not seen")
    if len(record) < RULE_POINTS:
        notes.append(f"only {len(record)} points were logged: rules that read windows of about 40 points stay "
                     "silent (log every step, or more often, for a fuller diagnosis)")
    return notes
