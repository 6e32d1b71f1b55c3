"""Instabilities whose cause is not the learning rate, on real fits: BatchNorm on tiny batches and SGD momentum near
1 get their own remedy first, and that remedy, refit, does better than the run it fixes.

BatchNorm at batch size 2 is rebuilt from a public report (a loss that spikes throughout; the thread's fix: a larger
batch); momentum 0.99 from a segmentation project's issue (spikes with Nesterov momentum 0.99; 0.95 trained).
"""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from tunekit.callbacks import Diagnoser

pytestmark = pytest.mark.slow

X, Y = load_digits(return_X_y=True)
X = torch.tensor(StandardScaler().fit_transform(X), dtype=torch.float32)
Y = torch.tensor(Y)


class DigitsNet(pl.LightningModule):
    def __init__(self, batchnorm: bool, optimizer: str, lr: float, momentum: float = 0.0) -> None:
        super().__init__()
        norm = (lambda: nn.BatchNorm1d(128)) if batchnorm else nn.Identity
        self.net = nn.Sequential(nn.Linear(64, 128), norm(), nn.ReLU(), nn.Linear(128, 128), norm(), nn.ReLU(),
                                 nn.Linear(128, 10))
        self.optimizer, self.lr, self.momentum = optimizer, lr, momentum

    def training_step(self, batch, _):
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def validation_step(self, batch, _):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self.net(x), y))

    def configure_optimizers(self):
        if self.optimizer == "sgd":
            return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=self.momentum, nesterov=True)
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def _fit(tmp_path, *, train: int, epochs: int, batch: int, diagnose: bool = True, **model) -> tuple[float, Diagnoser]:
    pl.seed_everything(0, verbose=False)
    diagnoser = Diagnoser(verbose=False, save=False)
    trainer = pl.Trainer(max_epochs=epochs, callbacks=[diagnoser] if diagnose else [], default_root_dir=tmp_path,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*non-finite.*")
        trainer.fit(DigitsNet(**model), DataLoader(TensorDataset(X[:train], Y[:train]), batch_size=batch,
                                                   shuffle=True, drop_last=True),
                    DataLoader(TensorDataset(X[1400:], Y[1400:]), batch_size=256))
    return float(trainer.callback_metrics["val_loss"]), diagnoser


def test_batchnorm_on_batches_of_two_gets_a_larger_batch_first_and_it_fixes_the_run(tmp_path):
    broken, diagnoser = _fit(tmp_path, train=400, epochs=4, batch=2, batchnorm=True, optimizer="adam", lr=1e-3)
    top = diagnoser.diagnosis.findings[0]
    assert top.severity.value == "warning" and top.code.value in ("exploding_gradients", "oscillation")
    first = top.remedies[0]
    assert (first.code.value, dict(first.change)) == ("raise_batch_size", {"batch_size": 16})
    assert "BatchNorm (net.1, net.4)" in first.message
    assert top.remedies[1].code.value == "change_architecture"
    fixed, _ = _fit(tmp_path, train=400, epochs=4, batch=16, diagnose=False, batchnorm=True, optimizer="adam",
                    lr=1e-3)
    assert fixed < 0.6 * broken  # measured: 0.98 at batch 2, 0.51 at batch 16 over the same 4 epochs


def test_sgd_momentum_099_gets_lower_momentum_first_and_it_beats_the_lr_cut(tmp_path):
    broken, diagnoser = _fit(tmp_path, train=1400, epochs=3, batch=32, batchnorm=False, optimizer="sgd", lr=0.05,
                             momentum=0.99)
    top = diagnoser.diagnosis.findings[0]
    assert top.code.value == "divergence"
    codes = [r.code.value for r in top.remedies]
    assert codes[0] == "lower_momentum" and top.remedies[0].change == {"momentum": 0.95}
    cut = next(r for r in top.remedies if r.code.value == "lower_lr").change["lr"]
    momentum, _ = _fit(tmp_path, train=1400, epochs=3, batch=32, diagnose=False, batchnorm=False, optimizer="sgd",
                       lr=0.05, momentum=0.95)
    lr_cut, _ = _fit(tmp_path, train=1400, epochs=3, batch=32, diagnose=False, batchnorm=False, optimizer="sgd",
                     lr=cut, momentum=0.99)
    assert momentum < 0.5 * broken and momentum < lr_cut  # measured: 4.9 broken, 0.41 at 0.95, 0.73+ for the cut


def test_auto_remedy_lowers_the_momentum_inside_the_fit(tmp_path):
    pl.seed_everything(0, verbose=False)
    diagnoser = Diagnoser(verbose=False, save=False, auto_remedy=True)
    trainer = pl.Trainer(max_epochs=10, callbacks=[diagnoser], default_root_dir=tmp_path, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    model = DigitsNet(batchnorm=False, optimizer="sgd", lr=0.05, momentum=0.99)
    trainer.fit(model, DataLoader(TensorDataset(X[:1400], Y[:1400]), batch_size=32, shuffle=True, drop_last=True),
                DataLoader(TensorDataset(X[1400:], Y[1400:]), batch_size=256))
    event = diagnoser.interventions[0]
    assert event.remedy.value == "lower_momentum" and event.change == {"momentum": 0.95}
    assert trainer.optimizers[0].param_groups[0]["momentum"] == 0.95
    # checked at step 128 (the blow-up began at 103), rolled back to step 0: 300 steps left at momentum 0.95
    assert float(trainer.callback_metrics["val_loss"]) < 1.0


def test_adam_at_a_far_too_high_lr_is_cut_to_adams_usual_lr_not_by_sgds_update_ratio(tmp_path):
    """A public report (cross-entropy stuck at ln 10 with Adam): Adam at lr 0.2 on a digits MLP. The right cut, by a
    grid of refits, is to 1e-3 (validation loss 0.158; the update-ratio cut to 2e-4 ends at 0.45)."""

    class Wide(DigitsNet):
        def __init__(self) -> None:
            super().__init__(batchnorm=False, optimizer="adam", lr=0.2)
            self.net = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                                     nn.Linear(256, 10))

    pl.seed_everything(0, verbose=False)
    diagnoser = Diagnoser(verbose=False, save=False)
    trainer = pl.Trainer(max_epochs=2, callbacks=[diagnoser], default_root_dir=tmp_path, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Wide(), DataLoader(TensorDataset(X[:1400], Y[:1400]), batch_size=64, shuffle=True))
    top = diagnoser.diagnosis.findings[0]
    assert top.code.value == "divergence" and top.remedies[0].code.value == "lower_lr"
    assert top.remedies[0].change == {"lr": 1e-3}
