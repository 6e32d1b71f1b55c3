"""Studies on a real SQLite storage: completion, resume without redoing the range test, pruning."""

import optuna
from optuna.trial import TrialState

from tests.search.helpers import write_config
from tunekit.config import load_config
from tunekit.search import run_search


def _sqlite(tmp_path):
    return f"sqlite:///{tmp_path / 'study.db'}"


def test_a_study_completes_with_recipe_diagnosis_and_metrics_on_each_trial(tmp_path):
    cfg = load_config(write_config(tmp_path))
    result = run_search(cfg, n_trials=4, storage=_sqlite(tmp_path), study_name="s")
    assert result.complete + result.pruned == 4 and result.failed == 0
    assert result.best_value is not None and result.best_recipe["optimizer"] in ("adamw", "sgd")
    study = optuna.load_study(study_name="s", storage=_sqlite(tmp_path))
    for trial in study.trials:
        recipe = trial.user_attrs["recipe"]
        assert 1e-3 <= recipe["lr"] <= 1e-1 and recipe["batch_size"] in (32, 64)
        assert "findings" in trial.user_attrs["diagnosis"]
        assert trial.user_attrs["steps"] > 0
        if trial.state == TrialState.COMPLETE:
            assert trial.value == trial.user_attrs["metrics"]["val_loss"]


def test_resume_adds_trials_without_redoing_the_range_test(tmp_path):
    cfg = load_config(write_config(tmp_path, search={"optimizer": "adamw", "lr": "auto"}))
    first = run_search(cfg, n_trials=2, storage=_sqlite(tmp_path), study_name="s")
    study = optuna.load_study(study_name="s", storage=_sqlite(tmp_path))
    stored = study.user_attrs["tunekit.lr_range.adam"]
    low, high = first.lr_range["adam"]["bounds"]
    second = run_search(cfg, n_trials=2, storage=_sqlite(tmp_path), study_name="s")
    study = optuna.load_study(study_name="s", storage=_sqlite(tmp_path))
    assert study.user_attrs["tunekit.lr_range.adam"]["measured_at"] == stored["measured_at"]  # not redone
    assert len(study.trials) == 4 and second.complete + second.pruned == 4
    assert all(low <= t.params["lr_adam"] <= high for t in study.trials)


def test_a_diverging_trial_is_pruned_with_its_diagnosis(tmp_path):
    cfg = load_config(write_config(tmp_path, search={"optimizer": "sgd", "lr": 50.0},
                                   trainer={"max_epochs": 5}))
    result = run_search(cfg, n_trials=1, storage=_sqlite(tmp_path), study_name="s")
    assert result.pruned == 1 and result.complete == 0
    (trial,) = optuna.load_study(study_name="s", storage=_sqlite(tmp_path)).trials
    assert trial.state == TrialState.PRUNED
    finding = trial.user_attrs["diagnosis"]["findings"][0]
    assert finding["code"] == "divergence" and finding["remedies"][0]["change"] == {"lr": 0.05}
    assert trial.user_attrs["steps"] < 25  # stopped at once, not trained for 5 epochs (115 steps)


def test_with_auto_remedy_a_diverging_trial_is_repaired_and_scored(tmp_path):
    cfg = load_config(write_config(tmp_path, search={"optimizer": "sgd", "lr": 50.0}, trainer={"max_epochs": 5}))
    result = run_search(cfg, n_trials=1, storage=_sqlite(tmp_path), study_name="s", auto_remedy=True)
    assert result.complete == 1 and result.pruned == 0 and result.repaired == 1
    study = optuna.load_study(study_name="s", storage=_sqlite(tmp_path))
    (trial,) = study.trials
    assert trial.user_attrs["interventions"][0]["remedy"] == "lower_lr" and trial.value < 2.0
    assert study.user_attrs["tunekit.auto_remedy"] is True
