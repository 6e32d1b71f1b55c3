"""Where a logger gets the diagnosis in a form of its own (W&B tables, charts and alerts).

The Diagnoser lives below the dashboards layer and does not import it: a logger class (matched with
``isinstance``, so subclasses count) is mapped to the import path of its reporter, which is loaded only when
such a logger is attached to the Trainer. This is the one place the callbacks layer reaches a layer above it,
and it does so by name, as a plug-in.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from lightning.pytorch.loggers import WandbLogger

REPORTERS: tuple[tuple[type, str], ...] = ((WandbLogger, "tunekit.dashboards.wandb:RunReporter"),)


class Reporter(Protocol):
    def on_check(self, trainer: Any, record: Any, diagnosis: Any) -> None: ...

    def on_end(self, trainer: Any, record: Any, diagnosis: Any) -> None: ...


def _reporter_path(logger: Any) -> str | None:
    return next((path for cls, path in REPORTERS if isinstance(logger, cls)), None)


def reporters_for(loggers: list[Any]) -> list[Reporter]:
    """A reporter for each attached logger that has one."""
    found = []
    for logger in loggers:
        path = _reporter_path(logger)
        if path is None:
            continue
        module, _, name = path.partition(":")
        found.append(getattr(importlib.import_module(module), name)(logger))
    return found


def charted_per_layer(logger: Any) -> bool:
    """Loggers whose reporter draws the per-layer gradient norms as one chart (not a chart per layer)."""
    return _reporter_path(logger) is not None
