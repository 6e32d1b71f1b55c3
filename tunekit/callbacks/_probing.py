"""The Diagnoser's what-if probes: when to probe, which batches, the budget, and the reports so far.

Batches are held only while a probe waits for them: when a check finds something the forks can tell apart, the
next few training batches are kept (references, no copy), and the probe runs at the following step boundary.
Near the planned end of the fit the last few batches are kept too, so the final diagnosis can probe what the last
check found. The probes' cost is bounded by a share of the fit's planned steps.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl

from tunekit.diagnose import Diagnosis, Finding, FindingCode, RunContext, Severity
from tunekit.diagnose._probes import (
    DOWN,
    PROBE_GAIN,
    PROBED,
    STALLS,
    UP,
    Candidate,
    ProbeReport,
    lr_label,
    panel_core,
    probe_panel,
    read_probes,
)
from tunekit.probes import EVAL_BATCHES, probe_cost, probe_reason, run_probe
from tunekit.utilities.lightning import planned_steps

TRAIN_BATCHES = 8  # distinct batches the forks train on (cycled when a fork takes more steps)
MIN_STEPS, MAX_STEPS = 5, 20  # steps per fork: fewer say nothing; more than 20 is rarely needed
CURVATURE_HVPS = 10  # Hessian-vector products of a curvature measurement (about 20 training steps' worth)


class Prober:
    """Probes for one fit, within ``budget`` (a share of its planned steps)."""

    def __init__(self, budget: float, curvature: bool = True) -> None:
        self.budget_share = budget
        self.curvature = curvature
        self.reports: dict[FindingCode, ProbeReport] = {}
        self.spent = 0.0
        self.budget = 0.0
        self.skip_reason: str | None = None
        self._planned: int | None = None
        self._wanted: tuple[Finding, list[Candidate], int] | None = None
        self._batches: list[Any] = []
        self._accumulate = 1
        self._seen_step = -1
        self._stepped = False  # the last batch ended an optimizer step (the fit is between steps)

    @property
    def waiting_for(self) -> Finding | None:
        """The finding a probe is holding batches for."""
        return self._wanted[0] if self._wanted is not None else None

    @property
    def need(self) -> int:
        """Micro-batches a probe holds."""
        return TRAIN_BATCHES * self._accumulate + EVAL_BATCHES

    def start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._planned = planned_steps(trainer)
        self._accumulate = trainer.accumulate_grad_batches
        self.budget = self.budget_share * self._planned if self._planned else 0.0
        self.skip_reason = probe_reason(trainer, module) or (None if self._planned else
                                                             "the fit's length is unknown, so its budget is too")

    # ------------------------------------------------------------------ reading
    def apply(self, diagnosis: Diagnosis, ctx: RunContext) -> Diagnosis:
        """The diagnosis with every finding that was probed read through its probe."""
        return Diagnosis(read_probes(f, self.reports[f.code], ctx) if f.code in self.reports else f
                         for f in diagnosis.findings)

    # ------------------------------------------------------------------ deciding
    def _plan(self, diagnosis: Diagnosis, ctx: RunContext) -> tuple[Finding, list[Candidate], int] | None:
        if self.skip_reason is not None:
            return None
        for finding in diagnosis.findings:
            hint = finding.severity is Severity.INFO and finding.code is not FindingCode.SLOW_CONVERGENCE
            if finding.code not in PROBED or finding.code in self.reports or hint:
                continue  # (a hint that the LR may be too low is what a probe settles)
            panel = probe_panel(finding, ctx)
            if not panel:
                continue
            planned = self._fit(finding, panel)
            if planned is not None:
                return finding, *planned
        return None

    def _fit(self, finding: Finding, panel: list[Candidate]) -> tuple[list[Candidate], int] | None:
        """The forks the budget pays for (the panel, or the most of it down to its core) and their steps. A saddle
        keeps room for the curvature when it can: that is what tells it from a flat minimum."""
        reserve = probe_cost(0, 0, CURVATURE_HVPS, self._accumulate) if self.curvature and \
            finding.code is FindingCode.SADDLE_STALL else 0.0
        for keep in (reserve, 0.0):
            for size in range(len(panel), panel_core(finding, panel) - 1, -1):
                left = self.budget - self.spent - keep - probe_cost(size, 0, 0, self._accumulate)
                steps = min(MAX_STEPS, int(left // size))
                if steps >= MIN_STEPS:
                    return panel[:size], steps
        return None

    def want(self, trainer: pl.Trainer, diagnosis: Diagnosis, ctx: RunContext) -> None:
        """After a check: start holding batches for a probe of its first finding the forks can tell apart."""
        if self._wanted is None:
            plan = self._plan(diagnosis, ctx)
            if trainer.world_size > 1:  # every rank probes the same finding with the same forks, or none does
                plan = trainer.strategy.broadcast(plan, src=0)
            self._wanted = plan
            self._batches = []

    def hold(self, trainer: pl.Trainer, batch: Any) -> None:
        """Keep a training batch when a probe waits for it, or when the fit nears its planned end (called at the
        end of every training batch)."""
        self._stepped = trainer.global_step != self._seen_step
        self._seen_step = trainer.global_step
        near_end = self._planned is not None and trainer.global_step >= self._planned - self.need
        if self._wanted is not None or (near_end and self.skip_reason is None):
            self._batches = (self._batches + [batch])[-self.need:]

    def ready(self) -> bool:
        """A wanted probe has its batches, and the fit is between optimizer steps."""
        return self._wanted is not None and len(self._batches) >= self.need and self._stepped

    # ------------------------------------------------------------------ running
    def run(self, trainer: pl.Trainer, module: pl.LightningModule) -> ProbeReport | None:
        """Run the wanted probe (or, at the end of the fit, one for ``diagnosis``' first probe-able finding)."""
        if self._wanted is None:
            return None
        finding, panel, steps = self._wanted
        self._wanted = None
        batches, self._batches = self._batches, []
        hvps = CURVATURE_HVPS if self._wants_curvature(finding, steps, len(panel)) else 0
        # a stall needs the curvature only when neither step size helped (is it a saddle?); oscillation always
        # (where is the edge of stability?)
        report = run_probe(trainer, module, finding, panel, batches, steps, hvps,
                           curvature_if=_undecided if finding.code in STALLS else None)
        self.reports[finding.code] = report
        self.spent += report.cost_steps
        return report

    def final(self, trainer: pl.Trainer, module: pl.LightningModule, diagnosis: Diagnosis,
              ctx: RunContext) -> ProbeReport | None:
        """At the end of the fit: probe what the last check found, with the batches held near the end."""
        plan = self._plan(diagnosis, ctx)
        if trainer.world_size > 1:
            plan = trainer.strategy.broadcast(plan, src=0)
        if plan is None or len(self._batches) < self.need:
            return None
        self._wanted = plan
        return self.run(trainer, module)

    def _wants_curvature(self, finding: Finding, steps: int, forks: int) -> bool:
        left = self.budget - self.spent - probe_cost(forks, steps, 0, self._accumulate)
        return self.curvature and left >= probe_cost(0, 0, CURVATURE_HVPS, self._accumulate) and (
            finding.code in STALLS or finding.code is FindingCode.OSCILLATION)

    def state_dict(self) -> dict[str, Any]:
        return {"spent": self.spent, "reports": {code.value: r.to_dict() for code, r in self.reports.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.spent = float(state.get("spent", 0.0))
        self.reports = {FindingCode(code): ProbeReport.from_dict(r) for code, r in state.get("reports", {}).items()}


def _undecided(report: ProbeReport) -> bool:
    return max(report.gain(lr_label(UP)), report.gain(lr_label(DOWN))) <= PROBE_GAIN
