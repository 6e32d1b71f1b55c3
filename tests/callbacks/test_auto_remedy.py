"""Auto-remedy in real fits: a run pushed to NaN is rolled back and carries on; a healthy run is left alone; a
checkpoint after an intervention resumes with the changed recipe and the event history."""

import json

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from tunekit.callbacks import Diagnoser
from tunekit.callbacks._remedy import SNAPSHOT_MAX_AGE, AutoRemedy
from tunekit.callbacks._surgery import LiveLR, LRProgram
from tunekit.diagnose import Finding, FindingCode, Remedy, RemedyCode, Severity
from tunekit.examples import MLP, DigitsDataModule


class LRLog(Callback):
    def __init__(self):
        self.lrs = {}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.lrs[trainer.global_step] = optimizer.param_groups[0]["lr"]


def _fit(tmp_path, model_kwargs, epochs, d, ckpt=None, checkpoint=False, log=None, **trainer_kwargs):
    pl.seed_everything(0, verbose=False)
    callbacks = [d] + ([log] if log else []) + (
        [ModelCheckpoint(dirpath=tmp_path, every_n_epochs=1, save_top_k=-1)] if checkpoint else [])
    trainer = pl.Trainer(max_epochs=epochs, callbacks=callbacks, logger=False, enable_checkpointing=checkpoint,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                         **trainer_kwargs)
    trainer.fit(MLP(**model_kwargs), datamodule=DigitsDataModule(), ckpt_path=ckpt)
    return trainer


NAN = {"optimizer": "sgd", "lr": 50.0}  # the loss is inf by step 12


def test_a_run_pushed_to_nan_is_rolled_back_and_ends_finite_and_falling(tmp_path):
    d = Diagnoser(verbose=False, auto_remedy=True, dirpath=tmp_path)
    trainer = _fit(tmp_path, NAN, 6, d)
    assert trainer.global_step == 6 * 23  # it trained on, instead of stopping at step 13
    (event,) = d.interventions
    assert (event.finding.value, event.remedy.value) == ("divergence", "lower_lr")
    assert event.change == {"lr": 0.05, "gradient_clip_val": 1.0} and event.evidence["rolled_back_to"] == 0
    after = d.recorder.record().since(event.step)
    assert np.isfinite(after.loss).all()
    assert np.median(after.loss[-20:]) < 0.5 * np.median(after.loss[:20])  # falling
    assert trainer.gradient_clip_val == 1.0 and trainer.optimizers[0].param_groups[0]["lr"] == 0.05
    saved = json.loads((tmp_path / "diagnosis.json").read_text())
    assert saved["interventions"][0]["change"] == {"lr": 0.05, "gradient_clip_val": 1.0}
    assert "divergence" not in d.diagnosis.codes  # judged from the intervention on
    # verified: carrying on from the NaN weights blew up on its fork, the rollback with the cut did not: it stays
    verified = event.evidence["verified"]
    forks = {f["label"]: f for f in verified["forks"]}
    assert not event.undone and verified["won"] is True and verified["steps"] == 20
    assert forks["unchanged"]["loss_change"] == "inf" and forks["intervention"]["loss_change"] < 0
    assert forks["intervention"]["change"] == {"lr": 0.05, "gradient_clip_val": 1.0}
    assert "undone" not in saved["interventions"][0] and saved["interventions"][0]["evidence"]["verified"]["won"]


def test_under_bf16_and_gradient_accumulation_a_nan_run_is_rolled_back_too(tmp_path):
    d = Diagnoser(verbose=False, save=False, auto_remedy=True)
    trainer = _fit(tmp_path, NAN, 8, d, precision="bf16-mixed", accumulate_grad_batches=2)
    assert trainer.global_step == 8 * 12  # 23 batches an epoch, two per optimizer step
    assert d.interventions and d.interventions[0].finding.value == "divergence"
    after = d.recorder.record().since(d.interventions[-1].step)
    assert np.isfinite(after.loss).all() and np.median(after.loss[-10:]) < np.median(after.loss[:10])


