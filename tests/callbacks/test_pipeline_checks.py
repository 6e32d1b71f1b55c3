"""The Diagnoser's pipeline checks on real fits: each fault injected into a small digits classifier is named in one
``pipeline_fault`` finding with the object at fault, and the same module without the fault gives none."""

from __future__ import annotations

import warnings
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

from tests.callbacks.helpers import fault_of, one_thread  # noqa: F401 (one_thread: the fixture, used by name)
from tunekit.callbacks import Diagnoser
from tunekit.diagnose import Finding

STEPS = 10  # optimizer steps per fit: past every check's window (3 steps, 8 steps, 8 batches)
BATCH = 32


pytestmark = pytest.mark.usefixtures("one_thread")


def _digits() -> TensorDataset:
    X, y = load_digits(return_X_y=True)
    return TensorDataset(torch.tensor(X / 16.0, dtype=torch.float32), torch.tensor(y))


class OneSample(Dataset):
    """A dataset whose ``__getitem__`` ignores its index: every batch is the same."""

    def __init__(self, data: TensorDataset) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> Any:
        return self.data[0]


class Net(pl.LightningModule):
    """64 -> 32 (BatchNorm, dropout) -> 10 on digits, Adam; subclasses inject one fault each."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.1))
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self) -> Any:
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def _fit(model: pl.LightningModule, data: Dataset | None = None, epochs: int = 1,
         batches: int = STEPS, trainer_args: dict | None = None, batch_size: int | None = BATCH,
         **settings: Any) -> Diagnoser:
    pl.seed_everything(0, verbose=False)
    loader = DataLoader(data if data is not None else _digits(), batch_size=batch_size, shuffle=True)
    diagnoser = Diagnoser(verbose=False, save=False, probes=False, **settings)
    trainer = pl.Trainer(max_epochs=epochs, limit_train_batches=batches, callbacks=[diagnoser], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         **(trainer_args or {}))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*tunekit: pipeline fault.*")
        warnings.filterwarnings("ignore", ".*in eval mode at the start of training.*")
        warnings.filterwarnings("ignore", ".*lr_scheduler.step.*")
        trainer.fit(model, loader)
    return diagnoser


def _fault(diagnoser: Diagnoser, check: str) -> tuple[Finding, dict[str, Any], str]:
    """The pipeline finding, the evidence of its ``check`` fault and that fault's remedy message."""
    finding, fault, remedy = fault_of(diagnoser, check)
    assert remedy.code.value == "check_pipeline"
    return finding, fault, remedy.message


def test_a_healthy_module_has_no_pipeline_fault():
    diagnoser = _fit(Net(), epochs=2)
    assert "pipeline_fault" not in diagnoser.diagnosis.codes
    assert not diagnoser._pipeline.active and diagnoser._pipeline._watch is None  # every window closed, hook off


# ------------------------------------------------------------------ 2. parameters that never learn
class UnusedLayer(Net):
    def __init__(self) -> None:
        super().__init__()
        self.aux = nn.Linear(32, 10)  # built, never called in forward


class HeadLeftOut(Net):
    def configure_optimizers(self) -> Any:
        return torch.optim.Adam(self.body.parameters(), lr=1e-3)  # the head gets gradients, never updates


class NothingOptimized(Net):
    def configure_optimizers(self) -> Any:
        return torch.optim.Adam(nn.Linear(1, 1).parameters(), lr=1e-3)  # a stray module's parameters


def test_a_layer_outside_the_graph_is_named_as_getting_no_gradient():
    finding, fault, fix = _fault(_fit(UnusedLayer()), "no_gradient")
    assert fault["parameters"] == ["aux.weight", "aux.bias"] and fault["trainable"] == 8
    assert finding.severity.value == "warning"
    assert "aux.weight, aux.bias" in finding.message and "unused or detached" in finding.message
    assert "aux.weight" in fix


def test_a_fit_shorter_than_the_windows_is_judged_at_its_end():
    finding, fault, _ = _fault(_fit(UnusedLayer(), batches=2), "no_gradient")
    assert fault["step"] == 2 and "in the first 2 optimizer steps" in finding.message


def test_the_checks_can_be_switched_off():
    diagnoser = _fit(UnusedLayer(), pipeline_checks=False)
    assert "pipeline_fault" not in diagnoser.diagnosis.codes and diagnoser._pipeline.faults == {}


