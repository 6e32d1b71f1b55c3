"""``tunekit best``: the best recipe of a study, as YAML ready to paste into a config's ``recipe:``."""

from __future__ import annotations

from typing import Annotated

import typer

from tunekit.cli._common import EXIT_FAILED, fail, handle_errors, quiet


@handle_errors
def best(
    storage: Annotated[str, typer.Option(help="Optuna storage URL of the study.")] = "sqlite:///tunekit.db",
    study_name: Annotated[str, typer.Option("--study-name", help="The study's name.")] = "search",
) -> None:
    """Print the best recipe of a study as YAML (paste it under recipe: in a config)."""
    import optuna
    import yaml

    from tunekit.search import mask, open_storage

    quiet()
    rdb = open_storage(storage)
    names = [s.study_name for s in optuna.study.get_all_study_summaries(rdb)]
    if study_name not in names:
        known = ", ".join(sorted(names)) or "none"
        raise fail(f"no study {study_name!r} in {mask(storage)} (studies there: {known})")
    study = optuna.load_study(study_name=study_name, storage=rdb)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise fail(f"study {study_name!r} has no finished trial yet", EXIT_FAILED)
    trial = study.best_trial
    from tunekit.recipe import Recipe

    full = Recipe.from_dict(trial.user_attrs.get("recipe", {})).to_dict(compact=True)
    recipe = {k: float(f"{v:.4g}") if isinstance(v, float) else v for k, v in full.items()}
    monitor = study.user_attrs.get("tunekit.monitor", "value")
    typer.echo(f"# study {study_name}, trial {trial.number}: {monitor} = {trial.value:.6g}")
    typer.echo(yaml.safe_dump({"recipe": recipe}, sort_keys=False).rstrip())
