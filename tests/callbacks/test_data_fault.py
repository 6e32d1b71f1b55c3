"""A NaN in the data is named as a data fault with the batch, sample and column, not answered with a lower LR.

Rebuilt from a public report (NaN losses whatever the LR; the cause was a NaN input value): sklearn's
breast-cancer table, standardized, one missing cell in one training row, Adam at a good LR.
"""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from tunekit.callbacks import Diagnoser

BAD_ROW, BAD_COLUMN = 137, 5  # the training row (in the shuffled split) and the feature left empty


class TableNet(pl.LightningModule):
    def __init__(self, lr: float) -> None:
        super().__init__()
        self.lr = lr
        self.net = nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Linear(64, 2))

    def training_step(self, batch, _):
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def _loader(nan_cell: bool) -> tuple[DataLoader, torch.Tensor]:
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    X = X[np.random.default_rng(0).permutation(len(X))][:455]
    y = y[np.random.default_rng(0).permutation(len(y))][:455]
    if nan_cell:
        X[BAD_ROW, BAD_COLUMN] = np.nan
    x = torch.tensor(X, dtype=torch.float32)
    return DataLoader(TensorDataset(x, torch.tensor(y)), batch_size=32, shuffle=True), x


def _fit(tmp_path, lr: float, nan_cell: bool) -> tuple[Diagnoser, torch.Tensor]:
    pl.seed_everything(0, verbose=False)
    loader, x = _loader(nan_cell)
    diagnoser = Diagnoser(verbose=False, save=False)
    trainer = pl.Trainer(max_epochs=2, callbacks=[diagnoser], default_root_dir=tmp_path, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*non-finite.*")  # the fit is stopped at the NaN, on purpose
        trainer.fit(TableNet(lr), loader)
    return diagnoser, x


def test_nan_cell_in_the_data_is_a_data_fault_naming_sample_and_column(tmp_path):
    diagnoser, x = _fit(tmp_path, 1e-3, nan_cell=True)
    top = diagnoser.diagnosis.findings[0]
    assert top.code.value == "data_fault" and top.severity.value == "critical"
    assert top.remedies[0].code.value == "check_pipeline"
    cells = top.evidence["nonfinite"]
    assert len(cells) == 1 and cells[0]["tensor"] == "batch[0]" and cells[0]["values"] == 1
    assert cells[0]["columns"] == [BAD_COLUMN] and cells[0]["row_count"] == 1
    assert f"column {BAD_COLUMN}" in top.remedies[0].message
    assert "divergence" not in diagnoser.diagnosis.codes  # the NaN loss is the data's doing, not an LR blow-up
    assert "lower_lr" not in [r.code.value for f in diagnoser.diagnosis.findings for r in f.remedies]


def test_a_nan_from_a_huge_lr_on_clean_data_is_divergence_not_a_data_fault(tmp_path):
    diagnoser, _ = _fit(tmp_path, 1e30, nan_cell=False)
    record = diagnoser.recorder.record()
    bad = ~np.isfinite(record.loss) | ~np.isfinite(record.grad_norm)  # from the series, not from the live watch
    assert bad.any() and diagnoser.recorder.first_nonfinite_step == int(record.steps[np.argmax(bad)])
    assert diagnoser.recorder.record().nonfinite_batch["batches"] == []  # its batch was searched: all finite
    assert diagnoser.diagnosis.codes[0] == "divergence"


def test_a_clean_run_has_no_data_fault(tmp_path):
    diagnoser, _ = _fit(tmp_path, 1e-3, nan_cell=False)
    assert "data_fault" not in diagnoser.diagnosis.codes
    assert not diagnoser.diagnosis.is_critical
