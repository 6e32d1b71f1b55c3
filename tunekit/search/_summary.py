"""``SearchResult``: what a search left in its study, read through ``StudyView``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tunekit.search import _attrs as A
from tunekit.search._read import StudyView
from tunekit.search._storage import mask


@dataclass
class SearchResult:
    """What a search left in its study (a summary; the study itself is in the storage)."""

    study_name: str
    storage: str  # the URL with its password masked
    monitor: str
    direction: str
    complete: int
    pruned: int
    failed: int
    best_value: float | None
    best_trial: int | None
    best_recipe: dict[str, Any] | None  # a module that kept its own optimizer: only the searched keys set on it
    best_diagnosis: dict[str, Any] | None
    lr_range: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0
    repaired: int = 0  # trials auto-remedy repaired inside their fit
    own_optimizer: bool = False  # the module kept its own optimizer (best_recipe holds what was set on it)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(view: StudyView, seconds: float = 0.0) -> SearchResult:
    counts = view.counts()
    best = view.best_trial
    return SearchResult(
        study_name=view.name, storage=mask(view.storage), monitor=view.monitor,
        direction="minimize" if view.minimize else "maximize", complete=counts["complete"],
        pruned=counts["pruned"], failed=counts["fail"],
        best_value=best.value if best else None, best_trial=best.number if best else None,
        best_recipe=(view.recipe_of(best, compact=True) if view.own_optimizer else best.user_attrs.get(A.RECIPE))
        if best else None,
        best_diagnosis=best.user_attrs.get(A.DIAGNOSIS) if best else None,
        lr_range={fam: {"suggestion": r.suggestion, "bounds": list(r.bounds) if r.bounds else None, "steps": r.steps}
                  for fam, r in view.lr_ranges().items()},
        seconds=round(seconds, 2),
        repaired=sum(r["repaired"] for r in view.trial_rows()),
        own_optimizer=view.own_optimizer,
    )
