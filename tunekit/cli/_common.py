"""What every command shares: the console, and turning errors into one line and an exit code."""

from __future__ import annotations

import functools
import logging
import sys
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from tunekit.exceptions import TunekitError

if TYPE_CHECKING:  # rich is imported when something is printed: --help does not pay for it
    from rich.console import Console

EXIT_FAILED, EXIT_USAGE = 1, 2  # failure while running; bad usage or config (0: done)
STUDY_NAME_HELP = "The study's name (default: the storage's only study)."  # best and report, which read a study
F = TypeVar("F", bound=Callable[..., Any])


@functools.cache
def messages() -> Console:
    """Where messages and progress go (stderr): what a pipe into a file should not receive."""
    import rich.console

    return rich.console.Console(stderr=True)


@functools.cache
def results() -> Console:
    """Where results go (stdout): a suggestion, a summary, a diagnosis; unwrapped, as a pipe wants them."""
    import rich.console

    return rich.console.Console(soft_wrap=True)


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


def study_name_or_only(storage: str, study_name: str | None) -> str:
    """The study a reading command (``best``, ``report``) opens: the one named, else the storage's only study (a
    search names its study after its config file, so no fixed default would fit)."""
    if study_name:
        return study_name
    import optuna

    from tunekit.search import mask, open_storage

    try:
        names = sorted(optuna.study.get_all_study_names(open_storage(storage, create=False)))
    except TunekitError:
        raise
    except Exception:  # a database without Optuna's tables holds no study
        names = []
    if len(names) == 1:
        return names[0]
    held = f"studies {', '.join(names)}" if names else "no study"
    raise fail(f"{mask(storage)} holds {held}: give --study-name NAME")
