"""LightningCLI configs read by Lightning's own parser: optimizer:/lr_scheduler: sections, a search in a second
file, --print-config, and the config's callbacks and logger made fresh for every trial."""

import json
import os
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from tests.search.fixtures import FitCounter
from tunekit.callbacks.adopt import optimizers_of
from tunekit.cli import app
from tunekit.config import load_config

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ROOT / "examples" / "train.yaml"  # a LightningCLI config, used unchanged
BORING = "lightning.pytorch.demos.boring_classes"
runner = CliRunner()


def _write(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def _search(tmp_path, *args):
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        return runner.invoke(app, ["search", *map(str, args)])
    finally:
        os.chdir(old)


def test_the_optimizer_and_lr_scheduler_sections_replace_configure_optimizers(tmp_path):
    cfg = load_config(_write(tmp_path / "c.yaml", {
        "model": {"class_path": f"{BORING}.BoringModel"},
        "optimizer": {"class_path": "torch.optim.Adam", "init_args": {"lr": 0.01}},
        "lr_scheduler": {"class_path": "torch.optim.lr_scheduler.ExponentialLR", "init_args": {"gamma": 0.9}}}))
    (optimizer,), (schedule,) = optimizers_of(cfg.make_model().configure_optimizers())
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.param_groups[0]["lr"] == 0.01
    assert isinstance(schedule, torch.optim.lr_scheduler.ExponentialLR) and schedule.gamma == 0.9


def test_a_lightningcli_config_is_searched_unchanged_with_the_search_in_a_second_file(tmp_path):
    search = _write(tmp_path / "search.yaml", "lr: [0.003, 0.03]\nmonitor: val_loss\n")
    result = _search(tmp_path, TRAIN, "--search", search, "--n-trials", "2", "--json",
                     "--storage", f"sqlite:///{tmp_path}/s.db")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["complete"] + data["pruned"] == 2 and 0.003 <= data["best_recipe"]["lr"] <= 0.03


def test_print_config_shows_every_default_and_tunekits_sections(tmp_path):
    search = _write(tmp_path / "search.yaml", {"search": {"lr": [0.003, 0.03]}})
    result = _search(tmp_path, TRAIN, "--search", search, "--print-config")
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.stdout)
    assert printed["model"]["class_path"] == "tunekit.examples.MLP" and printed["model"]["init_args"]["hidden"] == [64]
    assert printed["trainer"]["max_epochs"] == 5 and "accelerator" in printed["trainer"]  # defaults filled in
    assert printed["search"] == {"lr": [0.003, 0.03]} and printed["monitor"] == "val_loss"
    assert not (tmp_path / "tunekit.db").exists()  # printing starts nothing


@pytest.mark.parametrize(("content", "message"), [
    ("learning_rate: [0.1, 1.0]\n", "unknown recipe key 'learning_rate'"),
    ("search: {lr: [0.1, 1.0]}\nmodel: {}\n", "unknown key 'model'"),
    ("- lr\n", "must be a YAML mapping"),
])
def test_a_bad_search_file_is_one_line_exit_2(tmp_path, content, message):
    result = _search(tmp_path, TRAIN, "--search", _write(tmp_path / "s.yaml", content), "--n-trials", "1")
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert not (tmp_path / "tunekit.db").exists()


def test_the_configs_own_callbacks_and_logger_run_fresh_in_every_trial(tmp_path):
    FitCounter.fits = []
    config = yaml.safe_load(TRAIN.read_text())
    config["trainer"].update(max_epochs=1, callbacks=[{"class_path": "tests.search.fixtures.FitCounter"}],
                             logger={"class_path": "lightning.pytorch.loggers.CSVLogger",
                                     "init_args": {"save_dir": str(tmp_path / "logs")}})
    config["search"] = {"lr": [0.003, 0.03]}
    result = _search(tmp_path, _write(tmp_path / "c.yaml", config), "--n-trials", "2", "--json")
    assert result.exit_code == 0, result.output
    assert len(FitCounter.fits) == 2 and len(set(FitCounter.fits)) == 2  # one fresh instance per trial
    assert len(sorted((tmp_path / "logs").glob("lightning_logs/version_*/metrics.csv"))) == 2
