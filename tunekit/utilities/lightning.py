"""Lightning helpers shared by the layers that drive a ``Trainer``; every private Lightning attribute tunekit
still reads is wrapped here, with the reason.

Kept out of ``tunekit.utilities``' own namespace so that importing the utilities does not import Lightning
(the recipe and diagnosis layers do not depend on it).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightning.pytorch as pl

_QUIET_WARNINGS = (
    ".*does not have many workers.*",
    ".*smaller than the logging interval.*",
    ".*resuming from a checkpoint that ended before the epoch ended.*",
    ".*callbacks used to create the checkpoint need to be provided.*",
)


def planned_steps(trainer: pl.Trainer) -> int | None:
    """The optimizer steps this fit will take, as Lightning estimates them (``estimated_stepping_batches``:
    epochs, loader length per rank, accumulation, ``limit_train_batches`` and ``max_steps``); None when it
    cannot be told (an iterable loader with no ``max_steps``)."""
    try:
        steps = trainer.estimated_stepping_batches
    except Exception:  # Lightning raises when the accumulation changes between epochs, or no loader can be sized
        return None
    return int(steps) if steps is not None and math.isfinite(steps) and steps > 0 else None


def grad_scaler_of(trainer: pl.Trainer) -> Any:
    """The fp16 ``GradScaler`` of the run, or None (bf16, fp32)."""
    return getattr(trainer.precision_plugin, "scaler", None)


def fit_train_loaders(trainer: pl.Trainer) -> Any:
    """The training loaders given to ``trainer.fit(model, train_dataloaders=...)``, from a ``setup`` hook.

    Private: Lightning keeps them on the fit loop's ``_data_source`` until the loop loads them; there is no
    public way to reach them before ``train_dataloader`` is set (Lightning's own LR finder runs inside the fit
    loop instead).
    """
    return trainer.fit_loop._data_source.dataloader()


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Lightning's info lines ("GPU available", "max_steps reached") and a few warnings would repeat for every
    short run tunekit starts (range-test runs, trials, probes)."""
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for pattern in _QUIET_WARNINGS:
                warnings.filterwarnings("ignore", pattern)
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
