"""Where a logger gets the diagnosis in a form of its own (W&B tables, charts and alerts).

The Diagnoser lives below the dashboards layer and does not import it: a logger class is mapped, by
name, to the import path of its reporter, loaded only when such a logger is attached to the Trainer.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

REPORTERS = {"WandbLogger": "tunekit.dashboards.wandb:RunReporter"}


class Reporter(Protocol):
    def on_check(self, trainer: Any, record: Any, diagnosis: Any) -> None: ...

    def on_end(self, trainer: Any, record: Any, diagnosis: Any) -> None: ...


def reporters_for(loggers: list[Any]) -> list[Reporter]:
    """A reporter for each attached logger that has one."""
    found = []
    for logger in loggers:
        path = REPORTERS.get(type(logger).__name__)
        if path is None:
            continue
        module, _, name = path.partition(":")
        found.append(getattr(importlib.import_module(module), name)(logger))
    return found


def charted_per_layer(logger: Any) -> bool:
    """Loggers whose reporter draws the per-layer gradient norms as one chart (not a chart per layer)."""
    return type(logger).__name__ in REPORTERS
