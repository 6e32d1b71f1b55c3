"""Reading what-if probes, on hand-made outcomes: which forks a finding asks for and what their outcomes mean."""

import dataclasses
import math

import pytest

from tunekit.diagnose import Finding, FindingCode, Remedy, RemedyCode, RunContext, Severity
from tunekit.diagnose._probes import ProbeOutcome, ProbeReport, probe_panel, read_probes, stability_edge

SGD = RunContext(optimizer="sgd", lr=0.01, momentum=0.0)
ADAM = RunContext(optimizer="adam", lr=1e-3, beta1=0.9, beta2=0.999)


def _finding(code, **evidence):
    return Finding(FindingCode(code), Severity.WARNING, 100, "the loss is flat", evidence,
                   (Remedy(RemedyCode.RAISE_LR, {"lr": 0.1}, "Raise it."),))


def _report(code, changes, curvature=None):
    """``changes``: {label: (lr or None, relative loss change)}; the first entry is the control."""
    outcomes = tuple(ProbeOutcome(label, {} if lr is None else {"lr": lr}, 10, 2.0,
                                  math.nan if change is None else 2.0 * (1 + change))
                     for label, (lr, change) in changes.items())
    return ProbeReport(120, FindingCode(code), outcomes, curvature, 40.0)


def test_a_stall_asks_for_a_larger_and_a_smaller_lr_and_jumps_as_far_as_the_updates_say():
    panel = probe_panel(_finding("slow_convergence", update_ratio=1e-6), SGD)
    assert [c.label for c in panel] == ["unchanged", "lr x1000", "lr x0.1"]
    assert panel[1].change == {"lr": 10.0}
    assert [c.label for c in probe_panel(_finding("plateau"), SGD)] == ["unchanged", "lr x10", "lr x0.1"]
    assert probe_panel(_finding("generalization_gap"), SGD) == []


def test_a_larger_lr_that_helps_near_the_start_confirms_a_too_low_lr():
    report = _report("saddle_stall", {"unchanged": (None, -0.001), "lr x10": (0.1, -0.12), "lr x0.1": (0.001, 0.0)})
    read = read_probes(_finding("saddle_stall", loss=2.2, initial_loss=2.3), report, SGD)
    assert read.code is FindingCode.SLOW_CONVERGENCE and read.severity is Severity.WARNING
    assert read.remedies[0].change == {"lr": 0.1}
    assert "tried: lr x10 for 10 steps, loss -12.0%" in read.remedies[0].message
    assert [p["label"] for p in read.evidence["probes"]] == ["unchanged", "lr x10", "lr x0.1"]


def test_a_larger_lr_that_helps_well_below_the_start_is_only_a_hint():
    report = _report("plateau", {"unchanged": (None, -0.001), "lr x10": (0.1, -0.1), "lr x0.1": (0.001, 0.0)})
    read = read_probes(_finding("plateau", loss=0.2, initial_loss=2.3), report, SGD)
    assert read.code is FindingCode.PLATEAU and read.severity is Severity.INFO


def test_a_smaller_lr_that_helps_is_a_noise_floor():
    report = _report("slow_convergence", {"unchanged": (None, 0.01), "lr x10": (0.1, None), "lr x0.1": (0.001, -0.08)})
    read = read_probes(_finding("slow_convergence", loss=1.0, initial_loss=2.3), report, SGD)
    assert read.code is FindingCode.PLATEAU and read.remedies[0].code is RemedyCode.DECAY_LR
    assert read.evidence["probes"][1]["loss_change"] == "inf"  # the larger LR blew up


