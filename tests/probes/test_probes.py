"""What-if probes in real fits: they tell look-alike stalls apart, and they leave the run exactly as it was."""

import copy
import math
import statistics
from types import SimpleNamespace

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.plugins.precision import Precision

from tunekit import Recipe
from tunekit.callbacks import Diagnoser
from tunekit.callbacks.grad_noise import GradientNoise
from tunekit.examples import MLP, DiabetesDataModule, DigitsDataModule
from tunekit.probes import Fork, muted_logging


def _fit(model_kwargs, epochs, *, probes=True, data=None, dm=DigitsDataModule, trainer_kwargs=None, **diagnoser):
    pl.seed_everything(0, verbose=False)
    model = MLP(**model_kwargs)
    d = Diagnoser(verbose=False, save=False, probes=probes, **diagnoser)
    trainer = pl.Trainer(max_epochs=epochs, callbacks=[d], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, **(trainer_kwargs or {}))
    trainer.fit(model, datamodule=dm(**(data or {})))
    return d, model, trainer


TOO_LOW = {"optimizer": "sgd", "lr": 1e-4}  # SGD at 1/1000 of a good LR: the loss sits at chance


def test_probing_leaves_the_trajectory_bit_for_bit_unchanged():
    probed, model_on, _ = _fit(TOO_LOW, 14, probe_budget=0.3)
    plain, model_off, _ = _fit(TOO_LOW, 14, probes=False)
    assert probed.probe_steps > 0 and plain.probe_steps == 0
    for a, b in zip(model_on.parameters(), model_off.parameters(), strict=True):
        assert torch.equal(a, b)
    assert probed.recorder.record().loss.tolist() == plain.recorder.record().loss.tolist()


def test_under_bf16_and_gradient_accumulation_probes_still_tell_and_leave_the_run_unchanged():
    mixed = {"precision": "bf16-mixed", "accumulate_grad_batches": 2}
    probed, model_on, _ = _fit(TOO_LOW, 28, probe_budget=0.3, trainer_kwargs=mixed)
    plain, model_off, _ = _fit(TOO_LOW, 28, probes=False, trainer_kwargs=mixed)
    assert probed.probe_steps > 0
    for a, b in zip(model_on.parameters(), model_off.parameters(), strict=True):
        assert torch.equal(a, b)
    top = probed.diagnosis.findings[0]
    assert top.code.value == "slow_convergence" and top.remedies[0].code.value == "raise_lr"
    assert "probes" in top.evidence


def test_a_too_low_lr_is_told_apart_by_its_larger_lr_fork():
    d, _, _ = _fit(TOO_LOW, 14, probe_budget=0.3)
    top = d.diagnosis.findings[0]
    assert (top.code.value, top.severity.value) == ("slow_convergence", "warning")
    forks = {f["label"]: f for f in top.evidence["probes"]}
    up = next(f for label, f in forks.items() if label.startswith("lr x") and f["change"]["lr"] > 1e-4)
    assert up["loss_change"] < forks["unchanged"]["loss_change"] - 0.02  # the larger LR made the loss fall
    assert top.remedies[0].code.value == "raise_lr" and "tried: lr x" in top.remedies[0].message
    assert 0 < top.evidence["probe_steps"] <= 0.3 * 14 * 23


def _beats(forks, label):
    """Whether the fork ``label`` beat the unchanged one as the probes judge it, recomputed from the recorded
    outcomes: its loss below the control's by more than 0.5% of the start and twice the standard error over the
    held-out batches (every fork starts from the same state, so the gain is the difference of the changes)."""
    control, fork = forks["unchanged"], forks[label]
    if fork["loss_change"] == "inf":
        return False, -math.inf
    per = [c - f for c, f in zip(control["batch_changes"], fork["batch_changes"], strict=True)]
    se = statistics.stdev(per) / math.sqrt(len(per))
    gain = control["loss_change"] - fork["loss_change"]
    return gain > max(0.005, 2 * se), gain


