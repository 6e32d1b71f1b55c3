import math
import sys

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from tunekit import Recipe, Remedy, RemedyCode
from tunekit.examples import MLP, DigitsDataModule
from tunekit.exceptions import ConfigError
from tunekit.recipe import ScheduleMultiplier


@pytest.mark.parametrize(("fields", "match"), [
    ({"lr": -1}, r"lr must be > 0, but got lr=-1\."),
    ({"lr": 0}, r"lr must be > 0"),
    ({"beta1": 1.0}, r"beta1 must be in \[0, 1\), but got beta1=1.0"),
    ({"beta2": -0.1}, r"beta2 must be in \[0, 1\)"),
    ({"momentum": 1.5}, r"momentum must be in \[0, 1\)"),
    ({"switch_to_sgd_at": 1.0}, r"switch_to_sgd_at must be a fraction of training in \(0, 1\)"),
    ({"switch_to_sgd_at": 0}, r"switch_to_sgd_at must be a fraction"),
    ({"optimizer": "sgd", "switch_to_sgd_at": 0.8}, r"optimizer='sgd' already"),
    ({"optimizer": "shampoo"}, r"optimizer must be one of sgd, adam, adamw, rmsprop, adagrad, radam, nadam, lbfgs, "
                               r"lamb, adabound, prodigy, schedulefree_adamw, schedulefree_sgd, but got "
                               r"optimizer='shampoo'"),
    ({"schedule": "linear"}, r"schedule must be one of constant, cosine, step, exponential, one_cycle, cosine_resta"
                             r"rts, plateau, but got"),
    ({"schedule": "plateau", "plateau_patience": -1}, r"plateau_patience must be an integer >= 0"),
    ({"plateau_factor": 1.0}, r"plateau_factor must be in \(0, 1\), but got plateau_factor=1.0"),
    ({"optimizer": "prodigy", "lr": 1.0, "d_coef": 0}, r"d_coef must be > 0"),
    ({"optimizer": "prodigy"}, r"prodigy's lr multiplies its own step-size estimate, but got lr=0.001: set lr: 1.0"),
    ({"lookahead": 1}, r"lookahead must be true or false"),
    ({"lookahead": True, "lookahead_k": 0}, r"lookahead_k must be an integer >= 1"),
    ({"lookahead": True, "lookahead_alpha": 0}, r"lookahead_alpha must be in \(0, 1\]"),
    ({"grad_noise": 0}, r"grad_noise must be > 0 \(the noise's standard deviation at step 0\) or null"),
    ({"optimizer": "lbfgs", "weight_decay": 0.01}, r"lbfgs takes no weight decay .*: set weight_decay: 0"),
    ({"optimizer": "lbfgs", "grad_noise": 0.1}, r"grad_noise would break lbfgs"),
    ({"optimizer": "schedulefree_adamw", "schedule": "cosine"}, r"schedulefree_adamw replaces the LR schedule .*"
                                                                r"set schedule: constant"),
    ({"optimizer": "schedulefree_sgd", "lookahead": True}, r"lookahead cannot wrap schedulefree_sgd"),
    ({"optimizer": "schedulefree_sgd", "momentum": 0.0}, r"schedulefree_sgd needs momentum > 0"),
    ({"optimizer": "schedulefree_adamw", "beta1": 0.0}, r"schedulefree_adamw needs beta1 > 0"),
    ({"optimizer": "lbfgs", "switch_to_sgd_at": 0.5}, r"switch_to_sgd_at cannot hand optimizer='lbfgs' over to SGD"),
    ({"lookahead": True, "switch_to_sgd_at": 0.5}, r"switch_to_sgd_at cannot hand lookahead: true over to SGD"),
    ({"schedule": "step"}, r"schedule='step' needs step_every"),
    ({"schedule": "cosine_restarts"}, r"schedule='cosine_restarts' needs cycle_steps"),
    ({"decay_factor": 1.0}, r"decay_factor must be in \(0, 1\)"),
    ({"decay_rate": 0}, r"decay_rate must be in \(0, 1\)"),
    ({"step_every": 0}, r"step_every must be a positive number of steps or null"),
    ({"restart_mult": 0}, r"restart_mult must be an integer >= 1"),
    ({"nesterov": True}, r"nesterov needs SGD with momentum > 0"),
    ({"optimizer": "sgd", "momentum": 0.0, "nesterov": True}, r"nesterov needs SGD with momentum > 0"),
    ({"nesterov": "yes"}, r"nesterov must be true or false"),
    ({"weight_decay": -1e-4}, r"weight_decay must be >= 0"),
    ({"batch_size": 0}, r"batch_size must be a positive integer"),
    ({"warmup_steps": 2.5}, r"warmup_steps must be an integer >= 0"),
    ({"gradient_clip_val": 0}, r"gradient_clip_val must be > 0 or null"),
])
def test_bad_values_raise_a_clear_error(fields, match):
    with pytest.raises(ConfigError, match=match):
        Recipe(**fields)


def test_unknown_keys_are_named_with_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown recipe key 'learning_rate'; the recipe keys are: optimizer, lr"):
        Recipe.from_dict({"learning_rate": 0.1})


@pytest.mark.parametrize(("fields", "package"), [
    ({"optimizer": "schedulefree_adamw"}, "schedulefree"), ({"optimizer": "prodigy", "lr": 1.0}, "prodigyopt"),
    ({"optimizer": "lamb"}, "pytorch_optimizer"), ({"optimizer": "adam", "lookahead": True}, "pytorch_optimizer"),
])
def test_a_missing_optional_package_names_the_extra(monkeypatch, fields, package):
    monkeypatch.setitem(sys.modules, package, None)  # how Python marks a module as not importable
    with pytest.raises(ConfigError, match=r"needs .*, which is not installed: "
                                          r"pip install 'tunekit-lightning\[optimizers\]'$"):
        Recipe(**fields)


