"""``tunekit best``: the best recipe of a study, as YAML ready to paste into a config's ``recipe:``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tunekit.cli._common import EXIT_FAILED, STUDY_NAME_HELP, fail, handle_errors, quiet, study_name_or_only
from tunekit.utilities.defaults import DEFAULT_STORAGE

RECIPE_DIGITS = 4  # significant digits of the printed recipe's numbers


@handle_errors
def best(
    storage: Annotated[str, typer.Option(help="Optuna storage URL of the study.")] = DEFAULT_STORAGE,
    study_name: Annotated[str | None, typer.Option("--study-name", help=STUDY_NAME_HELP)] = None,
) -> None:
    """Print the best recipe of a study as YAML (paste it under recipe: in a config)."""
    import yaml

    from tunekit.search import StudyView

    quiet()
    study_name = study_name_or_only(storage, study_name)
    view = StudyView.load(storage, study_name)
    trial = view.best_trial
    if trial is None:
        raise fail(f"study {study_name!r} has no finished trial yet", EXIT_FAILED)
    recipe = view.recipe_of(trial, compact=True, digits=RECIPE_DIGITS)
    typer.echo(f"# study {study_name}, trial {trial.number}: {view.monitor} = {trial.value:.6g}")
    typer.echo(yaml.safe_dump({"recipe": recipe}, sort_keys=False).rstrip())
    typer.echo("\n".join(f"# {line}" for line in snippet(recipe, view.own_optimizer)))


def snippet(recipe: dict[str, Any], own_optimizer: bool) -> list[str]:
    """The same recipe in code, for users who keep it there (printed as YAML comments).

    Example:
        >>> snippet({"lr": 0.03, "momentum": 0.9}, own_optimizer=True)[1].split(", ")[-1]
        'momentum=0.9 on every group'
    """
    if own_optimizer:
        rest = ", ".join(f"{k}={v!r}" for k, v in recipe.items() if k not in ("lr", "batch_size"))
        lr = (f"lr={recipe['lr']!r} on the first optimizer's first param group (scale every other group of every "
              "optimizer by the same factor)") if "lr" in recipe else ""
        batch = [f"  and batch_size={recipe['batch_size']!r} in your data module"] if "batch_size" in recipe else []
        return ["in code, keep your optimizer and set",
                f"  in configure_optimizers: {', '.join(x for x in (lr, rest and rest + ' on every group') if x)}",
                *batch]
    args = ", ".join(f"{k}={v!r}" for k, v in recipe.items())
    return ["in code: the module trains with this recipe",
            "  class MyModule(tunekit.RecipeMixin, lightning.pytorch.LightningModule):",
            "      def __init__(self):",
            "          super().__init__()",
            f"          self.recipe = tunekit.Recipe({args})"]
