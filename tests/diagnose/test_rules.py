"""Each rule on recorded series: the finding, its step and its first remedy with concrete values."""

import math

import numpy as np
import pytest

from tests.diagnose.series import healthy, record
from tunekit.diagnose import RunContext, diagnose
from tunekit.diagnose.rules import (
    check_divergence,
    check_early_instability,
    check_exploding_gradients,
    check_generalization_gap,
    check_oscillation,
    check_plateau,
    check_saddle_stall,
    check_slow_convergence,
    check_vanishing_gradients,
)

SGD = RunContext(optimizer="sgd", lr=0.1, momentum=0.0, batch_size=64)
ADAM = RunContext(optimizer="adam", lr=1e-3, beta1=0.9, beta2=0.999, batch_size=64)


def first_remedy(finding):
    return finding.remedies[0].code.value, dict(finding.remedies[0].change)


@pytest.mark.parametrize("seed", range(5))
def test_healthy_curves_have_no_findings(seed):
    loss = healthy(seed=seed)
    grad = 1.0 * np.exp(np.random.default_rng(seed).normal(0, 0.3, len(loss)))
    val = list(0.1 + 2.2 * np.exp(-np.arange(1, 11) * 60 / 120))
    rec = record(loss, grad, layers=np.tile([0.3, 0.5, 0.8], (len(loss), 1)), val=val)
    for ctx in (SGD, ADAM):
        assert diagnose(rec, ctx).codes == []


def test_the_lr_cut_follows_the_first_update_ratio():
    loss = np.array(list(healthy(10)) + [float("nan")])
    rec = record(loss, lr=50.0, update_ratio=7.0)  # SGD lr 50: the first step moved the weights 7x their size
    finding = check_divergence(rec, RunContext(optimizer="sgd", lr=50.0))
    assert first_remedy(finding) == ("lower_lr", {"lr": 0.05})  # cut 1000x (the bound), not 10x


def test_nan_after_gradient_growth_is_divergence_with_lower_lr_first():
    loss = list(healthy(40)) + [5.0, 40.0, float("nan")]
    grad = [1.0] * 38 + [2.0, 8.0, 60.0, 900.0, float("nan")]
    finding = check_divergence(record(np.array(loss), np.array(grad), 3.0), SGD.__class__(optimizer="sgd", lr=3.0))
    assert finding.code.value == "divergence" and finding.severity.value == "critical"
    assert finding.step == 42
    assert first_remedy(finding) == ("lower_lr", {"lr": 0.3})
    assert finding.remedies[1].code.value == "clip_gradients"
    assert finding.evidence["grad_norm_max"] == 900.0


def test_nan_on_the_first_batch_points_at_the_pipeline_not_the_lr():
    finding = check_divergence(record(np.array([float("nan")] * 3)), SGD)
    assert finding.step == 0 and first_remedy(finding) == ("check_pipeline", {})


def test_late_adam_divergence_lowers_beta2_first():
    loss = np.concatenate([healthy(900, tau=100), [float("nan")]])
    ctx = RunContext(optimizer="adam", lr=1e-3, beta1=0.9, beta2=0.9999)
    finding = check_divergence(record(loss, total_steps=1000), ctx)
    assert first_remedy(finding) == ("lower_beta2", {"beta2": 0.999})
    assert [r.code.value for r in finding.remedies[1:3]] == ["decay_lr", "clip_gradients"]


def test_early_nan_without_warmup_also_suggests_warmup():
    loss = np.array([2.3, 2.2, 9.0, float("nan")])
    finding = check_divergence(record(loss, np.array([1, 1, 50, np.nan]), total_steps=1000), ADAM)
    codes = [r.code.value for r in finding.remedies]
    assert codes[0] == "lower_lr" and "add_warmup" in codes


