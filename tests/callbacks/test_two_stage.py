"""The Adam-then-SGD switch in real fits: the step, the SWATS LR, the schedule, and resume."""

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

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


def _fit(tmp_path, recipe, max_steps, ckpt_path=None, callbacks=()):
    pl.seed_everything(0)
    model = MLP(hidden=(32,))
    model.recipe = recipe
    log = OptimizerLog()
    trainer = pl.Trainer(max_steps=max_steps, callbacks=[log, *callbacks], logger=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path, enable_checkpointing=bool(callbacks))
    trainer.fit(model, datamodule=DigitsDataModule(), ckpt_path=ckpt_path)
    return trainer, log


def test_switch_happens_at_the_right_step_with_a_swats_lr(tmp_path):
    trainer, log = _fit(tmp_path, Recipe(optimizer="adam", lr=1e-3, switch_to_sgd_at=0.75, momentum=0.9), 80)
    kinds = [kind for _, kind, _, _ in log.steps]
    assert kinds == ["Adam"] * 60 + ["SGD"] * 20
    (switch,) = [cb for cb in trainer.callbacks if isinstance(cb, SwitchToSGD)]
    assert switch.switched and switch.switch_step == 60
    sgd_lr = log.steps[60][2]
    assert sgd_lr == pytest.approx(switch.sgd_lrs[0]) and 1e-4 < sgd_lr < 10
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


def test_resume_after_the_switch_continues_with_sgd(tmp_path):
    recipe = Recipe(optimizer="adam", lr=1e-3, switch_to_sgd_at=0.5)
    ckpt = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=30, save_top_k=-1)
    first, log1 = _fit(tmp_path, recipe, 60, callbacks=[ckpt])
    sgd_lr = log1.steps[30][2]
    state_after = first.optimizers[0].state_dict()
    second, log2 = _fit(tmp_path, recipe, 60, ckpt_path=tmp_path / "epoch=1-step=30.ckpt")
    assert [kind for _, kind, _, _ in log2.steps] == ["SGD"] * 30  # steps 30..59, all SGD
    assert log2.steps[0][0] == 30 and log2.steps[0][2] == pytest.approx(log1.steps[30][2])
    assert log2.steps[0][2] == pytest.approx(sgd_lr)
    assert isinstance(second.optimizers[0], torch.optim.SGD)
    assert len(state_after["state"]) > 0  # SGD momentum buffers were saved and resumed with it


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
