"""Settings that hold a run back while its learning rate is fine, on real fits (an MLP on digits, SGD at a good LR):
each gets its own remedy first, with the value computed from the run, the remedy refit does better than the run it
fixes, and the same fit without the fault does not get that remedy."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import numpy as np
import pytest

from tunekit import Recipe
from tunekit.callbacks import Diagnoser
from tunekit.diagnose._stats import nice, recent_window
from tunekit.examples import MLP, DigitsDataModule

pytestmark = pytest.mark.slow

SGD = {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9}
EPOCHS = 6  # 6 x 45 steps of 32 digits


def _fit(tmp_path, recipe: dict, clip: float | None = None, diagnose: bool = True) -> tuple[float, Diagnoser]:
    pl.seed_everything(0, verbose=False)
    diagnoser = Diagnoser(verbose=False, save=False)
    model = MLP(hidden=(64,))
    model.recipe = Recipe.from_dict(recipe)
    trainer = pl.Trainer(max_epochs=EPOCHS, callbacks=[diagnoser] if diagnose else [], gradient_clip_val=clip,
                         default_root_dir=tmp_path, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, datamodule=DigitsDataModule(seed=0))
    return float(trainer.callback_metrics["val_loss"]), diagnoser


def _codes(diagnoser: Diagnoser) -> set[str]:
    return {r.code.value for f in diagnoser.diagnosis.findings for r in f.remedies}


def _top(diagnoser: Diagnoser):
    return next(f for f in diagnoser.diagnosis.findings if f.severity.value != "info")


def test_clipping_far_below_the_gradient_norm_gets_loosened_to_twice_the_measured_norm(tmp_path):
    broken, d = _fit(tmp_path, SGD, clip=0.003)
    top = _top(d)
    assert top.code.value in ("slow_convergence", "plateau")
    record = d.recorder.record()
    n = recent_window(len(record), 0.3, 40, 1000)
    norm = float(np.median(record.grad_norm[-n:]))  # recorded before clipping
    assert norm > 30 * 0.003
    first = top.remedies[0]
    assert (first.code.value, dict(first.change)) == ("loosen_clipping", {"gradient_clip_val": nice(2 * norm)})
    fixed, _ = _fit(tmp_path, SGD, clip=first.change["gradient_clip_val"], diagnose=False)
    assert fixed < 0.5 * broken
    _, control = _fit(tmp_path, SGD)
    assert "loosen_clipping" not in _codes(control)
    assert math.isfinite(fixed)


def test_weight_decay_far_too_strong_gets_lowered_to_the_usual_value(tmp_path):
    broken, d = _fit(tmp_path, {**SGD, "weight_decay": 0.3})  # shrinks the weights 15% per step on its own
    top = _top(d)
    assert top.code.value in ("slow_convergence", "plateau")
    first = top.remedies[0]
    assert (first.code.value, dict(first.change)) == ("lower_weight_decay", {"weight_decay": 1e-4})
    fixed, _ = _fit(tmp_path, {**SGD, "weight_decay": 1e-4}, diagnose=False)
    assert fixed < 0.5 * broken
    _, control = _fit(tmp_path, {**SGD, "weight_decay": 5e-4})  # the usual strong SGD recipe: 2.5e-4 per step
    assert "lower_weight_decay" not in _codes(control)


def test_a_schedule_that_decays_in_the_first_third_gets_a_cosine_over_the_planned_steps(tmp_path):
    early = {**SGD, "schedule": "exponential", "decay_rate": 0.9}  # 1% of the LR left after 44 of 138 steps
    broken, d = _fit(tmp_path, early)
    top = _top(d)
    assert top.code.value in ("slow_convergence", "plateau")
    first = top.remedies[0]
    assert (first.code.value, dict(first.change)) == ("postpone_decay", {"schedule": "cosine", "lr": 0.05})
    assert "by step 44 of 138 planned" in top.message
    fixed, _ = _fit(tmp_path, Recipe.from_dict(early).apply(first).to_dict(), diagnose=False)
    assert fixed < 0.5 * broken
    _, control = _fit(tmp_path, {**SGD, "schedule": "cosine"})
    assert "postpone_decay" not in _codes(control)
