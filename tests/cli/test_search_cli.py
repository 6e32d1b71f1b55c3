"""`tunekit search` / `tunekit best` from the command line: output, exit codes, and bad input."""

import json

import pytest
import yaml
from typer.testing import CliRunner

from tests.cli.helpers import run_in
from tests.search.helpers import write_config

runner = CliRunner()


def test_search_prints_json_and_best_prints_yaml(tmp_path):
    cfg = write_config(tmp_path)
    result = run_in(tmp_path, ["search", str(cfg), "--n-trials", "3", "--json", "--study-name", "demo"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["study_name"] == "demo" and data["complete"] + data["pruned"] == 3
    assert (tmp_path / "tunekit.db").exists()  # the default embedded storage, in the working directory
    best = run_in(tmp_path, ["best", "--study-name", "demo"])
    assert best.exit_code == 0
    recipe = yaml.safe_load(best.stdout)["recipe"]
    assert recipe["optimizer"] == data["best_recipe"]["optimizer"]
    assert recipe["lr"] == pytest.approx(data["best_recipe"]["lr"], rel=1e-3)


BAD = [
    ("missing", None, "does not exist"),
    ("directory", None, "is not a file"),
    ("yaml", "model: [unclosed\n", "is not valid YAML at line"),
    ("class", {"model": {"class_path": "tunekit.examples.Nope"}}, "module 'tunekit.examples' has no 'Nope'"),
    ("module", {"model": {"class_path": "no_such_pkg.Model"}}, "cannot import module 'no_such_pkg'"),
    ("not_module", {"model": {"class_path": "collections.OrderedDict"}}, "is not a LightningModule subclass"),
    ("not_data", {"data": {"class_path": "tunekit.examples.MLP"}}, "is not a LightningDataModule subclass"),
    ("no_batch", {"data": {"class_path": "tests.search.fixtures.FixedBatchData"}}, "takes no batch_size argument"),
    ("own_optimizer",
     {"model": {"class_path": "tests.search.fixtures.NoRecipeModel"}, "search": {"schedule": ["cosine"]}},
     "search: schedule needs an optimizer: in search:"),
    ("type", {"model": {"class_path": "tunekit.examples.MLP", "init_args": {"dropout": "high"}}},
     "model.init_args.dropout: expected float, but got 'high'"),
    ("trainer_type", {"trainer": {"max_epochs": "many"}}, "trainer.max_epochs"),
    ("empty", {"search": {"weight_decay": []}}, "an empty list leaves nothing to search"),
    ("inverted", {"search": {"lr": [0.1, 0.001]}}, r"the range [0.1, 0.001] is empty or inverted"),
    ("negative", {"search": {"lr": -0.1}}, "lr must be > 0, but got lr=-0.1"),
    ("unknown_key", {"search": {"learning_rate": [0.1, 1.0]}}, "unknown recipe key 'learning_rate'"),
    ("bad_beta", {"search": {"beta1": [0.5, 1.2]}}, r"beta1 must be in [0, 1)"),
    ("init_arg", {"model": {"class_path": "tunekit.examples.MLP", "init_args": {"hiden": [3]}}},
     "MLP takes no argument 'hiden'"),
    ("monitor", {"monitor": "val_los", "direction": "minimize"},
     "monitor 'val_los' was never logged in the first trial"),
    ("direction", {"monitor": "hp_metric"}, "cannot tell from its name whether monitor 'hp_metric' is to be minimized"),
    ("direction_both", {"monitor": "val_loss_acc"}, "names both a score (acc) and a loss (loss)"),
]


@pytest.mark.parametrize(("case", "change", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_gets_one_line_exit_2_and_nothing_written(tmp_path, case, change, message):
    if case == "missing":
        path = tmp_path / "nowhere.yaml"
    elif case == "directory":
        path = tmp_path / "a_dir"
        path.mkdir()
    elif case == "yaml":
        path = tmp_path / "bad.yaml"
        path.write_text(change)
    else:
        path = write_config(tmp_path, **change)
    result = run_in(tmp_path, ["search", str(path), "--n-trials", "2"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "tunekit.db").exists()


def test_unreachable_storage_is_one_line_and_hides_the_password(tmp_path):
    cfg = write_config(tmp_path)
    url = "postgresql://tuner:s3cret-pw@127.0.0.1:1/nowhere"
    result = run_in(tmp_path, ["search", str(cfg), "--n-trials", "1", "--storage", url])
    assert result.exit_code == 2
    assert "cannot open storage postgresql://tuner:***@127.0.0.1:1/nowhere" in result.stderr
    assert "s3cret" not in result.output


def test_search_needs_a_stopping_rule(tmp_path):
    result = run_in(tmp_path, ["search", str(write_config(tmp_path))])
    assert result.exit_code == 2 and "give --n-trials N or --timeout" in result.stderr


def test_best_of_a_missing_study_names_the_ones_there(tmp_path):
    run_in(tmp_path, ["search", str(write_config(tmp_path)), "--n-trials", "1", "--study-name", "one"])
    result = run_in(tmp_path, ["best", "--study-name", "two"])
    assert result.exit_code == 2 and "no study 'two'" in result.stderr and "studies there: one" in result.stderr


@pytest.mark.parametrize("command", [["best"], ["report", "-o", "out.html"]])
def test_reading_a_missing_storage_creates_nothing(tmp_path, command):
    result = run_in(tmp_path, [*command, "--storage", "sqlite:///missing.db", "--study-name", "s"])
    assert result.exit_code == 2 and "no study storage at sqlite:///missing.db" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no empty missing.db, no half-written report


def test_a_search_accepts_the_config_the_tests_are_built_on(tmp_path):
    # BASE is the config every other test here edits: it must stay a valid search on its own
    result = run_in(tmp_path, ["search", str(write_config(tmp_path)), "--n-trials", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["complete"] == 1


def test_lr_find_prints_a_suggestion_and_saves_the_plot(tmp_path):
    cfg = write_config(tmp_path)
    plot = tmp_path / "lr.png"
    result = run_in(tmp_path, ["lr-find", str(cfg), "--plot", str(plot), "--json", "--max-steps", "150"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["suggestion"] > 0 and data["steps"] <= 150 and data["plot"] == str(plot)
    assert plot.stat().st_size > 10_000
    missing = run_in(tmp_path, ["lr-find", str(tmp_path / "none.yaml")])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
