"""Rules for faults in the training pipeline rather than the optimization: non-finite values in the data, and
faults in the training program (parameters that never learn, gradients never cleared, the same batch every step,
modules in eval mode, a schedule stepped at the wrong interval)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tunekit.diagnose import _remedies as R
from tunekit.diagnose._context import RunContext
from tunekit.diagnose._types import Finding, FindingCode, RemedyCode, Severity
from tunekit.record import RunRecord


def _listed(cell: dict[str, Any], axis: str, word: str) -> str | None:
    """``samples 3, 17 and 2 more`` from a cell's listed indices along ``axis`` and their count."""
    listed, count = cell.get(axis), int(cell.get(f"{axis[:-1]}_count", 0))
    if not listed:
        return None
    more = f" and {count - len(listed)} more" if count > len(listed) else ""
    return f"{word}{'s' if count > 1 else ''} {', '.join(map(str, listed))}{more}"


def _where(cell: dict[str, Any]) -> str:
    """``batch[0] (shape 32x30): 1 non-finite value in sample 5, column 5``."""
    shape = "x".join(str(d) for d in cell.get("shape", []))
    n = int(cell["values"])
    places = [p for p in (_listed(cell, "rows", "sample"), _listed(cell, "columns", "column")) if p]
    return (f"{cell['tensor']} (shape {shape}): {n} non-finite value{'s' if n > 1 else ''}"
            + (f" in {', '.join(places)}" if places else ""))


def check_data_fault(record: RunRecord, ctx: RunContext) -> Finding | None:
    """The loss went non-finite on a batch that itself held NaN/inf values: the data is at fault, not the
    optimizer (lowering the LR changes nothing: the same batch poisons the weights at the same step)."""
    found = record.nonfinite_batch
    if not found or not found.get("batches"):
        return None
    step = int(found["step"])
    first = found["batches"][0]
    cells = first["cells"]
    where = "; ".join(_where(c) for c in cells)
    message = (f"the loss became non-finite at step {step} on a training batch that itself holds NaN/inf values "
               f"(batch {first['batch_idx']} of its epoch: {where}): the data is at fault, not the learning rate")
    fix = (f"Find and fix the non-finite values in the data: {where} of batch {first['batch_idx']} at step {step}. "
           "Drop or impute the rows (e.g. a missing cell read as NaN), or guard the loader with "
           "torch.isfinite(x).all(); a smaller learning rate cannot help, since the same batch makes the loss NaN "
           "whatever the weights.")
    return Finding(FindingCode.DATA_FAULT, Severity.CRITICAL, step, message,
                   {"step": step, "batch_idx": first["batch_idx"], "nonfinite": cells, "lr": ctx.lr},
                   (R.note(RemedyCode.CHECK_PIPELINE, fix),))


# ---------------------------------------------------------------------------------------------------------------
# Faults in the training program itself: parameters, gradients, the loader, module modes, the LR schedule. The
# Diagnoser inspects the live objects once or twice early in the fit (``tunekit.callbacks._pipeline_checks``) and
# hands what it saw to these functions, which decide and word the finding; no torch is needed to test them.

# Where each constant comes from: "(zoo)" chosen on the zoo's training families (benchmarks/zoo/tune.py, each family
# scored with the values chosen on the others); "(hand)" set by hand, when the rule was written or after reading
# the zoo's runs, and not searched; otherwise the source is named (a paper, a reference text, torch, statistics).
MAX_NAMED = 8  # objects named in a message; the count says how many there were
MIN_CLEAR_OBSERVATIONS = 3  # (hand) optimizer steps seen before gradients are said never to be cleared
MIN_REPEATED_BATCHES = 4  # (hand) distinct batches of one epoch that must all look the same for "the same batch"
UNFINISHED_SHARE = 0.25  # (hand) a schedule that a run steps through less than this share of is not run at its scale
STEP_SCALE_MIN_BATCHES = 4  # (hand) optimizer steps per epoch below which step and epoch scales are too close to judge


