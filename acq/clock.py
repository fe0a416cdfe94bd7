"""The lab clock: one notion of time shared by the runner, procedures, drivers and simulators.

Everything in sflab that waits or time-stamps goes through a :class:`Clock`:

* ``now()``       — lab time as POSIX seconds (for timestamps in run files);
* ``monotonic()`` — seconds since the clock started, never decreasing (for intervals);
* ``sleep(dt)``   — wait ``dt`` seconds of lab time;
* ``call_every(interval, fn)`` — run ``fn`` periodically in lab time (keep-alives, pollers).

:class:`RealClock` is wall time. :class:`SimClock` is accelerated: with ``speed=S`` one wall
second is ``S`` lab seconds; with ``speed=math.inf`` ("as fast as possible", AFAP) lab time stands
still except when somebody sleeps, and ``sleep(dt)`` returns at once after advancing lab time by
``dt`` — running every periodic callback that fell due on the way, at its own lab time.  That is
what lets a 12-hour campaign run in seconds while the X-ray keep-alive still reaches the
(simulated) generator every second of lab time, so its watchdog behaves as at the setup.

At a finite speed lab time follows the wall clock, so a host that is late — a loaded machine, a slow
first import — would be late by ``speed`` times as much in lab time: at ``--speed 40`` a 125 ms stall of
the keep-alive thread is a 5 s silence to the generator's watchdog, which trips. A callback registered
with ``hold=True`` (the keep-alives) therefore holds the clock: lab time never runs more than half its
interval past the moment it fell due while it waits to fire, nor past the moment it started while it runs.
The clock *slips* (lab time runs slower than ``speed`` for that moment; :attr:`SimClock.slipped_s` adds
it up) instead of letting the host's hiccup become a lab event. A keep-alive that is cancelled, or a
keep-alive sent by another process (the watchdog test that kills the host), holds nothing.

Simulated instruments receive the *same* clock object (``simulators`` never imports ``acq``; it
relies only on the duck-typed methods above), so they see exactly the runner's time.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from drivers.base import Clock, WallClock

log = logging.getLogger(__name__)

__all__ = ["Clock", "RealClock", "SimClock", "Periodic", "make_clock"]


@dataclass(eq=False)
class Periodic:
    """Handle of a periodic callback. ``cancel()`` stops it; it never raises into the clock."""

    interval: float
    fn: Callable[[], None]
    name: str = ""
    due: float = 0.0
    cancelled: bool = False
    #: lab time may not run ahead of this callback (see the module docstring)
    hold: bool = False
    #: lab time at which the running call started (None: not running)
    firing_since: float | None = None
    errors: int = 0
    last_error: BaseException | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def cancel(self) -> None:
        self.cancelled = True

    def fire(self) -> None:
        # one call at a time per callback, whichever thread fires it
        with self._lock:
            if self.cancelled:
                return
            try:
                self.fn()
            except Exception as exc:  # a keep-alive that fails must not kill the clock
                self.errors += 1
                self.last_error = exc
                log.warning("periodic %s failed: %s", self.name or self.fn, exc)


class _ClockBase:
    """Shared machinery: a heap of periodic callbacks and a scheduler thread for finite speed."""

    speed: float = 1.0

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._heap: list[tuple[float, int, Periodic]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._holds: list[Periodic] = []

    # -- to be provided by subclasses
    def monotonic(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def now(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def _wall_for(self, lab_seconds: float) -> float:
        return lab_seconds / self.speed

    # -- periodic callbacks
    def call_every(self, interval: float, fn: Callable[[], None], *, name: str = "", hold: bool = False
                   ) -> Periodic:
        if not interval > 0:
            raise ValueError(f"call_every interval must be > 0 s, got {interval!r}")
        p = Periodic(interval=float(interval), fn=fn, name=name, hold=hold)
        with self._cond:
            p.due = self.monotonic() + interval
            heapq.heappush(self._heap, (p.due, next(self._seq), p))
            if hold:
                self._holds = [q for q in self._holds if not q.cancelled] + [p]
            self._ensure_thread()
            self._cond.notify_all()
        return p

    def _pop_due(self, t: float) -> Periodic | None:
        """Pop the earliest live callback due at or before lab time ``t``, rescheduling it."""
        with self._cond:
            while self._heap and self._heap[0][2].cancelled:
                heapq.heappop(self._heap)
            if not self._heap or self._heap[0][0] > t:
                return None
            due, _, p = heapq.heappop(self._heap)
            p.due = due + p.interval
            heapq.heappush(self._heap, (p.due, next(self._seq), p))
            return p

    def _next_due(self) -> float | None:
        with self._cond:
            while self._heap and self._heap[0][2].cancelled:
                heapq.heappop(self._heap)
            return self._heap[0][0] if self._heap else None

    def _ensure_thread(self) -> None:
        if self._thread is None and self._threaded_scheduler():
            self._thread = threading.Thread(target=self._run_scheduler, name="clock-scheduler", daemon=True)
            self._thread.start()

    def _threaded_scheduler(self) -> bool:
        return True

    def _run_scheduler(self) -> None:
        while not self._closed:
            nxt = self._next_due()
            with self._cond:
                if nxt is None:
                    self._cond.wait(0.5)
                    continue
                delay = nxt - self.monotonic()
                if delay > 0:
                    self._cond.wait(min(self._wall_for(delay), 0.5))
                    continue
            t = self.monotonic()
            p = self._pop_due(t)
            if p is not None:
                p.firing_since = t
                try:
                    p.fire()
                finally:
                    p.firing_since = None

    def close(self) -> None:
        """Stop the scheduler thread (periodic callbacks stop firing)."""
        self._closed = True
        with self._cond:
            self._cond.notify_all()


class RealClock(_ClockBase):
    """Wall time. Used at the setup. The wall readings are :class:`drivers.base.WallClock`'s (the drivers'
    fallback clock, one implementation for both layers); the periodic callbacks are this engine's
    scheduler."""

    speed = 1.0

    def __init__(self) -> None:
        super().__init__()
        self._wall = WallClock()

    def now(self) -> float:
        return self._wall.now()

    def monotonic(self) -> float:
        return self._wall.monotonic()

    def sleep(self, seconds: float) -> None:
        self._wall.sleep(seconds)

    def __repr__(self) -> str:
        return "RealClock()"


class SimClock(_ClockBase):
    """Accelerated lab clock for simulation.

    ``speed`` is lab seconds per wall second; ``math.inf`` (or ``None``) means as fast as possible:
    lab time advances only through :meth:`sleep` / :meth:`advance`, and periodic callbacks fire
    inline, in lab-time order, inside the sleeping thread. ``start`` is the lab POSIX time at
    creation (default: the wall time now, so run files carry plausible dates).
    """

    def __init__(self, speed: float | None = math.inf, *, start: float | None = None,
                 max_step: float = 3600.0) -> None:
        super().__init__()
        speed = math.inf if speed is None else float(speed)
        if not speed > 0:
            raise ValueError(f"SimClock speed must be > 0 (lab s per wall s) or inf, got {speed!r}")
        self.speed = speed
        self.afap = math.isinf(speed)
        self._start = time.time() if start is None else float(start)
        self._wall0 = time.monotonic()
        self._offset = 0.0  # lab seconds added by sleeps in AFAP mode
        self._last = 0.0
        self.max_step = max_step
        #: lab seconds the finite-speed clock held back for late ``hold`` callbacks (module docstring)
        self.slipped_s = 0.0

    def _hold_limit(self) -> float:
        """The latest lab time the ``hold`` callbacks allow now (inf: none waiting or running)."""
        limit = math.inf
        for p in self._holds:
            if p.cancelled:
                continue
            since = p.firing_since
            limit = min(limit, (p.due if since is None else since) + 0.5 * p.interval)
        return limit

    def monotonic(self) -> float:
        if self.afap:
            # lab time moves only by advance(), which only ever raises _offset (under the lock): reading the
            # float needs no lock, and it is never below an earlier reading. The lock here was a tenth of a
            # simulated PL series' host time (every poll, every emulated instrument call reads the clock)
            return self._offset
        with self._lock:
            t = self._offset + (time.monotonic() - self._wall0) * self.speed
            if self._holds:
                limit = max(self._hold_limit(), self._last)
                if t > limit:   # the host is late with a keep-alive: slip rather than jump over it
                    self._offset -= t - limit
                    self.slipped_s += t - limit
                    t = limit
            if t < self._last:
                t = self._last
            self._last = t
            return t

    def now(self) -> float:
        return self._start + self.monotonic()

    def _threaded_scheduler(self) -> bool:
        return not self.afap

    def advance(self, seconds: float) -> None:
        """Move lab time forward by ``seconds`` (AFAP: instantly, firing due callbacks in order)."""
        if seconds <= 0:
            return
        if not self.afap:
            self.sleep(seconds)
            return
        target = self.monotonic() + seconds
        while True:
            p = self._pop_due(target)
            if p is None:
                break
            with self._cond:
                # jump to the callback's own due time (never backwards)
                self._offset = max(self._offset, p.due - p.interval)
            p.fire()
        with self._cond:
            self._offset = max(self._offset, target)
            self._cond.notify_all()

    def sleep(self, seconds: float) -> None:
        if seconds is None or seconds <= 0 or not math.isfinite(seconds):
            if seconds is not None and seconds > 0:
                raise ValueError(f"cannot sleep {seconds!r} s")
            return
        if self.afap:
            self.advance(seconds)
            return
        # finite speed: wall sleep in short chunks so a changed speed or close() is honoured
        end = self.monotonic() + seconds
        while True:
            remaining = end - self.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(self._wall_for(remaining), 0.05))

    def __repr__(self) -> str:
        return f"SimClock(speed={'inf' if self.afap else self.speed})"


def make_clock(speed: float | str | None) -> Clock:
    """Clock from a CLI/config value: ``'real'`` or ``1`` with real=True → RealClock;
    a number → SimClock at that speed; ``'max'``/``'inf'``/None → AFAP SimClock."""
    if isinstance(speed, str):
        s = speed.strip().lower()
        if s == "real":
            return RealClock()
        if s in ("max", "inf", "afap", ""):
            return SimClock(math.inf)
        try:
            speed = float(s)
        except ValueError:
            raise ValueError(f"clock speed {speed!r} is not a number, 'max' or 'real'") from None
    return SimClock(math.inf if speed is None else speed)
