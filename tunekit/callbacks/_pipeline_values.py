"""The Diagnoser's pipeline checks on values: the scale of the data, a one-batch fit, DDP replicas.

* over the first ``SCALE_BATCHES`` training batches (``input_scale``): the root mean square of each column of every
  1-D or 2-D float tensor in the batch (features, a regression target), summed on the device and read back once;
* when the loss has stalled near its start (``unfittable_batch``, once per fit): a fork trains the model on the
  latest training batch alone (``tunekit.probes.fit_one_batch``); a model that cannot fit it has a fault no learning
  rate fixes, and the stall findings' LR remedies are withdrawn;
* under DDP, every ``rank_check_every`` optimizer steps and at the end of the fit (``ranks_out_of_step``): each
  parameter tensor's sum and norm, gathered from every rank (two float32 per tensor per rank).

The rules that decide and word each fault are in ``tunekit.diagnose.rules._pipeline_values``.
"""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.strategies import DDPStrategy, DeepSpeedStrategy, FSDPStrategy, ModelParallelStrategy

from tunekit.diagnose import Diagnosis
from tunekit.diagnose._probes import STALLS
from tunekit.diagnose.rules._pipeline import PipelineFault
from tunekit.diagnose.rules._pipeline_values import (
    ONE_BATCH_LEFT,
    input_scale_fault,
    rank_desync_fault,
    stalled_from_start,
    unfittable_batch_fault,
)
from tunekit.probes import fit_one_batch, probe_reason
from tunekit.record import RunRecord
from tunekit.signals._pipeline import column_square_sums, parameter_checksums, trainable_parameters

SCALE_BATCHES = 4  # training batches whose columns are measured (rows enough for a column's scale, read back once)
SHARDED = (DeepSpeedStrategy, FSDPStrategy, ModelParallelStrategy)  # parameters sharded or flattened by design


class ValueChecks:
    """The three checks above for one fit; each returns the fault it found (``PipelineChecks`` keeps them).

    Args:
        input_scale: measure the scale of the first batches' columns.
        one_batch: run the one-batch fit when the loss stalls near its start.
        rank_check_every: optimizer steps between comparisons of the DDP replicas (0: off; only with 2+ ranks).
    """

    def __init__(self, input_scale: bool = True, one_batch: bool = True, rank_check_every: int = 100) -> None:
        self.input_scale, self.one_batch, self.rank_check_every = input_scale, one_batch, rank_check_every
        self.next_rank_check: float = math.inf  # the optimizer step of the next replica comparison
        self.watching_ranks = False  # a comparison is due some time: the Diagnoser tests this flag on every batch
        # (reading trainer.global_step costs about a microsecond, so it is read only under DDP)
        self.probe_steps = 0  # optimizer steps the one-batch fit took
        self.rank_checks = 0  # comparisons of the DDP replicas made
        self._sums: dict[str, tuple[list[int], torch.Tensor]] = {}
        self._rows: dict[str, int] = {}
        self._scale_batches = 0
        self._probed = False
        self._params: list[tuple[str, torch.nn.Parameter]] = []

    @property
    def scale_open(self) -> bool:
        return self._scale_batches < SCALE_BATCHES

    def start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._sums, self._rows, self._probed = {}, {}, False
        self._scale_batches = 0 if self.input_scale else SCALE_BATCHES
        replicated = isinstance(trainer.strategy, DDPStrategy) and not isinstance(trainer.strategy, SHARDED)
        if self.rank_check_every and trainer.world_size > 1 and replicated:
            self._params = trainable_parameters(module)
            self._due(trainer.global_step + self.rank_check_every)
        else:
            self._params = []
            self._due(math.inf)

    def _due(self, step: float) -> None:
        self.next_rank_check, self.watching_ranks = step, math.isfinite(step)

    # ------------------------------------------------------------------ the scale of the data
    def measure(self, trainer: pl.Trainer, batch: Any) -> PipelineFault | None:
        """Add a training batch's column sums of squares; after ``SCALE_BATCHES`` batches, judge them."""
        for path, (shape, sums) in column_square_sums(batch).items():
            if path in self._sums and self._sums[path][1].shape == sums.shape:
                sums = self._sums[path][1] + sums
            elif path in self._sums:
                continue  # a tensor whose width changes between batches (ragged features): the first width counts
            self._sums[path] = (shape, sums)
            self._rows[path] = self._rows.get(path, 0) + shape[0]
        self._scale_batches += 1
        return self.judge_scale(trainer) if not self.scale_open else None

    def judge_scale(self, trainer: pl.Trainer) -> PipelineFault | None:
        """Read the sums back (once) and judge them; the window closes."""
        self._scale_batches = SCALE_BATCHES
        tensors = [{"tensor": path, "shape": shape, "scales": (sums.cpu() / max(1, self._rows[path])).sqrt().tolist()}
                   for path, (shape, sums) in self._sums.items()]
        self._sums = {}
        return input_scale_fault(trainer.global_step, tensors) if tensors else None

    # ------------------------------------------------------------------ one batch
    def fit_probe(self, trainer: pl.Trainer, module: pl.LightningModule, record: RunRecord, batch: Any,
                  diagnosis: Diagnosis) -> PipelineFault | None:
        """Once per fit, when the loss has stalled near its start and ``diagnosis`` holds no instability (decided on
        rank 0's record under DDP): can the model fit ``batch`` alone?"""
        if not self.one_batch or self._probed or batch is None:
            return None
        if probe_reason(trainer, module) is not None or isinstance(trainer.strategy, SHARDED):
            self._probed = True  # a fork cannot train this fit (manual optimization, several optimizers, shards)
            return None
        stall = stalled_from_start(record, diagnosis.findings)
        if trainer.world_size > 1:
            stall = trainer.strategy.broadcast(stall, src=0)
        if stall is None:
            return None
        self._probed = True
        fit = fit_one_batch(trainer, module, batch, ONE_BATCH_LEFT)
        self.probe_steps += int(fit["steps"])
        return unfittable_batch_fault(trainer.global_step, {**fit, "stall": stall})

    @staticmethod
    def screen(diagnosis: Diagnosis, faults: dict[str, PipelineFault]) -> Diagnosis:
        """The diagnosis without its stall findings when the model cannot fit one batch: their LR remedies would
        send the user after the wrong cause."""
        if "unfittable_batch" not in faults:
            return diagnosis
        return Diagnosis(f for f in diagnosis.findings if f.code not in STALLS)

    # ------------------------------------------------------------------ DDP replicas
    def compare_ranks(self, trainer: pl.Trainer) -> PipelineFault | None:
        """Gather every rank's parameter checksums and compare them with rank 0's (call on all ranks together)."""
        if not self._params:
            return None
        self._due(trainer.global_step + self.rank_check_every)
        self.rank_checks += 1
        local = parameter_checksums(self._params).to(trainer.strategy.root_device)
        gathered = trainer.strategy.all_gather(local)  # (ranks, 2, parameters)
        fault = rank_desync_fault(trainer.global_step, [n for n, _ in self._params], gathered.cpu().tolist())
        if fault is not None:
            self._due(math.inf)  # named once; the replicas stay apart
        return fault

    def finish(self, trainer: pl.Trainer) -> list[PipelineFault | None]:
        """The fit ended: judge the scale on the batches seen, and compare the replicas one last time."""
        faults = [self.judge_scale(trainer) if self._scale_batches and self.scale_open else None]
        if self.watching_ranks:
            faults.append(self.compare_ranks(trainer))
        self._due(math.inf)
        return faults
