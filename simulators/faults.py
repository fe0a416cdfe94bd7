"""Fault injection for the simulated lab: named faults with rates, schedules or one-shot triggers.

Two kinds of fault exist:

* **Request faults** strike one message that a protocol server received (``drop``: the server closes
  the connection without answering; ``timeout``: the message is swallowed, no reply;
  ``garbage``: the reply is replaced by junk bytes with a valid terminator; ``instrument_error``:
  the instrument reports its own error for that message — see each server for what that means).
  Their ``rate`` is a probability per received message.
* **State faults** happen to the lab, in lab time (``arc``: the X-ray generator trips on an arc;
  ``interlock_open``: the enclosure interlock opens for ``duration_s``; ``temperature_excursion``:
  a heat pulse of ``power_W`` on the cryostat stage for ``duration_s``; ``count_rate_overload``:
  the detectors see more light than they may for ``duration_s`` — a flag the detector simulators
  read through :meth:`Faults.active`). Their ``rate`` is events per lab second (Poisson), or they
  happen ``at`` given lab times.

Every fault may be restricted to one ``role`` (``cryostat``, ``xray``, ``shutter``, ``attenuator``,
``powermeter``, ...) and to a number of occurrences (``count``). Everything is drawn from seeded
random generators, so the same seed and the same sequence of requests give the same faults.

Text form (for ``sflab sim serve --faults``), comma separated::

    timeout=0.01                   every role, probability 0.01 per message
    xray.garbage=0.05              X-ray generator only
    arc=0.001/s                    0.001 arcs per lab second
    interlock_open@120+30          interlock opens at lab t=120 s for 30 s
    cryostat.drop#1                the next message to the cryostat is dropped (once)
"""

from __future__ import annotations

import logging
import math
import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["Faults", "FaultSpec", "REQUEST_FAULTS", "STATE_FAULTS", "FAULT_NAMES"]

REQUEST_FAULTS = ("drop", "timeout", "garbage", "instrument_error")
STATE_FAULTS = ("arc", "interlock_open", "temperature_excursion", "count_rate_overload")
FAULT_NAMES = REQUEST_FAULTS + STATE_FAULTS
ALIASES = {"dropped_connection": "drop", "garbage_reply": "garbage", "hv_trip": "arc",
           "interlock": "interlock_open", "excursion": "temperature_excursion",
           "overload": "count_rate_overload", "error": "instrument_error"}

#: default duration (lab s) and magnitude of state faults
DEFAULT_DURATION_S = {"arc": 0.0, "interlock_open": 10.0, "temperature_excursion": 30.0,
                      "count_rate_overload": 5.0, "instrument_error": 1.0}
DEFAULT_POWER_W = 1.0  # heat pulse of a temperature excursion


@dataclass
class FaultSpec:
    """One configured fault. ``rate``: probability per message (request faults) or events per lab
    second (state faults); ``at``: lab times of scheduled events; ``count``: remaining occurrences
    (None = unlimited)."""

    name: str
    role: str | None = None
    rate: float = 0.0
    at: list[float] = field(default_factory=list)
    count: int | None = None
    duration_s: float | None = None
    power_W: float = DEFAULT_POWER_W
    skip: int = 0  # request faults: let this many matching messages pass first
    # state-fault Poisson process bookkeeping
    _next_t: float | None = None

    def applies_to(self, role: str | None) -> bool:
        return self.role is None or role is None or self.role == role

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.count <= 0

    def duration(self) -> float:
        return DEFAULT_DURATION_S.get(self.name, 0.0) if self.duration_s is None else self.duration_s


@dataclass
class FaultEvent:
    """A state fault that fell due: what, for whom, when, for how long."""

    name: str
    role: str | None
    t: float
    duration_s: float
    power_W: float = DEFAULT_POWER_W


def _canon(name: str) -> str:
    name = name.strip().lower().replace("-", "_")
    name = ALIASES.get(name, name)
    if name not in FAULT_NAMES:
        raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULT_NAMES)}")
    return name


