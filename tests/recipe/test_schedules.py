"""Every schedule against torch's own scheduler of the same name, step by step, and through a real fit: across
the two-stage switch and across a checkpoint resume."""

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from tunekit import Recipe
from tunekit.examples import MLP, DigitsDataModule
from tunekit.recipe import ScheduleMultiplier

TOTAL = 240


def _torch_lrs(make, steps=TOTAL, lr=0.1):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = make(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return lrs


def _ours(schedule, lr=0.1, steps=TOTAL, **kwargs):
    m = ScheduleMultiplier(0, TOTAL, schedule, **kwargs)
    return [lr * m(s) for s in range(steps)]


S = torch.optim.lr_scheduler


@pytest.mark.parametrize(("schedule", "kwargs", "make"), [
    ("step", {"step_every": 50, "decay_factor": 0.3}, lambda o: S.StepLR(o, step_size=50, gamma=0.3)),
    ("exponential", {"decay_rate": 0.98}, lambda o: S.ExponentialLR(o, gamma=0.98)),
    ("one_cycle", {}, lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=TOTAL, cycle_momentum=False)),
    ("cosine_restarts", {"cycle_steps": 30}, lambda o: S.CosineAnnealingWarmRestarts(o, T_0=30)),
    ("cosine_restarts", {"cycle_steps": 20, "restart_mult": 2}, lambda o: S.CosineAnnealingWarmRestarts(o, T_0=20,
                                                                                                       T_mult=2)),
    ("cosine", {}, lambda o: S.CosineAnnealingLR(o, T_max=TOTAL)),
], ids=["step", "exponential", "one_cycle", "restarts", "restarts_x2", "cosine"])
def test_each_schedule_matches_torchs_step_by_step(schedule, kwargs, make):
    assert _ours(schedule, **kwargs) == pytest.approx(_torch_lrs(make), rel=1e-6, abs=1e-12)


class LRLog(Callback):
    def __init__(self):
        self.lrs = {}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.lrs[trainer.global_step] = (type(optimizer).__name__, optimizer.param_groups[0]["lr"])


def _fit(tmp_path, recipe, steps=92, ckpt=None, checkpoint=False):
    pl.seed_everything(0)
    model = MLP(hidden=(16,))
    model.recipe = recipe
    log = LRLog()
    callbacks = [log] + ([ModelCheckpoint(dirpath=tmp_path, every_n_epochs=1, save_top_k=-1)] if checkpoint else [])
    pl.Trainer(max_steps=steps, callbacks=callbacks, logger=False, enable_progress_bar=False,
               enable_model_summary=False, enable_checkpointing=checkpoint,
               default_root_dir=tmp_path).fit(model, datamodule=DigitsDataModule(), ckpt_path=ckpt)
    return log.lrs


@pytest.mark.parametrize("recipe", [
    Recipe(optimizer="adam", lr=3e-3, schedule="step", step_every=20, decay_factor=0.5, switch_to_sgd_at=0.5),
    Recipe(optimizer="adamw", lr=3e-3, schedule="one_cycle", switch_to_sgd_at=0.5),
    Recipe(optimizer="adam", lr=3e-3, warmup_steps=10, schedule="cosine_restarts", cycle_steps=25,
           switch_to_sgd_at=0.5),
], ids=["step", "one_cycle", "restarts"])
def test_the_schedule_runs_on_unbroken_across_the_switch_to_sgd(tmp_path, recipe):
    lrs = _fit(tmp_path, recipe)
    m = ScheduleMultiplier(recipe.warmup_steps, 92, recipe.schedule, step_every=recipe.step_every,
                           decay_factor=recipe.decay_factor, cycle_steps=recipe.cycle_steps)
    assert [lrs[s][0] for s in (45, 46)] == [type(torch.optim.Adam([torch.zeros(1)])).__name__ if
                                             recipe.optimizer == "adam" else "AdamW", "SGD"]
    adam = [lrs[s][1] / recipe.lr for s in range(46)]
    assert adam == pytest.approx([m(s) for s in range(46)], rel=1e-6)
    sgd_base = lrs[46][1] / m(46)  # the SWATS estimate; from there the same multipliers go on
    assert [lrs[s][1] for s in range(46, 92)] == pytest.approx([sgd_base * m(s) for s in range(46, 92)], rel=1e-6)


@pytest.mark.parametrize("recipe", [
    Recipe(optimizer="sgd", lr=0.05, nesterov=True, schedule="step", step_every=30, decay_factor=0.3),
    Recipe(optimizer="rmsprop", lr=1e-3, schedule="exponential", decay_rate=0.98),
    Recipe(optimizer="sgd", lr=0.05, schedule="one_cycle"),
], ids=["nesterov_step", "rmsprop_exponential", "one_cycle"])
def test_a_resumed_fit_continues_the_schedule(tmp_path, recipe):
    straight = _fit(tmp_path, recipe, checkpoint=True)
    resumed = _fit(tmp_path, recipe, ckpt=tmp_path / "epoch=1-step=46.ckpt")
    assert min(resumed) == 46
    assert [resumed[s][1] for s in range(46, 92)] == pytest.approx([straight[s][1] for s in range(46, 92)])
    assert resumed[46][0] == {"sgd": "SGD", "rmsprop": "RMSprop"}[recipe.optimizer]


def test_nesterov_and_rmsprop_build_the_optimizer_they_name():
    params = torch.nn.Linear(3, 1)
    sgd = Recipe(optimizer="sgd", lr=0.1, nesterov=True).configure_optimizers(params)["optimizer"]
    assert sgd.param_groups[0]["nesterov"] is True and sgd.param_groups[0]["momentum"] == 0.9
    rms = Recipe(optimizer="rmsprop", lr=0.01, beta2=0.95, momentum=0.5).configure_optimizers(params)["optimizer"]
    assert type(rms).__name__ == "RMSprop" and rms.param_groups[0]["alpha"] == 0.95