@dataclass(frozen=True)
class PipelineFault:
    """One fault found in the training program, with the objects at fault named.

    Args:
        check: which check found it: ``no_gradient``, ``not_in_optimizer``, ``gradients_never_cleared``,
            ``repeated_batch``, ``eval_mode`` or ``schedule_interval``.
        step: the optimizer step it was found at.
        message: what is wrong, naming the parameters, modules or scheduler.
        fix: what to look at and change (the ``check_pipeline`` remedy's message).
        evidence: what was seen (names, counts, the scheduler's settings).
        critical: the run cannot learn at all.
        remedy: the remedy code of the fix (``check_pipeline``; ``normalize_inputs`` for data on the wrong scale).
        hint: what was seen may be on purpose (a dataset that yields the whole training set as every item): the
            finding is an info, not a warning, when all its faults are hints.
    """

    check: str
    step: int
    message: str
    fix: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    critical: bool = False
    remedy: str = RemedyCode.CHECK_PIPELINE.value
    hint: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "step": self.step, "message": self.message, "fix": self.fix,
                "evidence": dict(self.evidence), "critical": self.critical, "remedy": self.remedy, "hint": self.hint}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PipelineFault:
        return cls(str(data["check"]), int(data["step"]), str(data["message"]), str(data["fix"]),
                   dict(data.get("evidence", {})), bool(data.get("critical", False)),
                   str(data.get("remedy", RemedyCode.CHECK_PIPELINE.value)), bool(data.get("hint", False)))


def _names(names: Sequence[str]) -> str:
    """``a, b, c and 5 more``."""
    shown = ", ".join(names[:MAX_NAMED])
    return shown + (f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else "")


def unlearned_parameter_faults(step: int, no_gradient: Sequence[str], not_in_optimizer: Sequence[str],
                               trainable: int) -> list[PipelineFault]:
    """Trainable parameters (``requires_grad``) that got no gradient in the first optimizer steps (not in the graph
    of the loss: unused or detached), and those that got one but are in no optimizer param group (they never
    change). Critical when no trainable parameter both gets a gradient and is optimized.

    Example:
        >>> (fault,) = unlearned_parameter_faults(3, ["head.weight", "head.bias"], [], trainable=4)
        >>> fault.check, fault.critical
        ('no_gradient', False)
    """
    critical = trainable > 0 and len(no_gradient) + len(not_in_optimizer) >= trainable
    faults = []
    if no_gradient:
        n = len(no_gradient)
        faults.append(PipelineFault(
            "no_gradient", step,
            f"{n} of {trainable} trainable parameters got no gradient in the first {step} optimizer steps "
            f"(unused or detached from the loss): {_names(no_gradient)}",
            f"Find where {_names(no_gradient)} leave the graph of the loss: a module that is built but never called "
            "in forward, a .detach(), .data, .item() or torch.no_grad() on their path, or a tensor rebuilt from "
            "numpy. If they are unused on purpose, set requires_grad=False on them (or delete them) so they are "
            "not mistaken for a fault.",
            {"parameters": list(no_gradient[:50]), "count": n, "trainable": trainable}, critical))
    if not_in_optimizer:
        n = len(not_in_optimizer)
        faults.append(PipelineFault(
            "not_in_optimizer", step,
            f"{n} of {trainable} trainable parameters get a gradient but are in no optimizer param group, so "
            f"they never change: {_names(not_in_optimizer)}",
            f"Pass {_names(not_in_optimizer)} to the optimizer in configure_optimizers (e.g. "
            "torch.optim.AdamW(self.parameters(), ...), or add a param group for them); a module created after "
            "the optimizer, or param groups listed by hand, leave parameters out.",
            {"parameters": list(not_in_optimizer[:50]), "count": n, "trainable": trainable}, critical))
    return faults


def uncleared_gradients_fault(step: int, parameter: str, carried: Sequence[bool],
                              manual: bool) -> PipelineFault | None:
    """Gradients never cleared: at the first backward after each of the first optimizer steps, the gradient that
    step already applied was still in ``parameter.grad`` (``carried``: one flag per step seen), so each step adds
    every earlier gradient again. Needs ``MIN_CLEAR_OBSERVATIONS`` steps, all carried.

    Example:
        >>> uncleared_gradients_fault(4, "net.0.weight", [True, True, True], manual=True).check
        'gradients_never_cleared'
        >>> uncleared_gradients_fault(4, "net.0.weight", [True, False, True], manual=True) is None
        True
    """
    if len(carried) < MIN_CLEAR_OBSERVATIONS or not all(carried):
        return None
    how = ("call optimizer.zero_grad() once per optimizer step in training_step (before manual_backward, or right "
           "after optimizer.step())" if manual else
           "your optimizer_zero_grad override does not clear them: remove it, or call optimizer.zero_grad() in it")
    return PipelineFault(
        "gradients_never_cleared", step,
        f"the gradients are never cleared: in each of the first {len(carried)} optimizer steps the new gradient of "
        f"{parameter} was added to the one the previous step had already applied, so every step re-applies all "
        "earlier gradients",
        f"Clear the gradients every step: {how}.",
        {"parameter": parameter, "steps_seen": len(carried), "manual_optimization": manual})


