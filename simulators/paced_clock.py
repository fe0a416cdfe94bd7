"""The lab clock of ``sflab sim serve --speed max``: as fast as the slowest client allows.

Under ``sim serve`` the clients are other programs on TCP/WebSocket ports. They wait in *wall* time
(``time.sleep`` between polls), never on our clock, so an "as fast as possible" clock that only moves
inside somebody's ``sleep`` would freeze the lab for them. :class:`PacedClock` moves lab time by
itself, with one rule:

    **Lab time flows at ``ceiling`` lab seconds per wall second, but it never runs more than
    ``step_s`` lab seconds ahead of the latest request of any active client.** A client is active
    from its first request until it disconnects or stays silent for ``idle_s`` wall seconds.

So a client that polls every ``p`` wall seconds sees lab time advance by ``min(step_s,
ceiling·p)`` between two of its polls; the lab runs at ``min(ceiling, step_s / p_slowest)``
lab s per wall s — the slowest active client sets the pace, and every poller sees the temperature,
the HV ramp and the stage move by at most ``step_s`` of lab time between two looks. With nobody
talking the lab runs at ``ceiling``. A client that stops polling (but keeps its connection) holds
the lab for at most ``idle_s`` wall seconds.

The clock has the duck-typed interface the simulators use (``now() / monotonic() / sleep(s) /
call_every(interval, fn, name=)``), plus ``client_request(key)`` and ``client_gone(key)`` that the
protocol servers call on every request and on disconnect. It imports nothing of ours.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["PacedClock", "DEFAULT_STEP_S", "DEFAULT_CEILING", "DEFAULT_IDLE_S", "serve_clock"]

#: lab seconds a client may see pass between two of its requests
DEFAULT_STEP_S = 2.0
#: lab seconds per wall second with no active client
DEFAULT_CEILING = 200.0
#: wall seconds of silence after which a connected client no longer holds the lab back
DEFAULT_IDLE_S = 2.0


class _Periodic:
    def __init__(self, interval: float, fn: Callable[[], None], name: str, due: float) -> None:
        self.interval, self.fn, self.name, self.due = interval, fn, name, due
        self.cancelled = False
        self.errors = 0

    def cancel(self) -> None:
        self.cancelled = True


class PacedClock:
    """See the module docstring. Thread-safe."""

    afap = False

    def __init__(self, *, step_s: float = DEFAULT_STEP_S, ceiling: float = DEFAULT_CEILING,
                 idle_s: float = DEFAULT_IDLE_S, start: float | None = None) -> None:
        for name, v in (("step_s", step_s), ("ceiling", ceiling), ("idle_s", idle_s)):
            if not v > 0:
                raise ValueError(f"PacedClock {name} must be > 0, got {v!r}")
        self.step_s = float(step_s)
        self.ceiling = float(ceiling)
        self.speed = self.ceiling
        self.idle_s = float(idle_s)
        self._start = time.time() if start is None else float(start)
        self._lock = threading.Condition(threading.RLock())
        self._lab = 0.0
        self._wall = time.monotonic()
        self._clients: dict[Hashable, tuple[float, float]] = {}   # key -> (last wall, lab bound)
        self._heap: list[tuple[float, int, _Periodic]] = []
        self._seq = itertools.count()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.requests = 0

    # -- time ------------------------------------------------------------------------------------
    def _advance_locked(self) -> float:
        w = time.monotonic()
        t = self._lab + (w - self._wall) * self.ceiling
        self._wall = w
        for last_w, bound in self._clients.values():
            if w - last_w <= self.idle_s:
                t = min(t, bound)
        if t > self._lab:
            self._lab = t
        return self._lab

    def monotonic(self) -> float:
        with self._lock:
            return self._advance_locked()

    def now(self) -> float:
        return self._start + self.monotonic()

    def held(self) -> bool:
        """Whether an active client is holding lab time back right now."""
        with self._lock:
            t = self._advance_locked()
            w = time.monotonic()
            return any(w - lw <= self.idle_s and b <= t for lw, b in self._clients.values())

    def sleep(self, seconds: float) -> None:
        """Wait until lab time has moved ``seconds`` on (in wall time that depends on the clients)."""
        if seconds is None or not seconds > 0:
            return
        end = self.monotonic() + float(seconds)
        while not self._closed:
            remaining = end - self.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(remaining / self.ceiling, 0.02))

    # -- clients ---------------------------------------------------------------------------------
    def client_request(self, key: Hashable) -> float:
        """A client sent a request: it may see lab time advance ``step_s`` until its next one.
        Returns the lab time of the request."""
        with self._lock:
            t = self._advance_locked()
            self._clients[key] = (time.monotonic(), t + self.step_s)
            self.requests += 1
            self._lock.notify_all()
            return t

    def client_gone(self, key: Hashable) -> None:
        with self._lock:
            self._clients.pop(key, None)
            self._lock.notify_all()

    def active_clients(self) -> int:
        with self._lock:
            w = time.monotonic()
            return sum(1 for lw, _ in self._clients.values() if w - lw <= self.idle_s)

    # -- periodic callbacks ----------------------------------------------------------------------
    def call_every(self, interval: float, fn: Callable[[], None], *, name: str = "", hold: bool = False
                   ) -> _Periodic:
        if not interval > 0:
            raise ValueError(f"call_every interval must be > 0 s, got {interval!r}")
        with self._lock:
            p = _Periodic(float(interval), fn, name, self._advance_locked() + interval)
            heapq.heappush(self._heap, (p.due, next(self._seq), p))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="paced-clock", daemon=True)
                self._thread.start()
            self._lock.notify_all()
        return p

    def _run(self) -> None:
        while not self._closed:
            with self._lock:
                while self._heap and self._heap[0][2].cancelled:
                    heapq.heappop(self._heap)
                t = self._advance_locked()
                due: _Periodic | None = None
                if self._heap and self._heap[0][0] <= t:
                    _, _, due = heapq.heappop(self._heap)
                    # a callback that fell behind (lab time jumped) fires once, not once per missed period
                    due.due = max(due.due + due.interval, t)
                    heapq.heappush(self._heap, (due.due, next(self._seq), due))
                else:
                    wait = 0.5 if not self._heap else (self._heap[0][0] - t) / self.ceiling
                    self._lock.wait(min(max(wait, 0.005), 0.05))
            if due is not None and not due.cancelled:
                try:
                    due.fn()
                except Exception as exc:  # a failing callback must not stop the clock
                    due.errors += 1
                    log.warning("periodic %s failed: %s", due.name or due.fn, exc)

    def close(self) -> None:
        self._closed = True
        with self._lock:
            self._lock.notify_all()

    def __repr__(self) -> str:
        return f"PacedClock(step_s={self.step_s:g}, ceiling={self.ceiling:g}, idle_s={self.idle_s:g})"


def serve_clock(speed: str | float | None, *, step_s: float = DEFAULT_STEP_S,
                ceiling: float = DEFAULT_CEILING, idle_s: float = DEFAULT_IDLE_S) -> Any:
    """The ``sim serve`` clock for ``--speed max`` (``'max'``, ``'inf'``, ``'afap'``, ``''`` or None):
    a :class:`PacedClock`. For a number or ``'real'`` it returns None: the caller's wall-paced clock
    at that speed already moves lab time for outside clients."""
    if speed is None or (isinstance(speed, str) and speed.strip().lower() in ("max", "inf", "afap", "")):
        return PacedClock(step_s=step_s, ceiling=ceiling, idle_s=idle_s)
    if isinstance(speed, float) and speed == float("inf"):
        return PacedClock(step_s=step_s, ceiling=ceiling, idle_s=idle_s)
    return None
