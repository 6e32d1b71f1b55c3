"""Workers and devices: more DDP processes than the machine has is a one-line error that creates nothing; on a
machine with several GPUs each worker gets its own slice of them."""

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from tunekit.search._workers import worker_devices

ROOT = Path(__file__).resolve().parents[2]


def test_n_jobs_times_devices_beyond_the_machine_is_a_one_line_error_and_no_study(tmp_path):
    cfg = yaml.safe_load((ROOT / "examples" / "search.yaml").read_text())
    devices = (os.cpu_count() or 1) + 1  # one DDP process more than this machine has cores, even with one worker
    cfg["trainer"] = {**cfg["trainer"], "accelerator": "cpu", "devices": devices, "strategy": "ddp"}
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    result = subprocess.run([sys.executable, "-m", "tunekit.cli", "search", str(path), "--n-trials", "2", "--n-jobs",
                             "2", "--storage", f"sqlite:///{tmp_path}/s.db"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"--n-jobs 2 x {devices} devices per trial" in lines[0] and "lower --n-jobs" in lines[0]
    assert not (tmp_path / "s.db").exists()


@dataclass
class _Plan:  # the two fields worker_devices reads from a SearchPlan
    accelerator: str
    world_size: int


def test_each_worker_gets_its_own_gpus(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    assert [worker_devices(_Plan("cuda", 2), i, 2) for i in range(2)] == ["4,5", "6,7"]
    assert [worker_devices(_Plan("cuda", 1), i, 4) for i in range(4)] == ["4", "5", "6", "7"]
    assert worker_devices(_Plan("cuda", 2), 0, 3) is None  # too few to share out: the environment is left alone
    assert worker_devices(_Plan("cpu", 2), 0, 2) is None and worker_devices(_Plan("cuda", 2), 0, 1) is None
