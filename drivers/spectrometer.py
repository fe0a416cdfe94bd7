"""Role interface: spectrometer + CCD (``Spectrometer``).

Backends: ``drivers.horiba`` (horiba-sdk over the ICL WebSocket). Safe state: close the shutter,
stop any acquisition.

What the engine and procedures use: ``center_nm`` / ``move_to(nm)``, ``grating`` (turret index) and
``grating_lpmm``, ``slit_mm``, ``exposure_s``, ``acquire()`` → :class:`Spectrum`, ``dark_frame()``,
``ccd_temperature``. Every setter checks its value against the backend's limits *before* anything
is sent to the instrument and raises :class:`drivers.base.OptionError` naming the allowed range.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .base import Role

__all__ = ["Spectrometer", "Spectrum"]


@dataclass
class Spectrum:
    """One acquired spectrum (or image rows) with the wavelength axis and the calibration used.

    ``counts`` is 1-D for full vertical binning, 2-D (rows × columns) otherwise. ``calibration``
    holds ``coefficients`` (polynomial λ(pixel) in nm, lowest order first, pixel = chip column of the
    bin centre), ``method`` and the instrument state it belongs to (grating, centre wavelength).
    """

    wavelength_nm: np.ndarray
    counts: np.ndarray
    exposure_s: float
    center_nm: float
    grating_lpmm: float
    slit_mm: float
    ccd_temperature: float
    dark: bool = False
    pixel: np.ndarray | None = None
    calibration: dict[str, Any] = field(default_factory=dict)
    roi: dict[str, int] = field(default_factory=dict)
    timestamp: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    #: largest count the CCD's ADC returns (16-bit: 65535); a pixel there is saturated
    adc_max: int = 65535

    @property
    def saturated_pixels(self) -> int:
        """Pixels at the ADC ceiling: their count is not the charge collected."""
        return int(np.sum(np.asarray(self.counts) >= self.adc_max))


class Spectrometer(Role):
    ROLE = "spectrometer"
    READBACKS = {"center_nm": "nm", "ccd_temperature": "degC"}

    @property
    @abstractmethod
    def center_nm(self) -> float:
        """Measure the monochromator's centre wavelength (nm)."""

    @abstractmethod
    def move_to(self, center_nm: float) -> None:
        """Move to a centre wavelength and wait until the monochromator is idle."""

    @property
    @abstractmethod
    def ccd_temperature(self) -> float:
        """Measure the CCD chip temperature (°C)."""

    @abstractmethod
    def acquire(self, exposure_s: float | None = None) -> Spectrum:
        """Acquire one spectrum (shutter open); returns a :class:`Spectrum`."""

    @abstractmethod
    def dark_frame(self, exposure_s: float | None = None) -> Spectrum:
        """Acquire with the shutter closed (same settings) for background subtraction."""

    def ccd_calibration(self) -> dict[str, float]:
        """The camera's conversion gain (``e_per_count``, e⁻ per count) and read noise (``read_noise_e``, e⁻
        RMS) at its configured gain and read-out speed, where the lab configuration gives them (the camera's
        test sheet or a photon-transfer measurement); empty when it does not. No SDK reports them."""
        return {}

    def readback(self) -> dict[str, float]:
        return {"center_nm": float(self.center_nm), "ccd_temperature": float(self.ccd_temperature)}
