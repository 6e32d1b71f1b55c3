"""DDP with two CPU processes (gloo): same decisions on every rank, files from rank zero only."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("ddp_fit.py")


def _run(tmp_path: Path, lr: float, *more: str) -> tuple[dict, dict]:
    proc = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), str(lr), *more], capture_output=True,
                          text=True, timeout=300, cwd=Path(__file__).parents[2])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tuple(json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))  # type: ignore[return-value]


@pytest.mark.slow
def test_ddp_nan_run_stops_on_both_ranks_at_the_same_step(tmp_path):
    rank0, rank1 = _run(tmp_path, 50.0)
    bad = rank0["first_nonfinite_step"]
    assert bad is not None
    # Under DDP the live watch reads the all-reduced gradient norms (equal on every rank, so no collective
    # per step); a loss that overflows first shows in them one step later.
    assert rank0["global_step"] == rank1["global_step"] <= bad + 2
    assert rank0["codes"][0] == rank1["codes"][0] == "divergence"
    assert rank0["first_remedy"]["code"] == "lower_lr" and rank0["first_remedy"]["change"] == {"lr": 0.05}
    assert json.loads((tmp_path / "diagnosis.json").read_text())["findings"][0]["code"] == "divergence"


@pytest.mark.slow
def test_ddp_healthy_run_completes(tmp_path):
    rank0, rank1 = _run(tmp_path, 0.05, "4", "0.05", "ranks")
    assert rank0["global_step"] == rank1["global_step"] == 4 * 12  # 1437 examples / 2 ranks / 64 per batch
    assert "divergence" not in rank0["codes"]
    assert "pipeline_fault" not in rank0["codes"] + rank1["codes"]  # DDP-wrapped parameters, hooks and loaders
    assert rank0["rank_checks"] == rank1["rank_checks"] == 5  # at steps 10, 20, 30, 40 and the end: all equal


@pytest.mark.slow
def test_ddp_ranks_out_of_step_are_named_with_the_first_parameter_that_differs(tmp_path):
    rank0, rank1 = _run(tmp_path, 0.05, "2", "0.05", "desync")  # rank 1 edits a weight after step 15
    for report in (rank0, rank1):  # every rank gathered the same checksums and says the same
        finding = next(f for f in report["diagnosis"]["findings"] if f["code"] == "pipeline_fault")
        (fault,) = [f for f in finding["evidence"]["faults"] if f["check"] == "ranks_out_of_step"]
        assert fault["step"] == 20 and fault["ranks"] == [1] and fault["differing"] == 1
        assert fault["parameter"] == report["first_parameter"] and fault["sum"] != fault["sum_rank0"]
        assert "rank 1 holds parameters that differ from rank 0's" in finding["message"]
        assert report["first_parameter"] in finding["remedies"][0]["message"]
        assert report["rank_checks"] == 2  # at steps 10 and 20; then no more (named once)


@pytest.mark.slow
def test_ddp_ranks_probe_together_and_read_the_same_outcome(tmp_path):
    # SGD at lr 1e-4 (1000x too low), 24 epochs of 12 steps per rank, a budget that allows a probe
    rank0, rank1 = _run(tmp_path, 1e-4, "24", "0.3")
    assert rank0["probe_steps"] == rank1["probe_steps"] > 0  # both probed, or neither would have
    top0, top1 = rank0["diagnosis"]["findings"][0], rank1["diagnosis"]["findings"][0]
    assert top0["code"] == top1["code"] == "slow_convergence"
    assert top0["evidence"]["probes"] == top1["evidence"]["probes"]  # the losses averaged across ranks
    assert rank0["weights"] == rank1["weights"]  # still one model: the forks left no trace on either rank
    # the loss stalled near its start: both ranks fit one batch together (losses averaged), and the model can
    assert rank0["one_batch_steps"] == rank1["one_batch_steps"] > 0 and "pipeline_fault" not in rank0["codes"]


@pytest.mark.slow
def test_ddp_ranks_roll_back_and_remedy_together(tmp_path):
    rank0, rank1 = _run(tmp_path, 50.0, "4", "0.05", "auto")
    assert rank0["global_step"] == rank1["global_step"] == 4 * 12  # trained on instead of stopping
    assert rank0["interventions"] == rank1["interventions"] and rank0["interventions"][0]["finding"] == "divergence"
    assert rank0["lr"] == rank1["lr"] < 50.0 and rank0["clip"] == rank1["clip"] is not None
    assert rank0["weights"] == rank1["weights"] and all(abs(w) < 1e6 for w in rank0["weights"])  # one finite model
