"""The settings rule on hand-made series: tight clipping, strong weight decay, an early decay and a long warmup are
named with their own remedy (values computed here from the series), the same runs without the fault are not, and
the forks a setting's finding asks for and how their outcome is read."""

import math

import numpy as np

from tunekit.diagnose import FindingCode, RemedyCode, RunContext, RunRecord, Severity, diagnose
from tunekit.diagnose._probes import ProbeOutcome, ProbeReport, probe_panel, read_probes
from tunekit.logs import from_logged, read_logged

N = 600
STEPS = np.arange(N)
FLAT = np.r_[np.linspace(2.3, 2.2, 100), np.full(N - 100, 2.2)]  # barely learned: near its start
SGD = RunContext(optimizer="sgd", lr=0.05, momentum=0.9)


def _record(loss, grad_norm=0.8, lr=0.05, update_ratio=1e-5) -> RunRecord:
    rec = RunRecord.from_series(loss, np.full(N, grad_norm), lr, total_steps=N)
    rec.update_steps, rec.update_ratio = np.arange(0, N, 100), np.full(6, update_ratio)
    return rec


def _top(record, ctx):
    return diagnose(record, ctx).findings[0]


def test_clipping_at_a_hundredth_of_the_gradient_norm_is_loosened_to_twice_the_norm():
    top = _top(_record(FLAT), RunContext(optimizer="sgd", lr=0.05, momentum=0.9, gradient_clip_val=0.008))
    assert (top.code, top.severity) == (FindingCode.SLOW_CONVERGENCE, Severity.WARNING)
    assert (top.remedies[0].code, dict(top.remedies[0].change)) == (RemedyCode.LOOSEN_CLIPPING,
                                                                    {"gradient_clip_val": 1.6})
    assert top.evidence["setting"] == "loosen_clipping" and "cuts every step to 1.0% of its size" in top.message
    # clipping at the norm itself, and Adam with healthy steps, are not held back by it
    for ctx, ratio in ((RunContext(optimizer="sgd", lr=0.05, momentum=0.9, gradient_clip_val=0.8), 1e-5),
                       (RunContext(optimizer="adam", lr=1e-3, beta1=0.9, beta2=0.999, gradient_clip_val=0.008), 2e-3)):
        found = diagnose(_record(FLAT, update_ratio=ratio), ctx)
        assert RemedyCode.LOOSEN_CLIPPING not in {r.code for f in found.findings for r in f.remedies}


def test_weight_decay_shrinking_the_weights_15_percent_a_step_is_cut_to_the_usual_value():
    top = _top(_record(FLAT, update_ratio=2e-3), RunContext(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=0.3))
    assert (top.remedies[0].code, dict(top.remedies[0].change)) == (RemedyCode.LOWER_WEIGHT_DECAY,
                                                                    {"weight_decay": 1e-4})
    assert math.isclose(top.evidence["decay_per_step"], 0.05 * 0.3 / 0.1)
    adamw = _top(_record(FLAT, update_ratio=2e-3), RunContext(optimizer="adamw", lr=3e-3, beta1=0.9, beta2=0.999,
                                                             weight_decay=2.0))
    assert dict(adamw.remedies[0].change) == {"weight_decay": 0.01}  # torch's AdamW default, not 2.0 / 10
    usual = diagnose(_record(FLAT, update_ratio=2e-3), RunContext(optimizer="sgd", lr=0.1, momentum=0.9,
                                                                  weight_decay=5e-4))
    assert RemedyCode.LOWER_WEIGHT_DECAY not in {r.code for f in usual.findings for r in f.remedies}


def test_an_lr_decayed_to_nothing_by_a_tenth_of_the_plan_gets_a_cosine_over_the_plan(tmp_path):
    lr = 0.05 * 0.9 ** STEPS  # under 1% of its peak from step 44 on
    loss = np.r_[np.linspace(2.3, 1.2, 44), np.full(N - 44, 1.2)]
    top = _top(_record(loss, lr=lr), RunContext(optimizer="sgd", lr=0.05, lr_now=float(lr[-1]), momentum=0.9))
    assert top.code is FindingCode.PLATEAU and "by step 44 of 600 planned" in top.message
    assert (top.remedies[0].code, dict(top.remedies[0].change)) == (RemedyCode.POSTPONE_DECAY,
                                                                    {"schedule": "cosine", "lr": 0.05})
    # read from a log after the fit (`tunekit diagnose`): the cosine starts from the logged peak, not the decayed LR
    logged = tmp_path / "metrics.csv"
    rows = "".join(f"{i},{v},{r}\n" for i, (v, r) in enumerate(zip(loss, lr, strict=True)))
    logged.write_text("step,train_loss,lr-SGD\n" + rows)
    run = from_logged(read_logged(logged), optimizer="sgd")
    assert (run.context.lr, run.context.lr_now) == (0.05, float(lr[-1]))
    top = next(f for f in run.diagnose().findings if f.code is FindingCode.PLATEAU)
    assert dict(top.remedies[0].change) == {"schedule": "cosine", "lr": 0.05}
    cosine = 0.05 * 0.5 * (1 + np.cos(np.pi * STEPS / N))  # under 1% only in the last 6%
    found = diagnose(_record(loss, lr=cosine), RunContext(optimizer="sgd", lr=0.05, momentum=0.9))
    assert RemedyCode.POSTPONE_DECAY not in {r.code for f in found.findings for r in f.remedies}


