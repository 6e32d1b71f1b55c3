"""Real worker processes: two on PostgreSQL (one killed mid-trial), several on SQLite, and Ctrl-C."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.search.helpers import write_config

ROOT = Path(__file__).parents[2]
SLOW = {"model": {"class_path": "tests.search.fixtures.SlowMLP", "init_args": {"hidden": [32]}},
        "trainer": {"max_epochs": 3, "limit_train_batches": 10, "limit_val_batches": 2},
        "search": {"optimizer": ["adamw", "sgd"], "lr": [1e-3, 1e-1]}}


def _start(config: Path, cwd: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline"}
    cmd = [sys.executable, "-m", "tunekit.cli", "search", str(config), *args]
    # SIGINT back to its default in the child: a test run started in the background (`make test &`) ignores it,
    # the child inherits that, and Python then never turns Ctrl-C into KeyboardInterrupt
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for(predicate, timeout: float = 90.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError("timed out waiting for the workers")


def _fitting(url: str, name: str) -> int:
    """Running trials that have drawn their recipe (they are fitting it)."""
    try:
        trials = optuna.load_study(study_name=name, storage=url).trials
    except KeyError:
        return 0
    return sum(t.state == TrialState.RUNNING and bool(t.params) for t in trials)


def _states(url: str, name: str) -> list[TrialState]:
    try:
        return [t.state for t in optuna.load_study(study_name=name, storage=url).trials]
    except KeyError:
        return []


@pytest.mark.slow
def test_two_postgres_workers_finish_a_study_and_a_killed_ones_trial_is_retried(tmp_path, postgres_url):
    name = f"tunekit-test-{uuid.uuid4().hex[:8]}"
    cfg = write_config(tmp_path, **SLOW)
    common = ["--storage", postgres_url, "--study-name", name, "--heartbeat-interval", "1", "--grace-period", "3"]
    victim = _start(cfg, tmp_path, "--n-trials", "4", *common)
    survivor = _start(cfg, tmp_path, "--n-trials", "6", *common)
    try:
        _wait_for(lambda: _fitting(postgres_url, name) == 2)  # both mid-fit
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        out, err = survivor.communicate(timeout=240)
        assert survivor.returncode == 0, err[-2000:]
        study = optuna.load_study(study_name=name, storage=postgres_url)
        failed = [t for t in study.trials if t.state == TrialState.FAIL]
        assert len(failed) == 1  # the trial the killed worker was running, failed by the heartbeat check
        retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == failed[0].number]
        assert len(retried) == 1 and retried[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
        assert retried[0].params == failed[0].params
        finished = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
        assert len(finished) >= 6 and study.best_value > 0
    finally:
        for proc in (victim, survivor):
            if proc.poll() is None:
                proc.kill()
        optuna.delete_study(study_name=name, storage=postgres_url)


@pytest.mark.slow
def test_n_jobs_worker_processes_share_a_sqlite_study(tmp_path):
    cfg = write_config(tmp_path)
    proc = _start(cfg, tmp_path, "--n-trials", "4", "--n-jobs", "2", "--study-name", "jobs", "--json")
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err[-2000:]
    study = optuna.load_study(study_name="jobs", storage=f"sqlite:///{tmp_path / 'tunekit.db'}")
    assert len(study.trials) == 4
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)


@pytest.mark.slow
def test_ctrl_c_marks_the_running_trial_failed_keeps_the_rest_and_resumes(tmp_path):
    cfg = write_config(tmp_path, **SLOW)
    url = f"sqlite:///{tmp_path / 'tunekit.db'}"
    proc = _start(cfg, tmp_path, "--n-trials", "100", "--study-name", "c")  # more than can finish before the signal
    _wait_for(lambda: TrialState.COMPLETE in _states(url, "c") and TrialState.RUNNING in _states(url, "c"))
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err and "Traceback" not in err
    states = _states(url, "c")
    assert TrialState.RUNNING not in states and states.count(TrialState.FAIL) == 1
    kept = states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED)
    assert kept >= 1
    said = " ".join(err.split())  # the console wraps long lines
    assert f"interrupted: {kept} trial{'s' if kept > 1 else ''} of this run finished" in said
    assert "The same command again adds 100 more trials to the study" in said  # what it does, said exactly
    assert f"(--n-trials {100 - kept} runs only the ones this run had left)" in said
    again = _start(cfg, tmp_path, "--n-trials", "1", "--study-name", "c")
    again.communicate(timeout=120)
    assert again.returncode == 0 and len(_states(url, "c")) == len(states) + 1


@pytest.mark.slow
def test_ctrl_c_in_the_first_trial_says_so_and_not_to_read_diagnoses(tmp_path):
    cfg = write_config(tmp_path, **SLOW)
    url = f"sqlite:///{tmp_path / 'tunekit.db'}"
    proc = _start(cfg, tmp_path, "--n-trials", "5", "--study-name", "c0")
    _wait_for(lambda: _fitting(url, "c0") == 1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err[-2000:]
    assert _states(url, "c0") == [TrialState.FAIL]  # the first trial, interrupted: nothing finished
    said = " ".join(err.split())
    assert "interrupted before a trial finished; the running trial is marked failed" in said
    assert "The same command again adds 5 more trials to the study." in said
    assert "no trial completed before the interrupt" in said and "see the failed or pruned" not in said
