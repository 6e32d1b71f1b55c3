"""Running the ``tunekit`` app in-process from a given folder, as a user runs it from their project."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from tunekit.cli import app

runner = CliRunner()


def run_in(cwd: Path, args: list[str]) -> Any:
    """The app's result for ``args`` run from ``cwd`` (the working folder put back afterwards)."""
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return runner.invoke(app, args, catch_exceptions=False)
    finally:
        os.chdir(old)
