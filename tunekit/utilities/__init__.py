"""Small shared utilities."""

from __future__ import annotations

from tunekit.utilities.files import write_atomic
from tunekit.utilities.imports import MissingDependency, require

__all__ = ["MissingDependency", "require", "write_atomic"]
