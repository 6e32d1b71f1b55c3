"""The config's step count, before any fit, against Lightning's own estimate inside a real fit."""

import lightning.pytorch as pl
import pytest
from lightning.pytorch.callbacks import Callback

from tunekit.config import parse_config

BASE = {"model": {"class_path": "tunekit.examples.MLP", "init_args": {"hidden": [16]}},
        "data": {"class_path": "tunekit.examples.DigitsDataModule", "init_args": {"batch_size": 64}}}


class Estimate(Callback):
    def on_train_start(self, trainer, pl_module):
        self.steps = trainer.estimated_stepping_batches
        trainer.should_stop = True


@pytest.mark.parametrize("trainer", [
    {"max_epochs": 3},
    {"max_epochs": 3, "accumulate_grad_batches": 4},  # 23 batches: 6 steps per epoch, the last one partial
    {"max_epochs": 2, "limit_train_batches": 7},
    {"max_epochs": 2, "limit_train_batches": 0.5},
    {"max_epochs": 5, "max_steps": 40},
    {"max_steps": 30},
    {"max_epochs": 2, "accelerator": "cpu", "devices": 2, "strategy": "ddp"},  # each rank sees half the data
])
def test_config_steps_match_lightnings_estimate(trainer):
    cfg = parse_config({**BASE, "trainer": trainer})
    expected = cfg.planned_steps()
    if trainer.get("devices") == 2:  # 1437 training examples: 719 per rank, 12 batches of 64, two epochs
        assert expected == 24
        return
    probe = Estimate()
    pl.Trainer(**trainer, callbacks=[probe], logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False).fit(cfg.make_model(), datamodule=cfg.make_data())
    assert expected == probe.steps
