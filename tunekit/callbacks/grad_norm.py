"""Gradient norms, global and per layer, with the exploding and vanishing gradient rules."""

from __future__ import annotations

from typing import Any, ClassVar

from tunekit.callbacks._base import Monitor
from tunekit.callbacks._reporters import charted_per_layer
from tunekit.diagnose.rules import Rule, check_exploding_gradients, check_vanishing_gradients
from tunekit.record import RunRecord


class GradNormMonitor(Monitor):
    """Logs the global and per-layer gradient norms, the LR and the update/weight ratio.

    The norms are of the unscaled gradients (after AMP unscaling) and before clipping, computed once per
    optimizer step on the device with fused kernels, and logged every ``Trainer(log_every_n_steps)`` steps
    as ``tunekit/grad_norm``, ``tunekit/grad_norm/<layer>``, ``tunekit/lr`` and ``tunekit/update_ratio``.

    Example:
        >>> import lightning.pytorch as pl
        >>> from tunekit.callbacks import GradNormMonitor
        >>> trainer = pl.Trainer(callbacks=[GradNormMonitor()])  # doctest: +SKIP
    """

    rules: ClassVar[tuple[Rule, ...]] = (check_exploding_gradients, check_vanishing_gradients)

    def __init__(
        self, *, per_layer: bool = True,
        log_metrics: bool = True, flush_every: int = 64, update_ratio_every: int = 100,
    ) -> None:
        super().__init__(log_metrics=log_metrics, flush_every=flush_every, update_ratio_every=update_ratio_every)
        self.per_layer = per_layer
        self._key["per_layer"] = per_layer

    def logs_to(self, logger: Any, key: str) -> bool:
        # W&B gets the per-layer norms as one chart with a line per layer (tunekit.dashboards.wandb).
        return not (key.startswith("tunekit/grad_norm/") and charted_per_layer(logger))

    def step_metrics(self, record: RunRecord, index: int) -> dict[str, float]:
        metrics = {"tunekit/grad_norm": float(record.grad_norm[index]), "tunekit/lr": float(record.lr[index])}
        if record.group_lrs.ndim == 2 and record.group_lrs.shape[1] > 1 and index < len(record.group_lrs):
            for group, lr in enumerate(record.group_lrs[index]):
                metrics[f"tunekit/lr/group{group}"] = float(lr)
        if self.per_layer:
            for name, value in zip(record.layer_names, record.layer_grad_norms[index], strict=True):
                metrics[f"tunekit/grad_norm/{name}"] = float(value)
        return metrics

    def sampled_metrics(self, record: RunRecord, after_step: int) -> list[tuple[int, dict[str, float]]]:
        new = record.update_steps > after_step
        return [(int(s), {"tunekit/update_ratio": float(r)})
                for s, r in zip(record.update_steps[new], record.update_ratio[new], strict=True)]
