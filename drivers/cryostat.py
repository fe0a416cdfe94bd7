"""Role interface: cryostat temperature controller (``TemperatureController``).

Backends: ``drivers.lakeshore336.LakeShore336Controller`` (Lake Shore 336, real bytes over TCP 7777
or its USB serial port).
Safe state: heater range to ``safe_heater_range`` (off by default); setpoint untouched.
"""

from __future__ import annotations

from abc import abstractmethod

from .base import Role


class TemperatureController(Role):
    ROLE = "cryostat"
    READBACKS = {"T_sample": "K", "T_sensor": "K", "setpoint": "K", "heater": "%"}

    @property
    @abstractmethod
    def temperature(self) -> float:
        """Measure the sample temperature in K."""

    @abstractmethod
    def set_temperature(self, kelvin: float, *, ramp_K_per_min: float | None = None) -> None:
        """Set the loop setpoint (with an optional ramp) and a heater range suited to it."""

    @abstractmethod
    def wait_stable(self, kelvin: float, *, band_K: float = 0.1, hold_s: float = 60.0,
                    timeout_s: float = 3600.0, poll_s: float = 1.0) -> float:
        """Wait on the clock until |T - kelvin| < band for hold_s; return the time waited (s).
        Raises TimeoutError naming the last reading when timeout_s passes. Must poll ``self.cancel``
        at least every ``POLL_S`` lab seconds (``self.wait`` does)."""

    def temperature_and_setpoint(self) -> tuple[float, float]:
        """The sample temperature and the loop setpoint in K (what the temperature-band suspender watches);
        a backend that can ask both in one message overrides this."""
        rb = self.readback()
        return rb["T_sample"], rb["setpoint"]