def test_finite_blow_up_is_divergence():
    loss = np.concatenate([healthy(200, tau=40), np.linspace(0.5, 30, 100)])
    finding = check_divergence(record(loss), SGD)
    assert finding is not None and finding.severity.value == "critical"
    assert 200 <= finding.step < 300 and first_remedy(finding) == ("lower_lr", {"lr": 0.01})


def _spiky() -> tuple[np.ndarray, np.ndarray]:
    """A learning run whose gradient norm spikes 100x at steps 150, 250 and 330, each pushing the loss up by 2."""
    loss = healthy(400, tau=60).copy()
    grad = np.full(400, 0.5)
    for s in (150, 250, 330):
        grad[s] = 50.0
        loss[s + 1 : s + 8] += 2.0
    return loss, grad


def test_damaging_gradient_spikes_are_exploding_gradients_lower_lr_then_clip():
    loss, grad = _spiky()
    finding = check_exploding_gradients(record(loss, grad), SGD)
    assert finding.step == 150 and finding.evidence["spikes"] == 3
    assert first_remedy(finding) == ("lower_lr", {"lr": 0.033})  # "ML Optimization; A Primer": lower the LR, then clip
    assert finding.remedies[1].change == {"gradient_clip_val": 0.5}


def test_adam_spiking_far_above_its_usual_lr_is_cut_to_it_and_sgd_by_a_third():
    loss, grad = _spiky()
    adam_at_1 = RunContext(optimizer="adam", lr=1.0, beta1=0.9, beta2=0.999)  # a new user's run: 1e-3 was best
    lower = [r for r in check_exploding_gradients(record(loss, grad, 1.0), adam_at_1).remedies if r.code.value ==
             "lower_lr"]
    assert lower[0].change == {"lr": 0.001}
    near = RunContext(optimizer="adam", lr=2e-3, beta1=0.9, beta2=0.999)  # near Adam's usual: a third, as for SGD
    lower = [r for r in check_exploding_gradients(record(loss, grad, 2e-3), near).remedies if r.code.value ==
             "lower_lr"]
    assert math.isclose(lower[0].change["lr"], 2e-3 / 3, rel_tol=0.1)


def test_blow_ups_that_never_learn_are_divergence():
    rng = np.random.default_rng(0)
    loss = 2.3 + rng.normal(0, 0.1, 300)
    loss[[40, 120, 200]] = 3e4  # a far too large Adam step: the loss blows up, the units die, nothing is learned
    finding = check_divergence(record(loss), ADAM)
    assert finding.severity.value == "critical" and finding.step == 40
    assert first_remedy(finding) == ("lower_lr", {"lr": 0.0001})


def test_spikes_that_do_no_damage_are_not_exploding():
    grad = np.full(400, 0.5)
    grad[[150, 250, 330]] = 50.0
    assert check_exploding_gradients(record(healthy(400), grad), SGD) is None


def test_early_blow_up_that_recovers_is_early_instability_warmup_first():
    loss = healthy(600, tau=80).copy()
    loss[3:15] = np.linspace(4.0, 6.0, 12)
    finding = check_early_instability(record(loss, total_steps=600), ADAM)
    assert finding is not None and finding.step < 20
    assert first_remedy(finding) == ("add_warmup", {"warmup_steps": 30})


def test_an_early_blow_up_whose_validation_loss_never_came_back_is_a_warning_that_says_so():
    loss = healthy(600, tau=80).copy()
    loss[3:15] = np.linspace(4.0, 6.0, 12)
    quiet = check_early_instability(record(loss, total_steps=600, val=[0.9, 0.5, 0.3]), ADAM)
    assert quiet.severity.value == "info" and "the training loss recovered (to" in quiet.message
    # a new user's Adam at lr 1.0: training back to 3% of its start, validation at 350x its first value
    found = check_early_instability(record(loss, total_steps=600, val=[0.69, 30.0, 242.0]), ADAM)
    assert found.severity.value == "warning"
    assert found.message.endswith("; the validation loss did not: 242 at the last validation against 0.69 at the first")


