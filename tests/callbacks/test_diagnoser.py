"""The Diagnoser on real Trainer runs: the finding, the step, the first remedy."""

import json

import pytest

from tests.callbacks.helpers import fit
from tunekit.callbacks import Diagnoser, PlateauMonitor


def test_nan_run_is_stopped_within_one_step_and_diagnosed_divergence(tmp_path):
    d = Diagnoser(verbose=False)
    trainer = fit(tmp_path, {"optimizer": "sgd", "lr": 50.0}, [d], epochs=10)
    bad = d.recorder.first_nonfinite_step
    assert bad is not None
    assert trainer.global_step == bad + 1  # the step that went NaN, and not one more
    top = d.diagnosis.findings[0]
    assert (top.code.value, top.severity.value, top.step) == ("divergence", "critical", bad)
    # the first step moved the weights by ~7x their size: the LR is cut 1000x (the bound), not just 10x
    assert top.remedies[0].code.value == "lower_lr" and top.remedies[0].change == {"lr": 0.05}
    assert top.remedies[1].code.value == "clip_gradients"
    written = json.loads((tmp_path / "tunekit" / "diagnosis.json").read_text())
    assert written == d.diagnosis.to_dict()


def test_healthy_run_has_no_warning(tmp_path):
    d = Diagnoser(verbose=False, save=False)
    fit(tmp_path, {"lr": 1e-3}, [d], epochs=6)
    assert d.diagnosis.is_healthy, d.diagnosis.codes
    assert not (tmp_path / "tunekit").exists()


def test_deep_linear_network_from_small_init_is_a_saddle_stall(tmp_path):
    d = Diagnoser(verbose=False, save=False)
    fit(tmp_path, {"hidden": (32,) * 6, "activation": "identity", "init_std": 0.05, "optimizer": "sgd", "lr": 0.05},
        [d], epochs=8)
    top = d.diagnosis.findings[0]
    assert top.code.value == "saddle_stall" and top.step == 0
    assert [r.code.value for r in top.remedies] == ["change_init", "raise_momentum", "raise_lr", "add_grad_noise"]
    assert top.remedies[1].change == {"momentum": 0.9}


def test_deep_sigmoid_network_has_vanishing_gradients(tmp_path):
    d = Diagnoser(verbose=False, save=False)
    fit(tmp_path, {"hidden": (64,) * 8, "activation": "sigmoid", "optimizer": "sgd", "lr": 0.1}, [d], epochs=6)
    top = d.diagnosis.findings[0]
    assert top.code.value == "vanishing_gradients" and top.severity.value == "warning"
    assert top.evidence["first_layer"] == "net.0" and top.evidence["last_layer"] == "net.16"
    assert top.remedies[0].code.value == "change_architecture"
    assert "net.1" in top.remedies[0].message  # names the sigmoid modules it found


def test_overfitting_run_has_a_generalization_gap(tmp_path):
    d = Diagnoser(verbose=False, save=False)
    fit(tmp_path, {"hidden": (512, 512), "lr": 1e-3}, [d], epochs=60, data={"train_size": 100, "batch_size": 20})
    top = d.diagnosis.findings[0]
    assert top.code.value == "generalization_gap"
    assert top.remedies[0].code.value == "early_stop" and top.remedies[0].change == {"max_steps": top.step}
    assert top.remedies[1].change == {"optimizer": "adamw", "weight_decay": 0.01}


def test_user_monitors_are_used_not_duplicated(tmp_path):
    mine = PlateauMonitor(log_metrics=False)
    d = Diagnoser(verbose=False, save=False)
    trainer = fit(tmp_path, {"lr": 1e-3}, [mine, d], epochs=1)
    plateaus = [m for m in d.monitors if isinstance(m, PlateauMonitor)]
    assert plateaus == [mine]
    names = sorted(type(m).__name__ for m in d.monitors)
    assert names == ["DivergenceMonitor", "GeneralizationGapMonitor", "GradNormMonitor", "OscillationMonitor",
                     "PlateauMonitor", "SaddleMonitor"]
    assert all(m.recorder is d.recorder for m in d.monitors)  # one set of signals for all
    assert [type(cb).__name__ for cb in trainer.callbacks if "Monitor" in type(cb).__name__] == ["PlateauMonitor"]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"check_every_n_steps": 0}, "check_every_n_steps must be >= 1"),
    ({"flush_every": 0}, "flush_every must be >= 1"),
    ({"update_ratio_every": -1}, "update_ratio_every must be >= 0"),
    ({"monitor": ""}, "monitor must name the logged validation loss"),
])
def test_bad_arguments_raise_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Diagnoser(**kwargs)
