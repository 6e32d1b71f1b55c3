"""Optuna studies over recipes: the space, the objective, storage, pruning and workers."""

from __future__ import annotations

from tunekit.search._objective import MonitorNotLogged, Objective
from tunekit.search._run import SearchResult, open_study, run_search, summarize
from tunekit.search._space import SearchSpace
from tunekit.search._study import DEFAULT_STORAGE, mask, open_storage

__all__ = ["DEFAULT_STORAGE", "MonitorNotLogged", "Objective", "SearchResult", "SearchSpace", "mask", "open_storage",
           "open_study", "run_search", "summarize"]
