"""Pruning that needs evidence: never by the informed (enqueued) trials alone, never within the grace period, never
by less than the validation noise; a trial clearly worse than its sampled peers is stopped."""

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from tunekit.config import parse_config
from tunekit.search import plan_search, run_search
from tunekit.search._evidence import EvidencePruner, validation_noise

# five validations in one short epoch (every 4 of 20 batches): a bad trial can be stopped before its end
FIVE_VALIDATIONS = {"max_epochs": 1, "limit_train_batches": 20, "val_check_interval": 0.2, "limit_val_batches": 2}
GOOD, DEAD = 0.01, 1e-7  # Adam's LR on the digits MLP: learns within 20 batches / does not move


def _config(pruner: dict) -> object:
    return parse_config({
        "model": {"class_path": "tunekit.examples.MLP", "init_args": {"hidden": [32]}},
        "data": {"class_path": "tunekit.examples.DigitsDataModule", "init_args": {"batch_size": 16}},
        "trainer": FIVE_VALIDATIONS, "search": {"optimizer": ["adam"], "lr": [0.005, 0.02]},
        "sampler": {"name": "random"}, "pruner": pruner})


def test_a_dead_trial_is_not_pruned_against_the_informed_trials_alone(tmp_path):
    url = f"sqlite:///{tmp_path}/informed.db"
    study = optuna.create_study(study_name="s", storage=url)
    for lr in (GOOD, GOOD, GOOD, GOOD, DEAD):  # more enqueued good trials than min_peers, then a dead one
        study.enqueue_trial({"optimizer": "adam", "lr": lr})
    run_search(plan_search(_config({"name": "evidence", "min_peers": 2})), n_trials=5, storage=url, study_name="s")
    trials = optuna.load_study(study_name="s", storage=url).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 5  # no sampled peer: no judgement
    dead = trials[-1]
    assert sorted(dead.intermediate_values) == [1, 2, 3, 4, 5]  # ran to its end
    assert dead.value > 1.5 * trials[0].value  # though it was clearly worse than the informed ones


def test_a_dead_trial_is_pruned_after_the_grace_period_once_sampled_peers_have_finished(tmp_path):
    url = f"sqlite:///{tmp_path}/sampled.db"
    plan = plan_search(_config({"name": "evidence", "min_peers": 2, "grace_steps": 2}))
    run_search(plan, n_trials=2, storage=url, study_name="s")  # two sampled trials (random LRs in the good range)
    optuna.load_study(study_name="s", storage=url).enqueue_trial({"optimizer": "adam", "lr": DEAD})
    run_search(plan, n_trials=1, storage=url, study_name="s")
    trials = optuna.load_study(study_name="s", storage=url).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED]
    assert sorted(trials[-1].intermediate_values) == [1, 2, 3]  # judged first at validation 3, and stopped there
    assert trials[-1].user_attrs["steps"] < trials[0].user_attrs["steps"]


def _peers(study: optuna.Study, curves: list[list[float]], enqueued: bool = False) -> None:
    for curve in curves:
        study.add_trial(create_trial(
            params={"x": 0.0}, distributions={"x": FloatDistribution(0, 1)}, value=curve[-1],
            intermediate_values=dict(enumerate(curve, start=1)),
            system_attrs={"fixed_params": {"x": 0.0}} if enqueued else {}))


def _stopped_at(pruner: EvidencePruner, study: optuna.Study, curve: list[float]) -> int | None:
    trial = study.ask()
    for step, value in enumerate(curve, start=1):
        trial.report(value, step)
        if pruner.prune(study, study._storage.get_trial(trial._trial_id)):
            return step
    return None


def test_the_grace_period_holds_and_only_sampled_peers_count():
    study = optuna.create_study()
    _peers(study, [[1.0, 0.5, 0.4, 0.4, 0.4]] * 3)
    _peers(study, [[1.0, 0.5, 0.4, 0.4, 0.4]] * 5, enqueued=True)  # informed trials: not peers
    dead = [2.0] * 5
    assert _stopped_at(EvidencePruner(min_peers=4), study, dead) is None  # three sampled peers only
    assert _stopped_at(EvidencePruner(min_peers=3, grace_steps=3), study, dead) == 4
    assert _stopped_at(EvidencePruner(min_peers=3, grace_steps=0), study, dead) == 1


def test_a_trial_behind_its_peers_by_less_than_the_validation_noise_runs_on():
    study = optuna.create_study()
    noisy = [[1.0, 0.6, 0.5, 0.6, 0.5, 0.6], [1.0, 0.6, 0.6, 0.5, 0.6, 0.5]] * 2  # +-0.1 between validations
    _peers(study, noisy)
    assert validation_noise(study.trials) == pytest.approx(0.1)
    assert _stopped_at(EvidencePruner(), study, [1.0, 0.65, 0.65, 0.65, 0.65, 0.65]) is None  # within the noise
    assert _stopped_at(EvidencePruner(), study, [1.0, 0.9, 0.9, 0.9, 0.9, 0.9]) == 2  # 0.3 behind: stopped


def test_arguments_out_of_range_are_refused():
    with pytest.raises(ValueError, match="min_peers must be >= 1, but got min_peers=0"):
        EvidencePruner(min_peers=0)
    with pytest.raises(ValueError, match="Percentile must be between 0 and 100"):
        EvidencePruner(percentile=120)
