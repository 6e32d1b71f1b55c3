"""Each monitor alone, logging through the Trainer, and the settings the remedies read."""

import csv
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from tests.callbacks.helpers import fit
from tunekit.callbacks import Diagnoser, DivergenceMonitor, GradNormMonitor, SaddleMonitor
from tunekit.examples import MLP, DigitsDataModule


def test_divergence_monitor_alone_stops_a_nan_run(tmp_path):
    monitor = DivergenceMonitor()
    trainer = fit(tmp_path, {"optimizer": "sgd", "lr": 50.0}, [monitor], epochs=10)
    assert monitor.stopped_at == trainer.global_step == monitor.recorder.first_nonfinite_step + 1
    assert [f.code.value for f in monitor.findings] == ["divergence"]


def test_divergence_monitor_can_train_on(tmp_path):
    monitor = DivergenceMonitor(check_finite=False)
    trainer = fit(tmp_path, {"optimizer": "sgd", "lr": 50.0}, [monitor], epochs=2)
    assert trainer.global_step == 46 and monitor.stopped_at is None


def test_monitors_log_through_the_trainers_logger(tmp_path):
    logger = CSVLogger(tmp_path, name="run")
    callbacks = [GradNormMonitor(), SaddleMonitor()]
    fit(tmp_path, {"hidden": (32, 32)}, callbacks, epochs=3, logger=logger, log_every_n_steps=5)
    with open(logger.log_dir + "/metrics.csv") as f:
        rows = list(csv.DictReader(f))
    columns = set(rows[0])
    assert {"tunekit/grad_norm", "tunekit/grad_norm/net.0", "tunekit/grad_norm/net.2", "tunekit/grad_norm/net.4",
            "tunekit/lr", "tunekit/update_ratio", "tunekit/saddle/grad_to_loss"} <= columns
    logged = [(int(r["step"]), float(r["tunekit/grad_norm"])) for r in rows if r["tunekit/grad_norm"]]
    assert [s for s, _ in logged] == list(range(4, 69, 5))  # every log_every_n_steps, as Lightning does
    (monitor,) = [cb for cb in callbacks if isinstance(cb, GradNormMonitor)]
    record = monitor.recorder.record()
    recorded = dict(zip(record.steps.tolist(), record.grad_norm.tolist(), strict=True))
    assert [v for _, v in logged] == pytest.approx([recorded[s] for s, _ in logged], rel=1e-6)  # the step's norm


class TwoGroups(MLP):
    """Two param groups with different LRs, as fine-tuning code often has."""

    def configure_optimizers(self) -> Any:
        first, rest = self.net[0].parameters(), [p for m in list(self.net)[1:] for p in m.parameters()]
        return torch.optim.AdamW([{"params": first, "lr": 1e-4}, {"params": rest}], lr=1e-3, weight_decay=0.05)


def test_context_reads_param_groups_accumulation_and_clipping(tmp_path):
    d = Diagnoser(verbose=False, save=False)
    pl.seed_everything(0)
    trainer = pl.Trainer(max_epochs=2, callbacks=[d], accumulate_grad_batches=2, gradient_clip_val=0.05,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(TwoGroups(), datamodule=DigitsDataModule(batch_size=32))
    ctx = d._context
    assert (ctx.optimizer, ctx.lrs, ctx.weight_decay) == ("adamw", (1e-4, 1e-3), 0.05)
    assert (ctx.gradient_clip_val, ctx.accumulate_grad_batches, ctx.batch_size) == (0.05, 2, 32)
    record = d.recorder.record()
    assert len(record) == trainer.global_step == 46  # one entry per optimizer step, not per micro-batch
    assert record.lr[0] == 1e-4
    assert np.median(record.grad_norm) > 0.05  # the norms are taken before clipping


def test_bf16_mixed_precision_gives_finite_norms(tmp_path):
    d = Diagnoser(verbose=False, save=False)
    fit(tmp_path, {"lr": 1e-3}, [d], epochs=2, precision="bf16-mixed")
    record = d.recorder.record()
    assert np.isfinite(record.grad_norm).all() and record.first_nonfinite_step is None
    assert d.diagnosis.is_healthy


def test_two_monitors_of_one_class_keep_their_own_state_and_the_signals_are_saved_once(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    from tunekit.callbacks import GeneralizationGapMonitor

    def trainer_with(monitors, epochs, **kwargs):
        return pl.Trainer(max_epochs=epochs, callbacks=[*monitors, ModelCheckpoint(dirpath=tmp_path, save_last=True)],
                          logger=CSVLogger(tmp_path), enable_progress_bar=False, enable_model_summary=False,
                          log_every_n_steps=5, **kwargs)

    a, b = GeneralizationGapMonitor(monitor="val_loss"), GeneralizationGapMonitor(monitor="val_acc")
    assert a.state_key != b.state_key
    pl.seed_everything(0)
    trainer_with([a, b], 2).fit(MLP(), datamodule=DigitsDataModule())
    states = torch.load(tmp_path / "last.ckpt", weights_only=False)["callbacks"]
    assert {a.state_key, b.state_key} <= set(states)
    assert sum("signals" in state for state in states.values()) == 1  # the shared signals, once
    assert "signals" in states[a.state_key] and "signals" not in states[b.state_key]  # a feeds them

    c, d = GeneralizationGapMonitor(monitor="val_loss"), GeneralizationGapMonitor(monitor="val_acc")
    pl.seed_everything(0)
    trainer_with([c, d], 3).fit(MLP(), datamodule=DigitsDataModule(), ckpt_path=tmp_path / "last.ckpt")
    record = c.recorder.record()
    assert record.steps.tolist() == list(range(69)) and len(record.val_loss) == 3  # continued across the resume
    assert d.recorder is c.recorder


def test_every_subscriber_hears_of_new_signals_from_the_one_that_feeds(tmp_path):
    class Counting(SaddleMonitor):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.heard = 0

        def on_signals(self, trainer, pl_module, *, nonfinite):
            super().on_signals(trainer, pl_module, nonfinite=nonfinite)
            self.heard += 1

    first, second = Counting(flush_every=8), Counting(flush_every=8, log_metrics=False)  # distinct state keys
    trainer = fit(tmp_path, {"lr": 1e-3}, [first, second], epochs=1)
    assert first.recorder is second.recorder and len(first.recorder.record()) == trainer.global_step == 23
    assert first.heard == second.heard == 2  # read-backs at steps 8 and 16 (the last 7 steps come at the end)
