"""Weights & Biases: a run's diagnosis (charts, findings table, summary, alerts), and a study's runs.

Everything here goes through a Lightning ``WandbLogger`` or ``wandb.init``; W&B's offline mode
(``WANDB_MODE=offline``) works the same and is what the tests use.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from tunekit.diagnose import Diagnosis, Severity
from tunekit.record import RunRecord
from tunekit.search import _attrs as A
from tunekit.search import family_label
from tunekit.utilities.imports import require

MAX_POINTS = 500  # points per line in the per-layer chart (the newest steps are kept whole in the record)
FINDINGS_COLUMNS = ["step", "code", "severity", "message", "first remedy"]
INTERVENTION_COLUMNS = ["step", "finding", "remedy", "change", "rolled back to"]


def _wandb() -> Any:
    return require("wandb", "wandb")


def findings_rows(diagnosis: Diagnosis) -> list[list[Any]]:
    rows = []
    for f in diagnosis.findings:
        first = f.remedies[0] if f.remedies else None
        remedy = f"{first.code.value} {dict(first.change)}" if first is not None else ""
        rows.append([f.step, f.code.value, f.severity.value, f.message, remedy])
    return rows


def diagnosis_summary(diagnosis: Diagnosis) -> dict[str, Any]:
    """What a run's summary shows of its diagnosis."""
    worst = max((f.severity for f in diagnosis.findings), key=lambda s: s.rank, default=None)
    return {"tunekit/healthy": diagnosis.is_healthy, "tunekit/finding_codes": diagnosis.codes,
            "tunekit/worst_severity": worst.value if worst else "none",
            "tunekit/first_remedy": (findings_rows(diagnosis)[0][4] if diagnosis.findings else "")}


def _thin(n: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, MAX_POINTS)).astype(int)) if n else np.zeros(0, dtype=int)


class RunReporter:
    """The Diagnoser's W&B output for a run with a ``WandbLogger`` (found by ``tunekit.callbacks``).

    During the fit: an alert when a finding turns critical (online runs only), and a ``tunekit/intervention``
    point at each step auto-remedy changed the fit (a marker beside the loss). At the end: the per-layer
    gradient norms as one chart with a line per layer (``tunekit/grad_norm_per_layer``), the findings as the
    ``tunekit/findings`` table (step, code, severity, message, first remedy), the interventions as the
    ``tunekit/interventions`` table, and the diagnosis in the run summary. The scalar signals
    (``tunekit/grad_norm``, ``tunekit/lr``, ``tunekit/update_ratio`` and the monitors' states) are logged by the
    monitors with the Trainer's logging, every ``log_every_n_steps``.
    """

    def __init__(self, logger: Any) -> None:
        self.logger = logger
        self._alerted: set[str] = set()

    def on_check(self, trainer: Any, record: RunRecord, diagnosis: Diagnosis) -> None:
        self._alert(diagnosis)

    def on_end(self, trainer: Any, record: RunRecord, diagnosis: Diagnosis) -> None:
        wandb = _wandb()
        run = self.logger.experiment
        payload: dict[str, Any] = {}
        norms = record.layer_grad_norms
        if norms.ndim == 2 and norms.shape[1] and len(record):
            keep = _thin(len(record))
            ys = [[float(v) if math.isfinite(v) else 0.0 for v in norms[keep, j]] for j in range(norms.shape[1])]
            payload["tunekit/grad_norm_per_layer"] = wandb.plot.line_series(
                xs=record.steps[keep].tolist(), ys=ys, keys=list(record.layer_names),
                title="gradient norm per layer", xname="step")
        payload["tunekit/findings"] = wandb.Table(columns=FINDINGS_COLUMNS, data=findings_rows(diagnosis))
        if diagnosis.interventions:  # the steps are marked on the charts by the tunekit/intervention series
            payload["tunekit/interventions"] = wandb.Table(columns=INTERVENTION_COLUMNS, data=[
                [e.step, e.finding.value, e.remedy.value, str(dict(e.change)), e.evidence.get("rolled_back_to")]
                for e in diagnosis.interventions])
        run.log(payload)
        run.summary.update({**diagnosis_summary(diagnosis), "tunekit/diagnosis": diagnosis.to_dict()})
        self._alert(diagnosis)

    def _alert(self, diagnosis: Diagnosis) -> None:
        run = self.logger.experiment
        if getattr(getattr(run, "settings", None), "mode", "offline") != "online":
            return  # alerts go through W&B's servers
        for f in diagnosis.findings:
            if f.severity is Severity.CRITICAL and f.code.value not in self._alerted:
                self._alerted.add(f.code.value)
                run.alert(title=f"tunekit: {f.code.value} at step {f.step}", text=f.message,
                          level=_wandb().AlertLevel.ERROR)


