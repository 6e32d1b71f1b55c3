"""The search on tasks it was not tuned on: pruning at every validation, LR bounds that move with the batch size,
informed first trials, and a range test that never blocks the search."""

import math

import optuna
import pytest

from tunekit.config import parse_config
from tunekit.search import plan_search, run_search
from tunekit.search._space import SearchSpace, batch_lr_factor

ONE_EPOCH = {"max_epochs": 1, "val_check_interval": 0.2, "limit_val_batches": 2}  # five validations in the epoch


def test_a_one_epoch_study_prunes_a_clearly_bad_trial_at_a_validation_before_its_end(tmp_path):
    config = parse_config({
        "model": {"class_path": "tunekit.examples.MLP", "init_args": {"hidden": [32]}},
        "data": {"class_path": "tunekit.examples.DigitsDataModule", "init_args": {"batch_size": 16}},
        "trainer": ONE_EPOCH, "search": {"optimizer": ["adam"], "lr": [1e-7, 0.05]},
        "pruner": {"name": "median"}})  # Optuna's median rule judges by the enqueued trials too (the default won't)
    url = f"sqlite:///{tmp_path}/prune.db"
    study = optuna.create_study(study_name="prune", storage=url)
    for lr in (0.01, 0.01, 0.01, 1e-7):  # three good trials the median pruner compares against, then a dead one
        study.enqueue_trial({"optimizer": "adam", "lr": lr})
    result = run_search(plan_search(config), n_trials=4, storage=url, study_name="prune")
    trials = optuna.load_study(study_name="prune", storage=url).trials
    assert result.complete == 3 and [t.state for t in trials][-1] == optuna.trial.TrialState.PRUNED
    bad, good = trials[-1], trials[0]
    assert sorted(good.intermediate_values) == [1, 2, 3, 4, 5]  # every validation reported, by its ordinal
    assert bad.user_attrs["steps"] < good.user_attrs["steps"]  # stopped before the end of its one epoch
    assert min(bad.intermediate_values) == 1  # at its first validation


def test_the_lr_moves_with_the_sampled_batch_size():
    space = SearchSpace.parse({"optimizer": ["sgd", "adamw"], "lr": "auto", "batch_size": [32, 128]})
    space.lr_bounds = {"sgd": (1e-3, 1.0), "adam": (1e-4, 1e-1)}
    space.lr_batch_size = 32  # the range test ran at batch 32: its bounds hold there
    sgd = space.sample(optuna.trial.FixedTrial({"optimizer": "sgd", "lr_sgd": 0.01, "batch_size": 128}))
    adam = space.sample(optuna.trial.FixedTrial({"optimizer": "adamw", "lr_adam": 0.01, "batch_size": 128,
                                                 "beta1": 0.9, "beta2": 0.999}))
    same = space.sample(optuna.trial.FixedTrial({"optimizer": "sgd", "lr_sgd": 0.01, "batch_size": 32}))
    assert sgd.lr == pytest.approx(0.04) and adam.lr == pytest.approx(0.02) and same.lr == pytest.approx(0.01)
    assert batch_lr_factor("sgd", 8, 32) == pytest.approx(0.25)


def test_a_study_starts_from_informed_trials_around_the_range_tests_suggestion(tmp_path):
    config = parse_config({
        "model": {"class_path": "tunekit.examples.MLP", "init_args": {"hidden": [32]}},
        "data": {"class_path": "tunekit.examples.DigitsDataModule", "init_args": {"batch_size": 64}},
        "trainer": {"max_epochs": 1, "limit_train_batches": 5, "limit_val_batches": 2},
        "search": {"optimizer": ["adamw"], "lr": "auto", "batch_size": [32, 64, 128]}})
    url = f"sqlite:///{tmp_path}/start.db"
    run_search(plan_search(config), n_trials=3, storage=url, study_name="start")
    study = optuna.load_study(study_name="start", storage=url)
    suggestion = study.user_attrs["tunekit.lr_range.adam"]["suggestion"]
    first, below, above = sorted(study.trials, key=lambda t: t.number)
    assert first.user_attrs["tunekit.start"] == "lr range test suggestion"
    assert first.params["batch_size"] == 64  # the batch size the range test measured at
    assert first.params["lr_adam"] == pytest.approx(suggestion)
    low, high = study.user_attrs["tunekit.lr_range.adam"]["bounds"]
    assert below.params["lr_adam"] == pytest.approx(max(low, suggestion / 3))
    assert above.params["lr_adam"] == pytest.approx(min(high, suggestion * 3))


def test_a_loss_that_starts_on_a_plateau_does_not_block_lr_auto(tmp_path):
    # the range test sees no fall on this task (its loss sits near 1.0 for ~80 steps); the search goes on over a
    # wide range and says why, instead of stopping before its first trial
    config = parse_config({
        "model": {"class_path": "tunekit.examples.SequenceGRU", "init_args": {"length": 64, "hidden": 16}},
        "data": {"class_path": "tunekit.examples.SequenceSumDataModule",
                 "init_args": {"batch_size": 16, "length": 64, "examples": 600}},
        "trainer": {"max_epochs": 1, "limit_train_batches": 10, "limit_val_batches": 2},
        "search": {"optimizer": ["sgd"], "lr": "auto", "momentum": [0.5, 0.95]}})
    notes = []
    url = f"sqlite:///{tmp_path}/plateau.db"
    result = run_search(plan_search(config), n_trials=2, storage=url, study_name="plateau", note=notes.append)
    assert result.complete + result.pruned == 2
    stored = optuna.load_study(study_name="plateau", storage=url).user_attrs["tunekit.lr_range.sgd"]
    assert stored["suggestion"] is None and stored["flat"]
    low, high = stored["bounds"]
    assert low < 0.01 < 0.1 < high and math.isclose(high, stored["diverged_at"] / 2)
    assert any("no suggestion" in n and "wide range" in n for n in notes)
