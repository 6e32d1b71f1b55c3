"""``fit_one_batch``: can the live model fit one batch? A fork trains it on that batch alone with Adam, and the
training state is put back exactly afterwards.

The question is the model's and the data's, not the recipe's: the fork uses Adam (its per-parameter step makes the
step size nearly independent of the gradients' scale) at ``ONE_BATCH_LRS`` in turn, each from the fork point, and
stops as soon as the loss is below the target. Only the parameters the fit's optimizer trains are trained.
"""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities.seed import isolate_rng

from tunekit.probes._fork import Fork, muted_logging, step_loss
from tunekit.probes._state import TrainingState
from tunekit.utilities.lightning import grad_scaler_of

ONE_BATCH_LRS = (1e-2, 1e-3)  # 10x Adam's default LR (Kingma & Ba) first: a small model fits one batch fastest
# there (a 64-32-10 digits MLP halves a batch of 32's loss in 10-15 steps at 1e-2, not in 30 at 1e-3); then the
# default itself, for a model that blows up at 10x
ONE_BATCH_STEPS = 30  # optimizer steps per LR at most (the fork stops once the loss is below the target)
CHUNK = 5  # steps between looks at the loss (the loss of a chunk's last step, before its update); under DDP each
# look is one all-reduce of a float, so every rank stops at the same step


def fit_one_batch(trainer: pl.Trainer, module: pl.LightningModule, batch: Any, target: float) -> dict[str, Any]:
    """Train a fork of the live fit on ``batch`` alone until its loss falls below ``target`` times its start (or
    ``ONE_BATCH_STEPS`` steps at each of ``ONE_BATCH_LRS``), and restore the module, optimizer, schedulers, grad
    scaler, gradients, modes and RNG.

    Returns ``{"loss_before", "loss_after" (the lowest training loss seen), "lr" (the LR that reached it), "steps"
    (optimizer steps taken), "trained" (names of the parameters the optimizer trains), "trained_values", "values"
    (their element count and the model's), "with_gradient" (the trained parameters that got a non-zero gradient)}``.
    Under DDP the losses are averaged across ranks (call it on all ranks together).
    """
    optimizer = trainer.optimizers[0]
    schedulers = [config.scheduler for config in trainer.lr_scheduler_configs]
    scaler = grad_scaler_of(trainer)
    in_optimizer = {id(p) for opt in trainer.optimizers for g in opt.param_groups for p in g["params"]}
    named = [(n, p) for n, p in module.named_parameters() if p.requires_grad and id(p) in in_optimizer]
    params = [p for _, p in named]
    before, best, best_lr, steps = math.nan, math.inf, None, 0
    with isolate_rng():
        state = TrainingState.take(module, optimizer, schedulers, scaler)
        try:
            state.restore(module, optimizer, schedulers, scaler, grads=False)
            before, got_gradient = _first_gradient(trainer, module, batch, params)
            best = before
            # (the same on every rank: a parameter's place in the graph does not depend on the batch's rank)
            trainable = trainer.strategy.reduce_boolean_decision(bool(got_gradient) and math.isfinite(before))
            for lr in ONE_BATCH_LRS if trainable else ():
                state.restore(module, optimizer, schedulers, scaler, grads=False)
                fork = Fork(module, torch.optim.Adam(params, lr=lr), trainer.precision_plugin, None, 1)
                for _ in range(0, ONE_BATCH_STEPS, CHUNK):
                    loss = _mean_over_ranks(trainer, fork.train({}, [batch], CHUNK))
                    if loss < best:
                        best, best_lr = loss, lr
                    if not math.isfinite(loss) or loss < target * before:
                        break
                steps += fork.steps_done
                if best < target * before:
                    break
        finally:
            state.restore(module, optimizer, schedulers, scaler, grads=True)
    return {"loss_before": before, "loss_after": best, "lr": best_lr, "steps": steps,
            "trained": [n for n, _ in named], "trained_values": sum(p.numel() for p in params),
            "values": sum(p.numel() for p in module.parameters()),
            "with_gradient": [n for n, p in named if id(p) in got_gradient]}


def _first_gradient(trainer: pl.Trainer, module: pl.LightningModule, batch: Any,
                    params: list[torch.nn.Parameter]) -> tuple[float, set[int]]:
    """The batch's training loss at the fork point (averaged across ranks) and the ids of the ``params`` its
    backward gives a non-zero gradient (their gradients are cleared again)."""
    with muted_logging(module), trainer.precision_plugin.train_step_context():
        loss = step_loss(module.training_step(batch, 0))
    if loss is None:
        return math.nan, set()
    if loss.requires_grad:
        loss.backward()
    got = {id(p) for p in params if p.grad is not None and bool(p.grad.ne(0).any())}
    for p in params:
        p.grad = None
    return _mean_over_ranks(trainer, float(loss.detach())), got


def _mean_over_ranks(trainer: pl.Trainer, value: float) -> float:
    if trainer.world_size <= 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=trainer.strategy.root_device)
    return float(trainer.strategy.reduce(tensor, reduce_op="mean"))
