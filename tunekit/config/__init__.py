"""The run configuration: a LightningCLI config (parsed by Lightning's own parser) plus tunekit's sections."""

from __future__ import annotations

from tunekit.config._checks import import_class
from tunekit.config._direction import infer_direction, name_tokens
from tunekit.config._run import TOP_LEVEL, TRAIN_LOSS, RunConfig, load_config, parse_config

__all__ = ["TOP_LEVEL", "TRAIN_LOSS", "RunConfig", "import_class", "infer_direction", "load_config", "name_tokens",
           "parse_config"]
