"""Searching modules nobody here wrote, unchanged: Lightning's own demo models (BoringModel with its data module,
the demo transformer on local text in WikiText-2's file format)."""

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import yaml
from typer.testing import CliRunner

from tunekit.callbacks.adopt import optimizers_of
from tunekit.cli import app
from tunekit.config import load_config
from tunekit.lr_finder import lr_range_test
from tunekit.search import plan_search, run_search

BORING = "lightning.pytorch.demos.boring_classes"
TRANSFORMER = "lightning.pytorch.demos.transformer.LightningTransformer"
runner = CliRunner()


class OptimizerSeen(pl.Callback):
    """Notes the optimizer each trial's fit trains with (type and first group's LR and momentum)."""

    seen: list[tuple[str, float, float]] = []

    def on_train_start(self, trainer, pl_module):
        group = trainer.optimizers[0].param_groups[0]
        self.seen.append((type(trainer.optimizers[0]).__name__, group["lr"], group.get("momentum", -1.0)))


def _seen(trial, recipe):
    return [OptimizerSeen()], None


def _config(folder: Path, **sections) -> Path:
    path = folder / "train.yaml"
    path.write_text(yaml.safe_dump(sections))
    return path


BORING_BASE = {"model": {"class_path": f"{BORING}.BoringModel"}, "data": {"class_path": f"{BORING}.BoringDataModule"},
               "trainer": {"max_epochs": 1, "limit_train_batches": 16, "limit_val_batches": 2},
               "monitor": "tunekit/train_loss"}  # BoringModel logs nothing: tunekit scores its own training loss


def test_boring_model_keeps_its_sgd_and_gets_the_sampled_lr_and_momentum(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    OptimizerSeen.seen = []
    cfg = load_config(_config(tmp_path, **BORING_BASE, search={"lr": [1e-3, 2e-2], "momentum": [0.0, 0.9]}))
    plan = plan_search(cfg)
    assert not plan.uses_recipe and not plan.replace and "keeps its own optimizer" in plan.note
    result = run_search(plan, n_trials=3, storage=f"sqlite:///{tmp_path}/s.db", study_name="boring",
                        extra_callbacks=_seen)
    assert result.complete == 3 and result.own_optimizer
    assert set(result.best_recipe) == {"lr", "momentum"}
    assert [name for name, _, _ in OptimizerSeen.seen] == ["SGD"] * 3  # its own optimizer class
    assert len({lr for _, lr, _ in OptimizerSeen.seen}) == 3 and all(1e-3 <= lr <= 2e-2 for _, lr, _ in
                                                                      OptimizerSeen.seen)
    best = runner.invoke(app, ["best", "--storage", f"sqlite:///{tmp_path}/s.db", "--study-name", "boring"])
    printed = yaml.safe_load(best.stdout)["recipe"]
    assert set(printed) == {"lr", "momentum"} and "keep your optimizer" in best.stdout
    # the printed recipe goes back into the same config and is set on the module's own optimizer
    again = load_config(_config(tmp_path, **BORING_BASE, recipe=printed)).make_model()
    (optimizer,), (schedule,) = optimizers_of(again.configure_optimizers())  # BoringModel's SGD and StepLR
    assert isinstance(optimizer, torch.optim.SGD) and isinstance(schedule, torch.optim.lr_scheduler.StepLR)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(printed["lr"])


def test_searching_the_optimizer_replaces_configure_optimizers_as_lightningcli_does(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    OptimizerSeen.seen = []
    cfg = load_config(_config(tmp_path, **BORING_BASE, search={"optimizer": ["adamw"], "lr": [1e-3, 1e-2]}))
    plan = plan_search(cfg)
    assert plan.replace and "replaces its configure_optimizers" in plan.note
    result = run_search(plan, n_trials=2, storage=f"sqlite:///{tmp_path}/s.db", study_name="replace",
                        extra_callbacks=_seen)
    assert result.complete == 2 and not result.own_optimizer
    assert [name for name, _, _ in OptimizerSeen.seen] == ["AdamW", "AdamW"]


@pytest.fixture
def wikitext(tmp_path, monkeypatch):
    """Python's own documentation text (pydoc_data) in WikiText-2's file format, where the demo reads it."""
    from pydoc_data.topics import topics

    from lightning.pytorch.demos.transformer import WikiText2

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    text = "\n".join(" ".join(topics[k].split()) for k in sorted(topics)[:12])
    (tmp_path / "data" / "wikitext-2.txt").write_text(text + "\n")
    return WikiText2(Path("data"), download=False).vocab_size


def test_lightnings_demo_transformer_is_searched_and_range_tested_unchanged(tmp_path, wikitext):
    config = {"model": {"class_path": TRANSFORMER, "init_args": {"vocab_size": wikitext}},
              "trainer": {"max_steps": 10}, "monitor": "tunekit/train_loss"}  # no data: it brings its own loaders
    path = _config(tmp_path, **config, search={"lr": [0.05, 0.5], "momentum": [0.0, 0.9]})
    result = runner.invoke(app, ["search", str(path), "--n-trials", "2", "--json"])
    assert result.exit_code == 0, result.output
    assert '"complete": 2' in result.stdout
    cfg = load_config(path)
    model = cfg.make_model()
    found = lr_range_test(model, **cfg.range_test_data(model), min_lr=1e-4, max_lr=10.0, sweep_steps=30,
                          max_steps=150, monitor=cfg.monitor)
    assert found.suggestion is not None and found.scored_on == "train_loss"  # it logs no validation metric
    assert 1e-4 < found.suggestion < found.diverged_at
