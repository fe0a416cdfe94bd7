"""Role interface: X-ray source = HV generator + shutter + interlock (``XRaySource``).

Backends: ``drivers.spellman.SpellmanXRaySource`` (Spellman XRV/DXM, STX/ETX frames) with a Thorlabs
SC10 shutter controller (``drivers.shutter``, docs/shutter.md).
Safe state (instruments.md §2.4): close the shutter first, ramp down, HV off.
"""

from __future__ import annotations

from abc import abstractmethod

from .base import Role


class XRaySource(Role):
    ROLE = "xray"
    READBACKS = {"kV": "kV", "mA": "mA", "hv_on": "", "shutter_open": "", "interlock_closed": ""}
    #: seconds between keep-alives the engine must send while HV may be on
    KEEPALIVE_S: float = 1.0

    @property
    @abstractmethod
    def interlock_closed(self) -> bool:
        """Measure whether the safety interlock chain is closed (HV permitted)."""

    @property
    @abstractmethod
    def hv_on(self) -> bool:
        """Measure whether high voltage is on."""

    @abstractmethod
    def on(self, kV: float, mA: float) -> None:
        """Safe sequence to X-rays on: check interlock and faults, HV on, ramp, open shutter at setpoint."""

    @abstractmethod
    def off(self) -> None:
        """Safe sequence to off: close shutter, ramp down, HV off."""

    @abstractmethod
    def keepalive(self) -> None:
        """Satisfy the generator's watchdog (called by the engine every ``KEEPALIVE_S``)."""

    def make_safe(self) -> None:
        self.off()
