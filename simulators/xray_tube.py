"""X-ray tube + Spellman-style HV generator + shutter + interlock, advanced lazily on the lab clock.

* HV state with kV and mA setpoints; the outputs follow their setpoints at the generator's ramp
  rates while HV is on and drop to zero at once when HV goes off (trip, interlock, watchdog).
* Interlock chain (enclosure door, key, lamp): opening it drops HV and closes the shutter
  (fail-safe), and HV-on is refused while it is open.
* Arcs trip HV and set ``ANODE_ARC`` in the fault register; HV stays off until the faults are reset
  and HV is switched on again (instruments.md §2.4).
* Watchdog: HV drops (``WATCH_DOG_FAULT``) when no valid message reached the generator for
  ``watchdog_s`` lab seconds while HV was on. The drop happens at exactly last-contact + watchdog_s
  in lab time, however late somebody looks.
* Over-power: kV·mA above the generator's power limit trips HV (``OVERPOWER_FAULT``).
* Shutter (Thorlabs SC10-style controller): open only when enabled and the interlock is closed.

Fault register bit numbers follow pymeasure's ``ErrorCode`` for the XRV; status bits its
``StatusCode``.
"""

from __future__ import annotations

import logging
import math

log = logging.getLogger(__name__)

__all__ = ["XRayTubeModel", "FAULT_BITS", "STATUS_BITS"]

FAULT_BITS = {"OVER_VOLTAGE": 2, "OVER_CURRENT": 4, "ANODE_ARC": 11, "WATCH_DOG_FAULT": 21,
              "OVERPOWER_FAULT": 23}
STATUS_BITS = {"HV_ENABLED": 0, "INTERLOCK_1_CLOSED": 1, "INTERLOCK_2_CLOSED": 2, "POWER_SUPPLY_FAULT": 4,
               "LOCAL_MODE": 5, "FILAMENT_ENABLED": 6, "XRAYS_EMINENT": 8, "POWER_SUPPLY_READY": 15,
               "INTERNAL_INTERLOCK_CLOSED": 16}


