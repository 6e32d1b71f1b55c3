"""Small shared utilities."""

from __future__ import annotations

from tunekit.utilities.imports import MissingDependency, require

__all__ = ["MissingDependency", "require"]
