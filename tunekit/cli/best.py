"""``tunekit best``: the best recipe of a study, as YAML ready to paste into a config's ``recipe:``."""

from __future__ import annotations

from typing import Annotated

import typer

from tunekit.cli._common import EXIT_FAILED, fail, handle_errors, quiet
from tunekit.search import DEFAULT_STORAGE

RECIPE_DIGITS = 4  # significant digits of the printed recipe's numbers


@handle_errors
def best(
    storage: Annotated[str, typer.Option(help="Optuna storage URL of the study.")] = DEFAULT_STORAGE,
    study_name: Annotated[str, typer.Option("--study-name", help="The study's name.")] = "search",
) -> None:
    """Print the best recipe of a study as YAML (paste it under recipe: in a config)."""
    import yaml

    from tunekit.search import StudyView

    quiet()
    view = StudyView.load(storage, study_name)
    trial = view.best_trial
    if trial is None:
        raise fail(f"study {study_name!r} has no finished trial yet", EXIT_FAILED)
    recipe = view.recipe_of(trial, compact=True, digits=RECIPE_DIGITS)
    typer.echo(f"# study {study_name}, trial {trial.number}: {view.monitor} = {trial.value:.6g}")
    typer.echo(yaml.safe_dump({"recipe": recipe}, sort_keys=False).rstrip())
