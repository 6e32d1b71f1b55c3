"""Rules for faults in the training pipeline rather than the optimization: non-finite values in the data."""

from __future__ import annotations

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