def test_a_warmup_over_80_percent_of_the_plan_is_shortened_to_5_percent():
    lr = 0.05 * np.minimum(1.0, (STEPS + 1) / 480)
    top = _top(_record(FLAT, lr=lr, update_ratio=2e-3), SGD)
    assert (top.remedies[0].code, dict(top.remedies[0].change)) == (RemedyCode.SHORTEN_WARMUP, {"warmup_steps": 30})
    assert top.evidence["warmup_ended"] == 475  # the first step at 99% of the peak: (475 + 1) / 480 >= 0.99
    short = 0.05 * np.minimum(1.0, (STEPS + 1) / 30)
    found = diagnose(_record(FLAT, lr=short, update_ratio=2e-3), SGD)
    assert RemedyCode.SHORTEN_WARMUP not in {r.code for f in found.findings for r in f.remedies}


def test_a_setting_finding_forks_its_remedy_and_keeps_its_name_whatever_the_forks_say():
    ctx = RunContext(optimizer="sgd", lr=0.05, momentum=0.9, gradient_clip_val=0.008)
    finding = _top(_record(FLAT), ctx)
    panel = probe_panel(finding, ctx)
    assert [(c.label, dict(c.change)) for c in panel] == [
        ("unchanged", {}), ("loosen_clipping gradient_clip_val=1.6", {"gradient_clip_val": 1.6})]
    outcomes = (ProbeOutcome("unchanged", {}, 10, 2.0, 2.0),
                ProbeOutcome(panel[1].label, panel[1].change, 10, 2.0, 1.6))
    read = read_probes(finding, ProbeReport(500, finding.code, outcomes), ctx)
    assert read.code is FindingCode.SLOW_CONVERGENCE and read.severity is Severity.WARNING
    assert read.evidence["verified"]["winner"] == "loosen_clipping gradient_clip_val=1.6"
    assert read.evidence["verified"]["gain"] == 0.2


def test_a_run_below_a_tenth_of_its_start_is_only_hinted_that_a_larger_lr_falls_faster():
    finding = _top(_record(FLAT), SGD)  # any stall finding to read through forks
    low = type(finding)(FindingCode.SLOW_CONVERGENCE, Severity.INFO, 400, "still falling",
                        {"loss": 0.09, "initial_loss": 1.08}, finding.remedies)
    outcomes = (ProbeOutcome("unchanged", {}, 8, 1.0, 0.974), ProbeOutcome("lr x10", {"lr": 0.5}, 8, 1.0, 0.846),
                ProbeOutcome("lr x0.1", {"lr": 0.005}, 8, 1.0, 0.999))
    read = read_probes(low, ProbeReport(400, FindingCode.SLOW_CONVERGENCE, outcomes), SGD)
    assert read.severity is Severity.INFO


def test_a_stall_read_after_the_schedule_ran_the_lr_to_zero_keeps_its_evidence():
    finding = _top(_record(FLAT), RunContext(optimizer="sgd", lr=0.05, momentum=0.9, gradient_clip_val=0.008))
    plain = type(finding)(FindingCode.PLATEAU, Severity.WARNING, 400, "flat", {"loss": 1.0, "initial_loss": 2.3},
                          finding.remedies)
    outcomes = (ProbeOutcome("unchanged", {}, 8, 1.0, 1.0), ProbeOutcome("lr x10", {"lr": 0.5}, 8, 1.0, 0.9))
    read = read_probes(plain, ProbeReport(300, FindingCode.PLATEAU, outcomes),
                       RunContext(optimizer="sgd", lr=0.05, lr_now=0.0, momentum=0.9))
    assert (read.code, read.severity, read.message) == (FindingCode.PLATEAU, Severity.WARNING, "flat")
    assert [p["label"] for p in read.evidence["probes"]] == ["unchanged", "lr x10"]


def test_weight_decay_that_holds_the_gradient_near_zero_is_not_read_as_a_saddle():
    # a new user's breast-cancer MLP at SGD lr 0.05, momentum 0.9, weight decay 1.0: the weights and their gradient
    # collapse to ~1e-7 and the loss stays at its start, which alone looks like a saddle
    saddle = diagnose(_record(FLAT, grad_norm=1e-7), SGD)
    assert saddle.findings[0].code is FindingCode.SADDLE_STALL
    held = diagnose(_record(FLAT, grad_norm=1e-7), RunContext(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1.0))
    assert "saddle_stall" not in held.codes
    top = held.findings[0]
    assert (top.code, top.remedies[0].code) == (FindingCode.SLOW_CONVERGENCE, RemedyCode.LOWER_WEIGHT_DECAY)
    assert math.isclose(top.evidence["decay_per_step"], 0.05 * 1.0 / 0.1)
