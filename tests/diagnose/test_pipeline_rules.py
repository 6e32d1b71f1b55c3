"""The pipeline-fault rules on hand-made observations: what they decide and how they name the objects at fault."""

from __future__ import annotations

import pytest

from tunekit.diagnose import Diagnosis
from tunekit.diagnose.rules._pipeline import (
    PipelineFault,
    eval_mode_fault,
    pipeline_finding,
    repeated_batch_fault,
    schedule_interval_fault,
    schedule_mismatch,
    uncleared_gradients_fault,
    unlearned_parameter_faults,
)


def _schedule(**kw):
    return {"scheduler": "OneCycleLR", "interval": "epoch", "frequency": 1, "epochs": 10, "steps": 1000,
            "horizon": 1000, "horizon_name": "total_steps", **kw}


@pytest.mark.parametrize("entry, wrong", [
    (_schedule(), True),  # per-step one-cycle stepped once an epoch
    (_schedule(interval="step"), False),
    (_schedule(horizon=10), False),  # a one-cycle over the epochs, stepped per epoch: as meant
    (_schedule(horizon=10, interval="step"), True),  # ... stepped per step: done after 1% of the fit
    (_schedule(scheduler="LinearLR", horizon=200, horizon_name="total_iters"), True),  # a 200-step warmup, per epoch
    (_schedule(scheduler="LinearLR", horizon=5, interval="step", warmup=True), False),  # a short per-step warmup
    (_schedule(scheduler="LinearLR", horizon=10, interval="step", warmup=False), True),  # a decay over the epochs
    (_schedule(epochs=10, steps=20), False),  # 2 steps an epoch: the two scales are too close to tell
    (_schedule(frequency=50, interval="step", horizon=20), False),  # stepped every 50 steps: 20 times, as meant
    ({**_schedule(scheduler="LambdaLR"), "horizon": None, "warmup_peak": 500}, True),
    ({**_schedule(scheduler="LambdaLR"), "horizon": None, "warmup_peak": 5}, False),  # warms up over 5 epochs
    ({**_schedule(scheduler="LambdaLR"), "horizon": None, "warmup_peak": None}, False),  # a decay: no verdict
])
def test_schedule_mismatch_judges_the_horizon_against_the_fit(entry, wrong):
    assert (schedule_mismatch(entry) is not None) is wrong


def test_a_schedule_fault_names_the_scheduler_and_the_interval_to_use():
    fault = schedule_interval_fault(0, [_schedule(), _schedule(scheduler="StepLR", horizon=None)])
    assert fault is not None and len(fault.evidence["schedulers"]) == 1
    assert fault.message.startswith("OneCycleLR (total_steps=1000) is stepped once an epoch")
    assert "10 times, 1% of the way through" in fault.message
    assert '"interval": "step"' in fault.fix


def test_unlearned_parameters_are_named_with_a_count_past_the_listed_ones():
    names = [f"layers.{i}.weight" for i in range(12)]
    (fault,) = unlearned_parameter_faults(3, names, [], trainable=30)
    assert "12 of 30 trainable parameters" in fault.message and "layers.7.weight and 4 more" in fault.message
    assert not fault.critical
    faults = unlearned_parameter_faults(3, ["a.weight"], ["b.weight"], trainable=2)
    assert [f.check for f in faults] == ["no_gradient", "not_in_optimizer"] and all(f.critical for f in faults)


def test_gradients_are_said_never_cleared_only_when_every_step_carried_its_gradient():
    assert uncleared_gradients_fault(5, "w", [True, True], manual=True) is None  # too few steps seen
    fault = uncleared_gradients_fault(5, "w", [True] * 4, manual=False)
    assert fault is not None and "optimizer_zero_grad override" in fault.fix


def test_the_same_batch_needs_enough_identical_batches():
    assert repeated_batch_fault(3, [[1.0, 2.0]] * 3) is None  # a three-batch epoch says too little
    assert repeated_batch_fault(8, [[1.0, 2.0]] * 8).evidence["batches"] == 8


def test_eval_mode_skips_frozen_backbones_but_not_parameterless_layers():
    frozen = {"module": "backbone", "type": "ResNet", "affected": ["backbone.bn1 (BatchNorm2d)"],
              "parameters": 60, "trainable": 0}
    dropout = {"module": "drop", "type": "Dropout", "affected": ["drop (Dropout)"], "parameters": 0, "trainable": 0}
    plain = {"module": "head", "type": "Linear", "affected": [], "parameters": 2, "trainable": 2}
    assert eval_mode_fault(0, [frozen, plain]) is None  # frozen on purpose; a Linear's mode does not matter
    fault = eval_mode_fault(0, [frozen, dropout])
    assert fault is not None and fault.message.endswith("1 module is in eval mode while the model trains "
                                                        "(BatchNorm statistics frozen, dropout off): drop (Dropout)")


def test_one_finding_holds_every_fault_with_a_remedy_each_and_survives_json():
    faults = [PipelineFault("eval_mode", 0, "m1", "f1"), PipelineFault("not_in_optimizer", 3, "m2", "f2",
                                                                        {"count": 2}, critical=True)]
    finding = pipeline_finding(faults)
    assert finding.severity.value == "critical" and finding.step == 0
    assert finding.message == "2 pipeline faults: (1) m1; (2) m2"
    assert [r.message for r in finding.remedies] == ["f1", "f2"]
    assert finding.evidence["faults"][1] == {"check": "not_in_optimizer", "step": 3, "count": 2}
    again = Diagnosis.from_dict(Diagnosis([finding]).to_dict())
    assert again.codes == ["pipeline_fault"] and again.findings[0] == finding
    assert PipelineFault.from_dict(faults[1].to_dict()) == faults[1]
    assert pipeline_finding([]) is None
