"""Optuna studies over recipes: the space, the objective, storage, pruning and workers."""

from __future__ import annotations

from tunekit.search._objective import MonitorNotLogged, Objective
from tunekit.search._plan import SearchPlan, plan_search
from tunekit.search._read import StudyView
from tunekit.search._run import open_study, run_search
from tunekit.search._space import SearchSpace, family_label
from tunekit.search._storage import DEFAULT_STORAGE, mask, open_storage
from tunekit.search._summary import SearchResult, summarize

__all__ = ["DEFAULT_STORAGE", "MonitorNotLogged", "Objective", "SearchPlan", "SearchResult", "SearchSpace",
           "StudyView", "family_label", "mask", "open_storage", "open_study", "plan_search", "run_search",
           "summarize"]
