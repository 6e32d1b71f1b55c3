"""Optional packages: one place that imports them and says how to install what is missing."""

from __future__ import annotations

import importlib
from typing import Any

from tunekit.exceptions import TunekitError


class MissingDependency(TunekitError, ImportError):
    """An optional package a feature needs is not installed."""


def require(module: str, package: str, extra: str | None = None) -> Any:
    """Import ``module`` or raise with the install command.

    Example:
        >>> require("json", "json").dumps([1])
        '[1]'
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        fix = f"pip install 'tunekit-lightning[{extra}]'" if extra else f"pip install {package}"
        raise MissingDependency(f"this needs {package}, which is not installed: {fix}") from err