def test_neither_lr_helping_with_negative_curvature_is_a_saddle_and_without_it_is_not():
    forks = {"unchanged": (None, -0.001), "lr x10": (0.1, -0.005), "lr x0.1": (0.001, 0.0)}
    saddle = read_probes(_finding("plateau", loss=2.2, initial_loss=2.3),
                         _report("plateau", forks, {"top": 4.0, "bottom": -1.5, "preconditioned": False}), SGD)
    assert saddle.code is FindingCode.SADDLE_STALL and saddle.evidence["min_eigenvalue"] == -1.5
    flat = read_probes(_finding("saddle_stall", loss=2.2, initial_loss=2.3),
                       _report("saddle_stall", forks, {"top": 4.0, "bottom": -0.01, "preconditioned": False}), SGD)
    assert flat.code is FindingCode.PLATEAU and flat.severity is Severity.INFO  # never a saddle without it


def test_tiny_updates_stand_when_the_forks_were_too_short_to_show_anything():
    forks = {"unchanged": (None, 0.0), "lr x1000": (10.0, -0.01), "lr x0.1": (0.001, 0.0)}
    read = read_probes(_finding("slow_convergence", loss=2.3, initial_loss=2.3, update_ratio=1e-6),
                       _report("slow_convergence", forks), SGD)
    assert read.code is FindingCode.SLOW_CONVERGENCE and read.severity is Severity.WARNING


def test_oscillation_is_confirmed_by_the_factor_that_helped_or_downgraded():
    osc = Finding(FindingCode.OSCILLATION, Severity.WARNING, 50, "it swings", {},
                  (Remedy(RemedyCode.LOWER_LR, {"lr": 0.0033}, "Lower it."),))
    helped = read_probes(osc, _report("oscillation", {"unchanged": (None, 0.0), "lr x0.32": (0.0032, -0.02),
                                                      "lr x0.1": (0.001, -0.09)}), SGD)
    assert helped.severity is Severity.WARNING and helped.remedies[0].change == {"lr": 0.001}
    noise = read_probes(osc, _report("oscillation", {"unchanged": (None, 0.0), "lr x0.32": (0.0032, 0.01),
                                                     "lr x0.1": (0.001, 0.0)}), SGD)
    assert noise.severity is Severity.INFO


def test_the_edge_of_stability_sets_the_lr_cut_when_the_curvature_was_measured():
    assert stability_edge({"top": 400.0, "preconditioned": False}, SGD) == pytest.approx(2 / 400)
    assert stability_edge({"top": 4e4, "preconditioned": True}, ADAM) == pytest.approx(38 / 4e4)
    assert stability_edge({"top": 4e4, "preconditioned": False}, ADAM) is None  # Adam needs P^-1 H
    osc = Finding(FindingCode.OSCILLATION, Severity.WARNING, 50, "it swings", {}, ())
    read = read_probes(osc, _report("oscillation", {"unchanged": (None, 0.0), "lr x0.32": (0.0032, 0.0)},
                                    {"top": 400.0, "bottom": -1.0, "preconditioned": False}), SGD)
    assert read.remedies[0].change == {"lr": 0.0025}  # half of the edge at 2/400
    assert read.evidence["stability_edge_lr"] == pytest.approx(0.005)


def test_a_finite_divergence_recovers_only_when_its_unchanged_fork_ends_below_the_start():
    def div(initial):
        return Finding(FindingCode.DIVERGENCE, Severity.CRITICAL, 30, "the loss rose to 3.8x its initial",
                       {"loss": 1.9, "initial_loss": initial}, ())
    assert [c.label for c in probe_panel(div(0.5), SGD)] == ["unchanged", "lr x0.1"]
    back_down = {"unchanged": (None, -0.4), "lr x0.1": (0.001, -0.5)}  # held-out loss 2.0 -> 1.2 unchanged
    read = read_probes(div(2.3), _report("divergence", back_down), SGD)
    assert read.severity is Severity.WARNING and "came back down from 2 to 1.2, below its start (2.3)" in read.message
    # the same fall, but the run started at 0.5: it came down to a level above its start, which is not learning
    dead = read_probes(div(0.5), _report("divergence", back_down), SGD)
    assert dead.severity is Severity.CRITICAL and "came back down" not in dead.message
    stays = read_probes(div(2.3), _report("divergence", {"unchanged": (None, 0.05), "lr x0.1": (0.001, -0.5)}), SGD)
    assert stays.severity is Severity.CRITICAL and "lr x0.1 won" in stays.message


