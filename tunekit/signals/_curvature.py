"""Curvature of the loss on one batch: the extreme eigenvalues and the trace of the Hessian, by Hessian-vector
products (double backward), without ever forming the Hessian.

* extreme eigenvalues: the Lanczos method with full reorthogonalization, stopped once both extreme Ritz values
  settle. One Hessian-vector product (HVP) per iteration; the top eigenvalue (sharpness) and the most negative one
  come from the same run, and a few dozen iterations pin both down on the models tunekit watches.
* trace: Hutchinson's estimate with Rademacher vectors; the Lanczos start vector is one, so the first sample is
  free.
* for Adam, ``preconditioner`` (``adam_preconditioner(optimizer)``) gives the eigenvalues of the preconditioned
  Hessian ``P^-1 H`` that its stability depends on (computed as ``P^-1/2 H P^-1/2``, same spectrum, symmetric).

Memory: the gradient graph of one batch, plus one flat vector per Lanczos iteration (``max_hvps`` of them).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal

# Where each constant comes from: "(hand)" set by hand and not searched; otherwise the source is named.
CONVERGED = 1e-3  # (hand) Lanczos stops once both extreme Ritz values are within 0.1% of the spectrum's width of an
# eigenvalue (by their residual bound)
MIN_ITERATIONS = 5  # (hand) ... and not before this many HVPs (early Ritz values can sit still by chance)


@dataclass
class Curvature:
    """Curvature estimates on one batch.

    Attributes:
        top: the largest Hessian eigenvalue (the sharpness); NaN when skipped.
        bottom: the most negative (smallest) eigenvalue: clearly below zero at a saddle.
        trace: Hutchinson's estimate of the Hessian's trace.
        hvps: the Hessian-vector products spent (the cost: each is about two backward passes).
        seconds: wall time.
        preconditioned: whether the eigenvalues are of ``P^-1 H`` (Adam) rather than ``H``.
        skipped: why nothing was measured (a model without double backward, an HVP that overflowed), or None.
    """

    top: float
    bottom: float
    trace: float
    hvps: int
    seconds: float
    preconditioned: bool = False
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _flat(tensors: Sequence[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    """The tensors as one ``dtype`` vector. Not ``torch.nn.utils.parameters_to_vector``: it flattens with
    ``view(-1)``, which raises on a channels-last convolution weight (and its gradient, and Adam's state)."""
    return torch.cat([t.reshape(-1).to(dtype) for t in tensors])


def _unflat(vector: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``vector`` cut into pieces shaped like ``like``, each in its tensor's dtype (autograd wants the
    ``grad_outputs`` of a float64 or bf16 parameter in that dtype)."""
    out, i = [], 0
    for t in like:
        out.append(vector[i : i + t.numel()].view_as(t).to(t.dtype))
        i += t.numel()
    return out


class _NonFinite(ArithmeticError):
    """A Hessian-vector product came out inf or NaN (a low-precision overflow, or a loss that is already NaN)."""


def working_dtype(params: Sequence[torch.Tensor]) -> torch.dtype:
    """The dtype the Lanczos vectors are kept in: the widest of the parameters' dtypes, and at least float32 (a
    bf16/fp16 basis would lose its orthogonality in a few iterations; the HVPs themselves still run in each
    parameter's own dtype)."""
    dtype = torch.float32
    for p in params:
        dtype = torch.promote_types(dtype, p.dtype)
    return dtype


def adam_preconditioner(optimizer: torch.optim.Optimizer) -> list[torch.Tensor] | None:
    """Per-parameter ``sqrt(v_hat) + eps`` of a running Adam/AdamW (the denominator of its step), in the order of
    the optimizer's parameters; None before its first step or for another optimizer."""
    out = []
    for group in optimizer.param_groups:
        beta2, eps = group.get("betas", (None, None))[1], group.get("eps")
        if beta2 is None or eps is None:
            return None
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            if "exp_avg_sq" not in state:
                return None
            step = float(state["step"])
            v_hat = state["exp_avg_sq"] / (1 - beta2**step)
            out.append(v_hat.sqrt() + eps)
    return out


def curvature(model: torch.nn.Module, loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor], batch: Any, *,
              max_hvps: int = 20, trace_samples: int = 1, preconditioner: Sequence[torch.Tensor] | None = None,
              params: Sequence[torch.Tensor] | None = None, seed: int = 0) -> Curvature:
    """Estimate the top and bottom Hessian eigenvalues and the trace of ``loss_fn(model, batch)``.

    Args:
        model: the module; its trainable parameters are the ones differentiated (or ``params``).
        loss_fn: ``loss_fn(model, batch)`` returns the scalar loss.
        batch: what ``loss_fn`` takes.
        max_hvps: the most Lanczos iterations (one HVP each); it stops earlier once the extremes settle.
        trace_samples: Hutchinson samples for the trace (the first is the Lanczos start vector: free).
        preconditioner: per-parameter tensors ``p``: the eigenvalues are then of ``diag(p)^-1 H`` (Adam's
            ``sqrt(v_hat) + eps``, see ``adam_preconditioner``); the trace stays that of ``H``.
        params: the parameters to differentiate (default: the model's trainable ones, in order).
        seed: seed of the random start and probe vectors (a private generator: the global RNG is untouched).

    Example:
        >>> import torch
        >>> class Quad(torch.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.x = torch.nn.Parameter(torch.ones(3))
        >>> h = torch.diag(torch.tensor([4.0, 1.0, -2.0]))
        >>> c = curvature(Quad(), lambda m, b: 0.5 * m.x @ h @ m.x, None)
        >>> round(c.top, 3), round(c.bottom, 3), round(c.trace, 3)
        (4.0, -2.0, 3.0)
    """
    started = time.perf_counter()
    params = [p for p in model.parameters() if p.requires_grad] if params is None else list(params)
    nan = float("nan")
    try:
        with torch.enable_grad():
            loss = loss_fn(model, batch)
            grads = torch.autograd.grad(loss, params, create_graph=True)
    except RuntimeError as err:
        return Curvature(nan, nan, nan, 0, time.perf_counter() - started, preconditioner is not None,
                         f"the loss could not be differentiated: {str(err).splitlines()[0]}")
    if not all(g.requires_grad for g in grads):
        return Curvature(nan, nan, nan, 0, time.perf_counter() - started, preconditioner is not None,
                         "the gradient does not depend on the parameters (a model linear in them has no curvature "
                         "to measure, or its layers do not support double backward)")
    device, dtype = params[0].device, working_dtype(params)
    scale = None if preconditioner is None else _flat(preconditioner, dtype).to(device).rsqrt()
    hvps = 0

    def plain_hvp(v: torch.Tensor) -> torch.Tensor:
        nonlocal hvps
        hvps += 1  # the vector-Jacobian product of the gradient with v is H v (H is symmetric)
        hv = _flat(torch.autograd.grad(grads, params, grad_outputs=_unflat(v, params), retain_graph=True), dtype)
        if not bool(torch.isfinite(hv).all()):  # one sync per HVP, as the Lanczos step's dot products make anyway
            raise _NonFinite
        return hv

    def operator(v: torch.Tensor) -> torch.Tensor:
        return plain_hvp(v) if scale is None else scale * plain_hvp(scale * v)

    try:
        generator = torch.Generator(device="cpu").manual_seed(seed)
        n = sum(p.numel() for p in params)
        z = (torch.randint(0, 2, (n,), generator=generator) * 2 - 1).to(device, dtype)
        top, bottom, first_trace = _lanczos(operator, z, max(2, min(max_hvps, n)))
        traces = [first_trace if scale is None else float(z @ plain_hvp(z))]
        for _ in range(max(0, trace_samples - 1)):
            z = (torch.randint(0, 2, (n,), generator=generator) * 2 - 1).to(device, dtype)
            traces.append(float(z @ plain_hvp(z)))
    except _NonFinite:
        dtypes = ", ".join(sorted({str(p.dtype).removeprefix("torch.") for p in params}))
        return Curvature(nan, nan, nan, hvps, time.perf_counter() - started, preconditioner is not None,
                         f"a Hessian-vector product was not finite (parameters in {dtypes}: an fp16 model may "
                         "overflow; measure in float32 or bf16)")
    except RuntimeError as err:  # e.g. a fused kernel without a double-backward formula
        return Curvature(nan, nan, nan, hvps, time.perf_counter() - started, preconditioner is not None,
                         f"this model has no double backward: {str(err).splitlines()[0]}")
    return Curvature(top, bottom, sum(traces) / len(traces), hvps, time.perf_counter() - started,
                     preconditioner is not None)


