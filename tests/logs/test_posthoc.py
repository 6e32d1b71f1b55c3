"""`tunekit diagnose PATH`: runs trained and logged without tunekit (CSVLogger, TensorBoard, W&B offline), read back
and diagnosed by the same rules."""

import csv
import json

import numpy as np
import pytest
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from typer.testing import CliRunner

from tests.logs.runs import train, train_step_and_epoch
from tunekit.cli import app
from tunekit.logs import Logged, from_logged, read_logged

runner = CliRunner()
DIVERGING_LR, FINE_LR = 2.0, 0.01
TOO_LOW_LR = 1e-5  # SGD on raw digits: after 3 epochs the loss is still falling steadily at half its start


def _diagnose(*args):
    result = runner.invoke(app, ["diagnose", *map(str, args), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def diverged(tmp_path_factory):
    folder = tmp_path_factory.mktemp("diverged")
    train(folder, DIVERGING_LR, [CSVLogger(folder, name="csv"), TensorBoardLogger(folder, name="tb")],
          log_grad_norm=True)
    return folder


def test_csv_and_tensorboard_logs_of_a_diverging_run_name_the_divergence(diverged):
    csv = _diagnose(diverged / "csv" / "version_0" / "metrics.csv")
    tensorboard = _diagnose(diverged / "tb")
    assert csv["findings"][0]["code"] == "divergence" and csv["findings"][0]["severity"] == "critical"
    assert tensorboard["findings"][0]["code"] == csv["findings"][0]["code"]
    assert tensorboard["findings"][0]["step"] == csv["findings"][0]["step"]
    assert csv["keys"] == {"loss": "train_loss", "grad_norm": "grad_2.0_norm_total", "lr": None, "val_loss": "val_loss"}
    # no LR was logged: the LR remedy is a factor of the run's own LR, not a made-up value
    lower = next(r for r in csv["findings"][0]["remedies"] if r["code"] == "lower_lr")
    assert "lr" not in lower["change"] and "x its value" in lower["message"]
    assert any("learning rate was not logged" in note for note in csv["undecided"])


def test_a_healthy_logged_run_raises_no_alarm_and_reads_the_logged_lr(tmp_path):
    train(tmp_path, FINE_LR, [CSVLogger(tmp_path, name="csv")], callbacks=[LearningRateMonitor()])
    plain = _diagnose(tmp_path / "csv")
    assert plain["keys"]["lr"] == "lr-SGD"
    assert not any("learning rate was not logged" in note for note in plain["undecided"])
    assert [f["severity"] for f in plain["findings"]] == ["info"] * len(plain["findings"])  # no warning, no critical
    assert any("exploding_gradients needs gradient norms" in note for note in plain["undecided"])
    assert any("per-layer gradient norms" in note for note in plain["undecided"])


def test_a_wandb_offline_run_directory_is_read_with_wandbs_own_reader(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from lightning.pytorch.loggers import WandbLogger

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    logger = WandbLogger(project="posthoc", save_dir=str(tmp_path), offline=True)
    train(tmp_path, DIVERGING_LR, [logger], epochs=2)
    import wandb

    wandb.finish()
    data = _diagnose(tmp_path / "wandb")  # the wandb folder: its latest run
    assert data["findings"][0]["code"] == "divergence"
    # neither the LR nor a gradient norm was logged: no value for either is made up, the remedy says what to log
    assert data["keys"]["lr"] is None and data["keys"]["grad_norm"] is None
    clip = next(r for r in data["findings"][0]["remedies"] if r["code"] == "clip_gradients")
    assert clip["change"] == {} and "gradient norm was not logged" in clip["message"]
    assert "lr" not in data["findings"][0]["evidence"] and " nan" not in data["findings"][0]["message"]
    text = runner.invoke(app, ["diagnose", str(tmp_path / "wandb")]).stdout  # the table: a remedy without a change
    assert "(see message)" not in text and "clip_gradients: Clip" in text  # shows its message


def test_the_result_feeds_tunekit_report(diverged, tmp_path):
    out = tmp_path / "diag"
    _diagnose(diverged / "tb", "--out", out)
    assert json.loads((out / "diagnosis.json").read_text())["findings"][0]["code"] == "divergence"
    result = runner.invoke(app, ["report", str(out / "diagnosis.json"), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    assert "divergence" in (tmp_path / "r.html").read_text()


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: d / "nowhere", "does not exist"),
    (lambda d: _write(d / "metrics.csv", "step,val_acc\n0,0.5\n1,0.6\n"), "no training loss among the logged series"),
    (lambda d: _write(d / "notes.txt", "hello"), "is not a log tunekit reads"),
    (lambda d: d, "no log in"),
])
def test_bad_paths_and_files_without_a_loss_are_one_line_exit_2(tmp_path, make, message):
    result = runner.invoke(app, ["diagnose", str(make(tmp_path))])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr


def test_a_key_that_was_not_logged_is_named(diverged):
    result = runner.invoke(app, ["diagnose", str(diverged / "tb"), "--loss", "trian_loss"])
    assert result.exit_code == 2 and "no series 'trian_loss'" in result.stderr


def test_a_misspelt_optimizer_is_one_line_exit_2_and_a_torch_class_name_is_taken(diverged):
    result = runner.invoke(app, ["diagnose", str(diverged / "tb"), "--optimizer", "adamm"])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "--optimizer 'adamm' is not an optimizer" in lines[0]
    assert "adamw" in lines[0] and "adamax" in lines[0]  # the recipe's names and torch's classes
    result = runner.invoke(app, ["diagnose", str(diverged / "tb"), "--optimizer", "Adamax", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["optimizer"] == "adamax"


def _write(path, text):
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def step_and_epoch(tmp_path_factory):
    """An overfitting Adam run logged by Lightning's defaults: train_loss_step every 50 steps, train_loss_epoch
    every epoch (4 steps), lr-Adam and lr-Adam-momentum from a LearningRateMonitor; CSV and TensorBoard."""
    folder = tmp_path_factory.mktemp("step_and_epoch")
    train_step_and_epoch(folder, [CSVLogger(folder, name="csv"), TensorBoardLogger(folder, name="tb")])
    return folder


def _rows(folder):
    with (folder / "csv" / "version_0" / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("logger", ["csv", "tb"])
def test_the_series_that_says_most_is_read_and_the_optimizer_is_the_logged_one(step_and_epoch, logger):
    rows = _rows(step_and_epoch)
    val = [(float(r["val_loss"]), int(r["step"])) for r in rows if r["val_loss"]]
    best_step = min(val)[1]  # where the validation loss was lowest, read from the file itself
    data = _diagnose(step_and_epoch / logger)
    assert data["keys"] == {"loss": "train_loss_epoch", "grad_norm": None, "lr": "lr-Adam", "val_loss": "val_loss"}
    assert data["optimizer"] == "adam"
    top = data["findings"][0]
    assert (top["code"], top["severity"], top["step"]) == ("generalization_gap", "warning", best_step)
    assert [(r["code"], r["change"]) for r in top["remedies"]] == [
        ("early_stop", {"max_steps": best_step}), ("add_weight_decay", {"optimizer": "adamw", "weight_decay": 0.01}),
        ("switch_to_sgd", {"switch_to_sgd_at": 0.8, "momentum": 0.9})]


def test_the_initial_loss_is_read_at_the_first_logged_step(step_and_epoch):
    rows = _rows(step_and_epoch)
    first = next(r for r in rows if r["train_loss_epoch"])  # the first epoch's mean, logged at its last step
    run = from_logged(read_logged(step_and_epoch / "csv"))
    assert run.record.initial_loss == pytest.approx(float(first["train_loss_epoch"]))
    assert run.context.beta1 == pytest.approx(0.9) and run.context.lr == pytest.approx(3e-3)
    assert any(f"first logged at step {first['step']}" in note for note in run.undecided)


def test_a_ratio_in_the_ten_to_the_27_is_written_as_a_person_would():
    logged = Logged("hand-made")
    loss = [0.5] * 5 + [1e27] * 20  # finite, but 2e27 times the start: a blow-up the rules word as a ratio
    logged.add("train_loss", list(range(len(loss))), loss)
    message = from_logged(logged).diagnose().findings[0].message
    assert "2e+27x its initial 0.5" in message, message


def test_a_too_low_lr_logged_every_step_is_called_slow_as_the_live_diagnoser_does(tmp_path):
    from tunekit.callbacks import Diagnoser

    live = Diagnoser(probes=False, save=False, verbose=False)
    train(tmp_path / "live", TOO_LOW_LR, [], callbacks=[live])
    train(tmp_path, TOO_LOW_LR, [CSVLogger(tmp_path, name="csv")], log_grad_norm=True,
          callbacks=[LearningRateMonitor()])
    data = _diagnose(tmp_path / "csv")
    assert live.diagnosis.codes == ["slow_convergence"]
    assert [f["code"] for f in data["findings"]] == ["slow_convergence"]
    # no update ratio was logged: the rule's blind factor of 10 on the logged LR (not on a made-up one)
    raise_lr = data["findings"][0]["remedies"][0]
    assert raise_lr["code"] == "raise_lr" and raise_lr["change"] == {"lr": pytest.approx(10 * TOO_LOW_LR)}
    assert data["findings"][0]["evidence"]["lr"] == pytest.approx(TOO_LOW_LR)
    assert not np.isnan(data["findings"][0]["evidence"]["initial_loss"])
