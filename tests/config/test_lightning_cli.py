"""The LightningCLI fragments in callbacks/: tunekit added to a plain LightningCLI script (examples/train.py) from the
command line, with no code change; every tunekit callback's arguments readable by jsonargparse."""

import importlib.util
import inspect
import json
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

import tunekit.callbacks
from tests.dashboards.test_wandb import inspect as wandb_inspect
from tunekit.callbacks import LRRangeTest, SwitchToSGD

ROOT = Path(__file__).resolve().parents[2]
FRAGMENTS = ROOT / "callbacks"
BORING = "lightning.pytorch.demos.boring_classes"


def _train_script():
    spec = importlib.util.spec_from_file_location("tunekit_example_train", ROOT / "examples" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _script_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["train.py"])  # as if run from a shell (LightningCLI reads args= instead)


def _fit(tmp_path, *args):
    return _train_script().main(["fit", *args, "--trainer.default_root_dir", str(tmp_path),
                                 "--trainer.enable_model_summary", "false"])


def test_the_diagnose_fragment_writes_diagnosis_json(tmp_path):
    cli = _fit(tmp_path, "--config", str(FRAGMENTS / "diagnose.yaml"), "--trainer.max_epochs", "2")
    (path,) = tmp_path.glob("lightning_logs/version_0/tunekit/diagnosis.json")
    saved = json.loads(path.read_text())
    # Lightning's demo model trains healthily for two epochs: a diagnosis with no warning, written in full
    (diagnoser,) = [cb for cb in cli.trainer.callbacks if type(cb).__name__ == "Diagnoser"]
    assert saved == json.loads(json.dumps(diagnoser.diagnosis.to_dict()))
    assert [f["severity"] for f in saved["findings"]] == ["info"] * len(saved["findings"])


def test_a_fragment_adds_to_the_configs_own_callbacks(tmp_path):
    own = tmp_path / "train.yaml"
    own.write_text("trainer:\n  callbacks:\n    - class_path: lightning.pytorch.callbacks.LearningRateMonitor\n")
    cli = _fit(tmp_path, "--config", str(own), "--config", str(FRAGMENTS / "diagnose.yaml"), "--trainer.max_epochs",
               "1")
    names = [type(cb).__name__ for cb in cli.trainer.callbacks]
    assert "LearningRateMonitor" in names and "Diagnoser" in names


def test_lightnings_boring_model_is_diagnosed_unchanged(tmp_path):
    # BoringModel trains with SGD at lr 0.1 on batches of one 32-dim Gaussian vector: the curvature of its squared
    # loss is |x|^2 ~ 32, so 0.1 is past the 2/32 stability edge and it really diverges
    _fit(tmp_path, "--model", f"{BORING}.BoringModel", "--data", f"{BORING}.BoringDataModule",
               "--config", str(FRAGMENTS / "diagnose.yaml"), "--trainer.max_epochs", "1")
    (path,) = tmp_path.glob("lightning_logs/version_0/tunekit/diagnosis.json")
    top = json.loads(path.read_text())["findings"][0]
    assert (top["code"], top["severity"]) == ("divergence", "critical")
    assert next(r for r in top["remedies"] if r["code"] == "lower_lr")["change"]["lr"] < 0.1


def test_the_lr_range_test_fragment_trains_with_its_suggestion(tmp_path):
    cli = _fit(tmp_path, "--config", str(FRAGMENTS / "lr_range_test.yaml"), "--trainer.max_epochs", "1")
    (finder,) = [cb for cb in cli.trainer.callbacks if isinstance(cb, LRRangeTest)]
    assert finder.result.suggestion is not None
    assert cli.model.recipe.lr == pytest.approx(finder.result.suggestion)
    assert 0 < finder.result.steps <= finder.kwargs["max_steps"]


def test_the_two_stage_fragment_ends_on_sgd(tmp_path):
    cli = _fit(tmp_path, "--config", str(FRAGMENTS / "two_stage.yaml"), "--trainer.max_epochs", "2")
    assert isinstance(cli.trainer.optimizers[0], torch.optim.SGD)
    (switch,) = [cb for cb in cli.trainer.callbacks if isinstance(cb, SwitchToSGD)]
    assert switch.at == 0.8


def test_the_wandb_fragment_logs_the_diagnosis_to_an_offline_run(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    cli = _fit(tmp_path, "--config", str(FRAGMENTS / "diagnose_wandb.yaml"), "--trainer.max_epochs", "1",
               "--trainer.logger.init_args.save_dir", str(tmp_path))
    cli.trainer.logger.experiment.finish()
    (run,) = sorted((tmp_path / "wandb").glob("offline-run-*"))
    assert "tunekit/healthy" in wandb_inspect(run)["summary"]


CALLBACKS = [getattr(tunekit.callbacks, name) for name in tunekit.callbacks.__all__
             if inspect.isclass(getattr(tunekit.callbacks, name))
             and issubclass(getattr(tunekit.callbacks, name), pl.Callback)]


@pytest.mark.parametrize("cls", CALLBACKS, ids=[c.__name__ for c in CALLBACKS])
def test_every_tunekit_callback_has_arguments_jsonargparse_can_read(cls):
    from jsonargparse import ArgumentParser

    params = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"]
    assert all(p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in params), cls
    assert all(p.annotation is not inspect.Parameter.empty for p in params), cls
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(cls, "callback")
    instance = parser.instantiate_classes(parser.parse_object({}))["callback"]
    assert isinstance(instance, cls)
