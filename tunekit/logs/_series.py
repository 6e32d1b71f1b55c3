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
LAYER_PATTERNS = ("tunekit/grad_norm/(.+)", r"grad_2\.0_norm/(.+)")  # per-layer (or per-parameter) gradient norms
STEP_KEYS = ("step", "trainer/global_step", "global_step", "_step")


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

    def find(self, patterns: tuple[str, ...], given: str | None = None) -> str | None:
        """The series a key names: ``given`` exactly, else the first pattern some logged name matches."""
        if given is not None:
            return given if given in self.series else None
        names = [n for n in self.series if n not in STEP_KEYS]
        for pattern in patterns:
            for name in names:
                if fnmatch.fnmatchcase(name.lower(), pattern.lower()):
                    return name
        return None

    def layers(self) -> dict[str, str]:
        """Per-layer gradient-norm series: layer name -> logged name."""
        out = {}
        for name in self.series:
            for pattern in LAYER_PATTERNS:
                match = re.fullmatch(pattern, name)
                if match:
                    out[match.group(1)] = name
        return out
