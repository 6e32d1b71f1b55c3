"""Defaults the user sees in more than one layer (the search and the CLI's ``--help``), in a module that imports
nothing, so that printing them costs nothing."""

from __future__ import annotations

DEFAULT_STORAGE = "sqlite:///tunekit.db"  # a study's storage when none is given: a SQLite file in the working folder
