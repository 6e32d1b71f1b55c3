"""Real Trainer runs on sklearn's digits for the callback tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lightning.pytorch as pl
import pytest
import torch

from tunekit.examples import MLP, DigitsDataModule


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny models: a second thread only waits on the first (and on a shared machine, on everyone else). A module
    uses it with ``pytestmark = pytest.mark.usefixtures("one_thread")`` after importing it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def fit(tmp_path, model_kwargs: dict[str, Any], callbacks: list, *, epochs: int = 5, data: dict | None = None,
        seed: int = 0, **trainer_kwargs: Any) -> pl.Trainer:
    pl.seed_everything(seed, verbose=False)
    trainer_kwargs.setdefault("logger", False)
    trainer_kwargs.setdefault("enable_checkpointing", False)
    trainer = pl.Trainer(max_epochs=epochs, callbacks=callbacks, default_root_dir=tmp_path,
                         enable_progress_bar=False, enable_model_summary=False, **trainer_kwargs)
    trainer.fit(MLP(**model_kwargs), datamodule=DigitsDataModule(seed=seed, **(data or {})))
    return trainer


def fault_of(diagnoser: Any, check: str) -> tuple[Any, dict[str, Any], Any]:
    """The ``pipeline_fault`` finding, the evidence of its ``check`` fault and that fault's remedy (asserted there)."""
    finding = diagnoser.diagnosis.get("pipeline_fault")
    assert finding is not None, diagnoser.diagnosis.codes
    checks = [f["check"] for f in finding.evidence["faults"]]
    assert check in checks, checks
    i = checks.index(check)
    return finding, finding.evidence["faults"][i], finding.remedies[i]
