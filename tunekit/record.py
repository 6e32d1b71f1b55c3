"""``RunRecord``: the recorded series of a run, as plain numpy arrays.

The signals layer fills it, the diagnosis rules read it, the dashboards draw it; it needs neither torch nor
Lightning, so a rule can be tested on a hand-made series.
"""

from __future__ import annotations

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
            (2, 2.3)
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

    @property
    def last_step(self) -> int:
        return int(self.steps[-1]) if len(self.steps) else 0

    def finite_part(self) -> RunRecord:
        """The record cut before the first non-finite step: what the other rules may trust."""
        if self.first_nonfinite_step is None:
            return self
        keep = self.steps < self.first_nonfinite_step
        up = self.update_steps < self.first_nonfinite_step
        val = self.val_steps < self.first_nonfinite_step
        return RunRecord(
            steps=self.steps[keep], loss=self.loss[keep], grad_norm=self.grad_norm[keep], lr=self.lr[keep],
            layer_names=self.layer_names,
            layer_grad_norms=self.layer_grad_norms[keep] if len(self.layer_grad_norms) else self.layer_grad_norms,
            update_steps=self.update_steps[up], update_ratio=self.update_ratio[up],
            val_steps=self.val_steps[val], val_loss=self.val_loss[val],
            first_nonfinite_step=None, initial_loss=self.initial_loss, total_steps=self.total_steps,
            grad_scaler=self.grad_scaler,
            group_lrs=self.group_lrs[keep] if len(self.group_lrs) == len(self.steps) else self.group_lrs,
        )


def initial_loss_of(loss: np.ndarray) -> float | None:
    """The loss the run started from: the first finite step's, the only one taken before any update
    (a median of the first few would already move with a fast learner or a blow-up)."""
    finite = loss[np.isfinite(loss)]
    return float(finite[0]) if len(finite) else None
