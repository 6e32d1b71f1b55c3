"""``RunRecord``: the recorded series of a run, as plain numpy arrays.

The signals layer fills it, the diagnosis rules read it, the dashboards draw it; it needs neither torch nor
Lightning, so a rule can be tested on a hand-made series.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def _arr(values: Sequence[float] | np.ndarray | None, dtype: type = float) -> np.ndarray:
    return np.asarray([] if values is None else values, dtype=dtype)


@dataclass
class RunRecord:
    """The series recorded over a run, one entry per optimizer step unless said otherwise.

    Args:
        steps: optimizer step of each entry (0-based, as Lightning's ``global_step`` before the update).
        loss: training loss of the step (mean over accumulated micro-batches).
        grad_norm: global L2 norm of the (unscaled, unclipped) gradients.
        lr: learning rate of the first param group.
        layer_names: layers (modules owning parameters) in registration order, input side first.
        layer_grad_norms: shape ``(len(steps), len(layer_names))``.
        update_steps: steps at which the update-to-weight ratio was sampled.
        update_ratio: global ``||w_after - w_before|| / ||w_before||`` at those steps.
        val_steps: steps at which validation ran; ``val_loss`` its loss there.
        first_nonfinite_step: first step whose loss or gradient norm was NaN/inf, if any.
        initial_loss: the first finite step's loss (kept when old entries are thinned).
        total_steps: the number of optimizer steps the run was planned for, if known.
        grad_scaler: True under fp16 loss scaling, where an occasional inf gradient is a skipped step,
            not a failure.
        group_lrs: the LR of every param group at each step, shape ``(len(steps), groups)`` (for display).
        nonfinite_batch: what the batches of ``first_nonfinite_step`` held: ``{"step", "batches": [{"batch_idx",
            "cells": [{"tensor", "shape", "values", "rows", "row_count", "columns", "column_count"}]}]}``, with
            an empty ``batches`` list when they were all finite; None when they were not inspected.
    """

    steps: np.ndarray = field(default_factory=lambda: _arr(None, int))
    loss: np.ndarray = field(default_factory=lambda: _arr(None))
    grad_norm: np.ndarray = field(default_factory=lambda: _arr(None))
    lr: np.ndarray = field(default_factory=lambda: _arr(None))
    layer_names: tuple[str, ...] = ()
    layer_grad_norms: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    update_steps: np.ndarray = field(default_factory=lambda: _arr(None, int))
    update_ratio: np.ndarray = field(default_factory=lambda: _arr(None))
    val_steps: np.ndarray = field(default_factory=lambda: _arr(None, int))
    val_loss: np.ndarray = field(default_factory=lambda: _arr(None))
    first_nonfinite_step: int | None = None
    initial_loss: float | None = None
    total_steps: int | None = None
    grad_scaler: bool = False
    group_lrs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    nonfinite_batch: dict[str, Any] | None = None

    @classmethod
    def from_series(
        cls,
        loss: Sequence[float],
        grad_norm: Sequence[float] | None = None,
        lr: Sequence[float] | float = 1e-3,
        **kwargs: object,
    ) -> RunRecord:
        """Build a record from plain lists, one value per step from step 0 (handy in tests and notebooks).

        Example:
            >>> rec = RunRecord.from_series([2.3, 2.0, float("nan")], grad_norm=[1.0, 5.0, float("nan")])
            >>> rec.first_nonfinite_step, rec.initial_loss
            (2, 2.15)
        """
        loss_arr = _arr(loss)
        n = len(loss_arr)
        gn = _arr(grad_norm) if grad_norm is not None else np.ones(n)
        lr_arr = np.full(n, float(lr)) if isinstance(lr, (int, float)) else _arr(lr)
        if not len(gn) == len(lr_arr) == n:
            raise ValueError(f"loss, grad_norm and lr must have one value per step, but got {n=}, "
                             f"{len(gn)=}, {len(lr_arr)=}.")
        bad = ~(np.isfinite(loss_arr) & np.isfinite(gn))
        first_bad = int(np.argmax(bad)) if bad.any() else None
        record = cls(steps=np.arange(n), loss=loss_arr, grad_norm=gn, lr=lr_arr,
                     first_nonfinite_step=first_bad, **kwargs)  # type: ignore[arg-type]
        if record.initial_loss is None:
            record.initial_loss = initial_loss_of(loss_arr)
        return record

    def __len__(self) -> int:
        return len(self.steps)

    def curves(self, max_points: int = 200, layers: bool = True) -> dict[str, Any]:
        """The series thinned to at most ``max_points`` (evenly in step), as JSON-ready lists (NaN -> None).

        Example:
            >>> RunRecord.from_series([2.0, 1.0, float("nan")]).curves()["loss"]
            [2.0, 1.0, None]
        """
        n = len(self)
        keep = np.unique(np.linspace(0, n - 1, min(n, max_points)).astype(int)) if n else np.zeros(0, dtype=int)

        def clean(values: np.ndarray) -> list[Any]:
            return [float(v) if np.isfinite(v) else None for v in np.asarray(values, dtype=float)]

        out: dict[str, Any] = {
            "steps": [int(s) for s in self.steps[keep]], "loss": clean(self.loss[keep]),
            "grad_norm": clean(self.grad_norm[keep]), "lr": clean(self.lr[keep]),
            "val_steps": [int(s) for s in self.val_steps], "val_loss": clean(self.val_loss),
            "initial_loss": self.initial_loss, "first_nonfinite_step": self.first_nonfinite_step,
        }
        if layers and self.layer_grad_norms.ndim == 2 and self.layer_grad_norms.shape[1]:
            out["layers"] = {name: clean(self.layer_grad_norms[keep, j]) for j, name in enumerate(self.layer_names)}
        return out

    def to_dict(self) -> dict[str, Any]:
        """Every series whole, as JSON-ready lists (NaN and inf as strings); ``from_dict`` reads it back."""
        def clean(values: np.ndarray) -> list[Any]:
            return [float(v) if np.isfinite(v) else str(float(v)) for v in np.asarray(values, dtype=float).ravel()]

        return {
            "steps": self.steps.astype(int).tolist(), "loss": clean(self.loss), "grad_norm": clean(self.grad_norm),
            "lr": clean(self.lr), "layer_names": list(self.layer_names),
            "layer_grad_norms": [clean(row) for row in self.layer_grad_norms],
            "update_steps": self.update_steps.astype(int).tolist(), "update_ratio": clean(self.update_ratio),
            "val_steps": self.val_steps.astype(int).tolist(), "val_loss": clean(self.val_loss),
            "first_nonfinite_step": self.first_nonfinite_step, "initial_loss": self.initial_loss,
            "total_steps": self.total_steps, "grad_scaler": self.grad_scaler,
            "nonfinite_batch": self.nonfinite_batch,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """Back from ``to_dict``.

        Example:
            >>> rec = RunRecord.from_series([2.3, 2.0, float("nan")])
            >>> RunRecord.from_dict(rec.to_dict()).first_nonfinite_step
            2
        """
        def arr(values: list[Any]) -> np.ndarray:
            return np.asarray([float(v) for v in values], dtype=float)

        norms = data.get("layer_grad_norms", [])
        return cls(
            steps=np.asarray(data["steps"], dtype=int), loss=arr(data["loss"]), grad_norm=arr(data["grad_norm"]),
            lr=arr(data["lr"]), layer_names=tuple(data.get("layer_names", ())),
            layer_grad_norms=np.asarray([arr(r) for r in norms]) if norms else np.zeros((len(data["steps"]), 0)),
            update_steps=np.asarray(data.get("update_steps", []), dtype=int),
            update_ratio=arr(data.get("update_ratio", [])), val_steps=np.asarray(data.get("val_steps", []), dtype=int),
            val_loss=arr(data.get("val_loss", [])), first_nonfinite_step=data.get("first_nonfinite_step"),
            initial_loss=data.get("initial_loss"), total_steps=data.get("total_steps"),
            grad_scaler=bool(data.get("grad_scaler", False)), nonfinite_batch=data.get("nonfinite_batch"),
        )

    @property
    def last_step(self) -> int:
        return int(self.steps[-1]) if len(self.steps) else 0

    def since(self, step: int) -> RunRecord:
        """The record from ``step`` on (the initial loss, the plan and the NaN state stay the run's): what the rules
        judge after an intervention changed the fit at ``step``."""
        if step <= 0 or not len(self):
            return self
        nonfinite = self.first_nonfinite_step
        return self._window(step, math.inf, nonfinite if nonfinite is not None and nonfinite >= step else None)

    def finite_part(self) -> RunRecord:
        """The record cut before the first non-finite step: what the other rules may trust."""
        if self.first_nonfinite_step is None:
            return self
        return self._window(-math.inf, self.first_nonfinite_step, None)

    def _window(self, start: float, stop: float, first_nonfinite_step: int | None) -> RunRecord:
        """The steps in [start, stop) of every series (the update and validation series by their own steps)."""
        keep = (self.steps >= start) & (self.steps < stop)
        up = (self.update_steps >= start) & (self.update_steps < stop)
        val = (self.val_steps >= start) & (self.val_steps < stop)
        return RunRecord(
            steps=self.steps[keep], loss=self.loss[keep], grad_norm=self.grad_norm[keep], lr=self.lr[keep],
            layer_names=self.layer_names,
            layer_grad_norms=self.layer_grad_norms[keep] if len(self.layer_grad_norms) else self.layer_grad_norms,
            update_steps=self.update_steps[up], update_ratio=self.update_ratio[up],
            val_steps=self.val_steps[val], val_loss=self.val_loss[val],
            first_nonfinite_step=first_nonfinite_step, initial_loss=self.initial_loss, total_steps=self.total_steps,
            grad_scaler=self.grad_scaler,
            nonfinite_batch=self.nonfinite_batch if first_nonfinite_step is not None else None,
            group_lrs=self.group_lrs[keep] if len(self.group_lrs) == len(self.steps) else self.group_lrs,
        )


INITIAL_STEPS = 5  # the loss a run starts from is read from its first five steps ...
BLOW_UP_GUARD = 2.0  # ... unless their median is over twice the first step's: then it blew up at once


def initial_loss_of(loss: np.ndarray) -> float | None:
    """The loss the run started from: the median of its first five steps, or the first step's when that median is
    over twice it.

    One batch can be far from the typical one (heavy-tailed reconstruction losses, a lucky easy batch), so the
    median of the first few steps is the steadier level; a run that blows up in its first steps raises that
    median, and then the first loss (taken before any update) is the start.

    Example:
        >>> initial_loss_of(np.array([2.4, 0.8, 0.9, 0.85, 0.8])), initial_loss_of(np.array([2.3, 10.0, 90.0]))
        (0.85, 2.3)
    """
    finite = loss[np.isfinite(loss)]
    if not len(finite):
        return None
    median = float(np.median(finite[:INITIAL_STEPS]))
    return float(finite[0]) if median > BLOW_UP_GUARD * float(finite[0]) else median
