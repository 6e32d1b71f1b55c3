"""A rich table of a diagnosis, for the terminal."""

from __future__ import annotations

import json

from rich.table import Table

from tunekit.diagnose._types import Diagnosis, Severity

_STYLE = {Severity.CRITICAL: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def diagnosis_table(diagnosis: Diagnosis, title: str = "tunekit diagnosis") -> Table:
    """One row per finding: severity, code, step, what happened, and the remedies best first."""
    table = Table(title=title, show_lines=True, expand=False)
    table.add_column("severity", no_wrap=True)
    table.add_column("finding", no_wrap=True)
    table.add_column("step", justify="right")
    table.add_column("what happened", ratio=3)
    table.add_column("change (best first)", ratio=2)
    if not diagnosis.findings:
        table.add_row("[green]ok[/]", "healthy", "", "no problem found in the training dynamics", "")
    for f in diagnosis.findings:
        # a remedy without a recipe change (check the data, log a missing signal) is its message
        changes = "\n".join(f"{r.code.value}: {json.dumps(dict(r.change)) if r.change else r.message}"
                            for r in f.remedies)
        table.add_row(f"[{_STYLE[f.severity]}]{f.severity.value}[/]", f.code.value, str(f.step), f.message, changes)
    return table
