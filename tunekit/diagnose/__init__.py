"""Diagnosis: rules from recorded training series to findings with concrete remedies (no torch needed)."""

from __future__ import annotations

from tunekit.diagnose._engine import diagnose  # noqa: I001  (imports the rules, which need the types above)
from tunekit.diagnose._record import RunContext, RunRecord
from tunekit.diagnose._types import Diagnosis, Finding, FindingCode, Remedy, RemedyCode, Severity

__all__ = [
    "Diagnosis",
    "Finding",
    "FindingCode",
    "Remedy",
    "RemedyCode",
    "RunContext",
    "RunRecord",
    "Severity",
    "diagnose",
]
