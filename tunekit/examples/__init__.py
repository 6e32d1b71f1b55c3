"""Bundled example models and data modules (sklearn's data sets and Python's own source: no downloads)."""

from __future__ import annotations

from tunekit.examples.data import (
    ArrayDataModule,
    BreastCancerDataModule,
    DiabetesDataModule,
    DigitsDataModule,
    IrisDataModule,
    SequenceSumDataModule,
    WineDataModule,
)
from tunekit.examples.models import MLP, SequenceGRU, SupervisedModule
from tunekit.examples.text import CharTransformer, PythonSourceDataModule, python_source_text
from tunekit.examples.vision import DigitsCNN

__all__ = ["MLP", "ArrayDataModule", "BreastCancerDataModule", "CharTransformer", "DiabetesDataModule",
           "DigitsCNN", "DigitsDataModule", "IrisDataModule", "PythonSourceDataModule", "SequenceGRU",
           "SequenceSumDataModule", "SupervisedModule",
           "WineDataModule", "python_source_text"]
