"""What-if probes: fork the live training state, train a few steps under candidate remedies on the same batches,
compare, and restore the state exactly (used by the ``Diagnoser``, and by auto-remedy)."""

from __future__ import annotations

from tunekit.probes._fork import Fork, muted_logging, step_loss
from tunekit.probes._one_batch import fit_one_batch
from tunekit.probes._runner import EVAL_BATCHES, measure_curvature, probe_cost, probe_reason, run_probe
from tunekit.probes._state import TrainingState
from tunekit.probes._verify import verify_change

__all__ = ["EVAL_BATCHES", "Fork", "TrainingState", "fit_one_batch", "measure_curvature", "muted_logging",
           "probe_cost", "probe_reason", "run_probe", "step_loss", "verify_change"]
