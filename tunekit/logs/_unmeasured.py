"""Findings of a logged run rid of the numbers the log did not measure.

The rules compute their remedies from the run's settings (``RunContext``) and its gradient norms. A log may
hold neither: no LR column, no gradient norm, no momentum or weight decay. The rules then see stand-ins (a unit
LR, the defaults of ``RunContext``, no healthy gradient norm), and whatever they say with them is not a
measurement: a change keeps only measured values, and a message says what to log instead of quoting a stand-in.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection

from tunekit.diagnose import Finding, Remedy, RemedyCode
from tunekit.diagnose._stats import fmt

UNIT_LR = 1.0  # an unlogged LR is diagnosed at 1: an LR remedy's new value is then the factor to apply
LOG_LR = "log it with Lightning's LearningRateMonitor"
LOG_GRAD_NORM = ("log it (Lightning's grad_norm utility, logged in on_before_optimizer_step) and clip a little above "
                 "a healthy step's")
# the setting each remedy quotes as "from <current> to <new>", and the context field that holds it
QUOTES = {RemedyCode.RAISE_MOMENTUM: ("momentum", "beta1"), RemedyCode.LOWER_BETA1: ("beta1",),
          RemedyCode.LOWER_BETA2: ("beta2",), RemedyCode.ADD_WEIGHT_DECAY: ("weight_decay",)}
FROM_TO = re.compile(r" from [-+0-9.e]+ to ")
# the rules' phrases that quote the run's current LR in a finding's message
# a number printed with all its digits (a rule's ``:.0f`` of a ratio in the 1e27s): seven digits or more
LONG_NUMBER = re.compile(r"(?<![\w.])\d{7,}(?:\.\d+)?(?![\d.])")
LR_PHRASES = (re.compile(r"(a constant learning rate) of \S+?(?=[\s,.;:)]|$)"),
              re.compile(r",? at lr \S+?(?=[\s,;:)]|$)"))


def scrub(finding: Finding, measured: Collection[str], grad_norm: bool) -> Finding:
    """``finding`` without the numbers that were not measured.

    Args:
        measured: the ``RunContext`` fields read from the log (``"lr"``, ``"momentum"``, ``"beta1"``, ...).
        grad_norm: whether the log holds a finite gradient norm (a clipping threshold is read from it).
    """
    remedies = tuple(_remedy(r, measured, grad_norm) for r in finding.remedies)
    message, evidence = human(finding.message), dict(finding.evidence)
    if "lr" not in measured:
        evidence.pop("lr", None)
        for phrase in LR_PHRASES:
            message = phrase.sub(lambda m: m.group(1) if m.groups() else "", message)
    return dataclasses.replace(finding, message=message, evidence=evidence, remedies=remedies)


def _remedy(r: Remedy, measured: Collection[str], grad_norm: bool) -> Remedy:
    if "lr" not in measured and r.code in (RemedyCode.LOWER_LR, RemedyCode.RAISE_LR):
        head, _, why = r.message.partition(": ")
        factor = float(r.change["lr"]) / UNIT_LR
        return Remedy(r.code, _without(r, "lr"), f"{head.split(' from ')[0]} to {fmt(factor)}x its value "
                      f"({why.rstrip('.')}); the run's learning rate was not logged: {LOG_LR}.")
    if "lr" not in measured and r.code is RemedyCode.DECAY_LR:  # a schedule starts from the run's own LR
        return Remedy(r.code, _without(r, "lr"), r.message.replace(f" from {fmt(UNIT_LR)}", " from the run's learning "
                                                                  "rate"))
    if r.code is RemedyCode.CLIP_GRADIENTS and not grad_norm:
        return Remedy(r.code, _without(r, "gradient_clip_val"),
                      f"Clip gradients: the gradient norm was not logged, so no threshold can be read from this "
                      f"run; {LOG_GRAD_NORM}.")
    quoted = QUOTES.get(r.code, ())
    if quoted and not any(name in measured for name in quoted):
        return Remedy(r.code, r.change, FROM_TO.sub(" to ", r.message, count=1))  # "from <a default> to" dropped
    return r


def _without(r: Remedy, key: str) -> dict[str, object]:
    return {k: v for k, v in r.change.items() if k != key}


def human(message: str) -> str:
    """``message`` with every number of seven digits or more written as a person would (``2.14e+27``).

    Example:
        >>> human("the loss blew up to 1e+30 (2137718754480207587203612672x its initial 0.48)")
        'the loss blew up to 1e+30 (2.14e+27x its initial 0.48)'
    """
    return LONG_NUMBER.sub(lambda m: fmt(float(m.group())), message)