def test_parameters_in_no_optimizer_are_named_and_all_of_them_is_critical():
    finding, fault, fix = _fault(_fit(HeadLeftOut()), "not_in_optimizer")
    assert fault["parameters"] == ["head.weight", "head.bias"] and finding.severity.value == "warning"
    assert "head.weight, head.bias" in fix
    diagnoser = _fit(NothingOptimized())
    finding, fault, _ = _fault(diagnoser, "not_in_optimizer")
    assert fault["count"] == fault["trainable"] == 6 and finding.severity.value == "critical"


# ------------------------------------------------------------------ 3. gradients never cleared, the same batch
class ManualNet(Net):
    def __init__(self, clear: bool) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.clear = clear

    def training_step(self, batch: Any, batch_idx: int) -> None:
        optimizer = self.optimizers()
        if self.clear:
            optimizer.zero_grad()
        x, y = batch
        self.manual_backward(F.cross_entropy(self(x), y))
        optimizer.step()


def test_gradients_never_cleared_under_manual_optimization_are_found():
    finding, fault, fix = _fault(_fit(ManualNet(clear=False)), "gradients_never_cleared")
    assert fault["parameter"] == "body.0.weight" and fault["steps_seen"] == 4 and fault["manual_optimization"]
    assert "body.0.weight" in finding.message and "optimizer.zero_grad()" in fix
    assert "pipeline_fault" not in _fit(ManualNet(clear=True)).diagnosis.codes


class ManualAccumulation(Net):
    """Two batches per optimizer step, by hand: the gradient is cleared after each step, not after each batch."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False

    def training_step(self, batch: Any, batch_idx: int) -> None:
        optimizer = self.optimizers()
        x, y = batch
        self.manual_backward(F.cross_entropy(self(x), y) / 2)
        if batch_idx % 2 == 1:
            optimizer.step()
            optimizer.zero_grad()


def test_gradient_accumulation_is_not_a_gradient_left_uncleared():
    assert "pipeline_fault" not in _fit(Net(), batches=2 * STEPS,
                                        trainer_args={"accumulate_grad_batches": 2}).diagnosis.codes
    diagnoser = _fit(ManualAccumulation(), batches=2 * STEPS)
    assert "pipeline_fault" not in diagnoser.diagnosis.codes and diagnoser._pipeline._clearing_done


class ManualScheduled(ManualNet):
    """Steps a per-step cosine itself, every batch: Lightning's interval (left at "epoch") plays no part."""

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        steps = self.trainer.estimated_stepping_batches
        return [optimizer], [torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)]

    def on_train_batch_end(self, *args: Any) -> None:
        self.lr_schedulers().step()


def test_a_schedule_stepped_by_hand_is_not_judged_by_its_interval():
    assert "pipeline_fault" not in _fit(ManualScheduled(clear=True), epochs=3).diagnosis.codes


def test_the_same_batch_every_step_is_found():
    finding, fault, fix = _fault(_fit(Net(), OneSample(_digits())), "repeated_batch")
    assert fault["batches"] == 8 and "same batch every step" in finding.message and "__getitem__" in fix


class WholeSet(Dataset):
    """Full-batch training as a public report (case 02) writes it: every item is the whole training set, and the
    loader does not collate (``batch_size=None``). ``copied``: every item is one sample copied 64 times instead."""

    def __init__(self, data: TensorDataset, copied: bool = False) -> None:
        x, y = data.tensors
        self.x, self.y = (x[:1].repeat(64, 1), y[:1].repeat(64)) if copied else (x[:64], y[:64])

    def __len__(self) -> int:
        return 100

    def __getitem__(self, index: int) -> Any:
        return self.x, self.y


def test_the_whole_set_as_every_item_is_a_hint_and_one_sample_copied_a_warning():
    finding, fault, _ = _fault(_fit(Net(), WholeSet(_digits()), batch_size=None), "repeated_batch")
    assert finding.severity.value == "info" and fault["whole_batches"] is True
    assert "full-batch training does on purpose" in finding.message
    finding, fault, _ = _fault(_fit(Net(), WholeSet(_digits(), copied=True), batch_size=None), "repeated_batch")
    assert finding.severity.value == "warning" and fault["whole_batches"] is False
    finding, fault, _ = _fault(_fit(Net(), OneSample(_digits())), "repeated_batch")  # collated by the loader
    assert finding.severity.value == "warning" and fault["whole_batches"] is False


def test_full_batch_training_is_not_the_same_batch_fault():
    # one batch per epoch: consecutive steps see the same batch on purpose
    assert "pipeline_fault" not in _fit(Net(), epochs=STEPS, batches=1).diagnosis.codes


