"""The Diagnoser's checks on values, on real fits: data on scales far from unit (sklearn's raw tables and targets),
a model that cannot fit one batch (a detached graph, a frozen network), each against the same fit without the fault.
(The DDP replica check is in test_ddp.py.)"""

from __future__ import annotations

import math
import warnings
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from tests.callbacks.helpers import fault_of, one_thread  # noqa: F401 (one_thread: the fixture, used by name)
from tunekit.callbacks import Diagnoser
from tunekit.diagnose.rules._pipeline_values import ONE_BATCH_LEFT, SCALE_LIMIT
from tunekit.probes._one_batch import ONE_BATCH_LRS, ONE_BATCH_STEPS

BATCH = 32


pytestmark = pytest.mark.usefixtures("one_thread")


class Regressor(pl.LightningModule):
    """An MLP for a table: cross-entropy on integer targets, MSE on float ones."""

    def __init__(self, features: int, outputs: int, lr: float = 1e-3, optimizer: str = "adam") -> None:
        super().__init__()
        self.lr, self.optimizer = lr, optimizer
        self.net = nn.Sequential(nn.Linear(features, 32), nn.ReLU(), nn.Linear(32, outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        out = self(x)
        return F.mse_loss(out.squeeze(-1), y) if y.is_floating_point() else F.cross_entropy(out, y)

    def configure_optimizers(self) -> Any:
        if self.optimizer == "sgd":
            return torch.optim.SGD(self.parameters(), lr=self.lr)
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def _fit(model: pl.LightningModule, data: TensorDataset, steps: int, epochs: int = 1,
         **settings: Any) -> Diagnoser:
    pl.seed_everything(0, verbose=False)
    diagnoser = Diagnoser(verbose=False, save=False, **settings)
    trainer = pl.Trainer(max_epochs=epochs, limit_train_batches=steps, callbacks=[diagnoser], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*tunekit: pipeline fault.*")
        trainer.fit(model, DataLoader(data, batch_size=BATCH, shuffle=True))
    return diagnoser


_fault = fault_of


def _checks(diagnoser: Diagnoser) -> list[str]:
    finding = diagnoser.diagnosis.get("pipeline_fault")
    return [f["check"] for f in finding.evidence["faults"]] if finding else []


# ------------------------------------------------------------------ data on scales far from unit
def _table(X: np.ndarray, y: np.ndarray, scale: bool, target_float: bool = False) -> TensorDataset:
    if scale:
        X = StandardScaler().fit_transform(X)
        if target_float:
            y = (y - y.mean()) / y.std()
    target = torch.tensor(y, dtype=torch.float32) if target_float else torch.tensor(y)
    return TensorDataset(torch.tensor(X, dtype=torch.float32), target)


def test_raw_breast_cancer_columns_are_named_with_their_scales():
    X, y = load_breast_cancer(return_X_y=True)
    diagnoser = _fit(Regressor(30, 2), _table(X, y, scale=False), steps=6, probes=False)
    finding, fault, remedy = _fault(diagnoser, "input_scale")
    (table,) = fault["tensors"]
    assert table["tensor"] == "batch[0]" and finding.severity.value == "warning"
    # independently, from the whole table: the columns whose RMS is above the limit (a sample of 128 rows has
    # the same ones: the nearest to the limit, worst texture, is at 26, the next above it at 40)
    rms = np.sqrt((X**2).mean(0))
    assert set(table["columns"]) == {j for j in range(30) if rms[j] > SCALE_LIMIT} == {2, 3, 13, 22, 23}
    assert all(s > SCALE_LIMIT for s in table["scales"]) and table["scales"] == sorted(table["scales"], reverse=True)
    assert 500 < table["scales"][0] < 2000 and table["columns"][0] == 23  # worst area, RMS ~965 over the table
    assert remedy.code.value == "normalize_inputs" and "columns 23" in remedy.message
    assert "StandardScaler" in remedy.message
    assert "column" in finding.message and "23 (" in finding.message


def test_standardized_breast_cancer_is_not_flagged():
    X, y = load_breast_cancer(return_X_y=True)
    diagnoser = _fit(Regressor(30, 2), _table(X, y, scale=True), steps=6, probes=False)
    assert "input_scale" not in _checks(diagnoser)


def test_a_raw_regression_target_is_named_and_its_standardized_version_is_not():
    X, y = load_diabetes(return_X_y=True)
    diagnoser = _fit(Regressor(10, 1), _table(X, y, scale=False, target_float=True), steps=6, probes=False)
    _, fault, remedy = _fault(diagnoser, "input_scale")
    (target,) = fault["tensors"]  # diabetes' features come scaled (RMS ~0.05): only the target is off
    assert target["tensor"] == "batch[1]" and target["shape"] == [BATCH] and target["columns"] == [0]
    assert 120 < target["scales"][0] < 230  # the RMS of diabetes targets is 171
    assert remedy.code.value == "normalize_inputs" and "(y - mean) / std" in remedy.message
    scaled = _fit(Regressor(10, 1), _table(X, y, scale=True, target_float=True), steps=6, probes=False)
    assert "input_scale" not in _checks(scaled)


class Images(pl.LightningModule):
    """A 4-D image tensor of raw 0-255 pixels and an integer token-id tensor in one batch: neither is a table."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.embed = nn.Embedding(1000, 4)
        self.head = nn.Linear(8, 10)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        images, tokens, y = batch
        a = self.conv(images / 255.0).mean(dim=(2, 3))
        return F.cross_entropy(self.head(torch.cat([a, self.embed(tokens).mean(1)], 1)), y)

    def configure_optimizers(self) -> Any:
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def test_images_and_token_ids_are_not_judged_by_scale():
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randint(0, 256, (256, 1, 8, 8), generator=g).float(),
                         torch.randint(0, 1000, (256, 5), generator=g), torch.randint(0, 10, (256,), generator=g))
    assert "input_scale" not in _checks(_fit(Images(), data, steps=6, probes=False))


def test_the_scale_check_can_be_switched_off():
    X, y = load_breast_cancer(return_X_y=True)
    diagnoser = _fit(Regressor(30, 2), _table(X, y, scale=False), steps=6, probes=False, check_input_scale=False)
    assert "input_scale" not in _checks(diagnoser)


# ------------------------------------------------------------------ a model that cannot fit one batch
def _digits() -> TensorDataset:
    X, y = load_digits(return_X_y=True)
    return TensorDataset(torch.tensor(X / 16.0, dtype=torch.float32), torch.tensor(y))


class Detached(Regressor):
    """The output is cut from the graph and made a leaf again (the usual way to silence "does not require grad")."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).detach().requires_grad_()


class Frozen(Regressor):
    """Every parameter frozen except the output bias: the model can only shift its output."""

    def __init__(self) -> None:
        super().__init__(64, 10)
        self.net.requires_grad_(False)
        self.net[2].bias.requires_grad_(True)


STALL_FIT = {"steps": 45, "epochs": 2}  # 90 optimizer steps: past the stall rules' 80


def test_a_detached_graph_cannot_fit_one_batch_and_gets_no_lr_remedy():
    diagnoser = _fit(Detached(64, 10), _digits(), **STALL_FIT)
    finding, fault, remedy = _fault(diagnoser, "unfittable_batch")
    assert finding.severity.value == "critical" and diagnoser.diagnosis.findings[0] is finding
    assert fault["with_gradient"] == 0 and fault["steps"] == 0  # nothing to train: no fork step needed
    assert fault["loss_after"] == fault["loss_before"] and abs(fault["loss_before"] - math.log(10)) < 0.3
    assert "detached" in finding.message and ".detach()" in remedy.message
    assert remedy.code.value == "check_pipeline"
    remedies = [r.code.value for f in diagnoser.diagnosis.findings for r in f.remedies]
    assert "raise_lr" not in remedies and "lower_lr" not in remedies
    assert not {"slow_convergence", "saddle_stall", "plateau"} & set(diagnoser.diagnosis.codes)


def test_a_frozen_network_cannot_fit_one_batch():
    diagnoser = _fit(Frozen(), _digits(), **STALL_FIT)
    finding, fault, remedy = _fault(diagnoser, "unfittable_batch")
    assert fault["trained"] == ["net.2.bias"] and fault["trained_values"] == 10
    assert fault["values"] == 64 * 32 + 32 + 32 * 10 + 10
    # the bias alone can only move the batch's loss towards its labels' entropy: it tried both LRs to the end
    assert fault["steps"] == len(ONE_BATCH_LRS) * ONE_BATCH_STEPS
    assert fault["loss_after"] > ONE_BATCH_LEFT * fault["loss_before"]
    assert "frozen" in finding.message and "net.2.bias" in finding.message and "requires_grad" in remedy.message


class Healthy(Regressor):
    def __init__(self, lr: float) -> None:
        super().__init__(64, 10, lr=lr, optimizer="sgd")


def test_a_healthy_too_low_lr_run_fits_one_batch_and_keeps_its_lr_remedy():
    pl.seed_everything(1, verbose=False)
    model = Healthy(1e-5)
    diagnoser = _fit(model, _digits(), **STALL_FIT)
    values = diagnoser._pipeline.values
    assert values._probed and values.probe_steps > 0  # the probe ran, and the model fit the batch
    assert "unfittable_batch" not in _checks(diagnoser)
    top = diagnoser.diagnosis.findings[0]
    assert top.code.value == "slow_convergence" and top.remedies[0].code.value == "raise_lr"
    # the probe left the run as it was: the same fit without it ends at the same weights
    pl.seed_everything(1, verbose=False)
    again = Healthy(1e-5)
    _fit(again, _digits(), fit_one_batch=False, **STALL_FIT)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters(), strict=True))


def test_a_learning_run_is_not_probed():
    diagnoser = _fit(Healthy(0.5), _digits(), **STALL_FIT)  # at 90 steps, 17% of its initial loss
    assert not diagnoser._pipeline.values._probed and diagnoser._pipeline.values.probe_steps == 0


def test_the_one_batch_fit_can_be_switched_off():
    diagnoser = _fit(Frozen(), _digits(), fit_one_batch=False, **STALL_FIT)
    assert "unfittable_batch" not in _checks(diagnoser) and diagnoser._pipeline.values.probe_steps == 0


def test_a_run_wrecked_by_too_large_an_lr_is_not_probed():
    # SGD at lr 3 on the digits MLP: the loss ends above its start (a divergence, the LR's doing), where a fork
    # from the wrecked weights might not fit a batch either
    diagnoser = _fit(Healthy(3.0), _digits(), **STALL_FIT)
    assert "divergence" in diagnoser.diagnosis.codes and not diagnoser._pipeline.values._probed
    assert "unfittable_batch" not in _checks(diagnoser)
