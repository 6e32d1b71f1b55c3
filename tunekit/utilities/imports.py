"""Optional packages: one place that imports them and says how to install what is missing."""

from __future__ import annotations

import functools
import importlib
from typing import Any

from lightning_utilities.core.imports import RequirementCache

from tunekit.exceptions import TunekitError


class MissingDependency(TunekitError, ImportError):
    """An optional package a feature needs is not installed."""


@functools.cache
def _installed(package: str, module: str) -> RequirementCache:
    """Whether ``package`` (a requirement: a name, optionally with a version) is installed, or ``module`` importable
    (Lightning's check, by package metadata, then by the import machinery), asked once per process."""
    return RequirementCache(package, module)


def require(module: str, package: str, extra: str | None = None) -> Any:
    """Import ``module`` or raise ``MissingDependency`` with the install command (``pip install package``, or the
    tunekit extra that brings it).

    Example:
        >>> require("json", "json").dumps([1])
        '[1]'
        >>> require("not_a_module_anywhere", "not-a-package")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        tunekit.utilities.imports.MissingDependency: this needs not-a-package, which is not installed: pip ...
    """
    if not _installed(package, module):
        fix = f"pip install 'tunekit-lightning[{extra}]'" if extra else f"pip install {package}"
        raise MissingDependency(f"this needs {package}, which is not installed: {fix}")
    return importlib.import_module(module)