def test_early_instability_with_warmup_already_lowers_lr_first():
    loss = healthy(600, tau=80).copy()
    loss[3:15] = np.linspace(4.0, 6.0, 12)
    lr = np.minimum(1.0, (np.arange(600) + 1) / 20) * 1e-3
    finding = check_early_instability(record(loss, lr=lr, total_steps=600), ADAM)
    assert first_remedy(finding)[0] == "lower_lr"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_loss_bouncing_above_its_best_is_oscillation(seed):
    rng = np.random.default_rng(seed)
    loss = np.concatenate([healthy(200, tau=40), 1.0 * np.exp(rng.normal(0, 0.6, 200))])
    finding = check_oscillation(record(loss), SGD)
    assert finding is not None
    assert first_remedy(finding) == ("lower_lr", {"lr": 0.033})
    assert finding.remedies[1].code.value == "raise_momentum"
    assert check_oscillation(record(loss), ADAM).remedies[1].code.value == "lower_beta1"


def test_tiny_gradients_at_a_high_flat_loss_are_a_saddle_stall():
    rng = np.random.default_rng(0)
    loss = 2.3 + rng.normal(0, 0.003, 300)
    layers = np.tile([1e-6, 1e-5, 1e-4, 1e-3], (300, 1))
    finding = check_saddle_stall(record(loss, 0.1, 0.05, layers=layers, update_ratio=1e-6), SGD)
    assert finding is not None and finding.step == 0
    # stuck from the first step: the init put it there
    assert [r.code.value for r in finding.remedies] == ["change_init", "raise_momentum", "raise_lr", "add_grad_noise"]
    assert finding.remedies[1].change == {"momentum": 0.9}
    # Neelakantan et al. 2015's smallest variance (0.01), annealed from the fit's first step as the recipe does
    assert finding.remedies[3].change == {"grad_noise": 0.1}
    assert f"{0.1 * 300 ** -0.275:.3g} at step 299" in finding.remedies[3].message


def test_a_stall_after_some_progress_tries_momentum_first():
    rng = np.random.default_rng(0)
    loss = np.concatenate([np.linspace(2.3, 2.0, 60), 2.0 + rng.normal(0, 0.003, 300)])
    layers = np.tile([1e-6, 1e-5, 1e-4, 1e-3], (360, 1))
    finding = check_saddle_stall(record(loss, 0.1, 0.05, layers=layers, update_ratio=1e-6), SGD)
    assert finding.step > 0
    assert [r.code.value for r in finding.remedies] == ["raise_momentum", "raise_lr", "add_grad_noise", "change_init"]


def test_healthy_gradients_with_tiny_updates_are_slow_convergence_not_saddle():
    loss = 2.3 - np.arange(300) * 1e-4
    layers = np.tile([0.3, 0.5, 0.8], (300, 1))
    rec = record(loss, 1.0, 1e-6, layers=layers, update_ratio=1e-6)
    ctx = RunContext(optimizer="adam", lr=1e-6, beta1=0.9, beta2=0.999)
    assert check_saddle_stall(rec, ctx) is None
    finding = check_slow_convergence(rec, ctx)
    assert first_remedy(finding) == ("raise_lr", {"lr": 0.0001})  # 1e-3 target ratio / 1e-6 -> capped at 100x
    assert diagnose(rec, ctx).codes == ["slow_convergence"]


