"""``schedule: plateau``: torch's ReduceLROnPlateau on the validation loss of a real fit, after a warmup, across the
switch to SGD and across a resume."""

import pytest
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from tunekit import Recipe
from tunekit.recipe import ScheduleMultiplier

from .fits import fit

EPOCH = 5  # optimizer steps an epoch (iris in batches of 30)


class LRLog(Callback):
    def __init__(self):
        self.epochs, self.steps = [], []

    def on_train_epoch_start(self, trainer, pl_module):
        self.epochs.append((type(trainer.optimizers[0]).__name__, trainer.optimizers[0].param_groups[0]["lr"]))

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.steps.append(optimizer.param_groups[0]["lr"])


def test_plateau_cuts_the_lr_when_the_val_loss_stalls_and_not_while_it_falls(tmp_path):
    stalled, falling = LRLog(), LRLog()
    # lr 1e-6: the val loss moves by ~1e-6 of itself an epoch, under ReduceLROnPlateau's 1e-4 threshold
    fit(tmp_path, Recipe(optimizer="sgd", lr=1e-6, momentum=0.0, schedule="plateau", plateau_patience=1,
                         plateau_factor=0.5), steps=6 * EPOCH, callbacks=[stalled], val=True)
    # best at epoch 0; epochs 1, 2 bad -> cut after epoch 2; 3, 4 bad -> cut after epoch 4
    assert [lr for _, lr in stalled.epochs] == pytest.approx([1e-6, 1e-6, 1e-6, 5e-7, 5e-7, 2.5e-7])
    fit(tmp_path, Recipe(optimizer="sgd", lr=0.05, momentum=0.0, schedule="plateau", plateau_patience=1,
                         plateau_factor=0.5), steps=6 * EPOCH, callbacks=[falling], val=True)
    assert [lr for _, lr in falling.epochs] == [0.05] * 6


def test_plateau_after_a_warmup_and_across_the_switch_to_sgd(tmp_path):
    log = LRLog()
    recipe = Recipe(optimizer="adam", lr=1e-7, warmup_steps=4, schedule="plateau", plateau_patience=0,
                    plateau_factor=0.5, switch_to_sgd_at=0.5)
    fit(tmp_path, recipe, steps=6 * EPOCH, callbacks=[log], val=True)
    warmup = ScheduleMultiplier(4)
    assert log.steps[:5] == pytest.approx([1e-7 * warmup(s) for s in range(5)])  # the warmup, then the peak
    kinds = [kind for kind, _ in log.epochs]
    assert kinds == ["Adam"] * 4 + ["SGD"] * 2  # the switch comes at step 15, the first batch of epoch 3
    lrs = [lr for _, lr in log.epochs]
    # the warmup's first step; then patience 0 cuts after every epoch but the first (its loss is the first best)
    assert lrs[:4] == pytest.approx([2.5e-8, 1e-7, 5e-8, 2.5e-8])
    sgd = log.steps[15:20]  # SGD's LR over epoch 3: the SWATS estimate times the cuts so far, unchanged per step
    assert sgd == pytest.approx([sgd[0]] * 5) and sgd[0] != lrs[3]
    assert lrs[4] == pytest.approx(sgd[0] * 0.5)  # the plateau after epoch 3 cuts SGD's LR


@pytest.mark.parametrize(("every", "lookahead"), [("validation", False), ("train_epoch", False),
                                                 ("validation", True)], ids=["validation", "train_epoch", "lookahead"])
def test_a_resumed_fit_cuts_the_lr_where_the_unbroken_fit_did(tmp_path, every, lookahead):
    recipe = Recipe(optimizer="sgd", lr=1e-6, momentum=0.0, schedule="plateau", plateau_patience=1,
                    plateau_factor=0.5, lookahead=lookahead)
    straight, resumed = LRLog(), LRLog()
    # ModelCheckpoint saves after validation, or at on_train_epoch_end; either way before Lightning steps the
    # plateau scheduler, which PlateauResume makes up for in the checkpoint
    ckpt = ModelCheckpoint(dirpath=tmp_path, every_n_epochs=1, save_top_k=-1,
                           save_on_train_epoch_end=every == "train_epoch")
    fit(tmp_path, recipe, steps=6 * EPOCH, callbacks=[straight, ckpt], val=True, enable_checkpointing=True)
    fit(tmp_path / "r", recipe, steps=6 * EPOCH, callbacks=[resumed], val=True,
        ckpt=tmp_path / "epoch=1-step=10.ckpt")  # after epochs 0 (best) and 1 (bad): the next bad epoch cuts
    assert [lr for _, lr in straight.epochs] == pytest.approx([1e-6, 1e-6, 1e-6, 5e-7, 5e-7, 2.5e-7])
    assert resumed.epochs == straight.epochs[2:]
