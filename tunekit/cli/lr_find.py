"""``tunekit lr-find CONFIG``: the LR range test on a config's model and data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from tunekit.cli._common import handle_errors, messages, quiet, results


@handle_errors
def lr_find(
    config: Annotated[Path, typer.Argument(metavar="CONFIG", help="YAML config with model: and data: (as for "
                                           "tunekit search).")],
    max_steps: Annotated[int, typer.Option(help="Optimizer steps to spend in all (sweep and confirmation "
                                           "runs).")] = 300,
    sweep_steps: Annotated[int, typer.Option(help="Optimizer steps of the sweep (at least 10; the rest of "
                                             "--max-steps goes to the confirmation runs).")] = 60,
    min_lr: Annotated[float, typer.Option(help="Lowest LR of the sweep.")] = 1e-7,
    max_lr: Annotated[float, typer.Option(help="Highest LR of the sweep.")] = 10.0,
    plot: Annotated[str, typer.Option(metavar="PNG", help="Where to save the plot ('' to skip it).")]
    = "lr_range_test.png",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
) -> None:
    """Suggest a learning rate: a range test, then short confirmation runs."""
    import lightning.pytorch as pl

    from tunekit.config import load_config
    from tunekit.lr_finder import lr_range_test

    quiet()
    cfg = load_config(config)
    pl.seed_everything(cfg.seed, verbose=False)  # before the model and data are built: the same command, the same LR
    model = cfg.make_model()
    result = lr_range_test(model, **cfg.range_test_data(model), min_lr=min_lr, max_lr=max_lr, max_steps=max_steps,
                           sweep_steps=sweep_steps,
                           monitor=cfg.range_test_monitor, seed=cfg.seed, trainer_kwargs=cfg.short_run_trainer_args(),
                           progress=not as_json)
    saved = None
    if plot:  # '' skips it (a Path would have turned '' into '.', and the figure into ./.png)
        data = cfg.data_class.__name__ if cfg.data_class is not None else "its own data"
        fig = result.plot(title=f"{cfg.model_class.__name__} on {data}")
        Path(plot).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(plot)
        saved = plot
    if as_json:
        typer.echo(json.dumps({**result.to_dict(), "plot": saved}))
        return
    if result.suggestion is None:
        results().print(f"[yellow]no suggestion[/]: {result.reason} ({result.steps} optimizer steps)")
    else:
        from tunekit.search._lr_bounds import centred_bounds

        low, high = result.bounds or (result.suggestion, result.suggestion)
        searched = centred_bounds(result.suggestion, low, high)
        results().print(f"suggested lr [bold green]{result.suggestion:.3g}[/] for {_optimizer_of(model)} (range test "
                        f"bounds {low:.3g} .. {high:.3g}; `lr: auto` searches a range as wide centred on the "
                        f"suggestion, {searched[0]:.3g} .. {searched[1]:.3g}; {result.steps} optimizer steps, "
                        f"candidates scored on {result.scored_on})")
    if saved:
        messages().print(f"plot saved to {saved}")
    if result.suggestion is None:
        raise typer.Exit(1)


def _optimizer_of(model: Any) -> str:
    """The optimizer the model's ``configure_optimizers`` builds (the one the range test trained), by class name."""
    try:
        built = model.configure_optimizers()
    except Exception:  # a module that needs its Trainer to build its optimizer
        return "the model's optimizer"
    while isinstance(built, (list, tuple)) and built:
        built = built[0]
    if isinstance(built, dict):
        built = built.get("optimizer")
    return type(built).__name__ if built is not None else "the model's optimizer"