def test_flat_noisy_loss_after_progress_at_constant_lr_is_a_plateau():
    rng = np.random.default_rng(0)
    loss = np.concatenate([healthy(200, tau=30, floor=0.6), 0.6 * np.exp(rng.normal(0, 0.3, 600))])
    finding = check_plateau(record(loss, 1.0, 0.1), SGD)
    assert finding is not None and first_remedy(finding) == ("decay_lr", {"schedule": "cosine", "lr": 0.1})
    assert [r.code.value for r in finding.remedies] == ["decay_lr", "decay_lr", "lower_lr", "raise_batch_size"]
    # reduce-on-plateau among the decays; without validations recorded, the recipe's default patience stays
    assert finding.remedies[1].change == {"schedule": "plateau", "plateau_factor": 0.1, "lr": 0.1}
    assert finding.remedies[3].change == {"batch_size": 256}
    # validations every 50 steps: 5 fall in the flat window (its last 240 steps, from step 560: 599 ... 799), and
    # the patience is half of them, rounded down: 2
    with_val = check_plateau(record(loss, 1.0, 0.1, val=[0.7] * 16), SGD)
    assert with_val.evidence["flat_validations"] == 5
    assert with_val.remedies[1].change == {"schedule": "plateau", "plateau_factor": 0.1, "lr": 0.1,
                                           "plateau_patience": 2}


def test_no_plateau_while_the_lr_decays_or_once_converged():
    rng = np.random.default_rng(0)
    loss = np.concatenate([healthy(200, tau=30, floor=0.6), 0.6 * np.exp(rng.normal(0, 0.3, 600))])
    decaying = 0.1 * (1 + np.cos(np.pi * np.arange(800) / 800)) / 2
    assert check_plateau(record(loss, 1.0, decaying), SGD) is None
    converged = np.concatenate([healthy(200, tau=30, floor=0.006), 0.006 * np.exp(rng.normal(0, 0.3, 600))])
    assert check_plateau(record(converged, 1.0, 0.1), SGD) is None  # at 0.3% of the initial loss


def test_first_layers_far_below_last_are_vanishing_gradients():
    layers = np.tile([1e-7, 1e-5, 1e-3, 0.5], (300, 1))
    loss = 2.3 + np.random.default_rng(0).normal(0, 0.01, 300)
    ctx = RunContext(optimizer="sgd", lr=0.1, saturating_layers=("net.1", "net.3"))
    finding = check_vanishing_gradients(record(loss, 0.5, layers=layers), ctx)
    assert finding.severity.value == "warning" and finding.evidence["first_layer"] == "net.0"
    assert [r.code.value for r in finding.remedies] == ["change_architecture", "change_init", "switch_optimizer"]
    assert finding.remedies[2].change == {"optimizer": "adam", "lr": 0.001}


def test_val_rising_while_train_falls_is_generalization_gap():
    loss = healthy(1000, floor=0.001, tau=150)
    val = [1.2, 0.6, 0.4, 0.35, 0.37, 0.42, 0.5, 0.6, 0.7, 0.8]
    finding = check_generalization_gap(record(loss, val=val), ADAM)
    assert finding.step == 399  # the best validation check
    assert first_remedy(finding) == ("early_stop", {"max_steps": 399})
    assert [r.code.value for r in finding.remedies] == ["early_stop", "add_weight_decay", "switch_to_sgd"]
    assert finding.remedies[1].change == {"optimizer": "adamw", "weight_decay": 0.01}
    sgd = check_generalization_gap(record(loss, val=val), SGD)
    assert [r.code.value for r in sgd.remedies] == ["early_stop", "add_weight_decay"]


def test_a_small_steady_rise_after_memorizing_is_the_start_of_overfitting():
    loss = healthy(1000, floor=0.0005, tau=60)
    val = [1.8, 0.9, 0.5, 0.42, 0.422, 0.425, 0.428, 0.431, 0.434, 0.44]  # +4.8% over six checks
    finding = check_generalization_gap(record(loss, val=val), ADAM)
    assert finding.severity.value == "info" and "starting to overfit" in finding.message
    assert diagnose(record(loss, val=val), ADAM).is_healthy  # info only: a healthy run stays healthy


def test_val_that_keeps_falling_is_no_gap():
    assert check_generalization_gap(record(healthy(1000), val=[1.0, 0.8, 0.6, 0.5, 0.45, 0.4]), ADAM) is None