def _lanczos(operator: Callable[[torch.Tensor], torch.Tensor], start: torch.Tensor,
             iterations: int) -> tuple[float, float, float]:
    """Extreme eigenvalues of a symmetric operator, and ``start @ operator(start)`` (a trace sample).

    Stops once both extreme Ritz pairs have residuals ``beta * |last component of the Ritz vector|`` (the
    distance from the Ritz value to a true eigenvalue is at most that) under ``CONVERGED`` of the spectrum's
    width.
    """
    basis = torch.zeros(iterations, len(start), dtype=start.dtype, device=start.device)
    v = basis[0] = start / start.norm()
    alphas: list[float] = []
    betas: list[float] = []
    w = operator(v)
    first = float(v @ w) * float(start @ start)  # z^T A z = |z|^2 v^T A v for v = z / |z|: a Hutchinson sample
    for j in range(iterations):
        alpha = float(w @ v)
        alphas.append(alpha)
        done = basis[: j + 1]
        for _ in range(2):  # full reorthogonalization (it also removes alpha v and beta v_prev), twice: Kahan's
            w = w - done.T @ (done @ w)  # "twice is enough"
        beta = float(w.norm())
        values, vectors = _ritz(alphas, betas)
        width = max(float(values[-1] - values[0]), abs(float(values[-1])), 1e-30)
        residuals = (beta * abs(float(vectors[-1, 0])), beta * abs(float(vectors[-1, -1])))
        if (j + 1 >= MIN_ITERATIONS and max(residuals) <= CONVERGED * width) or j + 1 == iterations \
                or beta <= 1e-10 * width:  # converged, out of budget, or the Krylov space is exhausted
            break
        betas.append(beta)
        v = basis[j + 1] = w / beta
        w = operator(v)
    values, _ = _ritz(alphas, betas)
    return float(values[-1]), float(values[0]), first


def _ritz(alphas: list[float], betas: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and eigenvectors of the Lanczos tridiagonal matrix (diagonal ``alphas``, off-diagonal
    the first ``len(alphas) - 1`` of ``betas``), by LAPACK's tridiagonal solver (``scipy.linalg.eigh_tridiagonal``)."""
    return eigh_tridiagonal(np.asarray(alphas, dtype=float), np.asarray(betas[: len(alphas) - 1], dtype=float))
