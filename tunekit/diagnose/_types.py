"""The diagnosis data model: codes, severities, remedies, findings (the JSON contract of docs/contracts.md, "The
diagnosis JSON")."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any


class _Code(str, Enum):
    """A code that prints as its value: ``print(Severity.WARNING)`` shows ``warning``, as the JSON does (a plain
    ``str, Enum`` mixin prints ``Severity.WARNING``)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class Severity(_Code):
    """How bad a finding is. A healthy run has no ``warning`` or ``critical`` finding."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class FindingCode(_Code):
    """What is wrong with a run. The order here is the order findings of equal severity are listed in."""

    DATA_FAULT = "data_fault"
    PIPELINE_FAULT = "pipeline_fault"
    DIVERGENCE = "divergence"
    EXPLODING_GRADIENTS = "exploding_gradients"
    VANISHING_GRADIENTS = "vanishing_gradients"
    SADDLE_STALL = "saddle_stall"
    EARLY_INSTABILITY = "early_instability"
    OSCILLATION = "oscillation"
    SLOW_CONVERGENCE = "slow_convergence"
    PLATEAU = "plateau"
    GENERALIZATION_GAP = "generalization_gap"


class RemedyCode(_Code):
    """What to change. Each remedy carries a concrete ``change`` over the recipe vocabulary."""

    LOWER_LR = "lower_lr"
    RAISE_LR = "raise_lr"
    ADD_WARMUP = "add_warmup"
    DECAY_LR = "decay_lr"
    CLIP_GRADIENTS = "clip_gradients"
    RAISE_MOMENTUM = "raise_momentum"
    LOWER_MOMENTUM = "lower_momentum"
    LOWER_BETA1 = "lower_beta1"
    LOWER_BETA2 = "lower_beta2"
    ADD_WEIGHT_DECAY = "add_weight_decay"
    ADD_GRAD_NOISE = "add_grad_noise"
    SWITCH_TO_SGD = "switch_to_sgd"
    SWITCH_OPTIMIZER = "switch_optimizer"
    RAISE_BATCH_SIZE = "raise_batch_size"
    EARLY_STOP = "early_stop"
    NORMALIZE_INPUTS = "normalize_inputs"
    CHANGE_INIT = "change_init"
    CHANGE_ARCHITECTURE = "change_architecture"
    CHECK_PIPELINE = "check_pipeline"
    # settings that hold a run back while its LR is fine (``_setting_remedies``)
    LOOSEN_CLIPPING = "loosen_clipping"
    LOWER_WEIGHT_DECAY = "lower_weight_decay"
    POSTPONE_DECAY = "postpone_decay"
    SHORTEN_WARMUP = "shorten_warmup"


def _jsonable(value: Any) -> Any:
    """Non-finite floats become the strings ``"nan"``, ``"inf"``, ``"-inf"`` so the JSON stays standard."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _jsonable(value.item())
    return value


@dataclass(frozen=True)
class Remedy:
    """One concrete change to the recipe, with a sentence saying why.

    ``change`` holds absolute new values (``{"lr": 0.0003}``), computed from the live run. Remedies that
    are not recipe changes (``change_init``, ``check_pipeline``, ...) carry an empty ``change``.
    """

    code: RemedyCode
    change: Mapping[str, Any]
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code.value, "change": _jsonable(dict(self.change)), "message": self.message}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Remedy:
        return cls(RemedyCode(data["code"]), dict(data.get("change", {})), str(data.get("message", "")))


@dataclass(frozen=True)
class Finding:
    """One diagnosed problem: where it began, the evidence, and the remedies, best first."""

    code: FindingCode
    severity: Severity
    step: int
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    remedies: tuple[Remedy, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code.value,
            "severity": self.severity.value,
            "step": int(self.step),
            "message": self.message,
            "evidence": _jsonable(dict(self.evidence)),
            "remedies": [r.to_dict() for r in self.remedies],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        return cls(
            code=FindingCode(data["code"]),
            severity=Severity(data["severity"]),
            step=int(data["step"]),
            message=str(data["message"]),
            evidence=dict(data.get("evidence", {})),
            remedies=tuple(Remedy.from_dict(r) for r in data.get("remedies", [])),
        )


@dataclass(frozen=True)
class Intervention:
    """A remedy applied to the running fit by ``Diagnoser(auto_remedy=True)``: at which step, for which finding,
    the remedy and the absolute change made, and what was measured (``evidence``: the rollback, the values, the
    verification's forks). ``undone``: its fork did not beat carrying on unchanged, so it was taken back (``reason``
    says what the forks measured)."""

    step: int
    finding: FindingCode
    remedy: RemedyCode
    change: Mapping[str, Any]
    evidence: Mapping[str, Any] = field(default_factory=dict)
    undone: bool = False
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"step": int(self.step), "finding": self.finding.value, "remedy": self.remedy.value,
               "change": _jsonable(dict(self.change)), "evidence": _jsonable(dict(self.evidence))}
        if self.undone:
            out.update(undone=True, reason=self.reason)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Intervention:
        return cls(int(data["step"]), FindingCode(data["finding"]), RemedyCode(data["remedy"]),
                   dict(data.get("change", {})), dict(data.get("evidence", {})), bool(data.get("undone", False)),
                   data.get("reason"))


def _sort_key(finding: Finding) -> tuple[int, int, int]:
    order = list(FindingCode).index(finding.code)
    return (-finding.severity.rank, order, finding.step)


@dataclass(frozen=True)
class Diagnosis:
    """The findings of one run, most important first.

    Example:
        >>> from tunekit import Diagnosis
        >>> Diagnosis().is_healthy
        True
        >>> Diagnosis().to_dict()
        {'findings': []}
    """

    findings: tuple[Finding, ...] = ()
    interventions: tuple[Intervention, ...] = ()

    def __init__(self, findings: Iterable[Finding] = (), interventions: Iterable[Intervention] = ()) -> None:
        object.__setattr__(self, "findings", tuple(sorted(findings, key=_sort_key)))
        object.__setattr__(self, "interventions", tuple(interventions))

    @property
    def codes(self) -> list[str]:
        """The finding codes, most important first."""
        return [f.code.value for f in self.findings]

    @property
    def is_healthy(self) -> bool:
        """True when no finding is a ``warning`` or ``critical``."""
        return all(f.severity is Severity.INFO for f in self.findings)

    @property
    def is_critical(self) -> bool:
        return any(f.severity is Severity.CRITICAL for f in self.findings)

    def get(self, code: FindingCode | str) -> Finding | None:
        """The finding with this code, or None."""
        code = FindingCode(code)
        return next((f for f in self.findings if f.code is code), None)

    def to_dict(self) -> dict[str, Any]:
        """``{"findings": [...]}``, and ``"interventions": [...]`` when auto-remedy changed the fit."""
        out: dict[str, Any] = {"findings": [f.to_dict() for f in self.findings]}
        if self.interventions:
            out["interventions"] = [i.to_dict() for i in self.interventions]
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Diagnosis:
        return cls((Finding.from_dict(f) for f in data.get("findings", [])),
                   (Intervention.from_dict(i) for i in data.get("interventions", [])))

    def save(self, path: str | Path) -> Path:
        """Write the JSON to ``path`` (parents created), atomically: a reader never sees half a file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        from tunekit.utilities.files import write_atomic

        return write_atomic(path, self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Diagnosis:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def __rich__(self) -> Any:
        from tunekit.diagnose._render import diagnosis_table

        return diagnosis_table(self)