MOMENTUM_SGD = RunContext(optimizer="sgd", lr=0.1, lr_now=0.05, momentum=0.99)


def _exploding():
    return Finding(FindingCode.EXPLODING_GRADIENTS, Severity.WARNING, 300, "spikes", {},
                   (Remedy(RemedyCode.LOWER_MOMENTUM, {"momentum": 0.95}, "Lower momentum."),
                    Remedy(RemedyCode.LOWER_LR, {"lr": 0.033}, "Lower the LR."),
                    Remedy(RemedyCode.CLIP_GRADIENTS, {"gradient_clip_val": 4.0}, "Clip."),
                    Remedy(RemedyCode.SWITCH_OPTIMIZER, {"optimizer": "adam", "lr": 1e-3}, "Adam."),
                    Remedy(RemedyCode.CHANGE_ARCHITECTURE, {}, "GroupNorm.")))


def test_an_instability_tries_each_forkable_remedy_at_the_lr_the_schedule_makes_of_it():
    panel = probe_panel(_exploding(), MOMENTUM_SGD)
    assert [c.label for c in panel] == ["unchanged", "lower_momentum momentum=0.95", "lower_lr lr=0.033",
                                        "clip_gradients gradient_clip_val=4"]
    assert panel[2].change == {"lr": pytest.approx(0.0165)}  # the base LR 0.033 at the schedule's current half
    info = dataclasses.replace(_exploding(), severity=Severity.INFO)
    assert probe_panel(info, MOMENTUM_SGD) == []  # a hint is not worth the forks


def test_verified_remedies_put_the_winner_first_and_the_losers_last():
    forks = {"unchanged": (None, 0.02), "lower_momentum momentum=0.95": (None, -0.30),
             "lower_lr lr=0.033": (None, 0.05), "clip_gradients gradient_clip_val=4": (None, -0.10)}
    read = read_probes(_exploding(), _report("exploding_gradients", forks), MOMENTUM_SGD)
    # the winners first (largest win first), then the rest in the rule's order: a fork that trails (+5% against
    # +2%) over a few steps is not demoted
    assert [r.code.value for r in read.remedies] == ["lower_momentum", "clip_gradients", "lower_lr",
                                                     "switch_optimizer", "change_architecture"]
    assert "lower_momentum momentum=0.95 won: held-out loss -30.0% against +2.0% unchanged" in read.message
    assert read.evidence["verified"] == {"winner": "lower_momentum momentum=0.95", "gain": 0.32, "steps": 10}


def test_verified_remedies_say_when_nothing_beat_the_unchanged_run():
    forks = {"unchanged": (None, -0.10), "lower_momentum momentum=0.95": (None, -0.10),
             "lower_lr lr=0.033": (None, -0.099), "clip_gradients gradient_clip_val=4": (None, None)}
    read = read_probes(_exploding(), _report("exploding_gradients", forks), MOMENTUM_SGD)
    assert "no candidate beat the unchanged run" in read.message and read.evidence["verified"]["winner"] is None
    # ties keep the rule's order; the fork that blew up goes last
    assert [r.code.value for r in read.remedies] == ["lower_momentum", "lower_lr", "switch_optimizer",
                                                     "change_architecture", "clip_gradients"]


def test_a_report_survives_json():
    report = _report("plateau", {"unchanged": (None, -0.001), "lr x10": (0.1, None)}, {"top": 1.0, "bottom": -0.5})
    back = ProbeReport.from_dict(report.to_dict())
    assert back.gain("lr x10") == -math.inf and back.curvature == {"top": 1.0, "bottom": -0.5}
    assert back.control.loss_change == pytest.approx(-0.001)
