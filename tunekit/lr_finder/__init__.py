"""The LR range test and its suggestion (range test + confirmation runs)."""

from __future__ import annotations

from tunekit.lr_finder._curve import lightning_suggestion, smoothed, valley_suggestion
from tunekit.lr_finder._range_test import lr_range_test
from tunekit.lr_finder._result import Candidate, LRRangeResult

__all__ = ["Candidate", "LRRangeResult", "lightning_suggestion", "lr_range_test", "smoothed", "valley_suggestion"]