def test_a_healthy_run_gets_no_intervention(tmp_path):
    d = Diagnoser(verbose=False, save=False, auto_remedy=True)
    _fit(tmp_path, {"lr": 1e-3}, 6, d)
    assert d.interventions == [] and d.diagnosis.is_healthy
    assert "interventions" not in d.diagnosis.to_dict()


def test_snapshots_are_refreshed_only_when_stale_or_at_a_new_best_validation_loss(tmp_path, monkeypatch):
    """A healthy fit with validation at every epoch end (23 steps) and a check every 16 steps: the snapshot follows
    a new best validation loss, or is retaken once older than a quarter of the steps so far."""
    taken, checks = [], []
    real_take, real_keep = AutoRemedy._take, AutoRemedy.keep

    def take(self, trainer, module):
        taken.append(trainer.global_step)
        real_take(self, trainer, module)

    def keep(self, trainer, module, diagnosis, record):
        if diagnosis.is_healthy:
            checks.append((trainer.global_step, record.val_loss.tolist()))
        real_keep(self, trainer, module, diagnosis, record)

    monkeypatch.setattr(AutoRemedy, "_take", take)
    monkeypatch.setattr(AutoRemedy, "keep", keep)
    d = Diagnoser(verbose=False, save=False, auto_remedy=True, probes=False, check_every_n_steps=16, flush_every=16)
    _fit(tmp_path, {"lr": 1e-3}, 8, d)
    expected, last, best, vals_then = [0], 0, float("inf"), 0
    for step, vals in checks:
        if vals and vals[-1] > best:
            continue
        best = vals[-1] if vals else best
        if len(vals) > vals_then or step - last > SNAPSHOT_MAX_AGE * step:
            expected.append(step)
            last, vals_then = step, len(vals)
    assert len(checks) == 8 * 23 // 16 and taken == expected
    assert len(taken) < len(checks) + 1, taken  # fewer copies than one per healthy check


def test_without_interventions_left_a_nan_run_stops_as_before(tmp_path):
    d = Diagnoser(verbose=False, save=False, auto_remedy=True, max_interventions=0)
    trainer = _fit(tmp_path, NAN, 6, d)
    assert trainer.global_step == 13 and d.diagnosis.codes[0] == "divergence" and d.interventions == []


def test_a_checkpoint_after_an_intervention_resumes_with_the_changed_recipe(tmp_path):
    first = Diagnoser(verbose=False, save=False, auto_remedy=True)
    _fit(tmp_path, NAN, 2, first, checkpoint=True)
    assert len(first.interventions) == 1
    second, log = Diagnoser(verbose=False, save=False, auto_remedy=True), LRLog()
    trainer = _fit(tmp_path, NAN, 4, second, ckpt=tmp_path / "epoch=1-step=46.ckpt", log=log)
    assert log.lrs[46] == 0.05  # not the module's own lr 50
    assert trainer.gradient_clip_val == 1.0
    assert [e.to_dict() for e in second.interventions] == [e.to_dict() for e in first.interventions]
    assert np.isfinite(second.recorder.record().loss[-10:]).all()


def test_lr_programs_ride_on_top_of_a_running_schedule():
    opt = torch.optim.SGD([torch.zeros(1)], lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 ** s)
    live = LiveLR()
    live.programs.append(LRProgram("warmup", 2, 4))
    seen = []
    for step in range(6):
        live.apply(opt, step, [scheduler])
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    expected = [0.5**s * min(1.0, max(0, s - 2 + 1) / 4 if s >= 2 else 1.0) for s in range(6)]
    assert seen == pytest.approx(expected)
    live = LiveLR()
    live.programs = [LRProgram("cosine", 0, 10)]
    constant = torch.optim.SGD([torch.zeros(1)], lr=0.2)  # no scheduler: the factor must not compound
    for step in range(3):
        live.apply(constant, step, [])
    assert constant.param_groups[0]["lr"] == pytest.approx(0.2 * 0.5 * (1 + np.cos(np.pi * 2 / 10)))