class XRayTubeModel:
    """State of the generator, tube, shutter and interlock. The World serialises access."""

    def __init__(self, *, full_scale_kV: float = 50.0, full_scale_mA: float = 1.0,
                 power_limit_W: float = 50.0, kV_ramp_per_s: float = 10.0, mA_ramp_per_s: float = 0.5,
                 watchdog_s: float = 5.0, t0: float = 0.0, shutter_open_s: float = 0.02) -> None:
        self.full_scale_kV = full_scale_kV
        self.full_scale_mA = full_scale_mA
        self.power_limit_W = power_limit_W
        self.kV_ramp_per_s = kV_ramp_per_s
        self.mA_ramp_per_s = mA_ramp_per_s
        self.watchdog_s = watchdog_s
        self.shutter_open_s = shutter_open_s
        self.t = t0
        self.hv_on = False
        self.kV_set = 0.0
        self.mA_set = 0.0
        self.kV = 0.0
        self.mA = 0.0
        self.faults: set[str] = set()
        self.arc_count = 0
        self.interlock_closed_flag = True
        self.interlock_forced_open_until = -math.inf
        self.last_contact = t0
        self.hv_on_since: float | None = None
        self.hv_seconds = 0.0
        self.history: list[tuple[float, str]] = []   # (lab t, what) for HV transitions
        self.shutter_enabled = False
        self.filament_enabled = True

    # -- interlock ---------------------------------------------------------------------------
    def interlock_closed(self, t: float | None = None) -> bool:
        t = self.t if t is None else t
        return self.interlock_closed_flag and t >= self.interlock_forced_open_until

    def open_interlock(self, t: float, duration_s: float | None = None) -> None:
        """Open the interlock chain (``duration_s`` None = until :meth:`close_interlock`)."""
        self.advance_to(t)
        if duration_s is None:
            self.interlock_closed_flag = False
        else:
            self.interlock_forced_open_until = max(self.interlock_forced_open_until, t + duration_s)
        self._interlock_opened(t)

    def close_interlock(self) -> None:
        self.interlock_closed_flag = True
        self.interlock_forced_open_until = -math.inf

    def _interlock_opened(self, t: float) -> None:
        self.shutter_enabled = False
        if self.hv_on:
            self._hv_off(t, "interlock opened")

    # -- HV ------------------------------------------------------------------------------------
    def touch(self, t: float) -> None:
        """A valid message reached the generator (feeds the watchdog)."""
        self.advance_to(t)
        self.last_contact = t

    def request_hv(self, on: bool, t: float) -> str | None:
        """Switch HV. Returns None on success or the refusal reason."""
        self.advance_to(t)
        if not on:
            if self.hv_on:
                self._hv_off(t, "commanded off")
            return None
        if not self.interlock_closed(t):
            return "interlock open"
        if self.faults:
            return "fault register not clear: " + ", ".join(sorted(self.faults))
        if not self.hv_on:
            self.hv_on = True
            self.hv_on_since = t
            self.last_contact = t
            self.history.append((t, "on"))
            log.info("X-ray HV on at lab t=%.3f", t)
        return None

    def _hv_off(self, t: float, why: str) -> None:
        if self.hv_on_since is not None:
            self.hv_seconds += t - self.hv_on_since
        self.hv_on = False
        self.hv_on_since = None
        self.kV = 0.0
        self.mA = 0.0
        self.shutter_enabled = False if why != "commanded off" else self.shutter_enabled
        self.history.append((t, "off: " + why))
        log.info("X-ray HV off at lab t=%.3f (%s)", t, why)

    def trip(self, t: float, fault: str) -> None:
        """HV trip with a fault bit (arc, over-power, ...)."""
        self.advance_to(t)
        if fault == "ANODE_ARC":
            self.arc_count += 1
        self.faults.add(fault)
        if self.hv_on:
            self._hv_off(t, fault)

    def reset_faults(self) -> None:
        self.faults.clear()

    def set_kV(self, kV: float) -> None:
        self.kV_set = kV

    def set_mA(self, mA: float) -> None:
        self.mA_set = mA

    # -- time ---------------------------------------------------------------------------------
    def advance_to(self, t: float) -> None:
        if t <= self.t:
            return
        t0 = self.t
        if self.hv_on:
            deadline = self.last_contact + self.watchdog_s
            if self.watchdog_s > 0 and deadline < t:
                self._ramp(max(deadline - t0, 0.0))
                self.faults.add("WATCH_DOG_FAULT")
                self._hv_off(max(deadline, t0), f"watchdog: host silent for {self.watchdog_s:.3g} s")
            elif not self.interlock_closed(t):
                self._interlock_opened(t)
            else:
                self._ramp(t - t0)
                if self.kV * self.mA > self.power_limit_W * (1 + 1e-9):
                    self.faults.add("OVERPOWER_FAULT")
                    self._hv_off(t, "over power")
        elif not self.interlock_closed(t):
            self.shutter_enabled = False
        self.t = t

    def _ramp(self, dt: float) -> None:
        if dt <= 0:
            return
        self.kV = _approach(self.kV, self.kV_set, self.kV_ramp_per_s * dt)
        self.mA = _approach(self.mA, self.mA_set, self.mA_ramp_per_s * dt)

    # -- views ---------------------------------------------------------------------------------
    @property
    def shutter_open(self) -> bool:
        return self.shutter_enabled and self.interlock_closed()

    def xrays_on_sample(self) -> tuple[float, float]:
        """(kV, mA) reaching the sample: zero unless HV is on and the shutter is open."""
        if self.hv_on and self.shutter_open:
            return self.kV, self.mA
        return 0.0, 0.0

    def status_bits(self) -> int:
        b = 0
        closed = self.interlock_closed()
        if self.hv_on:
            b |= 1 << STATUS_BITS["HV_ENABLED"]
            b |= 1 << STATUS_BITS["XRAYS_EMINENT"]
        if closed:
            b |= (1 << STATUS_BITS["INTERLOCK_1_CLOSED"]) | (1 << STATUS_BITS["INTERLOCK_2_CLOSED"])
        if self.faults:
            b |= 1 << STATUS_BITS["POWER_SUPPLY_FAULT"]
        if self.filament_enabled:
            b |= 1 << STATUS_BITS["FILAMENT_ENABLED"]
        b |= 1 << STATUS_BITS["POWER_SUPPLY_READY"]
        b |= 1 << STATUS_BITS["INTERNAL_INTERLOCK_CLOSED"]
        return b

    def fault_bits(self) -> int:
        b = 0
        for f in self.faults:
            b |= 1 << FAULT_BITS[f]
        return b

    def state(self) -> dict:
        return {"t": self.t, "hv_on": self.hv_on, "kV": self.kV, "mA": self.mA, "kV_set": self.kV_set,
                "mA_set": self.mA_set, "interlock_closed": self.interlock_closed(),
                "shutter_open": self.shutter_open, "faults": sorted(self.faults), "arc_count": self.arc_count,
                "watchdog_s": self.watchdog_s, "last_contact": self.last_contact}


def _approach(x: float, target: float, step: float) -> float:
    if abs(target - x) <= step:
        return target
    return x + math.copysign(step, target - x)
