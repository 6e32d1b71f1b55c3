"""A seeded study is the same study when run again, past the informed start: TPE's trials, the pruner's decisions,
every reported value and the best; and ``lr: auto`` is searched centred on the range test's suggestion."""

import math
import os
import subprocess
import sys

import optuna
import pytest

from tests.search.helpers import write_config
from tunekit.config import load_config
from tunekit.search import plan_search, run_search
from tunekit.search._lr_bounds import centred_bounds
from tunekit.search._run import open_study
from tunekit.search._samplers import TPE_STARTUP

TINY = {"max_epochs": 3, "limit_train_batches": 4, "limit_val_batches": 1}
TRIALS = TPE_STARTUP + 3  # three trials drawn by TPE's model, not its random start


def _trials(tmp_path, name, pruner):
    cfg = load_config(write_config(tmp_path, trainer=TINY, seed=5, pruner=pruner,
                                   search={"optimizer": ["adamw", "sgd"], "lr": [1e-4, 1.0],
                                           "weight_decay": [1e-6, 1e-2], "batch_size": [32, 64]}))
    url = f"sqlite:///{tmp_path / name}.db"
    result = run_search(cfg, n_trials=TRIALS, storage=url, study_name="s")
    trials = optuna.load_study(study_name="s", storage=url).trials
    return result, [(t.number, t.state, t.params, t.value, t.intermediate_values) for t in trials]


@pytest.mark.parametrize("pruner", [{"name": "evidence", "min_peers": 1, "grace_steps": 0, "min_margin": 0.0}])
def test_a_seeded_study_with_tpe_and_pruning_is_the_same_study_in_two_fresh_files(tmp_path, pruner):
    first, trials = _trials(tmp_path, "one", pruner)
    second, again = _trials(tmp_path, "two", pruner)
    assert trials == again  # params, states (pruned or not), every reported value, final values
    assert (first.best_trial, first.best_value) == (second.best_trial, second.best_value)
    assert len(trials) == TRIALS and len({str(t[2]) for t in trials}) == TRIALS  # TPE drew a new recipe each time
    assert first.pruned > 0  # the pruner decided something, and decided it the same way twice


def test_lr_auto_is_searched_centred_on_the_suggestion_by_joint_tpe(tmp_path):
    cfg = load_config(write_config(tmp_path, trainer={"max_epochs": 1, "limit_train_batches": 5,
                                                      "limit_val_batches": 1},
                                   search={"optimizer": ["adamw"], "lr": "auto"}))
    url = f"sqlite:///{tmp_path}/c.db"
    result = run_search(cfg, n_trials=1, storage=url, study_name="c")
    study = optuna.load_study(study_name="c", storage=url)
    stored = study.user_attrs["tunekit.lr_range.adam"]
    suggestion, (low, high) = stored["suggestion"], stored["range_test_bounds"]
    searched = study.trials[0].distributions["lr_adam"]
    # TPE's prior sits at the middle of the range in log space: that is the suggestion now
    assert math.sqrt(searched.low * searched.high) == pytest.approx(suggestion)
    assert searched.high / searched.low == pytest.approx(high / low)  # as many decades as the range test's bounds
    assert (searched.low, searched.high) == pytest.approx(centred_bounds(suggestion, low, high))
    assert result.lr_range["adam"]["bounds"] == pytest.approx([searched.low, searched.high])  # what is reported
    opened, _ = open_study(plan_search(cfg), url, "c")  # the sampler a run uses: TPE over the joint, grouped space
    assert isinstance(opened.sampler, optuna.samplers.TPESampler)
    assert opened.sampler._multivariate and opened.sampler._group


@pytest.mark.slow
def test_the_same_command_in_two_processes_with_other_string_hashes_gives_the_same_study(tmp_path):
    # what a user does: run the command again (a new process: Python's string hashing, and so any set's order, differs)
    config = write_config(tmp_path, trainer=TINY, seed=5, search={"optimizer": ["adamw", "sgd"], "lr": "auto",
                                                                  "weight_decay": [1e-6, 1e-2]})
    studies = []
    for hash_seed in ("1", "2"):
        url = f"sqlite:///{tmp_path}/{hash_seed}.db"
        done = subprocess.run([sys.executable, "-m", "tunekit", "search", str(config), "--n-trials", str(TRIALS),
                               "--storage", url, "--study-name", "s", "--json"], capture_output=True, text=True,
                              env={**os.environ, "PYTHONHASHSEED": hash_seed}, cwd=tmp_path, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        study = optuna.load_study(study_name="s", storage=url)
        ranges = {k: {**v, "measured_at": None} for k, v in study.user_attrs.items() if k.startswith("tunekit.lr_")}
        studies.append((ranges, [(t.state, t.params, t.value, t.intermediate_values) for t in study.trials]))
    assert studies[0] == studies[1]  # the range tests, then every trial's params, reports and value
