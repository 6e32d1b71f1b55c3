"""``EvidencePruner``: stop a trial only on evidence from sampled peers, past a grace period, by more than the noise.

Optuna's median and percentile pruners judge a trial against every completed trial that reported the same step. A
tunekit study starts from informed (enqueued) trials around the range test's suggestion, which are good by design:
judged against them alone from the first validation, nearly every sampled trial is pruned and the search stops
exploring (issue 24: 27 of 30 trials in a row). This pruner is Optuna's percentile rule with three changes:

- **grace**: no trial is judged at or before validation ``grace_steps`` (``n_warmup_steps`` in Optuna's terms);
- **sampled peers only**: the reference is taken over completed trials the sampler drew, never over enqueued ones
  (Optuna marks those with the ``fixed_params`` system attribute), and at least ``min_peers`` of them must have
  reported the step;
- **noise**: the trial must be worse than the reference by more than the validation noise: the median step-to-step
  change of the peers' curves over their last half (an over-estimate while they still learn, which errs towards
  letting a trial run), and never less than ``min_margin`` of the reference.

Successive halving and Hyperband rank by rungs of a resource a trial can be given more of; Wilcoxon compares
per-instance scores a fit does not report; neither fits a fixed-length fit judged by its validation runs.
"""

from __future__ import annotations

import math

import numpy as np
import optuna
from optuna.pruners import BasePruner
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

GRACE_STEPS = 1  # validations before any judgement: the first one sees mostly the init and the first LR steps
MIN_PEERS = 4  # completed sampled trials that reported a step before a trial is judged there
PERCENTILE = 50.0  # the reference among the peers at a step: their median, as Optuna's default pruner
MIN_MARGIN = 0.02  # the least a trial must trail the reference by, as a share of it: 2%, twice the 1% the search
# suite counts a finished trial as "as good as the best" within (benchmarks/search/run.py NEAR_BEST)
ENQUEUED = "fixed_params"  # Optuna's system attribute on a trial made by study.enqueue_trial


class EvidencePruner(BasePruner):
    """Prune a trial worse than its sampled peers' ``percentile`` at the same step by more than the validation noise.

    Args:
        percentile: the peers' reference value at a step, in [0, 100] (50: their median), on the side of the
            direction's worse values (as Optuna's ``PercentilePruner``).
        grace_steps: steps (tunekit: validation runs) at and before which no trial is pruned.
        min_peers: completed sampled (not enqueued) trials that must have reported a step to judge it.
        min_margin: the least margin, a share of the reference's magnitude.

    Raises:
        ValueError: an argument out of its range.

    Example:
        >>> study = optuna.create_study(pruner=EvidencePruner(min_peers=1))
        >>> study.enqueue_trial({"x": 0.0})
        >>> def objective(trial):
        ...     x = trial.suggest_float("x", 0, 10)
        ...     for step in (1, 2):
        ...         trial.report(x, step)
        ...         if trial.should_prune():
        ...             raise optuna.TrialPruned()
        ...     return x
        >>> study.optimize(objective, n_trials=1)  # the enqueued trial alone: no peer yet
        >>> study.add_trial(optuna.trial.create_trial(params={"x": 1.0}, distributions={
        ...     "x": optuna.distributions.FloatDistribution(0, 10)}, value=1.0, intermediate_values={1: 1.0, 2: 1.0}))
        >>> study.enqueue_trial({"x": 9.0})
        >>> study.optimize(objective, n_trials=1)
        >>> study.trials[-1].state.name, max(study.trials[-1].intermediate_values)
        ('PRUNED', 2)
    """

    def __init__(self, percentile: float = PERCENTILE, grace_steps: int = GRACE_STEPS, min_peers: int = MIN_PEERS,
                 min_margin: float = MIN_MARGIN) -> None:
        if not 0.0 <= percentile <= 100.0:
            raise ValueError(f"Percentile must be between 0 and 100 inclusive, but got {percentile=}.")
        if grace_steps < 0:
            raise ValueError(f"grace_steps must be >= 0, but got {grace_steps=}.")
        if min_peers < 1:
            raise ValueError(f"min_peers must be >= 1, but got {min_peers=}.")
        if min_margin < 0.0:
            raise ValueError(f"min_margin must be >= 0, but got {min_margin=}.")
        self.percentile = percentile
        self.grace_steps = grace_steps
        self.min_peers = min_peers
        self.min_margin = min_margin

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step <= self.grace_steps:
            return False
        own = [v for s, v in trial.intermediate_values.items() if s <= step and math.isfinite(v)]
        if not own:
            return False  # a NaN or inf: the Diagnoser (or the objective) decides on it
        peers = sampled_peers(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), step)
        if len(peers) < self.min_peers:
            return False
        minimize = study.direction == StudyDirection.MINIMIZE
        at_step = np.array([p.intermediate_values[step] for p in peers], dtype=float)
        reference = float(np.percentile(at_step, 100.0 - self.percentile if not minimize else self.percentile))
        margin = max(self.min_margin * abs(reference), validation_noise(peers))
        best = min(own) if minimize else max(own)
        return best > reference + margin if minimize else best < reference - margin


def sampled_peers(completed: list[FrozenTrial], step: int) -> list[FrozenTrial]:
    """The completed trials the sampler drew (not enqueued) with a finite value reported at ``step``."""
    return [t for t in completed if ENQUEUED not in t.system_attrs and math.isfinite(
        t.intermediate_values.get(step, math.nan))]


def validation_noise(peers: list[FrozenTrial]) -> float:
    """The median absolute step-to-step change over the last half of each peer's reported curve (0.0 when no peer
    reported two steps there): the validation noise, with whatever the peers still learned near their end."""
    changes: list[float] = []
    for peer in peers:
        values = [v for _, v in sorted(peer.intermediate_values.items()) if math.isfinite(v)]
        tail = values[len(values) // 2:]
        changes += np.abs(np.diff(tail)).tolist()
    return float(np.median(changes)) if changes else 0.0
