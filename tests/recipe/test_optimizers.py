"""The optimizers of issue 22 in real fits: each one trains; where tunekit wraps a package's optimizer, the weights
after a few steps equal those of the package's own optimizer run by hand on the same batches; schedule-free's
train/eval switch; resume from a checkpoint; gradient noise."""

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from torch import nn

from tunekit import Recipe
from tunekit.callbacks.adopt import adopt_recipe
from tunekit.callbacks.grad_noise import noise_std
from tunekit.recipe import OPTIMIZERS, param_groups

from .fits import STEPS, Net, fit, iris, loader

LR = {"sgd": 0.1, "lbfgs": 0.05, "adagrad": 0.05, "prodigy": 1.0, "schedulefree_sgd": 0.5}  # else 0.01

pytest.importorskip("pytorch_optimizer")
pytest.importorskip("prodigyopt")
pytest.importorskip("schedulefree")

import prodigyopt  # noqa: E402
import pytorch_optimizer  # noqa: E402
import schedulefree  # noqa: E402


def _recipe(optimizer, **kw):
    return Recipe(optimizer=optimizer, lr=LR.get(optimizer, 0.01), **kw)


@pytest.mark.parametrize("recipe", [_recipe(o) for o in OPTIMIZERS] + [
    _recipe("adam", lookahead=True, lookahead_k=3), _recipe("lbfgs", lookahead=True),
    _recipe("sgd", grad_noise=0.01), _recipe("radam", schedule="plateau")],
    ids=[*OPTIMIZERS, "lookahead_adam", "lookahead_lbfgs", "grad_noise_sgd", "plateau_radam"])
def test_each_optimizer_trains_in_a_real_fit(tmp_path, recipe):
    before = Net(recipe)
    x, y = iris()
    start = nn.functional.cross_entropy(before(x), y).item()
    steps = 3 if recipe.optimizer == "lbfgs" else 20  # an L-BFGS step evaluates the closure up to 20 times
    model, trainer = fit(tmp_path, recipe, steps=steps, val=recipe.schedule == "plateau")
    assert trainer.global_step == steps
    optimizer = trainer.optimizers[0]
    expected = {"lamb": "Lamb", "adabound": "AdaBound", "prodigy": "Prodigy", "schedulefree_adamw":
                "AdamWScheduleFree", "schedulefree_sgd": "SGDScheduleFree", "lbfgs": "LBFGS", "adagrad": "Adagrad",
                "radam": "RAdam", "nadam": "NAdam", "sgd": "SGD", "adam": "Adam", "adamw": "AdamW",
                "rmsprop": "RMSprop"}[recipe.optimizer]
    inner = optimizer.optimizer if recipe.lookahead else optimizer
    assert type(inner).__name__ == expected
    assert type(optimizer).__name__ == ("Lookahead" if recipe.lookahead else expected)
    with torch.no_grad():
        end = nn.functional.cross_entropy(model(x), y).item()
    assert end < start  # a few steps at a sound LR lower iris' training loss


def _by_hand(recipe, make, steps=STEPS, closure=False, schedule_free=False):
    """The package's own optimizer over the same param groups and batches, with the plain loop its README shows."""
    model = Net(recipe)
    optimizer = make(param_groups(model, recipe.weight_decay))
    batches = [b for _ in range(steps // 5 + 1) for b in loader()][:steps]
    for x, y in batches:
        if schedule_free:
            optimizer.train()
        if closure:
            def step_closure(x=x, y=y):
                loss = nn.functional.cross_entropy(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                return loss
            optimizer.step(step_closure)
        else:
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    if schedule_free:
        optimizer.eval()
    return model


WD = 0.01
PO, SF = pytorch_optimizer, schedulefree
HAND = {
    "lamb": lambda g: PO.Lamb(g, lr=0.01, betas=(0.9, 0.99)),
    "adabound": lambda g: PO.AdaBound(g, lr=0.01, betas=(0.9, 0.99)),
    "prodigy": lambda g: prodigyopt.Prodigy(g, lr=1.0, betas=(0.9, 0.99), d_coef=2.0),
    "schedulefree_adamw": lambda g: SF.AdamWScheduleFree(g, lr=0.01, betas=(0.9, 0.99), warmup_steps=3),
    "schedulefree_sgd": lambda g: SF.SGDScheduleFree(g, lr=0.5, momentum=0.8, warmup_steps=3),
    "lookahead_nadam": lambda g: PO.Lookahead(torch.optim.NAdam(g, lr=0.01, betas=(0.9, 0.99)), k=3, alpha=0.6),
    "adagrad": lambda g: torch.optim.Adagrad(g, lr=0.05),
    "lbfgs": lambda g: torch.optim.LBFGS([p for x in g for p in x["params"]], lr=0.05),
}
RECIPES = {
    "lamb": Recipe(optimizer="lamb", lr=0.01, beta2=0.99, weight_decay=WD),
    "adabound": Recipe(optimizer="adabound", lr=0.01, beta2=0.99, weight_decay=WD),
    "prodigy": Recipe(optimizer="prodigy", lr=1.0, beta2=0.99, d_coef=2.0, weight_decay=WD),
    "schedulefree_adamw": Recipe(optimizer="schedulefree_adamw", lr=0.01, beta2=0.99, warmup_steps=3,
                                 weight_decay=WD),
    "schedulefree_sgd": Recipe(optimizer="schedulefree_sgd", lr=0.5, momentum=0.8, warmup_steps=3, weight_decay=WD),
    "lookahead_nadam": Recipe(optimizer="nadam", lr=0.01, beta2=0.99, lookahead=True, lookahead_k=3,
                              lookahead_alpha=0.6, weight_decay=WD),
    "adagrad": Recipe(optimizer="adagrad", lr=0.05, weight_decay=WD),
    "lbfgs": Recipe(optimizer="lbfgs", lr=0.05),
}


@pytest.mark.parametrize("name", list(HAND))
def test_the_weights_equal_the_packages_own_optimizer_run_by_hand(tmp_path, name):
    recipe = RECIPES[name]
    steps = 3 if name == "lbfgs" else STEPS
    model, _ = fit(tmp_path, recipe, steps=steps, val=name.startswith("schedulefree"))
    hand = _by_hand(recipe, HAND[name], steps=steps, closure=name == "lbfgs",
                    schedule_free=name.startswith("schedulefree"))
    for ours, theirs in zip(model.parameters(), hand.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs)
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), Net(recipe).parameters(), strict=True))


