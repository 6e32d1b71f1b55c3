import json
import math

import pytest

from tunekit import Diagnosis, Finding, FindingCode, Remedy, RemedyCode, Severity


def _finding(code: FindingCode, severity: Severity, step: int = 3) -> Finding:
    return Finding(code, severity, step, "msg", {"loss": float("nan"), "lr": 0.1},
                   (Remedy(RemedyCode.LOWER_LR, {"lr": 0.01}, "lower it"),))


def test_findings_are_sorted_most_important_first():
    d = Diagnosis([_finding(FindingCode.PLATEAU, Severity.WARNING), _finding(FindingCode.DIVERGENCE, Severity.CRITICAL),
                   _finding(FindingCode.VANISHING_GRADIENTS, Severity.INFO),
                   _finding(FindingCode.EXPLODING_GRADIENTS, Severity.WARNING)])
    assert d.codes == ["divergence", "exploding_gradients", "plateau", "vanishing_gradients"]
    assert d.is_critical and not d.is_healthy


def test_info_findings_keep_a_run_healthy():
    assert Diagnosis([_finding(FindingCode.VANISHING_GRADIENTS, Severity.INFO)]).is_healthy


def test_to_dict_matches_the_design_contract_and_is_standard_json():
    d = Diagnosis([_finding(FindingCode.DIVERGENCE, Severity.CRITICAL, step=16)])
    data = json.loads(json.dumps(d.to_dict(), allow_nan=False))  # NaN must not leak into the JSON
    (f,) = data["findings"]
    assert f == {"code": "divergence", "severity": "critical", "step": 16, "message": "msg",
                 "evidence": {"loss": "nan", "lr": 0.1},
                 "remedies": [{"code": "lower_lr", "change": {"lr": 0.01}, "message": "lower it"}]}


def test_round_trip_through_a_file(tmp_path):
    d = Diagnosis([_finding(FindingCode.SADDLE_STALL, Severity.WARNING)])
    path = d.save(tmp_path / "deep" / "diagnosis.json")
    back = Diagnosis.load(path)
    assert back.codes == ["saddle_stall"] and back.findings[0].remedies[0].change == {"lr": 0.01}
    assert not list(tmp_path.rglob("*.tmp"))
    assert math.isnan(float(back.findings[0].evidence["loss"]))


def test_unknown_code_in_json_is_rejected():
    with pytest.raises(ValueError, match="not_a_code"):
        Diagnosis.from_dict({"findings": [{"code": "not_a_code", "severity": "info", "step": 0, "message": ""}]})


def test_get_finds_by_code():
    d = Diagnosis([_finding(FindingCode.PLATEAU, Severity.WARNING)])
    assert d.get("plateau").step == 3 and d.get(FindingCode.DIVERGENCE) is None


@pytest.mark.parametrize("code", [*Severity, *FindingCode, *RemedyCode])
def test_a_code_prints_as_its_json_value(code):
    assert str(code) == f"{code}" == code.value == json.loads(json.dumps(code))
    assert f"{code:>20}" == f"{code.value:>20}"
