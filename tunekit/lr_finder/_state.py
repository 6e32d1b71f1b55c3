"""Snapshot and restore of the module state the LR range test touches, so the model is left as it was found (the
RNG states are isolated by Lightning's ``isolate_rng`` around the whole test)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch

_LR_ATTRIBUTES = ("lr", "learning_rate", "recipe")  # where modules keep their LR (Lightning's lr_find looks here)


@dataclass
class ModelSnapshot:
    weights: dict[str, torch.Tensor]
    modes: dict[str, bool]
    attributes: dict[str, Any]
    trainer: Any

    @classmethod
    def take(cls, model: torch.nn.Module) -> ModelSnapshot:
        return cls(
            weights=copy.deepcopy(model.state_dict()),
            modes={name: m.training for name, m in model.named_modules()},
            attributes={a: model.__dict__[a] for a in _LR_ATTRIBUTES if a in model.__dict__},  # runs never change them
            trainer=model.__dict__.get("_trainer"),
        )

    def weights_to(self, model: torch.nn.Module) -> None:
        """Put the snapshot's weights back (between runs)."""
        model.load_state_dict(self.weights)

    def restore(self, model: torch.nn.Module) -> None:
        """Everything back: weights, buffers, train/eval modes, LR attributes, trainer link."""
        model.load_state_dict(self.weights)
        for name, m in model.named_modules():
            if name in self.modes:
                m.training = self.modes[name]
        for name, value in self.attributes.items():
            model.__dict__[name] = value
        if "_trainer" in model.__dict__:
            model.__dict__["_trainer"] = self.trainer