class ModeLog(Callback):
    """The schedule-free flag seen by each validation batch and each optimizer step."""

    def __init__(self):
        self.val, self.train = [], []

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self.val.append(trainer.optimizers[0].param_groups[0]["train_mode"])

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.train.append(optimizer.param_groups[0]["train_mode"])


def test_schedule_free_is_in_eval_mode_around_validation_and_after_the_fit(tmp_path):
    log = ModeLog()
    recipe = Recipe(optimizer="schedulefree_adamw", lr=0.01)
    model, trainer = fit(tmp_path, recipe, steps=STEPS, callbacks=[log], val=True)
    assert log.train == [True] * STEPS
    assert log.val == [False] * 10  # two validation epochs of five batches
    assert trainer.optimizers[0].param_groups[0]["train_mode"] is False
    hand = _by_hand(recipe, lambda g: SF.AdamWScheduleFree(g, lr=0.01), schedule_free=True)
    for ours, theirs in zip(model.parameters(), hand.parameters(), strict=True):  # the averaged x, not y
        torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("recipe", [
    Recipe(optimizer="schedulefree_adamw", lr=0.01, warmup_steps=4),
    Recipe(optimizer="lamb", lr=0.01, lookahead=True, lookahead_k=3, schedule="cosine", max_steps=STEPS),
], ids=["schedulefree_adamw", "lookahead_lamb_cosine"])
def test_a_fit_resumed_from_a_checkpoint_ends_with_the_same_weights(tmp_path, recipe):
    straight, _ = fit(tmp_path / "a", recipe, steps=STEPS)
    # a checkpoint at step 5 (the epoch's last batch; mid-epoch resumes replay the epoch's data), in the middle
    # of a Lookahead cycle, saved by a training-batch hook in train mode (no validation runs)
    ckpt = ModelCheckpoint(dirpath=tmp_path / "b", every_n_train_steps=5, save_top_k=-1)
    fit(tmp_path / "b", recipe, steps=5, callbacks=[ckpt], enable_checkpointing=True)
    path = tmp_path / "b" / "epoch=0-step=5.ckpt"
    saved = torch.load(path, weights_only=False)
    if recipe.optimizer == "schedulefree_adamw":  # the checkpoint holds the averaged weights, flagged as such
        assert saved["optimizer_states"][0]["param_groups"][0]["train_mode"] is False
        hand = _by_hand(recipe, lambda g: SF.AdamWScheduleFree(g, lr=0.01, warmup_steps=4), steps=5,
                        schedule_free=True)
        torch.testing.assert_close(saved["state_dict"]["net.0.weight"], hand.net[0].weight)
    resumed, _ = fit(tmp_path / "c", recipe, steps=STEPS, ckpt=path)
    for ours, theirs in zip(resumed.parameters(), straight.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs)


def test_gradient_noise_is_the_annealed_gaussian_added_before_the_step(tmp_path):
    recipe = Recipe(optimizer="sgd", lr=0.1, momentum=0.0, grad_noise=0.05)
    model, _ = fit(tmp_path, recipe, steps=6)
    hand = Net(recipe)  # seeds torch's generator as the fit's module did; the noise is drawn from it after the init
    optimizer = torch.optim.SGD(param_groups(hand, 0.0), lr=0.1, momentum=0.0)
    t = 0
    for _epoch in range(2):  # a loader iterator per epoch, as the Trainer makes them (each draws its base seed)
        for x, y in loader():
            if t == 6:
                break
            loss = nn.functional.cross_entropy(hand(x), y)
            optimizer.zero_grad()
            loss.backward()
            for g in optimizer.param_groups:
                for p in g["params"]:
                    p.grad.add_(torch.randn_like(p.grad), alpha=0.05 * (1 + t) ** -0.275)
            optimizer.step()
            t += 1
    for ours, theirs in zip(model.parameters(), hand.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs)
    assert noise_std(0.05, 99) == pytest.approx(0.05 * 100 ** -0.275)


class Plain(pl.LightningModule):
    """A module with no tunekit Recipe and its own optimizer."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_a_module_without_a_recipe_gets_the_callbacks_its_adopted_recipe_needs(tmp_path):
    model = Plain()
    adopt_recipe(model, Recipe(optimizer="schedulefree_sgd", lr=0.5, grad_noise=0.01), replace=True)
    trainer = pl.Trainer(max_steps=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, train_dataloaders=loader())
    assert type(trainer.optimizers[0]).__name__ == "SGDScheduleFree"
    assert {type(c).__name__ for c in trainer.callbacks} >= {"ScheduleFreeModes", "GradientNoise"}
    assert trainer.optimizers[0].param_groups[0]["train_mode"] is False  # eval weights after the fit
