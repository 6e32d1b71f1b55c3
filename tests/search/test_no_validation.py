"""A search on a validation metric whose validation never runs: told why, in one line, before any trial where the
config says so, else after the first trial."""

import pytest
from typer.testing import CliRunner

from tests.search.helpers import write_config
from tunekit.cli import app

runner = CliRunner()

NEVER = [
    ("every_n_epoch", {"trainer": {"max_epochs": 2, "check_val_every_n_epoch": 5, "limit_train_batches": 4}},
     "trainer.check_val_every_n_epoch is 5, beyond max_epochs 2 (lower it, or raise max_epochs)"),
    ("limit_zero", {"trainer": {"max_epochs": 1, "limit_val_batches": 0, "limit_train_batches": 4}},
     "trainer.limit_val_batches is 0"),
    ("no_loader", {"data": {"class_path": "tests.search.fixtures.NoValData"}},
     "neither NoValData nor MLP defines val_dataloader (add one)"),
    ("no_step", {"model": {"class_path": "tests.search.fixtures.NoRecipeModel"}, "search": {"lr": [0.01, 0.1]}},
     "NoRecipeModel defines no validation_step"),
]


@pytest.mark.parametrize(("case", "change", "why"), NEVER, ids=[n[0] for n in NEVER])
def test_known_from_the_config_it_is_one_line_before_any_trial(tmp_path, monkeypatch, case, change, why):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["search", str(write_config(tmp_path, **change)), "--n-trials", "3"])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: monitor 'val_loss' is logged by validation, which never runs: ") and why in line
    assert not (tmp_path / "tunekit.db").exists()


def test_otherwise_the_first_trial_says_validation_never_ran_and_why(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # an empty validation split: only the fit can tell
    result = runner.invoke(app, ["search", str(write_config(tmp_path, data={
        "class_path": "tests.search.fixtures.EmptyValData"}, trainer={"max_epochs": 1, "limit_train_batches": 4})),
        "--n-trials", "3"])
    assert result.exit_code == 2, result.output
    last = result.stderr.splitlines()[-1]
    assert last.startswith("error: monitor 'val_loss' was never logged in the first trial: validation never ran "
                           "(the validation loader yielded no batch); logged: ")
    assert not (tmp_path / "tunekit.db").exists()  # the study it created is removed


def test_a_training_metric_is_searched_without_validation(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = write_config(tmp_path, monitor="train_loss", data={"class_path": "tests.search.fixtures.NoValData"},
                       trainer={"max_epochs": 1, "limit_train_batches": 4})
    result = runner.invoke(app, ["search", str(cfg), "--n-trials", "1", "--json"])
    assert result.exit_code == 0, result.output
