"""CurvatureMonitor in real fits: it logs the curvature, sees the saddle of a deep linear net, follows Adam's
preconditioned sharpness, and leaves the run's trajectory exactly as it was."""

import csv
import math
import statistics

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from tunekit.callbacks import CurvatureMonitor
from tunekit.examples import MLP, DigitsDataModule
from tunekit.exceptions import ConfigError

SADDLE = {"hidden": (32,) * 6, "activation": "identity", "init_std": 0.05, "optimizer": "sgd", "lr": 0.05}


def _fit(tmp_path, model_kwargs, callbacks, epochs=2):
    pl.seed_everything(0, verbose=False)
    model = MLP(**model_kwargs)
    trainer = pl.Trainer(max_epochs=epochs, callbacks=callbacks, logger=CSVLogger(tmp_path), enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, datamodule=DigitsDataModule())
    return model, trainer


def _logged(trainer, key):
    with open(f"{trainer.logger.log_dir}/metrics.csv") as f:
        return [float(row[key]) for row in csv.DictReader(f) if row.get(key)]


def test_a_deep_linear_net_from_a_small_init_shows_negative_curvature_and_the_run_is_unchanged(tmp_path):
    monitor = CurvatureMonitor(every_n_steps=10, max_hvps=10)
    watched, trainer = _fit(tmp_path / "on", SADDLE, [monitor])
    alone, _ = _fit(tmp_path / "off", SADDLE, [])
    for a, b in zip(watched.parameters(), alone.parameters(), strict=True):
        assert torch.equal(a, b)
    steps = trainer.global_step
    assert [h["step"] for h in monitor.history] == list(range(10, steps + 1, 10))
    assert monitor.history[0]["min_eigenvalue"] < -0.1 * monitor.history[0]["sharpness"] < 0  # a saddle
    bottoms = _logged(trainer, "tunekit/min_eigenvalue")
    assert len(bottoms) == len(monitor.history) and bottoms[0] == pytest.approx(monitor.history[0]["min_eigenvalue"])
    assert _logged(trainer, "tunekit/sharpness_x_lr")[0] == pytest.approx(monitor.history[0]["sharpness"] * 0.05)
    assert monitor.hvps == sum(h["hvps"] for h in monitor.history) >= 2 * len(monitor.history)
    assert monitor.cost_in_steps == pytest.approx(monitor.seconds / statistics.median(monitor._clock.seconds))
    assert len(monitor._clock.seconds) == steps and math.isfinite(monitor.cost_in_steps)


def test_adam_runs_also_log_the_preconditioned_sharpness(tmp_path):
    monitor = CurvatureMonitor(every_n_steps=20, max_hvps=8)
    _, trainer = _fit(tmp_path, {"optimizer": "adam", "lr": 3e-3}, [monitor], epochs=1)
    adam = _logged(trainer, "tunekit/adam_sharpness")
    assert adam and all(v > 0 for v in adam)
    assert "adam_sharpness_x_lr" in monitor.history[-1] and "tunekit/adam_sharpness_x_lr" in trainer.callback_metrics


@pytest.mark.parametrize(("kwargs", "match"), [({"every_n_steps": 0}, "every_n_steps must be >= 1"),
                                               ({"max_hvps": 1}, "max_hvps must be >= 2")])
def test_bad_arguments_are_one_line_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        CurvatureMonitor(**kwargs)
