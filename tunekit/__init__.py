"""tunekit: why a PyTorch Lightning run goes wrong, what to change, and a search for the change.

The public names are imported on first use (PEP 562), so that ``import tunekit.cli`` and ``tunekit --help`` do
not pay for torch and Lightning.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunekit.callbacks import RecipeMixin
    from tunekit.diagnose import Diagnosis, Finding, FindingCode, Remedy, RemedyCode, Severity
    from tunekit.lr_finder import LRRangeResult, lr_range_test
    from tunekit.recipe import Recipe

__version__ = "0.1.0"

_HOMES = {"RecipeMixin": "tunekit.callbacks", "Diagnosis": "tunekit.diagnose", "Finding": "tunekit.diagnose",
          "FindingCode": "tunekit.diagnose", "Remedy": "tunekit.diagnose", "RemedyCode": "tunekit.diagnose",
          "Severity": "tunekit.diagnose", "LRRangeResult": "tunekit.lr_finder", "lr_range_test": "tunekit.lr_finder",
          "Recipe": "tunekit.recipe"}  # each public name, and the subpackage that defines it

__all__ = ["Diagnosis", "Finding", "FindingCode", "LRRangeResult", "Recipe", "RecipeMixin", "Remedy", "RemedyCode",
           "Severity", "__version__", "lr_range_test"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'tunekit' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
