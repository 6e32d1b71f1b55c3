"""Reading a study: one place for ``tunekit best``, the HTML report, W&B and the search summary. Reading never
creates a storage or a study."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tunekit.exceptions import ConfigError
from tunekit.lr_finder import LRRangeResult
from tunekit.recipe import Recipe
from tunekit.search import _attrs as A
from tunekit.search._storage import mask, open_storage

MIN_TRIALS_FOR_IMPORTANCE = 3  # fANOVA needs a few finished trials to say anything


@dataclass
class StudyView:
    """A study and what tunekit stored on it, read-only.

    Example:
        >>> view = StudyView.load("sqlite:///tunekit.db", "demo")  # doctest: +SKIP
        >>> view.best_recipe(compact=True), view.monitor  # doctest: +SKIP
        ({'optimizer': 'adamw', 'lr': 0.0031, ...}, 'val_loss')
    """

    study: optuna.Study
    storage: str  # the URL, as given (mask it before showing it)

    @classmethod
    def load(cls, storage: str, study_name: str) -> StudyView:
        """Open an existing study; a missing storage or study is a one-line error naming the studies there."""
        rdb = open_storage(storage, create=False)
        try:
            names = [s.study_name for s in optuna.study.get_all_study_summaries(rdb)]
        except Exception:  # a database without Optuna's tables holds no study
            names = []
        if study_name not in names:
            raise ConfigError(f"no study {study_name!r} in {mask(storage)} (studies there: "
                              f"{', '.join(sorted(names)) or 'none'})")
        return cls(optuna.load_study(study_name=study_name, storage=rdb), storage)

    @property
    def name(self) -> str:
        return self.study.study_name

    @property
    def monitor(self) -> str:
        return str(self.study.user_attrs.get(A.MONITOR, "value"))

    @property
    def own_optimizer(self) -> bool:
        """The module kept its own optimizer: a trial's recipe is the searched keys set on it."""
        return bool(self.study.user_attrs.get(A.OWN_OPTIMIZER, False))

    @property
    def minimize(self) -> bool:
        return self.study.direction == optuna.study.StudyDirection.MINIMIZE

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.study.get_trials(deepcopy=False)

    def counts(self) -> dict[str, int]:
        """Trials by state: ``complete``, ``pruned``, ``fail``, ``running``, ``waiting``."""
        out = {s.name.lower(): 0 for s in TrialState}
        for t in self.trials:
            out[t.state.name.lower()] += 1
        return out

    def complete(self) -> list[FrozenTrial]:
        """Finished trials, best first."""
        done = [t for t in self.trials if t.state == TrialState.COMPLETE and t.value is not None]
        return sorted(done, key=lambda t: t.value, reverse=not self.minimize)  # type: ignore[arg-type,return-value]

    @property
    def best_trial(self) -> FrozenTrial | None:
        best = self.complete()
        return best[0] if best else None

    def recipe_of(self, trial: FrozenTrial, compact: bool = False, digits: int | None = None) -> dict[str, Any]:
        """A trial's recipe; ``compact`` leaves out what its optimizer does not use (and, for a module that kept
        its own optimizer, what was not searched), ``digits`` rounds floats."""
        if compact and self.own_optimizer:  # what was set on the module's own optimizer: the searched keys
            searched = self.study.user_attrs.get(A.SPACE, {})
            recipe = {k: v for k, v in Recipe.from_dict(trial.user_attrs.get(A.RECIPE, {})).to_dict().items()
                      if k in searched}
        else:
            recipe = Recipe.from_dict(trial.user_attrs.get(A.RECIPE, {})).to_dict(compact=compact)
        if digits is not None:
            recipe = {k: float(f"{v:.{digits}g}") if isinstance(v, float) else v for k, v in recipe.items()}
        return recipe

    def best_recipe(self, compact: bool = False, digits: int | None = None) -> dict[str, Any] | None:
        best = self.best_trial
        return self.recipe_of(best, compact, digits) if best is not None else None

    def importances(self) -> dict[str, float]:
        """fANOVA parameter importances (empty with too few finished trials, or where Optuna cannot compute them)."""
        if len(self.complete()) < MIN_TRIALS_FOR_IMPORTANCE:
            return {}
        with contextlib.suppress(RuntimeError, ValueError, ZeroDivisionError):
            return {k: float(v) for k, v in optuna.importance.get_param_importances(self.study).items()}
        return {}

    def lr_ranges(self) -> dict[str, LRRangeResult]:
        """The LR range tests stored with the study, by optimizer family."""
        return {k[len(A.LR_RANGE_PREFIX):]: LRRangeResult.from_dict(v) for k, v in self.study.user_attrs.items()
                if k.startswith(A.LR_RANGE_PREFIX)}

    def trial_rows(self) -> list[dict[str, Any]]:
        """One plain dict per trial: number, state, value, last reported value, params, steps, finding codes,
        user attrs."""
        rows = []
        for t in self.trials:
            findings = t.user_attrs.get(A.DIAGNOSIS, {}).get("findings", [])
            last = t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None
            rows.append({"number": t.number, "state": t.state.name.lower(), "value": t.value, "last": last,
                         "params": t.params, "steps": t.user_attrs.get(A.STEPS),
                         "findings": [f["code"] for f in findings], "repaired": bool(t.user_attrs.get(A.INTERVENTIONS)),
                         "attrs": t.user_attrs})
        return rows
