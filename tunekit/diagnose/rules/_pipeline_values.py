"""Pipeline faults seen in values rather than in the program's objects: data on scales far from the unit scale, a
model that cannot fit one batch, DDP replicas whose parameters differ. The Diagnoser measures
(``tunekit.callbacks._pipeline_checks``); these functions decide and word the fault. No torch is needed to test them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from tunekit.diagnose._stats import fmt, median
from tunekit.diagnose._types import Finding, FindingCode, RemedyCode
from tunekit.diagnose.rules._instability import DIVERGED_LOSS_FACTOR
from tunekit.diagnose.rules._pipeline import PipelineFault, _names
from tunekit.diagnose.rules._progress import SLOW_PROGRESS, STALL_MIN_STEPS, _window
from tunekit.record import RunRecord

SCALE_LIMIT = 30.0  # a column whose root mean square is above this is far from the unit scale that default inits
# assume (LeCun et al., "Efficient BackProp", 1998, sec. 4.3: inputs of zero mean and about unit variance). Measured
# on sklearn's bundled sets, per-column RMS over 200 batches of 32: standardized, at most 7.5 (digits: a nearly
# constant pixel's rare values), raw digits 0-16 at most 13 (not flagged: it trains); raw breast cancer has 5 columns
# from 40 to 965, raw wine 2 (magnesium, proline), the diabetes target 171. 30 sits 4x above the first, 1.3x below.
EXPLAINED = (FindingCode.DIVERGENCE, FindingCode.EXPLODING_GRADIENTS, FindingCode.EARLY_INSTABILITY,
             FindingCode.VANISHING_GRADIENTS)  # findings that explain a stall by the step size or the architecture
# (an 8-layer sigmoid MLP cannot fit one digits batch in 60 Adam steps either: 2.29 -> 2.25): no one-batch fit then
MAX_COLUMNS = 8  # columns named per tensor; the count says how many there were
ONE_BATCH_LEFT = 0.5  # a model that cannot bring one batch's loss below half of where it started cannot fit it: a
# model with capacity memorizes one batch (to near zero; even with random labels, Zhang et al. 2017), while one that
# can only shift its output (a frozen network, a detached graph) stays near the loss of a constant prediction, about
# its start (measured below: 96-100% for the faults, under 5% for the healthy digits MLP)
FROZEN_SHARE = 0.01  # trained parameter values under 1% of the model's: a frozen network
RANK_TOLERANCE = 1e-6  # replicas differ when a tensor's sum or norm differs by more than this share of its norm;
# DDP replicas are bitwise equal after a step (every rank applies the same all-reduced gradient), and 1e-6 is about
# 8 float32 roundings of the tensor's size: above rounding differences between devices, far below any real drift


# ------------------------------------------------------------------ data on scales far from the unit scale
def input_scale_fault(step: int, tensors: Sequence[Mapping[str, Any]]) -> PipelineFault | None:
    """Columns of the first batches whose root mean square is above ``SCALE_LIMIT``, named with their scales.

    Args:
        step: the optimizer step the batches were seen by.
        tensors: per 1-D or 2-D float tensor of the batch, ``{"tensor": its path ("batch[0]"), "shape": [rows,
            ...], "scales": [the RMS of each column, over the batches seen]}``; a 1-D tensor is one column (a
            regression target, or a per-sample value).

    Example:
        >>> fault = input_scale_fault(4, [{"tensor": "batch[0]", "shape": [32, 3], "scales": [0.5, 650.0, 1.0]},
        ...                               {"tensor": "batch[1]", "shape": [32], "scales": [171.0]}])
        >>> fault.remedy, [t["columns"] for t in fault.evidence["tensors"]]
        ('normalize_inputs', [[1], [0]])
        >>> input_scale_fault(4, [{"tensor": "batch[0]", "shape": [32, 2], "scales": [0.5, 7.5]}]) is None
        True
    """
    found = []
    for t in tensors:
        scales = [float(s) for s in t["scales"]]
        large = sorted((j for j, s in enumerate(scales) if s > SCALE_LIMIT), key=lambda j: -scales[j])
        if large:
            found.append({"tensor": t["tensor"], "shape": list(t["shape"]), "columns": large[:50],
                          "scales": [scales[j] for j in large[:50]], "count": len(large),
                          "median_scale": statistics.median([s for s in scales if s > 0] or [0.0]),
                          "smallest_scale": min((s for s in scales if s > 0), default=0.0)})
    if not found:
        return None
    described, fixes = [], []
    for f in found:
        if len(f["shape"]) == 1:
            described.append(f"{f['tensor']} (one value per sample: a regression target?) has RMS "
                             f"{fmt(f['scales'][0])}")
            fixes.append(f"{f['tensor']}: train on (y - mean) / std of the training targets and map the predictions "
                         "back")
            continue
        shown = ", ".join(f"{j} ({fmt(s)})" for j, s in zip(f["columns"][:MAX_COLUMNS], f["scales"], strict=False))
        more = f" and {f['count'] - MAX_COLUMNS} more" if f["count"] > MAX_COLUMNS else ""
        described.append(f"{f['tensor']} (shape {'x'.join(map(str, f['shape']))}) has {f['count']} of "
                         f"{f['shape'][1]} columns with RMS over {SCALE_LIMIT:g}: {shown}{more}, while its median "
                         f"column's is {fmt(f['median_scale'])} and its smallest {fmt(f['smallest_scale'])}")
        fixes.append(f"{f['tensor']} columns {', '.join(map(str, f['columns'][:MAX_COLUMNS]))}{more}")
    return PipelineFault(
        "input_scale", step,
        "the data is on scales far from the unit scale a network's initialization assumes: " + "; ".join(described),
        "Standardize " + "; ".join(fixes) + " (subtract the training split's mean and divide by its std, e.g. "
        "sklearn's StandardScaler fit on the training rows, applied to every split); large raw values saturate the "
        "first layer and make the loss ill-conditioned, so no single learning rate suits every column.",
        {"tensors": found}, remedy=RemedyCode.NORMALIZE_INPUTS.value)


# ------------------------------------------------------------------ a model that cannot fit one batch
def stalled_from_start(record: RunRecord, findings: Sequence[Finding] = ()) -> dict[str, float] | None:
    """The run has barely moved from its start: after the stall rules' minimum (``2 * STALL_MIN_STEPS`` steps) the
    median loss of their window is still above ``SLOW_PROGRESS`` of the initial loss (where ``slow_convergence`` and
    ``saddle_stall`` speak of a stall near the start), and not above ``DIVERGED_LOSS_FACTOR`` of it, with no
    finding in ``findings`` that explains it otherwise (``EXPLAINED``: a network wrecked by too large a step, or
    whose gradients vanish, cannot fit a batch either, and its own finding names the cause and the remedy).
    ``{"loss", "initial_loss", "steps"}``, or None."""
    if record.initial_loss is None or len(record) < 2 * STALL_MIN_STEPS or not record.initial_loss > 0:
        return None
    if any(f.code in EXPLAINED for f in findings) or record.first_nonfinite_step is not None:
        return None
    level = median(record.loss[-_window(record):])
    if not (math.isfinite(level) and SLOW_PROGRESS * record.initial_loss < level
            <= DIVERGED_LOSS_FACTOR * record.initial_loss):
        return None
    return {"loss": level, "initial_loss": float(record.initial_loss), "steps": len(record)}


def unfittable_batch_fault(step: int, fit: Mapping[str, Any]) -> PipelineFault | None:
    """A model that, trained on one held batch alone, cannot bring its loss below ``ONE_BATCH_LEFT`` of where it
    started: the fault is in the model or the data, not in the learning rate.

    Args:
        step: the step the probe ran at.
        fit: what the probe saw: ``loss_before``, ``loss_after`` (the lowest reached), ``lr`` (the Adam LR that got
            there), ``steps`` (optimizer steps, all LRs), ``trained`` (names of the parameters the fit's optimizer
            trains), ``trained_values`` and ``values`` (their element count, and the model's), ``with_gradient``
            (the trained parameters that got a non-zero gradient), and the stall that triggered it (``stall``).

    Example:
        >>> fault = unfittable_batch_fault(80, {"loss_before": 2.3, "loss_after": 2.2, "lr": 0.01, "steps": 60,
        ...     "trained": ["head.bias"], "trained_values": 10, "values": 2410, "with_gradient": ["head.bias"]})
        >>> fault.check, fault.critical, "frozen" in fault.message
        ('unfittable_batch', True, True)
    """
    before, after = float(fit["loss_before"]), float(fit["loss_after"])
    if not (math.isfinite(before) and before > 0) or (math.isfinite(after) and after < ONE_BATCH_LEFT * before):
        return None
    trained, with_gradient = list(fit.get("trained", [])), list(fit.get("with_gradient", []))
    share = float(fit.get("trained_values", 0)) / max(1.0, float(fit.get("values", 0)))
    if trained and not with_gradient:
        cause = ("no parameter the optimizer trains gets a gradient from the loss: the graph is detached between "
                 "the parameters and the loss")
        look = ("a .detach(), .data, .item(), .numpy() or torch.no_grad() on the path from the parameters to the "
                "loss (a loss rebuilt with .requires_grad_() runs, and trains nothing)")
    elif len(with_gradient) * 2 <= len(trained):  # most of what is trained is cut off from the loss
        cause = (f"only {len(with_gradient)} of the {len(trained)} trained parameter tensors get a gradient from the "
                 f"loss ({_names(with_gradient)}): the graph is detached between the others and the loss")
        look = ("a .detach(), .data, .item(), .numpy() or torch.no_grad() on the path from the other parameters to "
                "the loss")
    elif share < FROZEN_SHARE:
        cause = (f"only {fit.get('trained_values', 0)} of {fit.get('values', 0)} parameter values are trained "
                 f"({_names(trained)}): the network is frozen")
        look = ("requires_grad=False left on the layers that should learn (a frozen backbone never unfrozen), or "
                "configure_optimizers given only some of the parameters")
    else:
        cause = ("the model gets gradients but still cannot fit the batch: the targets may not match the inputs, or "
                 "the loss or the output layer cannot express them")
        look = ("the labels' alignment with the inputs (a target shuffled, sorted or offset apart from its inputs), "
                "the loss function for the task (e.g. cross_entropy on already-softmaxed outputs, a regression "
                "loss on class ids), and an output layer that squashes what it must predict")
    lowest = fmt(after) if math.isfinite(after) else "a non-finite value"
    return PipelineFault(
        "unfittable_batch", step,
        f"the loss has stayed near its start, and the model cannot fit even one batch: trained alone on one held "
        f"batch with Adam for {fit.get('steps')} steps its loss went from {fmt(before)} only to {lowest} (a model "
        f"that can learn drives it below {ONE_BATCH_LEFT:.0%}); {cause}. A learning rate change cannot fix this",
        f"Check {look}. Then train on one batch alone until its loss is near zero before training on the data.",
        {"loss_before": before, "loss_after": after if math.isfinite(after) else "nan", "lr": fit.get("lr"),
         "steps": fit.get("steps"), "trained": trained[:50], "trained_values": fit.get("trained_values"),
         "values": fit.get("values"), "with_gradient": len(with_gradient), **({"stall": dict(fit["stall"])}
                                                                           if fit.get("stall") else {})},
        critical=True)


# ------------------------------------------------------------------ DDP replicas out of step
def rank_desync_fault(step: int, names: Sequence[str],
                      checksums: Sequence[Sequence[Sequence[float]]]) -> PipelineFault | None:
    """DDP replicas whose parameters differ from rank 0's after an optimizer step.

    Args:
        step: the optimizer step of the comparison.
        names: the parameter names, in the order of the checksums.
        checksums: per rank, ``[sums, norms]``: each parameter tensor's sum and norm on that rank.

    Example:
        >>> rank_desync_fault(10, ["w", "b"], [[[1.0, 2.0], [3.0, 1.0]], [[1.5, 2.0], [3.2, 1.0]]]).evidence["ranks"]
        [1]
        >>> rank_desync_fault(10, ["w"], [[[1.0], [3.0]], [[1.0], [3.0]]]) is None
        True
    """
    if len(checksums) < 2:
        return None
    sums0, norms0 = checksums[0]
    ranks: list[int] = []
    first: dict[str, Any] | None = None
    differing = 0
    for rank, (sums, norms) in enumerate(checksums[1:], 1):
        bad = [i for i in range(len(names)) if _differs(sums0[i], sums[i], norms0[i], norms[i])]
        if bad:
            ranks.append(rank)
            differing = max(differing, len(bad))
            if first is None:
                i = bad[0]
                first = {"parameter": names[i], "rank": rank, "sum_rank0": sums0[i], "sum": sums[i],
                         "norm_rank0": norms0[i], "norm": norms[i]}
    if first is None:
        return None
    which = ", ".join(map(str, ranks))
    return PipelineFault(
        "ranks_out_of_step", step,
        f"the DDP replicas are out of step at step {step}: rank{'s' if len(ranks) > 1 else ''} {which} "
        f"hold{'' if len(ranks) > 1 else 's'} parameters that differ from rank 0's ({differing} of {len(names)} "
        f"tensors; the first is {first['parameter']}: sum {fmt(first['sum_rank0'])} and norm "
        f"{fmt(first['norm_rank0'])} on rank 0, {fmt(first['sum'])} and {fmt(first['norm'])} on rank "
        f"{first['rank']}), so each rank trains a different model and rank 0's checkpoint is not what the others "
        "train",
        f"Find what changes {first['parameter']} on some ranks only: an in-place edit of the weights outside the "
        "optimizer (in a hook, under torch.no_grad()) on one rank, code under a rank test or rank_zero_only that "
        "touches parameters, per-rank random numbers applied to weights or gradients, or a checkpoint loaded on one "
        "rank after the start; DDP keeps replicas equal only by giving every rank the same gradient.",
        {"ranks": ranks, "differing": differing, "parameters": len(names), **first})


def _differs(sum0: float, sum1: float, norm0: float, norm1: float) -> bool:
    scale = max(abs(norm0), abs(norm1), 1e-30)
    return abs(sum1 - sum0) > RANK_TOLERANCE * scale or abs(norm1 - norm0) > RANK_TOLERANCE * scale
