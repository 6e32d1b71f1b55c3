"""Signals: per-step training statistics computed on the device, read back in batches, kept bounded."""

from __future__ import annotations

from tunekit.signals._buffer import BoundedTable
from tunekit.signals._curvature import Curvature, adam_preconditioner, curvature
from tunekit.signals._history import SignalHistory
from tunekit.signals._layers import layer_membership, layer_of
from tunekit.signals._recorder import SignalRecorder

__all__ = ["BoundedTable", "Curvature", "SignalHistory", "SignalRecorder", "adam_preconditioner", "curvature",
           "layer_membership", "layer_of"]
