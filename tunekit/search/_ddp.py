"""One trial = one DDP group.

With a multi-device Trainer, Lightning starts the other ranks by running the same command again (with
``LOCAL_RANK`` set). Those follower ranks must not run a study of their own: each would sample its own recipe and
the group would train one model with different hyperparameters on each rank, the gradients averaged across them.
Here a follower only reads: it waits for the next trial its rank-zero process (its parent) marked in the storage,
builds the same fit from that trial's recipe, joins the fit, and ends when rank zero says it has run its last trial
(or has gone). It never creates a trial nor writes to the storage; rank zero's pruning decisions and the Diagnoser's
stop reach it through the fit's own collectives.
"""

from __future__ import annotations

import os
import time

import optuna
from optuna.trial import TrialState

from tunekit.recipe import Recipe
from tunekit.search import _attrs as A
from tunekit.search._objective import TrialFit, leader_key, trial_seed
from tunekit.search._plan import SearchPlan
from tunekit.search._storage import open_storage
from tunekit.utilities.lightning import quiet_lightning

POLL_SECONDS = 0.5  # how often a follower looks for its leader's next trial


def is_follower() -> bool:
    """This process is a non-zero rank Lightning started for a multi-device fit (it re-ran the command)."""
    return int(os.environ.get("LOCAL_RANK", "0") or 0) > 0


def follow(plan: SearchPlan, url: str, study_name: str, *, auto_remedy: bool = False) -> int:
    """Join each trial the leader (this process's parent) runs, until it is done; returns the fits joined."""
    leader_pid = os.getppid()
    key = leader_key(leader_pid)
    study = optuna.load_study(study_name=study_name, storage=open_storage(url, create=False))
    joined: set[int] = set()
    while os.getppid() == leader_pid:
        trial = next((t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                      if t.user_attrs.get(A.DDP_LEADER) == key and t.number not in joined), None)
        if trial is not None:
            joined.add(trial.number)
            fit = TrialFit(plan, Recipe.from_dict(trial.user_attrs[A.RECIPE]), None,
                           seed=trial_seed(plan.config.seed, trial.number), auto_remedy=auto_remedy)
            with quiet_lightning():
                fit.fit()
            continue
        if study.user_attrs.get(A.DDP_DONE + key):
            break
        time.sleep(POLL_SECONDS)
    return len(joined)


def finish_leading(study: optuna.Study) -> None:
    """Tell this process's followers that it runs no more trials."""
    study.set_user_attr(A.DDP_DONE + leader_key(), True)
