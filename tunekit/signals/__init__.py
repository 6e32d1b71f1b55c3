"""Signals: per-step training statistics computed on the device, read back in batches, kept bounded."""

from __future__ import annotations

from tunekit.signals._buffer import BoundedTable
from tunekit.signals._recorder import SignalRecorder, layer_of

__all__ = ["BoundedTable", "SignalRecorder", "layer_of"]
