"""tunekit: why a PyTorch Lightning run goes wrong, what to change, and a search for the change."""

from __future__ import annotations

from tunekit.diagnose import Diagnosis, Finding, FindingCode, Remedy, RemedyCode, Severity

__version__ = "0.1.0"

__all__ = ["Diagnosis", "Finding", "FindingCode", "Remedy", "RemedyCode", "Severity", "__version__"]
