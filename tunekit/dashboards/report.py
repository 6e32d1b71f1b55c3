"""The self-contained HTML report of a study or a single run: one file, charts inline as SVG, nothing fetched.

    tunekit report --study-name search -o report.html      # the default storage, sqlite:///tunekit.db
    tunekit report lightning_logs/version_0/tunekit/diagnosis.json -o run.html
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from tunekit.dashboards import _charts as charts
from tunekit.diagnose import Diagnosis
from tunekit.exceptions import ConfigError
from tunekit.search import _attrs as A
from tunekit.utilities.files import write_atomic

BEST_TRIALS = 3  # trials whose curves the study report draws
RECIPE_DIGITS = 4  # significant digits of the best recipe's numbers

CSS = """
body{font:14px/1.45 -apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1d2733;margin:0;
background:#f5f7fa}
main{max-width:1120px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 10px;color:#1f4e99}
.sub{color:#5b6773;margin-bottom:18px}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{background:#fff;border:1px solid #dde3ea;border-radius:8px;padding:10px 14px;min-width:120px}
.card b{display:block;font-size:18px}.card span{color:#5b6773;font-size:12px}
section{background:#fff;border:1px solid #dde3ea;border-radius:8px;padding:14px 16px;margin-top:14px}
svg{max-width:100%;height:auto}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #edf0f4;vertical-align:top}
th{color:#5b6773;font-weight:600}
pre{background:#0f1720;color:#e6edf3;padding:12px 14px;border-radius:6px;overflow:auto;font-size:13px}
.sev{font-weight:600}.critical{color:#c0392b}.warning{color:#b7860b}.info{color:#2b8cbe}.ok{color:#2a9d3a}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:14px}@media(max-width:900px){.grid2{grid-template-columns:1fr}}
"""


def _page(title: str, subtitle: str, body: str) -> str:
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width,initial-scale=1'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body><main><h1>{html.escape(title)}</h1>"
            f"<div class='sub'>{html.escape(subtitle)}</div>{body}</main></body></html>")


def _cards(items: list[tuple[str, str]]) -> str:
    return "<div class='cards'>" + "".join(
        f"<div class='card'><b>{html.escape(v)}</b><span>{html.escape(k)}</span></div>" for k, v in items) + "</div>"


def _findings_table(diagnosis: Diagnosis) -> str:
    if not diagnosis.findings:
        return "<p class='sev ok'>healthy: no problem found in the training dynamics</p>"
    rows = []
    for f in diagnosis.findings:
        remedies = "<br>".join(f"<code>{html.escape(r.code.value)}</code> {html.escape(json.dumps(dict(r.change)))}"
                               for r in f.remedies)
        rows.append(f"<tr><td class='sev {f.severity.value}'>{f.severity.value}</td><td>{f.code.value}</td>"
                    f"<td>{f.step}</td><td>{html.escape(f.message)}</td><td>{remedies}</td></tr>")
    return ("<table><tr><th>severity</th><th>finding</th><th>step</th><th>what happened</th>"
            "<th>change (best first)</th></tr>" + "".join(rows) + "</table>")


def _interventions_table(events: list[dict[str, Any]]) -> str:
    rows = "".join(f"<tr><td>{e['step']}</td><td>{html.escape(e['finding'])}</td><td><code>{html.escape(e['remedy'])}"
                   f"</code></td><td>{html.escape(json.dumps(e['change']))}</td><td>"
                   f"{html.escape(str(e['evidence'].get('rolled_back_to', '')))}</td></tr>" for e in events)
    return ("<table><tr><th>step</th><th>finding</th><th>remedy</th><th>change</th><th>rolled back to step</th></tr>"
            + rows + "</table>")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def study_report(storage: str, study_name: str) -> str:
    """The HTML report of a study: history, importances, LR range test, best trials' curves, best recipe."""
    import yaml

    from tunekit.search import StudyView, mask

    view = StudyView.load(storage, study_name)
    monitor, minimize = view.monitor, view.minimize
    trials = view.trial_rows()
    ranked = view.complete()
    counts = view.counts()
    body = [_cards([("trials", str(len(trials))), ("complete", str(counts["complete"])),
                    ("pruned", str(counts["pruned"])), ("failed", str(counts["fail"])),
                    (f"best {monitor}", _fmt(ranked[0].value) if ranked else "none")])]
    body.append(f"<section><h2>Optimization history</h2>{charts.history(trials, monitor, minimize)}</section>")
    importance = view.importances()
    lr_results = view.lr_ranges()
    if importance:
        body.append(f"<section><h2>Parameter importances</h2>{charts.importances(importance)}</section>")
    if lr_results:
        body.append(f"<section><h2>LR range test</h2>{charts.lr_ranges(lr_results)}</section>")
    if ranked:
        best = ranked[0]
        recipe = view.recipe_of(best, compact=True, digits=RECIPE_DIGITS)
        body.append(f"<section><h2>Best recipe: trial {best.number}, {html.escape(monitor)} "
                    f"{_fmt(best.value)}</h2><pre>{html.escape(yaml.safe_dump({'recipe': recipe}, sort_keys=False))}"
                    f"</pre>{_findings_table(Diagnosis.from_dict(best.user_attrs.get(A.DIAGNOSIS, {})))}</section>")
        parts = []
        for trial in ranked[:BEST_TRIALS]:
            series = trial.user_attrs.get(A.CURVES)
            if series:
                found = trial.user_attrs.get(A.DIAGNOSIS, {}).get("findings", [])
                parts.append(charts.curves(series, found, f"trial {trial.number}: {monitor} {_fmt(trial.value)}"))
        if parts:
            body.append("<section><h2>Best trials: loss and gradient norm, findings marked where they began</h2>"
                        + "".join(parts) + "</section>")
    body.append(f"<section><h2>Trials</h2>{_trials_table(trials)}</section>")
    return _page(f"tunekit study: {study_name}", f"{mask(storage)} · {monitor} · "
                 f"{'minimize' if minimize else 'maximize'}", "".join(body))


def _trials_table(trials: list[dict[str, Any]]) -> str:
    params = sorted({k for t in trials for k in t["params"]})
    head = "".join(f"<th>{html.escape(p)}</th>" for p in ["trial", "state", "value", *params, "findings"])
    rows = []
    for t in trials:
        cells = [str(t["number"]), t["state"] + (" (repaired)" if t.get("repaired") else ""), _fmt(t["value"]),
                 *[_fmt(t["params"].get(p)) for p in params], ", ".join(t["findings"])]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def run_report(diagnosis_path: str | Path) -> str:
    """The HTML report of one run from its ``diagnosis.json`` (and ``signals.json`` beside it, if there)."""
    path = Path(diagnosis_path)
    if not path.is_file():
        raise ConfigError(f"{str(path)!r} is not a file: pass the diagnosis.json a Diagnoser wrote.")
    try:
        diagnosis = Diagnosis.load(path)
    except (ValueError, KeyError) as err:
        raise ConfigError(f"{str(path)!r} is not a tunekit diagnosis.json ({err}).") from None
    series_path = path.with_name("signals.json")
    worst = diagnosis.findings[0].severity.value if diagnosis.findings else "healthy"
    cards = [("findings", str(len(diagnosis.findings))), ("worst", worst)]
    if diagnosis.interventions:
        cards.append(("interventions", str(len(diagnosis.interventions))))
    body = [_cards(cards)]
    events = [i.to_dict() for i in diagnosis.interventions]
    if series_path.is_file():
        series = json.loads(series_path.read_text())
        found = [f.to_dict() for f in diagnosis.findings]
        body.append(f"<section><h2>Loss and gradient norms, findings marked where they began"
                    f"{', interventions where they were applied' if events else ''}</h2>"
                    f"{charts.curves(series, found, 'training run', layers=True, interventions=events)}</section>")
    body.append(f"<section><h2>Diagnosis</h2>{_findings_table(diagnosis)}</section>")
    if events:
        body.append(f"<section><h2>Interventions (auto-remedy)</h2>{_interventions_table(events)}</section>")
    return _page("tunekit run diagnosis", str(path), "".join(body))


def write_report(text: str, out: str | Path) -> Path:
    """Write atomically (a reader never sees half a report)."""
    out = Path(out)
    if not out.parent.exists():
        raise ConfigError(f"cannot write {str(out)!r}: the folder {str(out.parent)!r} does not exist.")
    return write_atomic(out, text)