def repeated_batch_fault(step: int, fingerprints: Sequence[Sequence[float]],
                         whole_batches: bool = False) -> PipelineFault | None:
    """The same batch every step: the first batches of an epoch (distinct batch indices) all have the same
    fingerprint (per tensor: its mean and first element). Needs ``MIN_REPEATED_BATCHES`` batches.

    ``whole_batches``: the dataset yields whole batches itself (a loader with ``batch_size=None``) and the repeated
    batch holds different samples: full-batch training that repeats the training set on purpose looks the same, so
    the fault is a hint (an info finding), not a warning. One sample copied across a batch is never on purpose.

    Example:
        >>> repeated_batch_fault(8, [[3.0, 1.0]] * 8).check
        'repeated_batch'
        >>> repeated_batch_fault(8, [[3.0, 1.0]] * 7 + [[2.0, 1.0]]) is None
        True
    """
    if len(fingerprints) < MIN_REPEATED_BATCHES or any(list(f) != list(fingerprints[0]) for f in fingerprints):
        return None
    n = len(fingerprints)
    on_purpose = ("; the dataset yields whole batches itself (batch_size=None) of different samples, as full-batch "
                  "training does on purpose: if it is not meant, see the fix") if whole_batches else ""
    return PipelineFault(
        "repeated_batch", step,
        f"the training loader yields the same batch every step: the first {n} batches of the epoch are identical "
        "(the same means and first values in every tensor)" + on_purpose,
        "Check the training Dataset and DataLoader: a __getitem__ that ignores its index (returns self.x[0] or a "
        "fixed sample), a sampler or iterator that repeats one batch, or a batch cached in the LightningModule; "
        "the model is fitting one batch, not the data.",
        {"batches": n, "fingerprint": [float(v) for v in fingerprints[0]][:16], "whole_batches": whole_batches},
        hint=whole_batches)


def eval_mode_fault(step: int, modules: Sequence[Mapping[str, Any]]) -> PipelineFault | None:
    """Modules left in eval mode while the LightningModule trains, where the mode matters (BatchNorm statistics
    frozen, dropout off). ``modules``: the outermost eval-mode modules, each ``{"module", "type", "affected":
    ["name (Type)", ...], "parameters", "trainable"}``. A module with parameters none of which is trainable is a
    frozen backbone kept in eval mode on purpose, and is not a fault.

    Example:
        >>> seen = [{"module": "encoder", "type": "Sequential", "affected": ["encoder.1 (BatchNorm1d)"],
        ...          "parameters": 4, "trainable": 4}]
        >>> eval_mode_fault(0, seen).evidence["modules"][0]["module"]
        'encoder'
        >>> eval_mode_fault(0, [{**seen[0], "trainable": 0}]) is None
        True
    """
    faulty = [m for m in modules if m.get("affected") and not (m.get("parameters", 0) and not m.get("trainable"))]
    if not faulty:
        return None
    described = [m["module"] + (f" ({', '.join(m['affected'][:MAX_NAMED])})"
                                if m["affected"] != [f"{m['module']} ({m['type']})"] else f" ({m['type']})")
                 for m in faulty]
    names = [m["module"] for m in faulty]
    return PipelineFault(
        "eval_mode", step,
        f"{len(faulty)} module{'s are' if len(faulty) > 1 else ' is'} in eval mode while the model trains "
        f"(BatchNorm statistics frozen, dropout off): {_names(described)}",
        f"Find the .eval() call that leaves {_names(names)} in eval mode (in __init__, a hook such as "
        "on_train_epoch_start, or a pretrained model loaded in eval mode) and remove it, or call .train() on it "
        "in on_train_start; to freeze it on purpose, also set requires_grad=False on its parameters.",
        {"modules": [dict(m) for m in faulty[:50]], "count": len(faulty)})


