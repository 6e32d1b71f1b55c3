"""`tunekit diagnose PATH`: runs trained and logged without tunekit (CSVLogger, TensorBoard, W&B offline), read back
and diagnosed by the same rules."""

import json

import pytest
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from typer.testing import CliRunner

from tests.logs.runs import train
from tunekit.cli import app

runner = CliRunner()
DIVERGING_LR, FINE_LR = 2.0, 0.01


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
    assert all(f["severity"] != "critical" for f in plain["findings"])
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


def _write(path, text):
    path.write_text(text)
    return path