def test_divergence_silences_its_symptoms():
    loss = np.concatenate([healthy(300), [float("nan")]])
    grad = np.concatenate([np.full(300, 0.5), [float("nan")]])
    grad[[100, 200]] = 50
    assert diagnose(record(loss, grad), SGD).codes == ["divergence"]


def test_a_dead_network_with_zero_gradients_is_not_a_crash_or_a_spike():
    loss = np.full(300, 0.93)
    grad = np.zeros(300)
    grad[150] = 0.5  # one bias wakes up once
    rec = record(loss, grad, layers=np.zeros((300, 3)))
    assert "exploding_gradients" not in diagnose(rec, SGD).codes


def test_a_window_without_an_update_sample_reads_the_latest_one():
    loss = 2.3 * np.exp(np.random.default_rng(0).normal(0, 0.01, 290))  # flat at chance, SGD at a tiny LR
    rec = record(loss, 0.5, layers=np.tile([0.3, 0.5, 0.6], (290, 1)), update_ratio=1e-5)
    rec.update_steps, rec.update_ratio = np.array([0, 100, 200]), np.full(3, 1e-5)  # none in the last 87 steps
    assert diagnose(rec, SGD).findings[0].code.value == "slow_convergence"


@pytest.mark.parametrize(("lr", "expected"), [(0.2, 1e-3), (3e-3, 3e-4), (50.0, 0.05)])
def test_an_adam_lr_cut_goes_to_adams_usual_lr_not_by_sgds_update_ratio(lr, expected):
    loss = np.array(list(healthy(10)) + [float("nan")])
    rec = record(loss, lr=lr, update_ratio=4.4)  # Adam's first step moves each weight by the LR: a ratio this size
    finding = check_divergence(rec, RunContext(optimizer="adam", lr=lr, beta1=0.9, beta2=0.999))
    # 0.2 -> Adam's usual 1e-3 (200x; the update ratio would say 1000x); a tenth at least; 1000x at most
    assert first_remedy(finding) == ("lower_lr", {"lr": expected})


def test_sgd_momentum_near_one_and_tiny_batchnorm_batches_come_before_the_lr_cut():
    loss = list(healthy(40)) + [5.0, 40.0, float("nan")]
    grad = [1.0] * 38 + [2.0, 8.0, 60.0, 900.0, float("nan")]
    rec = record(np.array(loss), np.array(grad), 0.1)
    momentum = check_divergence(rec, RunContext(optimizer="sgd", lr=0.1, momentum=0.99))
    assert first_remedy(momentum) == ("lower_momentum", {"momentum": 0.95})
    bn = check_divergence(rec, RunContext(optimizer="adam", lr=1e-3, beta1=0.9, batch_size=2,
                                          batchnorm_layers=("net.1",)))
    assert [r.code.value for r in bn.remedies][:3] == ["raise_batch_size", "change_architecture", "lower_lr"]
    assert bn.remedies[0].change == {"batch_size": 16}
    plain = check_divergence(rec, RunContext(optimizer="sgd", lr=0.1, momentum=0.9, batch_size=64,
                                             batchnorm_layers=("net.1",)))
    assert first_remedy(plain)[0] == "lower_lr"  # momentum 0.9 and a batch of 64: nothing but the LR to blame


def test_validation_swinging_with_the_training_loss_is_not_overfitting():
    """The same validation rise, but the training loss swings with it (it came back above its level at the best
    check): instability, not a generalization gap."""
    loss = healthy(1000, floor=0.001, tau=150)
    val = [1.2, 0.6, 0.4, 0.35, 0.37, 0.42, 0.5, 0.6, 0.7, 0.8]
    assert check_generalization_gap(record(loss, val=val), ADAM) is not None  # steady training: overfitting
    swinging = loss.copy()
    swinging[500:600] *= 40  # the training loss jumps back up between the 5th and 6th checks
    assert check_generalization_gap(record(swinging, val=val), ADAM) is None


