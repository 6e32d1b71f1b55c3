"""The ``tunekit`` command: thin commands over library functions that return data."""

from __future__ import annotations

import os
import sys

import typer

from tunekit.cli.best import best
from tunekit.cli.diagnose import diagnose
from tunekit.cli.lr_find import lr_find
from tunekit.cli.report import report
from tunekit.cli.search import search
from tunekit.cli.storage import storage_app

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="tunekit: why a Lightning run goes wrong, what to change, and a search for the change.")
# plain help (click's formatter): Typer's rich one prints a type beside every flag ("--json <bool>")
app.command("search", short_help="Search optimizer recipes for a config's model (an Optuna study).")(search)
app.command("best", short_help="Print a study's best recipe as YAML.")(best)
app.command("lr-find", short_help="Suggest a learning rate for a config's model.")(lr_find)
app.command("report", short_help="Write a study's or a run's HTML report.")(report)
app.command("diagnose", short_help="Diagnose a run logged without tunekit (CSV, TensorBoard, W&B).")(diagnose)
app.add_typer(storage_app, name="storage")


@app.callback()
def _root() -> None:
    """tunekit: diagnose, tune and search optimizer recipes for PyTorch Lightning."""


def main() -> None:
    """The ``tunekit`` command. The working folder goes first on ``sys.path``, as ``python -m`` puts it there, so a
    config's ``class_path: mymodel.Net`` finds ``mymodel.py`` beside it (an installed console script would look
    only in its own ``bin/`` folder)."""
    if not ({"", ".", os.getcwd()} & set(sys.path)):
        sys.path.insert(0, os.getcwd())
    app()


__all__ = ["app", "main"]
