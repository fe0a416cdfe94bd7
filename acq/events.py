"""In-process publish/subscribe bus for run records.

The runner publishes run start/stop, points, readbacks, suspensions and log messages; the GUI,
the CLI progress display and live analysis subscribe. Publishing never blocks: every subscriber
has its own bounded queue; when it is full the *oldest* record is dropped (and counted), or — in
``coalesce`` mode — a new record replaces the queued one with the same key (topic by default), so
a slow plot only ever sees the latest state. Acquisition and writing therefore never wait for a
subscriber.

Topics used by the engine (``Event.topic``):

``run.start``   data: run_uid, procedure, parameters, path, n_points (planned or None)
``run.status``  data: state (running, paused, suspended, resuming, …), reason
``point``       data: point_id, index, streams {stream: {field: value}}, readbacks {role: {name: v}},
                timestamp (the run file's scan/timestamp), sidecars {stream: file}
``suspend``     data: name, reason, action      /  ``unsuspend`` data: name, duration_s
``log``         data: level, message
``run.stop``    data: exit_status, path, n_points, error, backstop
``analysis``    data: the run's analysis summary (dict)
"""

from __future__ import annotations

import collections
import fnmatch
import itertools
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .clock import Clock

__all__ = ["Event", "EventBus", "Subscription", "default_bus"]


@dataclass(frozen=True)
class Event:
    topic: str
    data: dict[str, Any]
    run_uid: str = ""
    time: float = 0.0          # lab time (POSIX s) when published
    seq: int = 0               # bus-wide sequence number


@dataclass(eq=False)
class Subscription:
    """A subscriber's bounded inbox. Iterate, ``get()`` or ``drain()`` it from any thread."""

    bus: EventBus
    patterns: tuple[str, ...]
    maxsize: int
    coalesce: bool = False
    key: Callable[[Event], Hashable] | None = None
    dropped: int = 0
    received: int = 0
    _queue: collections.deque = field(default_factory=collections.deque)
    _index: dict = field(default_factory=dict)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    closed: bool = False

    def matches(self, topic: str) -> bool:
        return any(fnmatch.fnmatchcase(topic, p) for p in self.patterns)

    def _offer(self, ev: Event) -> None:
        with self._cond:
            if self.closed:
                return
            self.received += 1
            if self.coalesce:
                k = self.key(ev) if self.key else ev.topic
                old = self._index.get(k)
                if old is not None:
                    # replace in place: keeps the queue bounded by the number of keys
                    self._queue[self._queue.index(old)] = ev
                    self._index[k] = ev
                    self.dropped += 1
                    self._cond.notify()
                    return
                self._index[k] = ev
            if len(self._queue) >= self.maxsize:
                gone = self._queue.popleft()
                self.dropped += 1
                if self.coalesce:
                    self._index.pop(self.key(gone) if self.key else gone.topic, None)
            self._queue.append(ev)
            self._cond.notify()

    def get(self, timeout: float | None = None) -> Event | None:
        """Next event, or None after ``timeout`` wall seconds (or when closed)."""
        with self._cond:
            end = None if timeout is None else time.monotonic() + timeout
            while not self._queue and not self.closed:
                remaining = None if end is None else end - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            if not self._queue:
                return None
            ev = self._queue.popleft()
            if self.coalesce:
                k = self.key(ev) if self.key else ev.topic
                if self._index.get(k) is ev:
                    del self._index[k]
            return ev

    def drain(self) -> list[Event]:
        """Everything queued now, oldest first, without waiting."""
        with self._cond:
            out = list(self._queue)
            self._queue.clear()
            self._index.clear()
            return out

    def __len__(self) -> int:
        return len(self._queue)

    def __iter__(self) -> Iterator[Event]:
        while True:
            ev = self.get()
            if ev is None:
                return
            yield ev

    def close(self) -> None:
        self.bus.unsubscribe(self)
        with self._cond:
            self.closed = True
            self._cond.notify_all()


class EventBus:
    """Thread-safe, non-blocking pub/sub. ``clock`` (optional) time-stamps events in lab time."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._subs: list[Subscription] = []
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self.clock = clock

    def subscribe(self, *patterns: str, maxsize: int = 1000, coalesce: bool = False,
                  key: Callable[[Event], Hashable] | None = None) -> Subscription:
        """Subscribe to topics matching the glob ``patterns`` (default: everything)."""
        if maxsize < 1:
            raise ValueError("subscription maxsize must be >= 1")
        sub = Subscription(self, tuple(patterns) or ("*",), maxsize, coalesce, key)
        with self._lock:
            self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def publish(self, topic: str, data: dict[str, Any] | None = None, *, run_uid: str = "") -> Event:
        t = self.clock.now() if self.clock is not None else time.time()
        ev = Event(topic, dict(data or {}), run_uid, t, next(self._seq))
        with self._lock:
            subs = list(self._subs)
        for s in subs:
            if s.matches(topic):
                s._offer(ev)
        return ev

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subs)


_default: EventBus | None = None


def default_bus() -> EventBus:
    """A process-wide bus for scripts that do not make their own."""
    global _default
    if _default is None:
        _default = EventBus()
    return _default
