"""tunekit: why a PyTorch Lightning run goes wrong, what to change, and a search for the change."""

from __future__ import annotations

from tunekit.callbacks import RecipeMixin
from tunekit.diagnose import Diagnosis, Finding, FindingCode, Remedy, RemedyCode, Severity
from tunekit.lr_finder import LRRangeResult, lr_range_test
from tunekit.recipe import Recipe

__version__ = "0.1.0"

__all__ = ["Diagnosis", "Finding", "FindingCode", "LRRangeResult", "Recipe", "RecipeMixin", "Remedy", "RemedyCode",
           "Severity", "__version__", "lr_range_test"]
