"""A maximized monitor is maximized everywhere; a seeded study is the same study when run again."""

import json

import optuna
import pytest
from typer.testing import CliRunner

from tests.search.helpers import write_config
from tunekit.cli import app
from tunekit.config import load_config
from tunekit.exceptions import ConfigError
from tunekit.search import StudyView, run_search

runner = CliRunner()


def test_val_acc_without_direction_is_maximized_and_the_best_trial_is_the_highest(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # a wide LR range: some trials learn (val_acc near 0.9), some do not (near 0.1)
    cfg = write_config(tmp_path, monitor="val_acc", search={"optimizer": "sgd", "lr": [1e-4, 1.0]},
                       sampler={"name": "random"}, pruner="none")
    result = runner.invoke(app, ["search", str(cfg), "--n-trials", "5", "--study-name", "acc"])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("direction: maximize val_acc") == 1
    view = StudyView.load("sqlite:///tunekit.db", "acc")
    values = [t.value for t in view.complete()]
    assert len(values) == 5 and max(values) - min(values) > 0.3  # trials that differ, so the direction matters
    assert not view.minimize and view.best_trial.value == max(values)
    # the summary is a result: on stdout (messages go to stderr)
    assert f"best recipe: trial {view.best_trial.number}, val_acc {max(values):.4g}" in result.stdout
    best = runner.invoke(app, ["best", "--study-name", "acc"])
    assert f"trial {view.best_trial.number}: val_acc = {max(values):.6g}" in best.stdout
    # the same study resumed with the opposite direction would rank it upside down: refused, nothing added
    flipped = write_config(tmp_path, monitor="val_acc", direction="minimize",
                           search={"optimizer": "sgd", "lr": [1e-4, 1.0]})
    with pytest.raises(ConfigError, match="was created to maximize val_acc, but the config says minimize"):
        run_search(load_config(flipped), n_trials=1, storage="sqlite:///tunekit.db", study_name="acc")
    assert len(optuna.load_study(study_name="acc", storage="sqlite:///tunekit.db").trials) == 5


def _study(tmp_path, name):
    cfg = load_config(write_config(tmp_path, search={"optimizer": "adamw", "lr": "auto", "weight_decay": [1e-6, 1e-2]},
                                   trainer={"max_epochs": 2, "limit_train_batches": 6, "limit_val_batches": 2}, seed=3))
    url = f"sqlite:///{tmp_path / name}.db"
    result = run_search(cfg, n_trials=4, storage=url, study_name="s")
    trials = optuna.load_study(study_name="s", storage=url).trials
    return result, [(t.state, t.params, t.value, t.intermediate_values) for t in trials]


@pytest.mark.slow
def test_a_seeded_search_run_twice_gives_the_same_trials_and_best(tmp_path):
    first, trials = _study(tmp_path, "one")
    second, again = _study(tmp_path, "two")
    assert first.lr_range == second.lr_range  # the range test: same init, same data order
    assert trials == again  # sampled params, every reported value, final values
    assert (first.best_trial, first.best_value) == (second.best_trial, second.best_value)
    assert len({t[2] for t in trials}) == 4  # each trial its own value: the trials differ, not one init replayed


def test_lr_find_gives_the_same_suggestion_run_after_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = write_config(tmp_path)
    runs = [runner.invoke(app, ["lr-find", str(cfg), "--plot", str(tmp_path / f"{i}.png"), "--json", "--max-steps",
                                "120"]) for i in range(2)]
    assert all(r.exit_code == 0 for r in runs), runs[0].output
    first, second = (json.loads(r.stdout) for r in runs)
    assert first["suggestion"] is not None and first["suggestion"] == second["suggestion"]
    assert first["losses"] == second["losses"]