def schedule_mismatch(entry: Mapping[str, Any]) -> str | None:
    """Why a scheduler is stepped at the wrong interval, or None. ``entry``: ``{"scheduler", "interval"
    ("step" | "epoch"), "frequency", "epochs", "steps" (the fit's planned epochs and optimizer steps), and
    "horizon" (the scheduler steps its shape spans: OneCycleLR's total_steps, CosineAnnealingLR's T_max, ...)
    with "horizon_name" and "warmup" (it only ramps up to the base LR), or "warmup_peak" (the scheduler step at
    which a LambdaLR warmup reaches its peak)}``.

    A schedule whose horizon is on the optimizer-step scale but which Lightning steps once an epoch runs through
    less than ``UNFINISHED_SHARE`` of itself; one on the epoch scale stepped every optimizer step finishes within
    that share of the fit (and cosine and one-cycle then go back up or fail; a warmup that ends early is no fault).

    Example:
        >>> schedule_mismatch({"scheduler": "OneCycleLR", "interval": "epoch", "frequency": 1, "epochs": 10,
        ...                    "steps": 1000, "horizon": 1000, "horizon_name": "total_steps"})[:45]
        'OneCycleLR (total_steps=1000) is stepped once'
    """
    epochs, steps, freq = entry.get("epochs"), entry.get("steps"), max(1, int(entry.get("frequency", 1)))
    if not epochs or not steps or steps < STEP_SCALE_MIN_BATCHES * epochs:
        return None
    name, interval = entry["scheduler"], entry["interval"]
    per_epoch, per_step = epochs / freq, steps / freq  # the scheduler steps the fit takes at each interval
    peak = entry.get("warmup_peak")
    if peak is not None:
        if interval == "epoch" and per_epoch < UNFINISHED_SHARE * peak:
            return (f"{name} warms up over {peak} scheduler steps but is stepped once an epoch (interval 'epoch'): "
                    f"the fit's {epochs} epochs step it {per_epoch:g} times, so the LR never leaves its warmup")
        return None
    horizon = entry.get("horizon")
    if not horizon:
        return None
    label = f"{name} ({entry.get('horizon_name', 'horizon')}={horizon})"
    nearer_steps = abs(math.log(horizon / per_step)) < abs(math.log(horizon / per_epoch))
    if interval == "epoch" and nearer_steps and per_epoch < UNFINISHED_SHARE * horizon:
        return (f"{label} is stepped once an epoch (interval 'epoch'): its horizon is about the fit's {steps} "
                f"optimizer steps, but its {epochs} epochs step it {per_epoch:g} times, {per_epoch / horizon:.0%} of "
                "the way through")
    if interval == "step" and not nearer_steps and horizon < UNFINISHED_SHARE * per_step and not entry.get("warmup"):
        return (f"{label} is stepped every optimizer step (interval 'step'), but its horizon is about the fit's "
                f"{epochs} epochs: it runs through itself in the first {horizon * freq} of {steps} steps")
    return None


def schedule_interval_fault(step: int, schedulers: Sequence[Mapping[str, Any]]) -> PipelineFault | None:
    """Schedulers stepped at the wrong interval (see ``schedule_mismatch``), named, with the fix.

    Example:
        >>> fault = schedule_interval_fault(0, [{"scheduler": "CosineAnnealingLR", "interval": "step",
        ...     "frequency": 1, "epochs": 20, "steps": 2000, "horizon": 20, "horizon_name": "T_max"}])
        >>> fault.check, '"interval": "epoch"' in fault.fix
        ('schedule_interval', True)
    """
    wrong = [(s, why) for s in schedulers if (why := schedule_mismatch(s))]
    if not wrong:
        return None
    fixes = []
    for s, _ in wrong:
        want = "step" if s["interval"] == "epoch" else "epoch"
        scale = "optimizer steps" if want == "step" else "epochs"
        fixes.append(f'return {{"scheduler": {s["scheduler"]}(...), "interval": "{want}"}} as the "lr_scheduler" '
                     f"of configure_optimizers (or size its horizon in {scale})")
    return PipelineFault(
        "schedule_interval", step, "; ".join(why for _, why in wrong),
        "Step the schedule at the scale it was built for: " + "; ".join(fixes) + ".",
        {"schedulers": [dict(s) for s, _ in wrong]})


def pipeline_finding(faults: Sequence[PipelineFault]) -> Finding | None:
    """One ``pipeline_fault`` finding for the faults found (a remedy for each, naming the objects at fault: the
    fault's own code, ``check_pipeline`` unless it says otherwise); critical when one of them leaves the run unable to
    learn at all, else a warning.

    Example:
        >>> f = pipeline_finding([repeated_batch_fault(8, [[1.0]] * 8)])
        >>> f.code.value, f.severity.value, f.remedies[0].code.value
        ('pipeline_fault', 'warning', 'check_pipeline')
    """
    if not faults:
        return None
    severity = (Severity.CRITICAL if any(f.critical for f in faults) else
                Severity.INFO if all(f.hint for f in faults) else Severity.WARNING)
    message = (faults[0].message if len(faults) == 1 else
               f"{len(faults)} pipeline faults: " + "; ".join(f"({i}) {f.message}" for i, f in enumerate(faults, 1)))
    return Finding(FindingCode.PIPELINE_FAULT, severity, min(f.step for f in faults), message,
                   {"faults": [{"check": f.check, "step": f.step, **f.evidence} for f in faults]},
                   tuple(R.note(RemedyCode(f.remedy), f.fix) for f in faults))
