"""Checkpoint resume keeps the monitors' state: the series continue, the reference loss is kept."""

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint

from tunekit.callbacks import Diagnoser
from tunekit.examples import MLP, DigitsDataModule


def _trainer(tmp_path, epochs, d):
    return pl.Trainer(max_epochs=epochs, callbacks=[d, ModelCheckpoint(dirpath=tmp_path, save_last=True)],
                      logger=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)


def test_resume_from_a_checkpoint_keeps_the_monitor_state(tmp_path):
    pl.seed_everything(0)
    first = Diagnoser(verbose=False, save=False)
    _trainer(tmp_path, 2, first).fit(MLP(), datamodule=DigitsDataModule())
    before = first.recorder.record()
    assert before.steps.tolist() == list(range(46))

    second = Diagnoser(verbose=False, save=False)
    trainer = _trainer(tmp_path, 4, second)
    trainer.fit(MLP(), datamodule=DigitsDataModule(), ckpt_path=tmp_path / "last.ckpt")
    after = second.recorder.record()
    assert after.steps.tolist() == list(range(92))  # continuous across the resume
    assert after.initial_loss == before.initial_loss
    assert (after.loss[:46] == before.loss).all()
    assert len(after.val_loss) == 4  # two validations before the checkpoint, two after
    assert second.diagnosis.is_healthy
