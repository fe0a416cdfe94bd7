"""Role interface: spectrometer + CCD (``Spectrometer``).

Backends: ``drivers.horiba`` (horiba-sdk over the ICL WebSocket). Safe state: close the shutter,
stop any acquisition.
"""

from __future__ import annotations

from abc import abstractmethod

from .base import Role


class Spectrometer(Role):
    ROLE = "spectrometer"
    READBACKS = {"center_nm": "nm", "ccd_temperature": "degC"}

    @abstractmethod
    def acquire(self, exposure_s: float):
        """Acquire one spectrum; returns an object with ``wavelength_nm`` and ``counts`` arrays."""
