"""One recorder per Trainer, shared by all tunekit monitors on it.

The first monitor whose ``setup`` runs feeds the recorder from its Lightning hooks and tells every subscribed
monitor (the Trainer's other monitors, and the ones a ``Diagnoser`` runs itself) when new signals arrive, when
validation ends and when the fit ends. The signals are computed once per step however many monitors listen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

import lightning.pytorch as pl

from tunekit.signals import SignalRecorder

if TYPE_CHECKING:
    from tunekit.callbacks._base import Monitor


class SignalHub:
    """A Trainer's recorder and the monitors that listen to it (the first one feeds it)."""

    def __init__(self, recorder: SignalRecorder) -> None:
        self.recorder = recorder
        self.monitors: list[Monitor] = []

    @property
    def feeder(self) -> Monitor | None:
        return self.monitors[0] if self.monitors else None

    def subscribe(self, monitor: Monitor) -> None:
        if monitor not in self.monitors:
            self.monitors.append(monitor)


_HUBS: WeakKeyDictionary[pl.Trainer, SignalHub] = WeakKeyDictionary()


def hub_for(trainer: pl.Trainer, **settings: Any) -> SignalHub:
    """The Trainer's hub, made with a recorder of ``settings`` by the first monitor that asks."""
    hub = _HUBS.get(trainer)
    if hub is None:
        hub = _HUBS[trainer] = SignalHub(SignalRecorder(**settings))
    return hub
