"""The Adam-then-SGD switch in real fits: the step, the SWATS LR, the schedule, and resume."""

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from torch.utils.data import DataLoader

from tunekit import Recipe
from tunekit.callbacks.two_stage import SwitchToSGD
from tunekit.examples import MLP, DigitsDataModule
from tunekit.exceptions import ConfigError


class OptimizerLog(Callback):
    def __init__(self):
        self.steps = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        group = optimizer.param_groups[0]
        self.steps.append((trainer.global_step, type(optimizer).__name__, group["lr"], group.get("initial_lr")))


def _fit(tmp_path, recipe, max_steps):
    pl.seed_everything(0)
    model = MLP(hidden=(32,))
    model.recipe = recipe
    log = OptimizerLog()
    trainer = pl.Trainer(max_steps=max_steps, callbacks=[log], logger=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path, enable_checkpointing=False)
    trainer.fit(model, datamodule=DigitsDataModule())
    return trainer, log


def test_switch_happens_at_the_right_step_with_a_swats_lr(tmp_path):
    trainer, log = _fit(tmp_path, Recipe(optimizer="adam", lr=1e-3, switch_to_sgd_at=0.75, momentum=0.9), 80)
    kinds = [kind for _, kind, _, _ in log.steps]
    assert kinds == ["Adam"] * 60 + ["SGD"] * 20
    (switch,) = [cb for cb in trainer.callbacks if isinstance(cb, SwitchToSGD)]
    assert switch.switched and switch.switch_step == 60
    sgd_lr = log.steps[60][2]
    # SWATS' median estimate over the Adam steps (its formula: tests/recipe/test_swats.py), times 1 - momentum
    samples = switch._estimate.samples[0]
    assert len(samples) == 50 and sgd_lr == pytest.approx(float(np.median(samples)) * (1 - 0.9), rel=1e-9)
    assert trainer.optimizers[0].param_groups[0]["momentum"] == 0.9


def test_the_schedule_continues_across_the_switch(tmp_path):
    recipe = Recipe(optimizer="adamw", lr=1e-3, warmup_steps=10, schedule="cosine", switch_to_sgd_at=0.5)
    _, log = _fit(tmp_path, recipe, 60)
    multipliers = [lr / base for _, _, lr, base in log.steps]
    expected = [min(1.0, (s + 1) / 10) if s < 10 else 0.5 * (1 + torch.cos(torch.tensor((s - 10) / 50 * torch.pi)))
                for s in range(60)]
    assert multipliers == pytest.approx([float(e) for e in expected], rel=1e-5)
    assert log.steps[29][1] == "AdamW" and log.steps[30][1] == "SGD"


def test_a_given_sgd_lr_is_used(tmp_path):
    pl.seed_everything(0)
    model = MLP(hidden=(32,))
    log = OptimizerLog()
    trainer = pl.Trainer(max_steps=20, callbacks=[log, SwitchToSGD(at=0.5, sgd_lr=0.05)], logger=False,
                         enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                         default_root_dir=tmp_path)
    trainer.fit(model, datamodule=DigitsDataModule())
    assert log.steps[10][1:3] == ("SGD", pytest.approx(0.05))


def _digits_in_order():
    """Digits in a fixed order (no shuffle): a resumed fit sees the same batches as an uninterrupted one."""
    dm = DigitsDataModule()
    dm.setup()
    return DataLoader(dm.train_set, batch_size=64, shuffle=False)  # 23 batches per epoch


class WeightsAt(Callback):
    """The weights right after the optimizer step that brings the fit to ``step``."""

    def __init__(self, step):
        self.step, self.weights = step, None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step and self.weights is None:
            self.weights = [p.detach().clone() for p in pl_module.parameters()]


class DropMomentum(Callback):
    def on_train_start(self, trainer, pl_module):
        trainer.optimizers[0].state.clear()


def _fit_in_order(tmp_path, ckpt_path=None, checkpoint=False, extra=()):
    pl.seed_everything(0)
    model = MLP(hidden=(32,))
    model.recipe = Recipe(optimizer="adam", lr=1e-3, switch_to_sgd_at=0.5, momentum=0.9)
    log = OptimizerLog()
    callbacks = [log, *extra] + ([ModelCheckpoint(dirpath=tmp_path, every_n_epochs=1, save_top_k=-1)]
                                 if checkpoint else [])
    trainer = pl.Trainer(max_steps=92, callbacks=callbacks, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path, enable_checkpointing=checkpoint)
    trainer.fit(model, train_dataloaders=_digits_in_order(), ckpt_path=ckpt_path)
    return trainer, log


def test_resume_after_the_switch_continues_with_sgd_and_its_momentum(tmp_path):
    # the switch comes at step 46 (half of 92); the checkpoint at the end of epoch 2 (step 69) is 23 SGD steps in
    straight = WeightsAt(70)
    _, log1 = _fit_in_order(tmp_path, checkpoint=True, extra=[straight])
    assert [kind for _, kind, _, _ in log1.steps] == ["Adam"] * 46 + ["SGD"] * 46
    resumed = WeightsAt(70)
    second, log2 = _fit_in_order(tmp_path, ckpt_path=tmp_path / "epoch=2-step=69.ckpt", extra=[resumed])
    assert log2.steps[0][0] == 69 and all(kind == "SGD" for _, kind, _, _ in log2.steps)
    assert log2.steps[0][2] == pytest.approx(log1.steps[69][2])  # the same SGD LR
    assert isinstance(second.optimizers[0], torch.optim.SGD)
    # The first step after the resume lands on the same weights, bit for bit, as in the fit that never stopped
    # (both train on the epoch's first batch there): the momentum buffers saved at step 69 were loaded and used.
    # (Later steps differ: with a plain DataLoader Lightning replays that first batch after an end-of-epoch
    # checkpoint.)
    assert all(torch.equal(a, b) for a, b in zip(straight.weights, resumed.weights, strict=True))
    # the control: the same resume with the momentum buffers dropped takes another first step
    dropped = WeightsAt(70)
    _fit_in_order(tmp_path, ckpt_path=tmp_path / "epoch=2-step=69.ckpt", extra=[DropMomentum(), dropped])
    assert not all(torch.equal(a, b) for a, b in zip(straight.weights, dropped.weights, strict=True))


def test_switch_without_the_callback_is_a_clear_error(tmp_path):
    class NoCallbacks(MLP):
        def configure_callbacks(self):
            return []

    model = NoCallbacks()
    model.recipe = Recipe(optimizer="adam", switch_to_sgd_at=0.8)
    trainer = pl.Trainer(max_steps=5, logger=False, enable_progress_bar=False, enable_checkpointing=False,
                         default_root_dir=tmp_path)
    with pytest.raises(ConfigError, match="switch_to_sgd_at needs the SwitchToSGD callback"):
        trainer.fit(model, datamodule=DigitsDataModule())


@pytest.mark.parametrize(("kwargs", "match"), [({"at": 1.5}, "at must be a fraction"),
                                               ({"momentum": 1.0}, "momentum must be in"),
                                               ({"sgd_lr": -1.0}, "sgd_lr must be > 0")])
def test_bad_switch_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        SwitchToSGD(**kwargs)
