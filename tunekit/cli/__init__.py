"""The ``tunekit`` command: thin commands over library functions that return data."""

from __future__ import annotations

import typer

from tunekit.cli.best import best
from tunekit.cli.diagnose import diagnose
from tunekit.cli.lr_find import lr_find
from tunekit.cli.report import report
from tunekit.cli.search import search
from tunekit.cli.storage import storage_app

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="tunekit: why a Lightning run goes wrong, what to change, and a search for the change.")
app.command("search")(search)
app.command("best")(best)
app.command("lr-find")(lr_find)
app.command("report")(report)
app.command("diagnose")(diagnose)
app.add_typer(storage_app, name="storage")


@app.callback()
def _root() -> None:
    """tunekit: diagnose, tune and search optimizer recipes for PyTorch Lightning."""


def main() -> None:
    app()


__all__ = ["app", "main"]
