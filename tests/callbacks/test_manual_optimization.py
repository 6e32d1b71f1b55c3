"""Modules that optimize by hand (``automatic_optimization = False``) and return nothing from ``training_step``:
the Diagnoser reads their loss from ``manual_backward`` (or the logged training loss) and records the gradients."""

from __future__ import annotations

import logging
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from tests.logs.runs import loaders
from tunekit.callbacks import Diagnoser
from tunekit.callbacks._manual import ManualLoss

FAR_TOO_HIGH_LR, FINE_LR = 2.0, 0.01  # SGD with momentum 0.9 on raw 0-16 digits pixels: blows up / trains


class ManualClassifier(pl.LightningModule):
    """Softmax regression stepped by hand; ``training_step`` returns None. ``backward`` chooses how the gradient is
    made: through ``manual_backward`` or ``loss.backward()`` (Lightning does not see that loss)."""

    def __init__(self, lr: float, backward: str = "manual", log_loss: bool = False) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.lr, self.how, self.log_loss = lr, backward, log_loss
        self.layer = torch.nn.Linear(64, 10)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        optimizer = self.optimizers()
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.layer(x), y)
        optimizer.zero_grad()
        if self.how == "manual":
            self.manual_backward(loss)
        else:
            loss.backward()
        optimizer.step()
        if self.log_loss:
            self.log("train_loss", loss)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.cross_entropy(self.layer(x), y))

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


def _fit(tmp_path, model: ManualClassifier, epochs: int = 2) -> tuple[Diagnoser, pl.Trainer]:
    pl.seed_everything(0, verbose=False)
    diagnoser = Diagnoser(save=False, verbose=False)
    trainer = pl.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path, callbacks=[diagnoser])
    train, val = loaders()
    trainer.fit(model, train, val)
    return diagnoser, trainer


def test_a_manual_optimization_fit_at_a_far_too_high_lr_is_diagnosed_and_its_twin_is_healthy(tmp_path):
    bad, _ = _fit(tmp_path / "bad", ManualClassifier(FAR_TOO_HIGH_LR))
    good, trainer = _fit(tmp_path / "good", ManualClassifier(FINE_LR))
    top = bad.diagnosis.findings[0]
    assert top.code.value == "divergence" and top.severity.value == "critical"
    assert good.diagnosis.is_healthy, good.diagnosis.codes
    record = good.recorder.record()
    # one row per optimizer step, with the loss from manual_backward and the gradient norm taken before the step
    assert len(record) == trainer.global_step == 2 * 47
    assert np.isfinite(record.loss).all() and np.isfinite(record.grad_norm).all() and (record.grad_norm > 0).all()
    assert record.initial_loss == pytest.approx(float(np.median(record.loss[:5])))
    assert "manual_backward" not in vars(trainer.lightning_module)  # the module's own method is back


def test_without_manual_backward_the_logged_training_loss_is_read(tmp_path):
    bad, _ = _fit(tmp_path, ManualClassifier(FAR_TOO_HIGH_LR, backward="plain", log_loss=True))
    assert bad.diagnosis.findings[0].code.value == "divergence"
    assert np.isfinite(bad.recorder.record().loss[:3]).all()


def test_a_loss_that_cannot_be_read_is_said_once(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="lightning.pytorch"):  # rank_zero_info's logger
        diagnoser, trainer = _fit(tmp_path, ManualClassifier(FINE_LR, backward="plain"), epochs=1)
    said = [r.getMessage() for r in caplog.records if "returned no loss" in r.getMessage()]
    assert len(said) == 1 and "self.log('train_loss', loss)" in said[0]
    assert np.isnan(diagnoser.recorder.record().loss).all()  # nothing was made up


def test_with_no_module_wrapped_the_returned_loss_passes_through_untouched():
    # automatic optimization (or before attach): the loss is what training_step returned, read without the Trainer
    reader, loss = ManualLoss(), torch.tensor(0.5)
    assert reader.loss({"loss": loss}, trainer=None) is loss  # type: ignore[arg-type]
    assert reader.loss(loss, trainer=None) is loss  # type: ignore[arg-type]
    assert reader.loss(None, trainer=None) is None  # type: ignore[arg-type]
