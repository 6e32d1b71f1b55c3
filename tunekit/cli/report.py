"""``tunekit report``: the self-contained HTML report of a study, or of one run's diagnosis.json."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tunekit.cli._common import STUDY_NAME_HELP, fail, handle_errors, messages, quiet, study_name_or_only
from tunekit.utilities.defaults import DEFAULT_STORAGE


@handle_errors
def report(
    diagnosis: Annotated[Path | None, typer.Argument(metavar="DIAGNOSIS", help="A run's diagnosis.json (instead of a "
                                                     "study).")] = None,
    storage: Annotated[str | None, typer.Option(help=f"Optuna storage URL of the study (default {DEFAULT_STORAGE}).")]
    = None,
    study_name: Annotated[str | None, typer.Option("--study-name", help=STUDY_NAME_HELP)] = None,
    out: Annotated[Path, typer.Option("-o", "--out", help="The HTML file to write.")] = Path("report.html"),
) -> None:
    """Write one self-contained HTML file (no network): charts, best recipe, diagnoses."""
    from tunekit.dashboards.report import run_report, study_report, write_report

    quiet()
    if diagnosis is not None and (storage or study_name):
        raise fail("give either a diagnosis.json or --storage/--study-name, not both")
    if diagnosis is not None:
        text = run_report(diagnosis)
    else:
        url = storage or DEFAULT_STORAGE
        text = study_report(url, study_name_or_only(url, study_name))
    path = write_report(text, out)
    messages().print(f"report written to {path} ({path.stat().st_size / 1024:.0f} kB)")