class Faults:
    """The fault plan of one simulated lab. Thread-safe."""

    def __init__(self, spec: str | dict | list | None = None, *, seed: int = 0) -> None:
        self.seed = seed
        self._lock = threading.RLock()
        self._specs: list[FaultSpec] = []
        self._rng = random.Random(seed)
        self._state_rngs: dict[int, random.Random] = {}
        self._active: list[FaultEvent] = []
        self.log: list[tuple[float | None, str, str | None]] = []  # (t, name, role) of every hit
        if spec:
            self.extend(spec)

    # -- configuration ------------------------------------------------------------------
    def add(self, name: str, *, rate: float = 0.0, role: str | None = None, at: Any = None,
            count: int | None = None, duration_s: float | None = None,
            power_W: float = DEFAULT_POWER_W, skip: int = 0) -> FaultSpec:
        """Add a fault. See the module docstring for the meaning of the arguments; ``skip`` lets the
        first ``skip`` matching messages pass (request faults)."""
        name = _canon(name)
        if not (rate >= 0 and math.isfinite(rate)):
            raise ValueError(f"fault {name}: rate must be a finite number >= 0, got {rate!r}")
        if name in REQUEST_FAULTS and rate > 1:
            raise ValueError(f"fault {name}: rate is a probability per message, must be <= 1, got {rate}")
        times = [] if at is None else sorted(float(t) for t in (at if isinstance(at, list | tuple) else [at]))
        spec = FaultSpec(name, role, float(rate), times, count, duration_s, power_W, int(skip))
        with self._lock:
            self._specs.append(spec)
            self._state_rngs[id(spec)] = random.Random(f"{self.seed}/{len(self._specs)}/{name}/{role}")
        return spec

    def trigger(self, name: str, *, role: str | None = None, count: int = 1, **kw: Any) -> FaultSpec:
        """Make a request fault strike the next ``count`` messages (of ``role``), or a state fault
        happen at the next advance of the world."""
        name = _canon(name)
        if name in REQUEST_FAULTS:
            return self.add(name, rate=1.0, role=role, count=count, **kw)
        return self.add(name, role=role, at=[-math.inf], count=count, **kw)

    def clear(self) -> None:
        with self._lock:
            self._specs.clear()
            self._active.clear()

    def extend(self, spec: str | dict | list) -> None:
        """Add faults from text (see module docstring), a dict ``{name: rate or {...}}`` or a list of
        dicts with ``name`` keys."""
        if isinstance(spec, str):
            for item in self.parse(spec):
                self.add(**item)
        elif isinstance(spec, dict):
            for key, val in spec.items():
                role, _, name = key.rpartition(".")
                kw = dict(val) if isinstance(val, dict) else {"rate": float(val)}
                kw.setdefault("role", role or None)
                self.add(name, **kw)
        else:
            for item in spec:
                item = dict(item)
                self.add(item.pop("name"), **item)

    @staticmethod
    def parse(text: str) -> list[dict[str, Any]]:
        """Parse the text form into keyword dicts for :meth:`add`. Raises ValueError naming the item."""
        out = []
        num = r"\d+(?:\.\d*)?(?:e[+\-]?\d+)?"
        pat = re.compile(r"^(?:(?P<role>[a-z_]+)\.)?(?P<name>[a-z_\-]+)"
                         rf"(?:=(?P<rate>{num})(?P<per>/s)?)?"
                         rf"(?:@(?P<at>{num})(?:\+(?P<dur>{num}))?)?"
                         r"(?:#(?P<count>\d+))?$")
        for raw in text.split(","):
            item = raw.strip()
            if not item:
                continue
            m = pat.match(item.lower())
            if not m:
                raise ValueError(f"fault {item!r} is not understood; write e.g. 'timeout=0.01', "
                                 "'xray.arc=0.001/s', 'interlock_open@120+30' or 'cryostat.drop#1'")
            name = _canon(m["name"])
            kw: dict[str, Any] = {"name": name, "role": m["role"]}
            if m["rate"]:
                if name in STATE_FAULTS and not m["per"]:
                    raise ValueError(f"fault {item!r}: a rate of {name} is per lab second, write '/s'")
                kw["rate"] = float(m["rate"])
            if m["at"]:
                kw["at"] = [float(m["at"])]
            if m["dur"]:
                kw["duration_s"] = float(m["dur"])
            if m["count"]:
                kw["count"] = int(m["count"])
                if not m["rate"] and not m["at"]:
                    if name in REQUEST_FAULTS:
                        kw["rate"] = 1.0
                    else:
                        kw["at"] = [-math.inf]
            if not m["rate"] and not m["at"] and not m["count"]:
                raise ValueError(f"fault {item!r} needs a rate (=p or =r/s), a time (@t) or a count (#n)")
            out.append(kw)
        return out

    # -- request faults -----------------------------------------------------------------
    def request_fault(self, role: str, t: float | None = None) -> str | None:
        """Decide whether the message just received by ``role``'s server is hit by a request fault.
        Returns the fault name or None. At most one fault per message."""
        with self._lock:
            for spec in self._specs:
                if spec.name not in REQUEST_FAULTS or spec.exhausted or not spec.applies_to(role):
                    continue
                if spec.rate <= 0:
                    continue
                if spec.skip > 0:
                    spec.skip -= 1
                    continue
                if spec.rate >= 1.0 or self._rng.random() < spec.rate:
                    if spec.count is not None:
                        spec.count -= 1
                    self.log.append((t, spec.name, role))
                    log.info("fault %s on %s at t=%s", spec.name, role, t)
                    return spec.name
        return None

    # -- state faults -------------------------------------------------------------------
    def events_between(self, t0: float, t1: float) -> list[FaultEvent]:
        """State-fault events with t0 < t <= t1, in time order (each returned once). Poisson times are
        drawn per fault from its own generator, so they do not depend on how time is chunked."""
        events: list[FaultEvent] = []
        with self._lock:
            for spec in self._specs:
                if spec.name not in STATE_FAULTS:
                    continue
                while spec.at and spec.at[0] <= t1 and not spec.exhausted:
                    t = spec.at.pop(0)
                    events.append(self._fire(spec, max(t, t0)))
                if spec.rate > 0:
                    rng = self._state_rngs[id(spec)]
                    if spec._next_t is None:
                        spec._next_t = t0 + rng.expovariate(spec.rate)
                    while spec._next_t <= t1 and not spec.exhausted:
                        events.append(self._fire(spec, spec._next_t))
                        spec._next_t += rng.expovariate(spec.rate)
            events.sort(key=lambda e: e.t)
            self._active.extend(e for e in events if e.duration_s > 0)
        return events

    def _fire(self, spec: FaultSpec, t: float) -> FaultEvent:
        if spec.count is not None:
            spec.count -= 1
        self.log.append((t, spec.name, spec.role))
        log.info("fault %s on %s at lab t=%.3f", spec.name, spec.role or "lab", t)
        return FaultEvent(spec.name, spec.role, t, spec.duration(), spec.power_W)

    def active(self, name: str, t: float, role: str | None = None) -> bool:
        """Whether a state fault with a duration (interlock_open, temperature_excursion,
        count_rate_overload) is in force at lab time ``t``. Call after the world has advanced to t
        (``World.advance()``), which is what draws the events."""
        name = _canon(name)
        with self._lock:
            self._active = [e for e in self._active if e.t + e.duration_s > t - 3600.0]
            return any(e.name == name and e.t <= t < e.t + e.duration_s
                       and (role is None or e.role is None or e.role == role) for e in self._active)

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"name": s.name, "role": s.role, "rate": s.rate, "at": list(s.at), "count": s.count,
                     "duration_s": s.duration()} for s in self._specs]
