"""Synthetic recorded series for rule tests: shapes taken from real runs (see benchmarks/scenarios.py)."""

from __future__ import annotations

import numpy as np

from tunekit.diagnose import RunRecord


def healthy(n: int = 600, seed: int = 0, start: float = 2.3, floor: float = 0.05, tau: float = 120.0) -> np.ndarray:
    """A loss falling exponentially from ``start`` towards ``floor`` with 15% multiplicative batch noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return (floor + (start - floor) * np.exp(-t / tau)) * np.exp(rng.normal(0, 0.15, n))


def record(loss: np.ndarray, grad: np.ndarray | float = 1.0, lr: np.ndarray | float = 1e-3, *,
           layers: np.ndarray | None = None, update_ratio: float | None = 1e-3, val: list[float] | None = None,
           total_steps: int | None = None) -> RunRecord:
    n = len(loss)
    grad_arr = np.full(n, float(grad)) if np.isscalar(grad) else np.asarray(grad, float)
    extra: dict = {"total_steps": total_steps}
    if layers is not None:
        extra["layer_names"] = tuple(f"net.{i}" for i in range(layers.shape[1]))
        extra["layer_grad_norms"] = layers
    if update_ratio is not None:
        steps = np.arange(0, n, 50)
        extra["update_steps"] = steps
        extra["update_ratio"] = np.full(len(steps), update_ratio)
    if val is not None:
        extra["val_steps"] = np.linspace(n / len(val), n - 1, len(val)).astype(int)
        extra["val_loss"] = np.asarray(val, float)
    return RunRecord.from_series(loss, grad_arr, lr, **extra)
