"""A user's module with several optimizers (an SGD body and an Adam head): searched with their LRs kept in ratio,
or refused in one line before a study is written."""

import optuna
import pytest
from typer.testing import CliRunner

from tests.search.fixtures import LRsSeen
from tests.search.helpers import write_config
from tunekit.cli import app
from tunekit.config import load_config
from tunekit.search import plan_search, run_search

runner = CliRunner()
BODY_HEAD = {"class_path": "tests.search.fixtures.BodyHead"}


def _seen(trial, recipe):
    return [LRsSeen()], None


def test_each_optimizer_keeps_its_own_lr_scaled_by_the_sampled_factor(tmp_path):
    LRsSeen.seen = []
    cfg = load_config(write_config(tmp_path, model=BODY_HEAD, search={"lr": [1e-3, 1e-1], "momentum": [0.5, 0.95]}))
    result = run_search(plan_search(cfg), n_trials=3, storage=f"sqlite:///{tmp_path}/s.db", study_name="bh",
                        extra_callbacks=_seen)
    assert result.complete + result.pruned == 3 and result.failed == 0
    trials = optuna.load_study(study_name="bh", storage=f"sqlite:///{tmp_path}/s.db").trials
    for trial, ((body,), (head,)) in zip(trials, LRsSeen.seen, strict=True):
        factor = trial.params["lr"] / 0.05  # the sampled LR is the first optimizer's; the factor moves both
        assert body == pytest.approx(trial.params["lr"]) and head == pytest.approx(1e-3 * factor)


def _refused(tmp_path, notes: bool = False, **changes):
    """The one error line of a search that must be refused; ``notes``: the search printed its notes before it."""
    result = runner.invoke(app, ["search", str(write_config(tmp_path, **changes)), "--n-trials", "2", "--storage",
                                 f"sqlite:///{tmp_path}/s.db"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert (notes or len(lines) == 1) and lines[-1].startswith("error: ") and "Traceback" not in result.output
    assert sum(line.startswith("error") for line in lines) == 1
    assert not (tmp_path / "s.db").exists()  # nothing written: no study, not even an empty file
    return lines[-1]


REFUSALS = [
    ("automatic", {"class_path": "tests.search.fixtures.BodyHead", "init_args": {"manual": False}},
     {"lr": [1e-3, 1e-1]},
     "BodyHead.configure_optimizers returns 2 optimizers, which Lightning trains only with manual optimization"),
    ("lr_auto", BODY_HEAD, {"lr": "auto"}, "lr: auto runs the LR range test, which drives one optimizer, but BodyHead"),
    ("optimizer", BODY_HEAD, {"optimizer": ["adamw", "sgd"], "lr": [1e-3, 1e-1]},
     "search: optimizer: would replace BodyHead's 2 optimizers by one"),
]


@pytest.mark.parametrize(("case", "model", "search", "message"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_what_cannot_work_is_refused_before_a_study_is_written(tmp_path, case, model, search, message):
    assert message in _refused(tmp_path, model=model, search=search)


def test_optimizers_built_from_the_trainer_are_refused_after_the_first_trial_and_the_study_removed(tmp_path):
    # they cannot be counted before a fit: counted when the first trial's fit asks for them, the same one line
    # after the search's two notes (the direction, the module's own optimizers), and the study it created removed
    line = _refused(tmp_path, notes=True, model={"class_path": "tests.search.fixtures.BodyHead",
                                                 "init_args": {"manual": False, "late": True}},
                    search={"lr": [1e-3, 1e-1]})
    assert line.startswith("error: BodyHead.configure_optimizers returns 2 optimizers, which Lightning trains only")


def test_lr_auto_on_optimizers_built_from_the_trainer_is_refused_and_the_empty_study_removed(tmp_path):
    late = {"class_path": "tests.search.fixtures.BodyHead", "init_args": {"late": True}}  # manual, 2 optimizers
    line = _refused(tmp_path, notes=True, model=late, search={"lr": "auto"})
    assert line.startswith("error: search: lr: auto: the LR range test cannot run on BodyHead: the LR range test "
                           "needs one optimizer, but the module configured 2.")
