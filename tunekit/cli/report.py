"""``tunekit report``: the self-contained HTML report of a study, or of one run's diagnosis.json."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tunekit.cli._common import console, fail, handle_errors, quiet
from tunekit.search import DEFAULT_STORAGE


@handle_errors
def report(
    diagnosis: Annotated[Path | None, typer.Argument(help="A run's diagnosis.json (instead of a study).")] = None,
    storage: Annotated[str | None, typer.Option(help="Optuna storage URL of the study.")] = None,
    study_name: Annotated[str | None, typer.Option("--study-name", help="The study's name.")] = None,
    out: Annotated[Path, typer.Option("-o", "--out", help="The HTML file to write.")] = Path("report.html"),
) -> None:
    """Write one self-contained HTML file (no network): charts, best recipe, diagnoses."""
    from tunekit.dashboards.report import run_report, study_report, write_report

    quiet()
    if diagnosis is not None and (storage or study_name):
        raise fail("give either a diagnosis.json or --storage/--study-name, not both")
    if diagnosis is None and not study_name:
        raise fail(f"give a diagnosis.json, or --study-name NAME (with --storage URL, default {DEFAULT_STORAGE})")
    text = run_report(diagnosis) if diagnosis is not None else study_report(storage or DEFAULT_STORAGE,
                                                                              study_name)  # type: ignore[arg-type]
    path = write_report(text, out)
    console.print(f"report written to {path} ({path.stat().st_size / 1024:.0f} kB)")
