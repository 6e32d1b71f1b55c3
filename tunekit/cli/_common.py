"""What every command shares: the console, and turning errors into one line and an exit code."""

from __future__ import annotations

import functools
import logging
import sys
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from tunekit.exceptions import TunekitError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2  # done; failure while running; bad usage or config

console = Console(stderr=True)  # progress and tables; stdout is kept for --json and YAML
F = TypeVar("F", bound=Callable[..., Any])



def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print one line to stderr and return the Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def handle_errors(func: F) -> F:
    """User mistakes (``TunekitError``) end with one line and exit 2; anything else while running with one
    line and exit 1 (``TUNEKIT_DEBUG=1`` shows the traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import os

        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except TunekitError as err:
            raise fail(str(err), EXIT_USAGE) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        except Exception as err:
            if os.environ.get("TUNEKIT_DEBUG"):
                raise
            raise fail(f"{type(err).__name__}: {err} (set TUNEKIT_DEBUG=1 for the traceback)", EXIT_FAILED) from None

    return wrapper  # type: ignore[return-value]


def quiet() -> None:
    """Keep library chatter off the terminal: the commands print what matters themselves."""
    warnings.filterwarnings("ignore")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # its per-trial lines would tear the progress display
    for name in ("lightning.pytorch", "lightning.fabric", "lightning", "optuna"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if not sys.warnoptions:
        logging.captureWarnings(True)
