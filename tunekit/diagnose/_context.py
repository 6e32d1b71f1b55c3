"""``RunContext``: the optimizer settings a run is using now, which the remedies compute their changes from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunContext:
    """The optimizer settings a run is using now, read from the live optimizer and Trainer.

    Remedies compute their absolute new values from these (the current LR divided by ten, ...).

    Args:
        optimizer: ``"sgd"``, ``"adam"``, ``"adamw"``, or another optimizer's lower-cased class name.
        lr: the base learning rate of the first param group (the one a schedule multiplies: torch's
            ``param_group["initial_lr"]``); remedies compute their new values from it. Named ``lr`` because it is the
            recipe's ``lr`` key, the one a remedy's change writes (``{"lr": 0.003}``).
        lr_now: the learning rate it steps with now (torch's ``param_group["lr"]``, a schedule's current value);
            None when it is ``lr``. ``current_lr`` gives whichever applies.
        lrs: learning rate of every param group now.
        momentum: SGD momentum, or None for optimizers without it.
        beta1, beta2: Adam's betas, or None.
        weight_decay: the first param group's weight decay.
        gradient_clip_val: the Trainer's clipping threshold, or None when off.
        batch_size: the training loader's batch size (per device), if known.
        accumulate_grad_batches: micro-batches per optimizer step.
        saturating_layers: names of sigmoid/tanh modules found in the model.
        batchnorm_layers: names of BatchNorm modules found in the model (their statistics come from the batch).
    """

    optimizer: str = "sgd"
    lr: float = 1e-3
    lr_now: float | None = None
    lrs: tuple[float, ...] = ()
    momentum: float | None = None
    beta1: float | None = None
    beta2: float | None = None
    weight_decay: float = 0.0
    gradient_clip_val: float | None = None
    batch_size: int | None = None
    accumulate_grad_batches: int = 1
    saturating_layers: tuple[str, ...] = ()
    batchnorm_layers: tuple[str, ...] = ()

    @property
    def current_lr(self) -> float:
        """The LR the run steps with now."""
        return self.lr if self.lr_now is None else self.lr_now

    @property
    def is_adam(self) -> bool:
        """Adam-family optimizers (Adam, AdamW and relatives that have betas)."""
        return self.beta1 is not None or self.optimizer in ("adam", "adamw")
