"""Runs the rules over a record and reconciles their findings into one ``Diagnosis``."""

from __future__ import annotations

from collections.abc import Iterable

from tunekit.diagnose._context import RunContext
from tunekit.diagnose._types import Diagnosis, Finding, FindingCode
from tunekit.diagnose.rules import ALL_RULES, Rule, check_data_fault, check_divergence
from tunekit.record import RunRecord

# A finding that explains the same stretch of curve better silences these (they would be symptoms).
_WHOLE_RECORD = (check_divergence, check_data_fault)  # the rules that judge the non-finite step itself
_SILENCES: dict[FindingCode, frozenset[FindingCode]] = {
    FindingCode.DATA_FAULT: frozenset({FindingCode.DIVERGENCE, FindingCode.EXPLODING_GRADIENTS,
                                       FindingCode.EARLY_INSTABILITY}),
    FindingCode.DIVERGENCE: frozenset({FindingCode.EXPLODING_GRADIENTS, FindingCode.OSCILLATION,
                                       FindingCode.EARLY_INSTABILITY, FindingCode.PLATEAU,
                                       FindingCode.SLOW_CONVERGENCE, FindingCode.SADDLE_STALL}),
    FindingCode.SADDLE_STALL: frozenset({FindingCode.SLOW_CONVERGENCE, FindingCode.PLATEAU}),
    FindingCode.OSCILLATION: frozenset({FindingCode.PLATEAU, FindingCode.GENERALIZATION_GAP,
                                        FindingCode.EARLY_INSTABILITY, FindingCode.EXPLODING_GRADIENTS}),
    FindingCode.EXPLODING_GRADIENTS: frozenset({FindingCode.GENERALIZATION_GAP, FindingCode.SADDLE_STALL,
                                                FindingCode.SLOW_CONVERGENCE, FindingCode.PLATEAU}),
}


def diagnose(record: RunRecord, context: RunContext | None = None, rules: Iterable[Rule] = ALL_RULES) -> Diagnosis:
    """Diagnose a recorded run.

    Divergence and data faults are judged on the whole record; every other rule sees only the part before the first
    non-finite step, since nothing after it means anything.

    Example:
        >>> from tunekit.diagnose import RunRecord, RunContext, diagnose
        >>> rec = RunRecord.from_series([2.3, 2.2, 2.4, 9.0, float("nan")], grad_norm=[1, 2, 40, 900, float("nan")])
        >>> d = diagnose(rec, RunContext(optimizer="sgd", lr=3.0))
        >>> d.codes, d.findings[0].remedies[0].change
        (['divergence'], {'lr': 0.3})
    """
    context = context or RunContext()
    finite = record.finite_part()
    findings: list[Finding] = []
    for rule in rules:
        found = rule(record if rule in _WHOLE_RECORD else finite, context)
        if found is not None:
            findings.append(found)
    present = {f.code for f in findings}
    silenced = set().union(*(_SILENCES.get(code, frozenset()) for code in present))
    return Diagnosis(f for f in findings if f.code not in silenced)
