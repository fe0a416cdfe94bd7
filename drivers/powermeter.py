"""Role interface: optical power meter (``PowerMeter``). Backends: ``drivers.pm100d.PM100DPowerMeter``.

Safe state: nothing to do (a power meter cannot hurt the sample).
"""

from __future__ import annotations

from abc import abstractmethod

from .base import Role


class PowerMeter(Role):
    ROLE = "powermeter"
    READBACKS = {"power": "W"}

    @property
    @abstractmethod
    def power(self) -> float:
        """Measure the optical power in W."""

    def make_safe(self) -> None:
        return None
