"""The pipeline rules on values, on hand-made observations: the scale limit, the one-batch verdict and its causes, the
replica comparison's tolerance, and the stall that triggers the one-batch fit."""

from __future__ import annotations

import numpy as np
import pytest

from tunekit.diagnose import Finding, FindingCode, Severity
from tunekit.diagnose.rules._pipeline import PipelineFault, pipeline_finding
from tunekit.diagnose.rules._pipeline_values import (
    ONE_BATCH_LEFT,
    RANK_TOLERANCE,
    SCALE_LIMIT,
    input_scale_fault,
    rank_desync_fault,
    stalled_from_start,
    unfittable_batch_fault,
)
from tunekit.record import RunRecord


def test_only_columns_above_the_limit_are_named_largest_first_and_counted():
    scales = [1.0] * 20 + [SCALE_LIMIT * 0.99, SCALE_LIMIT * 1.01] + [100.0 * (k + 1) for k in range(10)]
    fault = input_scale_fault(3, [{"tensor": "batch['x']", "shape": [16, 32], "scales": scales}])
    (table,) = fault.evidence["tensors"]
    assert table["columns"][:3] == [31, 30, 29] and table["count"] == 11 and 20 not in table["columns"]
    assert "and 3 more" in fault.message and "11 of 32 columns" in fault.message
    assert table["median_scale"] == 1.0 and table["smallest_scale"] == 1.0


def test_a_scale_fault_carries_the_normalize_inputs_remedy_into_the_finding():
    scale = input_scale_fault(0, [{"tensor": "batch[1]", "shape": [8], "scales": [171.0]}])
    other = PipelineFault("repeated_batch", 8, "same batch", "check the loader")
    finding = pipeline_finding([scale, other])
    assert [r.code.value for r in finding.remedies] == ["normalize_inputs", "check_pipeline"]
    assert PipelineFault.from_dict(scale.to_dict()) == scale


def _fit(**kw):
    return {"loss_before": 2.3, "loss_after": 2.2, "lr": 0.01, "steps": 60, "trained": ["a.weight", "a.bias"],
            "trained_values": 1000, "values": 1000, "with_gradient": ["a.weight", "a.bias"], **kw}


@pytest.mark.parametrize("fit, words", [
    (_fit(with_gradient=[]), "graph is detached"),
    (_fit(trained=["head.bias"], trained_values=5, with_gradient=["head.bias"]), "network is frozen"),
    (_fit(), "targets may not match the inputs"),
    # a new user's module with detached logits and a trained bias after them: not "the targets may not match"
    (_fit(trained=["net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias", "b"], with_gradient=["b"]),
     "only 1 of the 5 trained parameter tensors get a gradient from the loss (b)"),
])
def test_the_one_batch_verdict_names_the_likely_cause(fit, words):
    fault = unfittable_batch_fault(90, fit)
    assert fault.critical and words in fault.message and fault.remedy == "check_pipeline"


def test_a_batch_halved_is_fit_and_a_blown_up_fork_is_not():
    assert unfittable_batch_fault(90, _fit(loss_after=ONE_BATCH_LEFT * 2.3 * 0.99)) is None
    assert unfittable_batch_fault(90, _fit(loss_after=ONE_BATCH_LEFT * 2.3 * 1.01)) is not None
    assert unfittable_batch_fault(90, _fit(loss_after=float("nan"))).evidence["loss_after"] == "nan"


def test_replicas_differ_beyond_the_tolerance_only():
    norm = 10.0
    same = [[[3.0], [norm]], [[3.0 + 0.5 * RANK_TOLERANCE * norm], [norm]]]  # a rounding difference
    assert rank_desync_fault(10, ["w"], same) is None
    apart = [[[3.0, 1.0], [norm, 1.0]], [[3.0, 1.0], [norm, 1.0]], [[3.0, 1.0], [norm * (1 + 3 * RANK_TOLERANCE), 1.0]]]
    fault = rank_desync_fault(10, ["w", "b"], apart)
    assert fault.evidence["ranks"] == [2] and fault.evidence["parameter"] == "w" and "rank 2 holds" in fault.message


def _record(loss):
    return RunRecord.from_series(list(loss), grad_norm=[1.0] * len(loss), lr=0.1)


def test_the_one_batch_fit_is_wanted_only_on_a_stall_near_the_start():
    assert stalled_from_start(_record(np.full(100, 2.3))) is not None
    assert stalled_from_start(_record(np.full(79, 2.3))) is None  # too few steps to say
    assert stalled_from_start(_record(np.linspace(2.3, 0.5, 100))) is None  # learning
    assert stalled_from_start(_record(np.linspace(2.3, 5.0, 100))) is None  # blowing up: the LR's doing
    for code in (FindingCode.DIVERGENCE, FindingCode.VANISHING_GRADIENTS):  # explained otherwise
        assert stalled_from_start(_record(np.full(100, 2.3)), [Finding(code, Severity.WARNING, 50, "", {})]) is None
