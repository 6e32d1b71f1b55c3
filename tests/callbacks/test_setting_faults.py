"""Settings that hold a run back while its learning rate is fine, on real fits (an MLP on digits, SGD at a good LR):
each gets its own remedy first, with the value computed from the run, the remedy refit does better than the run it
fixes, and the same fit without the fault does not get that remedy."""

from __future__ import annotations

import json
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


# ------------------------------------------------------------------ auto-remedy applies the setting's own remedy
CHECKS = {"check_every_n_steps": 16, "flush_every": 16}  # a check every 16 of the 138 steps: room to act and verify


class _LRLog(pl.Callback):
    def __init__(self):
        self.lrs: dict[int, float] = {}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.lrs[trainer.global_step] = optimizer.param_groups[0]["lr"]


def _remedied(tmp_path, recipe: dict, clip: float | None = None) -> tuple[float, float, Diagnoser, _LRLog, pl.Trainer]:
    """The broken fit without auto-remedy and with it (same seed, same checks): both final validation losses."""
    losses, trainer = [], None
    for auto in (False, True):
        pl.seed_everything(0, verbose=False)
        diagnoser, log = Diagnoser(verbose=False, save=auto, dirpath=tmp_path, auto_remedy=auto, **CHECKS), _LRLog()
        model = MLP(hidden=(64,))
        model.recipe = Recipe.from_dict(recipe)
        trainer = pl.Trainer(max_epochs=EPOCHS, callbacks=[diagnoser, log], gradient_clip_val=clip,
                             default_root_dir=tmp_path, logger=False, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False)
        trainer.fit(model, datamodule=DigitsDataModule(seed=0))
        losses.append(float(trainer.callback_metrics["val_loss"]))
    return losses[0], losses[1], diagnoser, log, trainer


def _only_intervention(tmp_path, diagnoser: Diagnoser) -> dict:
    """The one intervention, as the diagnosis JSON holds it; it was verified and kept."""
    saved = json.loads(next(tmp_path.rglob("diagnosis.json")).read_text())
    assert len(saved["interventions"]) == 1 == len(diagnoser.interventions)
    event = saved["interventions"][0]
    assert event["evidence"]["verified"]["won"] is True and "undone" not in event
    return event


def test_auto_remedy_loosens_clipping_far_below_the_gradient_norm(tmp_path):
    without, with_it, d, _, trainer = _remedied(tmp_path, SGD, clip=0.003)
    event = _only_intervention(tmp_path, d)
    assert event["remedy"] == "loosen_clipping" and event["finding"] in ("slow_convergence", "plateau")
    assert trainer.gradient_clip_val == event["change"]["gradient_clip_val"] > 30 * 0.003  # the live Trainer's
    assert with_it < 0.5 * without  # measured: 0.086 against 2.24


def test_auto_remedy_lowers_weight_decay_far_too_strong(tmp_path):
    without, with_it, d, _, trainer = _remedied(tmp_path, {**SGD, "weight_decay": 0.3})
    event = _only_intervention(tmp_path, d)
    assert (event["remedy"], event["change"]) == ("lower_weight_decay", {"weight_decay": 1e-4})
    decays = [g["weight_decay"] for g in trainer.optimizers[0].param_groups]
    assert set(decays) <= {0.0, 1e-4} and 1e-4 in decays  # every decaying group's, biases left at zero
    assert with_it < 0.5 * without  # measured: 0.12 against 1.36


def test_auto_remedy_replaces_an_early_decay_by_the_cosine_over_the_planned_steps(tmp_path):
    early = {**SGD, "schedule": "exponential", "decay_rate": 0.9}
    without, with_it, d, log, trainer = _remedied(tmp_path, early)
    event = _only_intervention(tmp_path, d)
    assert (event["remedy"], event["change"]) == ("postpone_decay", {"schedule": "cosine", "lr": 0.05})
    at, planned = event["step"], trainer.estimated_stepping_batches
    assert planned == 138

    def cosine(step: int) -> float:  # the fixed schedule: 0.05 * (1 + cos(pi * step / 138)) / 2
        return 0.05 * 0.5 * (1 + math.cos(math.pi * step / planned))

    assert event["evidence"]["lr_now"] == pytest.approx(cosine(at))
    assert event["evidence"]["lr_if_fixed"] == pytest.approx(cosine(at - 1))  # the rule's, at the last recorded step
    # the exponential scheduler no longer pulls it down: every later step at the cosine's LR, the unverified steps'
    # included (the verification kept it)
    later = {s: lr for s, lr in log.lrs.items() if s >= at}
    assert later == pytest.approx({s: cosine(s) for s in later})
    assert with_it < 0.5 * without  # measured: 0.18 against 1.43