def test_round_trip_through_dict_and_yaml(tmp_path):
    r = Recipe(optimizer="adam", lr=3e-4, beta2=0.99, warmup_steps=50, schedule="cosine", switch_to_sgd_at=0.8,
               gradient_clip_val=1.0, batch_size=128, max_steps=1000)
    assert Recipe.from_dict(r.to_dict()) == r
    assert Recipe.from_yaml(r.to_yaml()) == r
    for more in (Recipe(optimizer="sgd", nesterov=True, schedule="step", step_every=300, decay_factor=0.5),
                 Recipe(optimizer="rmsprop", schedule="cosine_restarts", cycle_steps=100, restart_mult=2),
                 Recipe(schedule="exponential", decay_rate=0.995), Recipe(schedule="one_cycle", lr=0.01),
                 Recipe(optimizer="nadam", schedule="plateau", plateau_patience=3, plateau_factor=0.3,
                        grad_noise=0.01, switch_to_sgd_at=0.7),
                 Recipe(optimizer="radam", lookahead=True, lookahead_k=6, lookahead_alpha=0.8),
                 Recipe(optimizer="prodigy", lr=1.0, d_coef=0.5), Recipe(optimizer="schedulefree_sgd", lr=1.0),
                 Recipe(optimizer="lbfgs", lr=0.5, lookahead=True)):
        assert Recipe.from_yaml(more.to_yaml()) == more and Recipe.from_dict(more.to_dict()) == more
    path = tmp_path / "recipe.yaml"
    path.write_text(r.to_yaml())
    assert Recipe.from_yaml(path) == r and Recipe.from_yaml(str(path)) == r


def test_apply_a_remedy_returns_a_new_recipe():
    r = Recipe(lr=3.0, optimizer="sgd")
    lowered = r.apply(Remedy(RemedyCode.LOWER_LR, {"lr": 0.3}, "lower it"))
    assert lowered.lr == 0.3 and r.lr == 3.0
    assert r.apply({"optimizer": "adamw", "weight_decay": 0.01}).optimizer == "adamw"
    assert r.apply(Remedy(RemedyCode.CHANGE_INIT, {}, "init")) == r
    with pytest.raises(ConfigError, match="lr must be > 0"):
        r.apply({"lr": -0.1})
    assert r.trainer_kwargs() == {} and Recipe(gradient_clip_val=0.5, max_steps=10).trainer_kwargs() == {
        "gradient_clip_val": 0.5, "max_steps": 10}


def test_schedule_multiplier_warmup_then_cosine():
    m = ScheduleMultiplier(warmup_steps=10, total_steps=110, schedule="cosine")
    assert [m(s) for s in (0, 4, 9)] == [0.1, 0.5, 1.0]
    assert m(10) == 1.0 and m(60) == pytest.approx(0.5) and m(110) == pytest.approx(0.0)
    assert ScheduleMultiplier(0, None, "constant")(500) == 1.0
    with pytest.raises(ConfigError, match="cosine schedule needs the number of training steps"):
        ScheduleMultiplier(0, None, "cosine")


@pytest.mark.parametrize(("schedule", "match"), [
    ("one_cycle", r"one_cycle schedule needs the number of training steps: set Recipe\(max_steps=...\)"),
    ("step", "step schedule needs step_every"),
    ("cosine_restarts", "cosine_restarts schedule needs cycle_steps"),
])
def test_a_schedule_missing_its_setting_is_the_librarys_config_error(schedule, match):
    with pytest.raises(ConfigError, match=match):
        ScheduleMultiplier(0, None, schedule)


class LRLog(Callback):
    def __init__(self):
        self.lrs = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.lrs.append([g["lr"] for g in optimizer.param_groups])


def test_recipe_builds_optimizer_and_per_step_schedule_in_a_real_fit(tmp_path):
    model = MLP(hidden=(16,))
    model.recipe = Recipe(optimizer="adamw", lr=0.01, weight_decay=0.05, warmup_steps=5, schedule="cosine")
    log = LRLog()
    trainer = pl.Trainer(max_steps=30, callbacks=[log], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, datamodule=DigitsDataModule())
    opt = trainer.optimizers[0]
    assert isinstance(opt, torch.optim.AdamW)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.05, 0.0]  # no decay on biases
    assert all(p.ndim >= 2 for p in opt.param_groups[0]["params"])
    lrs = [lr[0] for lr in log.lrs]
    assert lrs[:5] == pytest.approx([0.002, 0.004, 0.006, 0.008, 0.01])
    assert lrs[5] == pytest.approx(0.01)
    assert lrs[17] == pytest.approx(0.01 * 0.5 * (1 + math.cos(math.pi * 12 / 25)))
    assert lrs[-1] < 0.0005


def test_compact_dict_shows_the_keys_each_new_optimizer_reads():
    prodigy = Recipe(optimizer="prodigy", lr=1.0, d_coef=2.0).to_dict(compact=True)
    assert prodigy["d_coef"] == 2.0 and "momentum" not in prodigy and "lookahead" not in prodigy
    sf = Recipe(optimizer="schedulefree_sgd", lr=1.0, lookahead=False).to_dict(compact=True)
    assert sf["momentum"] == 0.9 and "beta1" not in sf and "d_coef" not in sf
    wrapped = Recipe(optimizer="adagrad", lookahead=True, schedule="plateau").to_dict(compact=True)
    assert (wrapped["lookahead"], wrapped["lookahead_k"], wrapped["lookahead_alpha"]) == (True, 5, 0.5)
    assert (wrapped["plateau_patience"], wrapped["plateau_factor"]) == (10, 0.1) and "beta1" not in wrapped
