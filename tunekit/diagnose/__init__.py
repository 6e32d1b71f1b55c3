"""Diagnosis: rules from recorded training series to findings with concrete remedies (no torch needed)."""

from __future__ import annotations

from tunekit.diagnose._context import RunContext
from tunekit.diagnose._engine import diagnose
from tunekit.diagnose._types import Diagnosis, Finding, FindingCode, Intervention, Remedy, RemedyCode, Severity
from tunekit.record import RunRecord

__all__ = [
    "Diagnosis",
    "Finding",
    "FindingCode",
    "Intervention",
    "Remedy",
    "RemedyCode",
    "RunContext",
    "RunRecord",
    "Severity",
    "diagnose",
]
