"""tunekit's exceptions, rooted at ``TunekitError``."""

from __future__ import annotations


class TunekitError(Exception):
    """Base class of tunekit's errors."""


class ConfigError(TunekitError, ValueError):
    """A bad argument or configuration value: the message names it and, where there is one, the fix."""


class StorageError(TunekitError):
    """A study storage that cannot be opened or used."""
