"""The Hessian's curvature every N steps: how sharp the loss is against the step size (opt-in)."""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn

from tunekit.exceptions import ConfigError
from tunekit.probes import measure_curvature, probe_reason

ADAM_NAMES = ("Adam", "AdamW")
TIMED_STEPS = 1000  # training steps timed for ``cost_in_steps`` (their median is the unit)


def _synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously: a wall time without it counts launches only)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _StepClock:
    """Wall time of training steps without a host sync per step: on CUDA a pair of events per step, read once
    they are done (at the next measurement, which synchronizes anyway); elsewhere ``time.perf_counter``."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._events: list[tuple[Any, Any]] = []
        self._open: Any = None

    def start(self, device: torch.device) -> None:
        if device.type == "cuda":
            self._open = torch.cuda.Event(enable_timing=True)
            self._open.record()
        else:
            self._open = time.perf_counter()

    def stop(self) -> None:
        if self._open is None or len(self.seconds) + len(self._events) >= TIMED_STEPS:
            return
        if isinstance(self._open, float):
            self.seconds.append(time.perf_counter() - self._open)
        else:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self._events.append((self._open, end))
        self._open = None

    def median(self) -> float:
        if self._events:  # the events are read after the device reached them
            self._events[-1][1].synchronize()
            self.seconds.extend(start.elapsed_time(end) / 1e3 for start, end in self._events)
            self._events.clear()
        return statistics.median(self.seconds) if self.seconds else math.nan


class CurvatureMonitor(Callback):
    """Measures the loss's curvature on the current training batch every ``every_n_steps`` optimizer steps and logs
    it under ``tunekit/``:

    * ``tunekit/sharpness``: the Hessian's top eigenvalue; ``tunekit/sharpness_x_lr`` the same times the current LR
      (plain gradient descent is unstable above 2, Cohen et al. 2021);
    * ``tunekit/min_eigenvalue``: its most negative eigenvalue (clearly negative at a saddle);
    * for Adam/AdamW, ``tunekit/adam_sharpness`` and ``tunekit/adam_sharpness_x_lr``: the top eigenvalue of the
      Hessian preconditioned by Adam's ``sqrt(v_hat) + eps`` (unstable above ``(2 + 2 beta1) / (1 - beta1)``, 38
      at beta1 = 0.9; Cohen et al. 2022).

    Each measurement runs Lanczos with ``max_hvps`` Hessian-vector products (double backward through the module's own
    ``training_step``; about two training steps' worth each) and leaves the weights, gradients and RNG untouched.
    Its cost is kept: ``seconds``, ``hvps`` and ``cost_in_steps`` (the time spent over the median training step's),
    and every measurement in ``history``. Under DDP each rank measures its own batch and the logged values are the
    ranks' mean (every rank reaches the same steps, as DDP's do). The ``Diagnoser`` measures curvature by itself
    when a check finds a stall or an oscillation; add this callback to follow it through a whole run.

    Args:
        every_n_steps: optimizer steps between measurements (also the first one's step).
        max_hvps: Hessian-vector products per measurement (Lanczos stops earlier once the extremes settle).

    Example:
        >>> monitor = CurvatureMonitor(every_n_steps=200, max_hvps=10)
        >>> trainer = pl.Trainer(callbacks=[monitor])  # doctest: +SKIP
    """

    def __init__(self, every_n_steps: int = 500, max_hvps: int = 10) -> None:
        if every_n_steps < 1:
            raise ConfigError(f"every_n_steps must be >= 1, but got {every_n_steps=}.")
        if max_hvps < 2:
            raise ConfigError(f"max_hvps must be >= 2 (Lanczos needs two products), but got {max_hvps=}.")
        self.every_n_steps = every_n_steps
        self.max_hvps = max_hvps
        self.history: list[dict[str, Any]] = []
        self.seconds = 0.0
        self.hvps = 0
        self.skipped: str | None = None
        self._clock = _StepClock()
        self._measured_at = -1

    @property
    def cost_in_steps(self) -> float:
        """Time spent measuring, in median training steps (nan before any step was timed)."""
        return self.seconds / self._clock.median()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.skipped = probe_reason(trainer, pl_module)
        if self.skipped is not None:
            rank_zero_warn(f"tunekit: CurvatureMonitor is off for this fit: {self.skipped}.")

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self._clock.start(pl_module.device)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._clock.stop()
        step = trainer.global_step
        if self.skipped is not None or step == 0 or step % self.every_n_steps or step == self._measured_at:
            return
        self._measured_at = step
        optimizer = trainer.optimizers[0]
        lr = float(optimizer.param_groups[0]["lr"])
        _synchronize(pl_module.device)  # the measurement's time is its own, not the queued step's
        started = time.perf_counter()
        plain = measure_curvature(trainer, pl_module, batch, self.max_hvps)
        if plain.skipped is not None:
            self.skipped = plain.skipped
            rank_zero_warn(f"tunekit: CurvatureMonitor stops: {plain.skipped}.")
            return
        values = {"sharpness": plain.top, "sharpness_x_lr": plain.top * lr, "min_eigenvalue": plain.bottom}
        spent = plain.hvps
        if type(optimizer).__name__ in ADAM_NAMES:
            adam = measure_curvature(trainer, pl_module, batch, self.max_hvps, preconditioned=True)
            spent += adam.hvps
            if adam.preconditioned and adam.skipped is None:
                values.update({"adam_sharpness": adam.top, "adam_sharpness_x_lr": adam.top * lr})
        _synchronize(pl_module.device)
        self.seconds += time.perf_counter() - started
        self.hvps += spent
        self.history.append({"step": step, "lr": lr, "hvps": spent, **values})
        metrics = {f"tunekit/{name}": float(value) for name, value in values.items()}
        if trainer.world_size > 1:
            names = sorted(metrics)
            mean = trainer.strategy.reduce(torch.tensor([metrics[k] for k in names], dtype=torch.float64,
                                                        device=trainer.strategy.root_device), reduce_op="mean")
            metrics = dict(zip(names, mean.tolist(), strict=True))
        trainer.callback_metrics.update({k: torch.tensor(v) for k, v in metrics.items()})
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=step)

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "seconds": self.seconds, "hvps": self.hvps}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))
        self.seconds = float(state_dict.get("seconds", 0.0))
        self.hvps = int(state_dict.get("hvps", 0))