# ------------------------------------------------------------------ 4. modules in eval mode
class EvalBody(Net):
    def __init__(self, frozen: bool) -> None:
        super().__init__()
        self.body.eval()  # Lightning keeps a submodule's mode through the fit
        if frozen:
            self.body.requires_grad_(False)


class EvalLater(Net):
    def on_train_epoch_start(self) -> None:
        self.body[3].eval()  # dropout switched off after the fit started


def test_modules_in_eval_mode_are_named_unless_frozen_on_purpose():
    finding, fault, fix = _fault(_fit(EvalBody(frozen=False)), "eval_mode")
    assert [m["module"] for m in fault["modules"]] == ["body"]
    assert fault["modules"][0]["affected"] == ["body.1 (BatchNorm1d)", "body.3 (Dropout)"]
    assert "body (body.1 (BatchNorm1d), body.3 (Dropout))" in finding.message and "body" in fix
    assert "pipeline_fault" not in _fit(EvalBody(frozen=True)).diagnosis.codes  # a frozen backbone


def test_a_module_put_in_eval_mode_after_the_start_is_found_at_the_first_check():
    _, fault, _ = _fault(_fit(EvalLater()), "eval_mode")
    assert fault["modules"][0]["affected"] == ["body.3 (Dropout)"] and fault["step"] == 3


# ------------------------------------------------------------------ 5. a schedule stepped at the wrong interval
class Scheduled(Net):
    def __init__(self, kind: str, interval: str | None) -> None:
        super().__init__()
        self.kind, self.interval = kind, interval

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        steps, epochs = self.trainer.estimated_stepping_batches, self.trainer.max_epochs
        if self.kind == "one_cycle":
            scheduler: Any = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=steps)
        elif self.kind == "cosine_over_epochs":
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        else:  # a linear warmup over half the steps: stepped once an epoch, 3 of its 15 steps
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / (steps / 2)))
        config = {"scheduler": scheduler} | ({"interval": self.interval} if self.interval else {})
        return {"optimizer": optimizer, "lr_scheduler": config}


@pytest.mark.parametrize("kind, wrong, right", [
    ("one_cycle", None, "step"), ("warmup", None, "step"), ("cosine_over_epochs", "step", "epoch")])
def test_a_schedule_stepped_at_the_wrong_interval_is_named(kind, wrong, right):
    finding, fault, fix = _fault(_fit(Scheduled(kind, wrong), epochs=3), "schedule_interval")
    scheduler = fault["schedulers"][0]["scheduler"]
    names = {"one_cycle": "OneCycleLR", "warmup": "LambdaLR", "cosine_over_epochs": "CosineAnnealingLR"}
    assert scheduler == names[kind]
    assert scheduler in finding.message and f'"interval": "{right}"' in fix
    assert "pipeline_fault" not in _fit(Scheduled(kind, right), epochs=3).diagnosis.codes


# ------------------------------------------------------------------ no false alarm on the bundled examples
def test_the_bundled_example_models_have_no_pipeline_fault(tmp_path):
    from tunekit.examples import (
        MLP,
        CharTransformer,
        DigitsCNN,
        DigitsDataModule,
        PythonSourceDataModule,
        SequenceGRU,
        SequenceSumDataModule,
    )

    text = PythonSourceDataModule(train_windows=384, val_windows=32)
    runs = [
        (MLP(dropout=0.2, warmup_steps=3, schedule="one_cycle"), DigitsDataModule()),
        (MLP(optimizer="sgd", momentum=0.9, schedule="cosine", switch_to_sgd_at=None), DigitsDataModule()),
        (DigitsCNN(), DigitsDataModule()),
        (SequenceGRU(), SequenceSumDataModule()),
        (CharTransformer(vocab_size=text.vocab_size, warmup_steps=4, schedule="cosine"), text),
    ]
    for model, data in runs:
        pl.seed_everything(0, verbose=False)
        diagnoser = Diagnoser(verbose=False, save=False, probes=False)
        trainer = pl.Trainer(max_epochs=1, limit_train_batches=STEPS, limit_val_batches=1, callbacks=[diagnoser],
                             logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, default_root_dir=tmp_path)
        trainer.fit(model, datamodule=data)
        assert diagnoser.diagnosis.get("pipeline_fault") is None, (type(model).__name__, diagnoser.diagnosis.codes)
        assert diagnoser._pipeline.faults == {}