def test_a_validation_rise_inside_its_own_noise_is_not_overfitting():
    loss = healthy(1000, floor=0.001, tau=150)
    noisy = [1.2, 0.6, 0.4, 0.30, 0.45, 0.31, 0.44, 0.30, 0.46, 0.34]  # +13% over its best, but swinging 50%
    assert check_generalization_gap(record(loss, val=noisy), ADAM) is None
    steady = [1.2, 0.6, 0.4, 0.30, 0.31, 0.315, 0.32, 0.325, 0.33, 0.34]  # +13% too, as a steady climb
    assert check_generalization_gap(record(loss, val=steady), ADAM) is not None


def test_a_blow_up_that_leaves_dead_layers_names_them_and_is_never_recovered():
    loss = np.concatenate([healthy(50, floor=0.3), [1e10, 1e27, 1e20], np.full(60, 0.69)])  # started at ~0.6
    loss[:50] = np.minimum(loss[:50], 0.6)
    layers = np.tile([0.3, 0.5, 0.8], (len(loss), 1))
    layers[60:, :2] = 0.0  # the first two layers get no gradient at all after the blow-up
    finding = check_divergence(record(loss, layers=layers), SGD)
    assert finding.code.value == "divergence" and finding.severity.value == "critical"
    assert finding.evidence["dead_layers"] == ["net.0", "net.1"]
    assert "net.0, net.1 get no gradient at all any more (dead units)" in finding.message
    assert "1e+27x" not in finding.message and "1.67e+27x" in finding.message  # a ratio written as a number
    share = f"{0.69 / finding.evidence['initial_loss']:.0%}"  # the run learned first: say where it is, not "never"
    assert f"its recent loss 0.69 is {share} of where it started: it is not learning" in finding.message


def test_spikes_that_send_a_converged_loss_up_a_thousandfold_stay_a_warning():
    """Late Adam spikes (a public report): the loss is far below its start, so a spike it shakes off would be a
    hint; one that sends the loss up a thousandfold is not."""
    n = 2000
    loss = 2.0 * np.exp(-np.arange(n) / 100) + 1e-4
    grad = np.full(n, 0.01)
    for at in (250, 300, 700, 800):
        grad[at] = 0.3
    for at in (700, 800):
        loss[at + 1: at + 6] = 1000 * loss[at - 1]  # gone again within a few steps
    finding = check_exploding_gradients(record(loss, grad, 0.03), ADAM)
    assert finding.severity.value == "warning"
    assert finding.evidence["loss_jump"] == pytest.approx(1000.0, rel=0.02)
    assert "the worst sent the loss to" in finding.message
    mild = 2.0 * np.exp(-np.arange(n) / 100) + 1e-4
    for at in (250, 300):  # the loss near 0.16 and 0.1 there: a 5x jump is damage, but shaken off
        mild[at + 1: at + 6] = 5 * mild[at - 1]
    shaken = check_exploding_gradients(record(mild, grad, 0.03), ADAM)
    assert shaken.severity.value == "info" and shaken.evidence["loss_jump"] == pytest.approx(5.0, rel=0.05)


def test_late_adam_spikes_in_a_run_that_had_learned_get_a_lower_beta2_first():
    n = 2000
    loss = 2.0 * np.exp(-np.arange(n) / 100) + 1e-4
    grad = np.full(n, 0.01)
    for at in (1200, 1500):
        grad[at] = 0.3
        loss[at + 1: at + 6] = 0.5  # past half the run, long after the loss came down
    finding = check_exploding_gradients(record(loss, grad, 0.03, total_steps=n), ADAM)
    assert [r.code.value for r in finding.remedies][:2] == ["lower_beta2", "lower_lr"]
    assert finding.remedies[0].change == {"beta2": 0.99}
    sgd = check_exploding_gradients(record(loss, grad, 0.03, total_steps=n), SGD)
    assert sgd.remedies[0].code.value == "lower_lr"  # no second moment to go stale
