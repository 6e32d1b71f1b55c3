"""W&B in offline mode, read back with `wandb leet inspect`: a run's signals and findings, and a study."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lightning.pytorch.loggers import WandbLogger
from typer.testing import CliRunner

from tests.callbacks.helpers import fit
from tests.search.helpers import write_config
from tunekit.callbacks import Diagnoser
from tunekit.cli import app

WANDB = Path(sys.executable).with_name("wandb")


def inspect(run_dir: Path, summary: bool = True) -> dict | list:
    args = [str(WANDB), "leet", "inspect", *(["--summary"] if summary else []), "--json", str(run_dir)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True).stdout
    return json.loads(out) if summary else [json.loads(line) for line in out.splitlines() if line.strip()]


def table(run_dir: Path, entry: dict) -> tuple[list, list]:
    """A logged table's columns and rows, read from the file its summary entry points to."""
    assert entry["_type"] == "table-file"
    data = json.loads((run_dir / "files" / entry["path"]).read_text())
    return data["columns"], data["data"]


def runs(folder: Path) -> list[Path]:
    return sorted((folder / "wandb").glob("offline-run-*"))


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    return tmp_path


def test_a_run_with_a_wandb_logger_gets_signals_findings_table_and_summary(offline):
    logger = WandbLogger(save_dir=str(offline), project="tunekit-test", offline=True)
    d = Diagnoser(verbose=False, save=False)
    fit(offline, {"optimizer": "sgd", "lr": 50.0}, [d], epochs=3, logger=logger, log_every_n_steps=2)
    logger.experiment.finish()
    (run,) = runs(offline)
    summary = inspect(run)["summary"]
    assert summary["tunekit/finding_codes"] == ["divergence"] and summary["tunekit/healthy"] is False
    assert summary["tunekit/worst_severity"] == "critical" and summary["tunekit/first_remedy"].startswith("lower_lr")
    columns, rows = table(run, summary["tunekit/findings"])  # the findings table: one row per finding
    (top,) = d.diagnosis.findings
    lower = top.remedies[0]
    assert columns == ["step", "code", "severity", "message", "first remedy"]
    assert rows == [[d.recorder.first_nonfinite_step, "divergence", "critical", top.message,
                     f"lower_lr {{'lr': {lower.change['lr']}}}"]]
    assert summary["tunekit/grad_norm_per_layer_table"]["_type"] == "table-file"  # one chart, a line per layer
    for key in ("tunekit/grad_norm", "tunekit/lr", "tunekit/divergence/loss_ratio"):
        assert key in summary
    assert not any(k.startswith("tunekit/grad_norm/") for k in summary)  # no chart per layer
    history = [r for r in inspect(run, summary=False) if r.get("type") == "history" or "history" in r]
    assert any("tunekit/grad_norm" in json.dumps(r) for r in history)


def test_an_auto_remedied_run_gets_its_interventions_table_and_markers(offline):
    logger = WandbLogger(save_dir=str(offline), project="tunekit-test", offline=True)
    d = Diagnoser(verbose=False, save=False, auto_remedy=True)
    fit(offline, {"optimizer": "sgd", "lr": 50.0}, [d], epochs=2, logger=logger, log_every_n_steps=2)
    logger.experiment.finish()
    (run,) = runs(offline)
    summary = inspect(run)["summary"]
    columns, rows = table(run, summary["tunekit/interventions"])
    assert columns == ["step", "finding", "remedy", "change", "rolled back to"]
    assert rows == [[e.step, e.finding.value, e.remedy.value, str(dict(e.change)), e.evidence["rolled_back_to"]]
                    for e in d.interventions]
    assert [r[1:3] for r in rows] == [["divergence", "lower_lr"]] and rows[0][4] == 0
    history = [r for r in inspect(run, summary=False) if "tunekit/intervention" in json.dumps(r)]
    assert history  # the step's marker


class TeamLogger(WandbLogger):
    """A team's own WandbLogger subclass: it must get the W&B output too."""


def test_a_wandb_logger_subclass_gets_the_findings_table(offline):
    logger = TeamLogger(save_dir=str(offline), project="tunekit-test", offline=True)
    fit(offline, {"optimizer": "sgd", "lr": 50.0}, [Diagnoser(verbose=False, save=False)], epochs=2, logger=logger)
    logger.experiment.finish()
    (run,) = runs(offline)
    summary = inspect(run)["summary"]
    assert summary["tunekit/findings"]["_type"] == "table-file" and summary["tunekit/finding_codes"] == ["divergence"]


def test_search_with_wandb_logs_one_run_per_trial_and_a_study_run(offline):
    cfg = write_config(offline, search={"optimizer": "adamw", "lr": "auto", "weight_decay": [1e-6, 1e-2]})
    old = os.getcwd()
    os.chdir(offline)
    try:
        result = CliRunner().invoke(app, ["search", str(cfg), "--n-trials", "3", "--wandb", "--study-name", "w",
                                          "--json"])
    finally:
        os.chdir(old)
    assert result.exit_code == 0, result.output
    summaries = [inspect(r) for r in runs(offline)]
    trials = [s for s in summaries if s["summary"].get("trial") is not None]
    study = [s for s in summaries if "best_recipe" in s["summary"]]
    assert len(trials) == 3 and len(study) == 1 and len(summaries) == 4
    assert sorted(s["summary"]["trial"] for s in trials) == [0, 1, 2]
    for s in trials:
        assert s["summary"]["state"] in ("complete", "pruned")
        assert "tunekit/healthy" in s["summary"] and "tunekit/finding_codes" in s["summary"]
        assert s["config"]["recipe"]["optimizer"] == "adamw" and "lr" not in s["config"]  # the module's own lr
        assert s["config"]["model"]["hidden"] == [32]  # is under model:, the sampled one under recipe:
    best = study[0]["summary"]
    assert best["best_recipe"]["optimizer"] == "adamw" and best["complete"] + best["pruned"] == 3
    for key in ("tunekit/trials", "tunekit/param_importances_table", "tunekit/lr_range_test/adam_table"):
        assert key in best, sorted(best)