def test_a_deep_linear_net_from_a_small_init_is_a_saddle_whose_pushes_gradient_noise_among_them_are_forked():
    d, _, _ = _fit({"hidden": (32,) * 6, "activation": "identity", "init_std": 0.05, "optimizer": "sgd",
                    "lr": 0.05}, 10, probe_budget=0.4)
    top = d.diagnosis.findings[0]
    assert top.code.value == "saddle_stall" and top.step == 0
    assert top.evidence["min_eigenvalue"] < -0.1 * top.evidence["sharpness"] < 0
    forks = {f["label"]: f for f in top.evidence["probes"]}
    # the candidates: the two step sizes, and the pushes that are not a step size (more momentum, gradient noise)
    assert set(forks) == {"unchanged", "lr x10", "lr x0.1", "raise_momentum momentum=0.9",
                          "add_grad_noise grad_noise=0.1"}
    assert forks["add_grad_noise grad_noise=0.1"]["change"] == {"grad_noise": 0.1}
    # ranked by the forks: stuck from step 0, the init stays first; then the remedies whose fork won, largest win
    # first; then the rest in the rule's order (momentum, 10x LR, gradient noise), any that blew up last
    fork_of = {"raise_momentum": "raise_momentum momentum=0.9", "raise_lr": "lr x10",
               "add_grad_noise": "add_grad_noise grad_noise=0.1"}
    rule_order = ["raise_momentum", "raise_lr", "add_grad_noise"]
    judged = {code: _beats(forks, fork_of[code]) for code in rule_order}
    won = sorted((c for c in rule_order if judged[c][0]), key=lambda c: -judged[c][1])
    blew = [c for c in rule_order if forks[fork_of[c]]["loss_change"] == "inf"]
    rest = [c for c in rule_order if c not in won and c not in blew]
    assert [r.code.value for r in top.remedies] == ["change_init", *won, *rest, *blew]
    best = max((lbl for lbl in forks if lbl != "unchanged" and _beats(forks, lbl)[0]),
               key=lambda lbl: _beats(forks, lbl)[1], default=None)
    assert top.evidence["verified"]["winner"] == best
    noise = next(r for r in top.remedies if r.code.value == "add_grad_noise")
    assert noise.change == {"grad_noise": 0.1} and "(tried: add_grad_noise grad_noise=0.1 for " in noise.message


def test_a_grad_noise_fork_adds_the_noise_the_recipe_callback_adds_at_the_same_steps():
    pl.seed_everything(0, verbose=False)
    model = MLP(hidden=(16,), optimizer="sgd", lr=0.1)
    data = DigitsDataModule()
    data.setup("fit")
    batches = [b for _, b in zip(range(3), data.train_dataloader(), strict=False)]
    reference = copy.deepcopy(model)
    fork = Fork(model, torch.optim.SGD(model.parameters(), lr=0.1), Precision(), None, 1, step=40)
    torch.manual_seed(1)
    fork.train({"grad_noise": 0.1}, batches, 3)
    optimizer, callback = torch.optim.SGD(reference.parameters(), lr=0.1), GradientNoise(0.1)
    torch.manual_seed(1)
    with muted_logging(reference):
        for k, batch in enumerate(batches):  # what a fit with grad_noise: 0.1 does at its steps 40, 41, 42
            reference.training_step(batch, k).backward()
            callback.on_before_optimizer_step(SimpleNamespace(global_step=40 + k), reference, optimizer)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(a, b)


def test_a_too_low_lr_run_is_not_called_a_saddle():
    d, _, _ = _fit(TOO_LOW, 14, probe_budget=0.3)
    assert "saddle_stall" not in d.diagnosis.codes


def test_a_noise_floor_plateau_is_told_apart_by_its_smaller_lr_fork():
    # linear regression on diabetes, SGD at a constant lr 0.1 with batches of 8: a noisy floor
    d, _, _ = _fit({"optimizer": "sgd", "lr": 0.1, "hidden": (), "in_features": 10, "out_features": 1,
                    "task": "regression"}, 30, data={"batch_size": 8}, dm=DiabetesDataModule)
    top = d.diagnosis.findings[0]
    assert top.code.value == "plateau" and top.remedies[0].code.value == "decay_lr"
    forks = {f["label"]: f for f in top.evidence["probes"]}
    assert forks["lr x0.1"]["loss_change"] < forks["unchanged"]["loss_change"] - 0.02
    # among the decays, reduce-on-plateau: its cut is the 10x smaller LR that fork tried, its patience half the
    # validation epochs the run was flat for (at least one)
    decays = [r for r in top.remedies if r.code.value == "decay_lr"]
    assert [r.change["schedule"] for r in decays] == ["step", "plateau", "cosine"]
    flat = int(np.count_nonzero(d.recorder.record().val_steps >= top.step))
    assert flat >= 2
    assert decays[1].change == {"schedule": "plateau", "plateau_factor": 0.1, "lr": 0.1,
                                "plateau_patience": max(1, flat // 2)}
    assert "(tried: lr x0.1 for " in decays[1].message
    recipe = Recipe(optimizer="sgd", lr=0.1).apply(decays[1])  # a recipe it turns into, as the user would
    assert (recipe.schedule, recipe.plateau_factor, recipe.plateau_patience) == ("plateau", 0.1, max(1, flat // 2))


def test_probes_respect_their_budget_and_can_be_turned_off():
    d, _, _ = _fit(TOO_LOW, 6, probe_budget=0.01)  # 138 steps: 1% is too little for one probe
    assert d.probe_steps == 0 and "probes" not in d.diagnosis.findings[0].evidence
    with pytest.raises(ValueError, match="probe_budget must be a share"):
        Diagnoser(probe_budget=1.5)
