"""The diagnosis of a recorded zoo run, replayed offline: the rules on its stored series, then its probes' stored
outcomes read through ``read_probes``, with the rule constants of a ``Setting`` (for leave-one-family-out
tuning). With the default setting the replay is what the ``Diagnoser`` said at the end of the fit."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tunekit.diagnose import Diagnosis, Finding, RunContext, Severity, diagnose
from tunekit.diagnose._probes import ProbeReport, read_probes
from tunekit.record import RunRecord


@dataclass(frozen=True)
class Setting:
    """Rule constants to use instead of the shipped ones: ``{"module:NAME": value}`` (module under
    ``tunekit.diagnose``)."""

    values: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        return ", ".join(f"{k.split(':')[1]}={v}" for k, v in sorted(self.values.items())) or "shipped constants"


@contextlib.contextmanager
def patched(setting: Setting) -> Iterator[None]:
    saved = []
    for key, value in setting.values.items():
        module_name, name = key.split(":")
        module = importlib.import_module(f"tunekit.diagnose.{module_name}")
        saved.append((module, name, getattr(module, name)))
        setattr(module, name, value)
    try:
        yield
    finally:
        for module, name, value in reversed(saved):
            setattr(module, name, value)


def context_of(result: dict[str, Any]) -> RunContext:
    ctx = dict(result["context"])
    for key in ("lrs", "saturating_layers"):
        ctx[key] = tuple(ctx.get(key, ()))
    return RunContext(**ctx)


def replay(result: dict[str, Any], setting: Setting = Setting()) -> Diagnosis:
    record = RunRecord.from_dict(result["record"])
    ctx = context_of(result)
    reports = {r["finding"]: ProbeReport.from_dict(r) for r in result.get("probes", {}).get("reports", {}).values()}
    with patched(setting):
        diagnosis = diagnose(record, ctx)
        return Diagnosis(read_probes(f, reports[f.code.value], ctx) if f.code.value in reports else f
                         for f in diagnosis.findings)


def verdict(diagnosis: Diagnosis) -> Finding | None:
    """The finding a user acts on: the first warning or critical one (None: healthy)."""
    return next((f for f in diagnosis.findings if f.severity is not Severity.INFO), None)
