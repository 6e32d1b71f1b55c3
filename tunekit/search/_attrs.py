"""The names under which tunekit keeps its data on Optuna studies and trials (one place: the search writes them,
the CLI, the report and W&B read them)."""

from __future__ import annotations

# study user attributes
SPACE = "tunekit.search"  # the search: section the study was created with
MONITOR = "tunekit.monitor"  # the metric the trials report
LR_RANGE_PREFIX = "tunekit.lr_range."  # + optimizer family: the LR range test stored with the study

# trial user attributes
RECIPE = "recipe"  # the sampled recipe (Recipe.to_dict())
DIAGNOSIS = "diagnosis"  # the Diagnoser's JSON
METRICS = "metrics"  # the final logged metrics
STEPS = "steps"  # optimizer steps trained
SECONDS = "seconds"  # wall time of the fit
CURVES = "curves"  # thinned loss and gradient-norm curves (for the report)
START = "tunekit.start"  # why an enqueued trial was enqueued
INTERVENTIONS = "interventions"  # what auto-remedy applied to the trial's fit (a repaired trial has some)
DDP_LEADER = "tunekit.ddp_leader"  # a trial on several devices: its rank-zero process (the followers join its fit)
DDP_DONE = "tunekit.ddp_done."  # + a leader's key, study attribute: that leader runs no more trials
AUTO_REMEDY = "tunekit.auto_remedy"  # study attribute: the trials ran with auto-remedy
OWN_OPTIMIZER = "tunekit.own_optimizer"  # study attribute: the module kept its own optimizer; only the searched
# keys of a trial's recipe were set on it (the rest of the recorded recipe is the defaults, never used)


def lr_range_key(family: str) -> str:
    return f"{LR_RANGE_PREFIX}{family}"
