"""What-if probes in real fits: they tell look-alike stalls apart, and they leave the run exactly as it was."""

import lightning.pytorch as pl
import pytest
import torch

from tunekit.callbacks import Diagnoser
from tunekit.examples import MLP, DiabetesDataModule, DigitsDataModule


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


def test_a_deep_linear_net_from_a_small_init_is_a_saddle_with_negative_curvature():
    d, _, _ = _fit({"hidden": (32,) * 6, "activation": "identity", "init_std": 0.05, "optimizer": "sgd",
                    "lr": 0.05}, 10, probe_budget=0.4)
    top = d.diagnosis.findings[0]
    assert top.code.value == "saddle_stall"
    assert top.evidence["min_eigenvalue"] < -0.1 * top.evidence["sharpness"] < 0
    assert top.remedies[0].code.value == "change_init"


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


def test_probes_respect_their_budget_and_can_be_turned_off():
    d, _, _ = _fit(TOO_LOW, 6, probe_budget=0.01)  # 138 steps: 1% is too little for one probe
    assert d.probe_steps == 0 and "probes" not in d.diagnosis.findings[0].evidence
    with pytest.raises(ValueError, match="probe_budget must be a share"):
        Diagnoser(probe_budget=1.5)
