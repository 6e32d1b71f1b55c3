"""Logged scalar series, whatever logger wrote them, and the guess of which one is the training loss (the gradient
norm, the LR, the validation loss)."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

import numpy as np

# the names training code logs these under, most specific first (``*`` matches anything)
LOSS_KEYS = ("train_loss", "train/loss", "training_loss", "train_loss_step", "loss/train", "train_loss_epoch", "loss",
             "*train*loss*", "*loss*train*")
GRAD_NORM_KEYS = ("tunekit/grad_norm", "grad_2.0_norm_total", "grad_norm", "gradient_norm", "grad_norm_total",
                  "train/grad_norm", "*grad*norm*total*")
LR_KEYS = ("tunekit/lr", "lr", "learning_rate", "lr-*", "train/lr", "trainer/lr", "*learning_rate*")
VAL_KEYS = ("val_loss", "val/loss", "validation_loss", "valid_loss", "loss/val", "val_loss_epoch", "*val*loss*")
# LearningRateMonitor(log_momentum=True, log_weight_decay=True) logs these next to the LR: never an LR themselves
NOT_LR = ("*-momentum*", "*-weight_decay*")
LAYER_PATTERNS = ("tunekit/grad_norm/(.+)", r"grad_2\.0_norm/(.+)")  # per-layer (or per-parameter) gradient norms
STEP_KEYS = ("step", "trainer/global_step", "global_step", "_step")
# LearningRateMonitor's names: lr-<OptimizerClass>[-<n> for the n-th of a class][/<param group>][-momentum|...]
LR_MONITOR_NAME = re.compile(r"lr-(?P<optimizer>[A-Za-z_][A-Za-z0-9_]*?)(?:-\d+)?(?:/(?P<group>.+))?")


@dataclass
class Logged:
    """Every scalar series of a run: name -> (steps, values), in step order."""

    source: str
    series: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def add(self, name: str, steps: list[float], values: list[float]) -> None:
        s = np.asarray(steps, dtype=float)
        v = np.asarray(values, dtype=float)
        order = np.argsort(s, kind="stable")
        self.series[name] = (s[order], v[order])

    def find(self, patterns: tuple[str, ...], given: str | None = None, exclude: tuple[str, ...] = ()) -> str | None:
        """The series a key names: ``given`` exactly, else the logged name matching ``patterns`` that says the most.

        Lightning logs a metric with ``on_step`` and ``on_epoch`` as two series (``train_loss_step`` every
        ``log_every_n_steps``, ``train_loss_epoch`` every epoch), so the first name that matches is not the best
        one: among the names matching any pattern, the one with the most finite points wins, then the one logged
        at the finer step spacing, then the one matched by the earlier (more specific) pattern.
        """
        if given is not None:
            return given if given in self.series else None
        best: tuple[int, float, int, str] | None = None
        for name in sorted(self.series):
            lowered = name.lower()
            if name in STEP_KEYS or any(fnmatch.fnmatchcase(lowered, p.lower()) for p in exclude):
                continue
            rank = next((i for i, p in enumerate(patterns) if fnmatch.fnmatchcase(lowered, p.lower())), None)
            if rank is None:
                continue
            steps, values = self.series[name]
            finite = steps[np.isfinite(values)]
            spacing = float(np.median(np.diff(finite))) if len(finite) > 1 else np.inf
            score = (-len(finite), spacing, rank, name)
            if best is None or score < best:
                best = score
        return best[3] if best is not None else None

    def layers(self) -> dict[str, str]:
        """Per-layer gradient-norm series: layer name -> logged name."""
        out = {}
        for name in self.series:
            for pattern in LAYER_PATTERNS:
                match = re.fullmatch(pattern, name)
                if match:
                    out[match.group(1)] = name
        return out


def optimizer_of(lr_key: str | None) -> str | None:
    """The optimizer a LearningRateMonitor column names, lower-cased (``lr-Adam`` -> ``adam``, ``lr-SGD/pg2`` ->
    ``sgd``), or None for an LR logged under another name (which says nothing about the optimizer).

    Example:
        >>> optimizer_of("lr-AdamW-1/head"), optimizer_of("learning_rate")
        ('adamw', None)
    """
    match = LR_MONITOR_NAME.fullmatch(lr_key) if lr_key else None
    return match.group("optimizer").lower() if match else None
