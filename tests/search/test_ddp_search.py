"""One trial = one DDP group: a study on a two-process CPU (gloo) Trainer. Lightning starts rank 1 by running the
command again; rank 1 must join rank 0's trials, never run a study of its own."""

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from tests.search.helpers import BASE

ROOT = Path(__file__).resolve().parents[2]
N_TRIALS = 3
DIGITS_TRAIN = 1438  # DigitsDataModule's training split (80% of sklearn's 1,797 digits)


@pytest.mark.slow
def test_a_ddp_study_holds_exactly_the_trials_asked_for_each_trained_once_on_all_data(tmp_path):
    witness = tmp_path / "witness"
    witness.mkdir()
    config = {**BASE, "trainer": {"accelerator": "cpu", "devices": 2, "strategy": "ddp", "max_epochs": 1,
                                  "limit_val_batches": 2,
                                  "callbacks": [{"class_path": "tests.search.fixtures.RankWitness",
                                                 "init_args": {"folder": str(witness)}}]}}
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-m", "tunekit.cli", "search", str(path), "--n-trials", str(N_TRIALS),
                             "--storage", f"sqlite:///{tmp_path}/ddp.db", "--json"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})  # the witness lives in tests/
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1])["complete"] == N_TRIALS  # one summary, rank 0's
    study = optuna.load_study(study_name="ddp", storage=f"sqlite:///{tmp_path}/ddp.db")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * N_TRIALS
    ranks = [[json.loads(line) for line in (witness / f"rank{r}.jsonl").read_text().splitlines()] for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == N_TRIALS  # rank 1 joined every trial and ran none of its own
    for trial, zero, one in zip(study.trials, *ranks, strict=True):
        assert zero["world"] == one["world"] == 2
        same = ("optimizer", "lr", "batch_size", "steps")
        assert {k: zero[k] for k in same} == {k: one[k] for k in same}  # one recipe on both ranks
        assert zero["lr"] == pytest.approx(trial.user_attrs["recipe"]["lr"])
        assert zero["batch_size"] == trial.user_attrs["recipe"]["batch_size"]
        # each rank saw its half of the data: together the whole training split, once
        assert abs(zero["samples"] + one["samples"] - DIGITS_TRAIN) <= 2 * zero["batch_size"]