def _wrong_cut(record, ctx):
    """A rule that calls every stretch of 20 steps an oscillation and prescribes a 10,000x LR cut."""
    if len(record) < 20:
        return None
    cut = Remedy(RemedyCode.LOWER_LR, {"lr": ctx.lr / 1e4}, "Lower the learning rate 10,000x.")
    return Finding(FindingCode.OSCILLATION, Severity.WARNING, int(record.steps[0]), "swings", {}, (cut,))


class _WithWrongCut(Diagnoser):
    """The Diagnoser with ``_wrong_cut`` among its rules: on a healthy Adam run its remedy must lose to carrying on
    unchanged (the fit, the intervention, its forks and the undo are all real; only the finding is made up)."""

    def setup(self, trainer, pl_module, stage):
        super().setup(trainer, pl_module, stage)
        self._rules = (*self._rules, _wrong_cut)


def test_an_intervention_whose_fork_loses_to_carrying_on_unchanged_is_undone_and_recorded(tmp_path):
    d, log = _WithWrongCut(verbose=False, auto_remedy=True, probes=False, dirpath=tmp_path, flush_every=10,
                           check_every_n_steps=10), LRLog()
    trainer = _fit(tmp_path, {"optimizer": "adam", "lr": 1e-3}, 6, d, log=log)
    (event,) = d.interventions  # the same remedy for the same finding is not applied again
    assert (event.finding.value, event.remedy.value, event.change) == ("oscillation", "lower_lr", {"lr": 1e-7})
    verified, undone_at = event.evidence["verified"], event.evidence["undone_at"]
    forks = {f["label"]: f for f in verified["forks"]}
    assert event.undone and verified["won"] is False
    assert forks["intervention"]["change"] == {"lr": pytest.approx(1e-7)}
    assert forks["unchanged"]["loss_change"] < forks["intervention"]["loss_change"]  # carrying on learnt more
    assert event.reason.startswith("tried on forks for 20 steps from where it was applied, it did not beat")
    # 8 training batches and 4 held-out ones after the cut, then undone: the LR is back, to the end of the fit
    assert undone_at == event.step + 12
    assert all(log.lrs[s] == pytest.approx(1e-7) for s in range(event.step, undone_at))
    assert all(log.lrs[s] == pytest.approx(1e-3) for s in range(undone_at, trainer.global_step))
    saved = json.loads((tmp_path / "diagnosis.json").read_text())["interventions"][0]
    assert saved["undone"] is True and saved["reason"] == event.reason


def test_a_held_schedule_sets_the_lr_against_the_running_scheduler_until_its_state_is_put_back():
    opt = torch.optim.SGD([{"params": [torch.zeros(1)], "lr": 0.1}, {"params": [torch.zeros(1)], "lr": 0.01}])
    scheduler = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)  # chainable: reads the group's LR each step
    live = LiveLR()
    before = live.state_dict()
    live.hold([0.1, 0.01], [LRProgram("cosine", 0, 10)])
    seen = []
    for step in range(3, 6):
        live.apply(opt, step, [scheduler])
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        scheduler.step()  # halves whatever LR it finds: the next apply overwrites it
    cosine = [0.5 * (1 + np.cos(np.pi * s / 10)) for s in range(3, 6)]
    assert seen == [pytest.approx([0.1 * c, 0.01 * c]) for c in cosine]
    saved = LiveLR()
    saved.load_state_dict(live.state_dict())
    assert saved.held and saved.programs == live.programs
    live.load_state_dict(before)  # an undo: the scheduler sets the LR again
    assert not live.held
    live.apply(opt, 6, [scheduler])
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * cosine[-1] * 0.5)  # the scheduler's, untouched