def _trial_logger_class() -> Any:
    from lightning.pytorch.loggers import WandbLogger

    class TrialLogger(WandbLogger):
        """Puts the module's own hyperparameters under ``model`` in the run's config: its ``lr`` is not the
        trial's, which is under ``recipe``."""

        def log_hyperparams(self, params: Any) -> None:
            super().log_hyperparams({"model": dict(params) if isinstance(params, dict) else vars(params)})

    return TrialLogger


def _trial_logger(**kwargs: Any) -> Any:
    return _trial_logger_class()(**kwargs)


class StudyLogger:
    """W&B for ``tunekit search --wandb``: one run per trial, grouped by study, and a study run at the end.

    Each trial's run has the sampled recipe as its config and, in its summary, the trial number, its state
    and its diagnosis summary. The study run holds the trials table, the parameter importances, the LR range
    test curve and the best recipe. (Not built on optuna-integration's deprecated WeightsAndBiasesCallback.)

    Args:
        study_name: the W&B group of the runs.
        storage: the study's storage URL (read for the study run's tables; never logged).
        project: the W&B project (``WANDB_PROJECT`` or ``tunekit``).
        save_dir: where W&B writes its run folders (``WANDB_DIR`` or the working directory).
    """

    def __init__(self, study_name: str, storage: str, project: str | None = None, save_dir: str | None = None) -> None:
        require("wandb", "wandb")
        self.study_name = study_name
        self.storage = storage
        self.project = project or os.environ.get("WANDB_PROJECT", "tunekit")
        self.save_dir = save_dir or os.environ.get("WANDB_DIR", ".")
        self._loggers: dict[int, Any] = {}

    def __call__(self, trial: Any, recipe: Any) -> tuple[list[Any], Any]:
        """The logger (and callbacks) of one trial's fit."""
        logger = _trial_logger(project=self.project, group=self.study_name, job_type="trial",
                             name=f"{self.study_name}-trial-{trial.number}", save_dir=self.save_dir,
                             reinit="create_new",
                             config={"recipe": recipe.to_dict(), "trial": trial.number, "study": self.study_name})
        self._loggers[trial.number] = logger
        return [], logger

    def on_trial(self, study: Any, trial: Any) -> None:
        """After a trial: its state and diagnosis into its run's summary, and the run closed."""
        logger = self._loggers.pop(trial.number, None)
        if logger is None:
            return
        run = logger.experiment
        diagnosis = Diagnosis.from_dict(trial.user_attrs.get(A.DIAGNOSIS, {}))
        run.summary.update({"trial": trial.number, "state": trial.state.name.lower(),
                            "value": trial.value if trial.value is not None else float("nan"),
                            "steps": trial.user_attrs.get(A.STEPS), **diagnosis_summary(diagnosis)})
        run.finish()

    def finish(self, result: Any) -> None:
        """The study run: trials table, parameter importances, LR range curve, best recipe."""
        from tunekit.search import StudyView

        wandb = _wandb()
        for number in list(self._loggers):  # trials that never reported (interrupted)
            self._loggers.pop(number).experiment.finish()
        run = wandb.init(project=self.project, group=self.study_name, name=f"{self.study_name}-study",
                         job_type="study", dir=self.save_dir, reinit="create_new",
                         config={"study": self.study_name, "monitor": result.monitor, "direction": result.direction})
        try:
            view = StudyView.load(self.storage, self.study_name)
            payload: dict[str, Any] = {"tunekit/trials": _trials_table(wandb, view)}
            importances = view.importances()
            if importances:
                table = wandb.Table(columns=["parameter", "importance"], data=list(importances.items()))
                payload["tunekit/param_importances"] = wandb.plot.bar(table, "parameter", "importance",
                                                                      title="parameter importances (fANOVA)")
            for fam, lr in view.lr_ranges().items():
                data = [[x, y] for x, y in zip(lr.lrs, lr.losses, strict=True) if math.isfinite(y)]
                table = wandb.Table(columns=["lr", "loss"], data=data)
                payload[f"tunekit/lr_range_test/{fam}"] = wandb.plot.line(
                    table, "lr", "loss", title=f"LR range test ({family_label(fam)}): suggestion {lr.suggestion:.3g}")
            run.log(payload)
            run.summary.update({"best_value": result.best_value, "best_trial": result.best_trial,
                                "best_recipe": result.best_recipe, "complete": result.complete,
                                "pruned": result.pruned, "failed": result.failed})
        finally:
            run.finish()


def _trials_table(wandb: Any, view: Any) -> Any:
    rows = view.trial_rows()
    names = sorted({k for r in rows for k in r["params"]})
    columns = ["trial", "state", "value", "steps", "findings", *names]
    data = [[r["number"], r["state"], r["value"], r["steps"], ", ".join(r["findings"]),
             *[r["params"].get(n) for n in names]] for r in rows]
    return wandb.Table(columns=columns, data=data)
