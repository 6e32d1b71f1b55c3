"""Two-stage training: Adam/AdamW for the first part of training, SGD with momentum for the rest."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from tunekit.callbacks._surgery import swap_to_sgd
from tunekit.exceptions import ConfigError
from tunekit.recipe import SwatsEstimate
from tunekit.utilities.lightning import planned_steps

ESTIMATE_STEPS = 50  # Adam steps before the switch whose SWATS estimates are averaged
FALLBACK_FACTOR = 10.0  # no descent step seen: SGD starts at 10x the Adam LR (a typical SWATS outcome)


class SwitchToSGD(Callback):
    """Replaces Adam/AdamW by SGD with momentum after a fraction of training (Step 8 of the "Dynaxx Precision"
    optimization guide: Adam for the first 80% of training, SGD with momentum for the rest).

    The SGD learning rate is ``sgd_lr`` when given, else estimated from the last Adam steps as in SWATS
    (Keskar & Socher 2017), per param group: the median over the last 50 Adam steps, times ``1 - momentum``.
    The LR schedule continues across the switch (the SGD LR follows the same warmup/cosine multiplier), and a
    checkpoint taken after the switch resumes with SGD.

    Args:
        at: fraction of the planned optimizer steps after which to switch, in (0, 1).
        momentum: SGD's momentum.
        sgd_lr: the SGD base LR (before the schedule's multiplier); ``None`` estimates it.

    Example:
        >>> trainer = pl.Trainer(max_steps=1000, callbacks=[SwitchToSGD(at=0.8)])  # doctest: +SKIP
    """

    def __init__(self, at: float = 0.8, momentum: float = 0.9, sgd_lr: float | None = None) -> None:
        if not 0 < at < 1:
            raise ConfigError(f"at must be a fraction of training in (0, 1), but got {at=}.")
        if not 0 <= momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1), but got {momentum=}.")
        if sgd_lr is not None and not sgd_lr > 0:
            raise ConfigError(f"sgd_lr must be > 0 (or None to estimate it), but got {sgd_lr=}.")
        self.at = at
        self.momentum = momentum
        self.sgd_lr = sgd_lr
        self.switch_step: int | None = None
        self.switched = False
        self.sgd_lrs: list[float] = []
        self._estimate: SwatsEstimate | None = None

    @property
    def state_key(self) -> str:
        return self._generate_state_key(at=self.at)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if len(trainer.optimizers) != 1:
            raise ConfigError(f"SwitchToSGD needs exactly one optimizer, but the module configured "
                              f"{len(trainer.optimizers)}.")
        total = planned_steps(trainer)
        if total is None:
            raise ConfigError("SwitchToSGD needs a known number of steps: set Trainer(max_steps=...) or max_epochs "
                              "with a sized training loader.")
        self.switch_step = max(1, round(self.at * total))
        if self.switched:  # resumed after the switch: SGD before the checkpoint's optimizer state is loaded
            swap_to_sgd(trainer, self.sgd_lrs, self.momentum)
        elif self._estimate is None:
            self._estimate = SwatsEstimate(len(trainer.optimizers[0].param_groups))

    def _estimating(self, trainer: pl.Trainer) -> bool:
        return (not self.switched and self.sgd_lr is None and self.switch_step is not None
                and self.switch_step - ESTIMATE_STEPS <= trainer.global_step < self.switch_step)

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        if self._estimate is not None and self._estimating(trainer):
            self._estimate.before_step(optimizer)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self._estimate is not None and not self.switched:
            self._estimate.after_step(trainer.optimizers[0])

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if self.switched or self.switch_step is None or trainer.global_step < self.switch_step:
            return
        adam = trainer.optimizers[0]
        if self.sgd_lr is not None:
            lrs = [self.sgd_lr * g.get("initial_lr", g["lr"]) / adam.param_groups[0].get("initial_lr",
                   adam.param_groups[0]["lr"]) for g in adam.param_groups]
        else:
            estimated = self._estimate.lrs() if self._estimate is not None else []
            lrs = []
            for group, lr in zip(adam.param_groups, estimated, strict=True):
                if lr is None:
                    lr = FALLBACK_FACTOR * group.get("initial_lr", group["lr"])
                    rank_zero_warn(f"tunekit: no Adam descent step to estimate the SGD LR from; using {lr:.3g}.")
                # SWATS' estimate is the LR of a plain SGD step; momentum m multiplies the step by 1/(1-m)
                # in the long run, so the momentum SGD takes (1-m) of it (as SWATS' own update does).
                lrs.append(lr * (1 - self.momentum))
        # Ranks hold the same weights and gradients after DDP's all-reduce, so their estimates agree.
        self.sgd_lrs = [float(x) for x in lrs]
        swap_to_sgd(trainer, self.sgd_lrs, self.momentum)
        self.switched = True
        rank_zero_info(f"tunekit: switched to SGD (momentum {self.momentum}) at step {trainer.global_step}, "
                       f"base lr {', '.join(f'{x:.3g}' for x in self.sgd_lrs)}")

    def state_dict(self) -> dict[str, Any]:
        return {"switched": self.switched, "sgd_lrs": self.sgd_lrs,
                "estimate": self._estimate.state_dict() if self._estimate is not None else None}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.switched = bool(state_dict.get("switched", False))
        self.sgd_lrs = list(state_dict.get("sgd_lrs", []))
        estimate = state_dict.get("estimate")
        if estimate is not None and "samples" in estimate:
            self._estimate = SwatsEstimate(len(estimate["samples"]))
            self._estimate.load_state_dict(estimate)
