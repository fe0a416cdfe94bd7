"""From the engine's event bus to the GUI thread, throttled.

The bus never blocks the runner: each subscription is a bounded inbox that drops its oldest record
when full. :class:`BusPump` drains its inboxes on a GUI-thread timer (``rate_hz``, default 15 Hz),
hands the records in bus order to Qt signals, and then asks the views to redraw once per tick —
however many points arrived in between.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from qtpy import QtCore

log = logging.getLogger(__name__)

__all__ = ["BusPump"]


class BusPump(QtCore.QObject):
    runStarted = QtCore.Signal(object)     # Event
    runStatus = QtCore.Signal(object)
    runStopped = QtCore.Signal(object)
    points = QtCore.Signal(list)           # [Event, …] of this tick
    logged = QtCore.Signal(object)
    suspended = QtCore.Signal(object)
    analysis = QtCore.Signal(object)
    queueEvent = QtCore.Signal(object)
    tick = QtCore.Signal()                 # after every drain: redraw now

    def __init__(self, bus: Any, *, rate_hz: float = 15.0, point_inbox: int = 256,
                 parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.bus = bus
        self.point_sub = bus.subscribe("point", maxsize=point_inbox)
        self.ctl_sub = bus.subscribe("run.*", "suspend", "unsuspend", "log", "analysis", "queue.*", maxsize=2000)
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(max(int(1000 / rate_hz), 1))
        self.timer.timeout.connect(self.drain)
        self.timer.start()
        self.n_points = 0
        self.ticks = 0
        self.last_drain_s = 0.0

    @property
    def dropped(self) -> int:
        return self.point_sub.dropped

    def drain(self) -> None:
        t0 = time.perf_counter()
        evs = self.ctl_sub.drain() + self.point_sub.drain()
        if evs:
            evs.sort(key=lambda e: e.seq)
            batch: list[Any] = []
            for ev in evs:
                if ev.topic == "point":
                    batch.append(ev)
                    continue
                if batch:
                    self._emit_points(batch)
                    batch = []
                self._dispatch(ev)
            if batch:
                self._emit_points(batch)
        self.ticks += 1
        self.tick.emit()
        self.last_drain_s = time.perf_counter() - t0

    def _emit_points(self, batch: list[Any]) -> None:
        self.n_points += len(batch)
        self.points.emit(batch)

    def _dispatch(self, ev: Any) -> None:
        t = ev.topic
        try:
            if t == "run.start":
                self.runStarted.emit(ev)
            elif t == "run.status":
                self.runStatus.emit(ev)
            elif t == "run.stop":
                self.runStopped.emit(ev)
            elif t == "log":
                self.logged.emit(ev)
            elif t in ("suspend", "unsuspend"):
                self.suspended.emit(ev)
            elif t == "analysis":
                self.analysis.emit(ev)
            elif t.startswith("queue"):
                self.queueEvent.emit(ev)
        except Exception:
            log.exception("handling %s failed", t)

    def close(self) -> None:
        self.timer.stop()
        self.point_sub.close()
        self.ctl_sub.close()
