"""``tunekit diagnose PATH``: the diagnosis of a run logged without tunekit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tunekit.cli._common import fail, handle_errors, messages, quiet, results

KEY = "The logged name of the {}, when tunekit's guess is wrong."


@handle_errors
def diagnose(
    path: Annotated[Path, typer.Argument(metavar="PATH", help="A metrics.csv (CSVLogger), a TensorBoard log "
                                         "folder, or a W&B run folder.")],
    loss: Annotated[str | None, typer.Option(help=KEY.format("training loss"))] = None,
    grad_norm: Annotated[str | None, typer.Option("--grad-norm", help=KEY.format("gradient norm"))] = None,
    lr: Annotated[str | None, typer.Option(help=KEY.format("learning rate"))] = None,
    val_loss: Annotated[str | None, typer.Option("--val-loss", help=KEY.format("validation loss"))] = None,
    optimizer: Annotated[str | None, typer.Option(help="The optimizer the run used (sgd, adam, adamw, ...), when "
                                                  "no LearningRateMonitor column (lr-Adam) names it: remedies "
                                                  "differ.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write diagnosis.json and signals.json to this folder (for "
                                             "tunekit report).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Diagnose a run that was logged without tunekit: the same rules, on what the run logged."""
    from tunekit.logs import from_logged, read_logged
    from tunekit.utilities.files import write_atomic

    quiet()
    if optimizer is not None and optimizer.lower() not in _known_optimizers():
        raise fail(f"--optimizer {optimizer!r} is not an optimizer tunekit knows; give one of "
                   f"{', '.join(sorted(_known_optimizers()))}.")
    run = from_logged(read_logged(path), loss=loss, grad_norm=grad_norm, lr=lr, val_loss=val_loss,
                      optimizer=optimizer.lower() if optimizer else None)
    diagnosis = run.diagnose()
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        diagnosis.save(out / "diagnosis.json")
        write_atomic(out / "signals.json", json.dumps(run.record.curves(max_points=500)))
    optimizer_read = run.context.optimizer if "optimizer" in run.measured else None
    if as_json:
        typer.echo(json.dumps({**diagnosis.to_dict(), "keys": run.keys, "optimizer": optimizer_read,
                               "logged_every": run.every, "undecided": run.undecided}))
        return
    used = ", ".join(f"{what}: {name}" for what, name in run.keys.items() if name)
    messages().print(f"read {len(run.record)} logged points from {path} ({used}; optimizer: "
                     f"{optimizer_read or 'not logged'})")
    results().print(diagnosis)
    for note in run.undecided:
        results().print(f"[yellow]not decided[/]: {note}")
    if out is not None:
        messages().print(f"diagnosis written to {out / 'diagnosis.json'} (tunekit report {out / 'diagnosis.json'})")


def _known_optimizers() -> set[str]:
    """The recipe's optimizer names and torch's optimizer classes, lower-cased (``adamax``, ``asgd``, ...): what a
    logged run's ``--optimizer`` may name."""
    import torch

    from tunekit.recipe import OPTIMIZERS

    classes = {name.lower() for name, cls in vars(torch.optim).items()
               if isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer) and cls is not torch.optim.Optimizer}
    return set(OPTIMIZERS) | classes
