"""Runs logged without tunekit (Lightning's CSVLogger, TensorBoard, W&B), read back and diagnosed by the same rules."""

from __future__ import annotations

from tunekit.logs._posthoc import LoggedRun, from_logged
from tunekit.logs._readers import read_csv, read_logged, read_tensorboard, read_wandb
from tunekit.logs._series import Logged

__all__ = ["Logged", "LoggedRun", "from_logged", "read_csv", "read_logged", "read_tensorboard", "read_wandb"]
