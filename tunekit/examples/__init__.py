"""Bundled example models and data modules (sklearn's data sets, no downloads)."""

from __future__ import annotations

from tunekit.examples.data import (
    ArrayDataModule,
    BreastCancerDataModule,
    DiabetesDataModule,
    DigitsDataModule,
)
from tunekit.examples.models import MLP

__all__ = ["MLP", "ArrayDataModule", "BreastCancerDataModule", "DiabetesDataModule", "DigitsDataModule"]
