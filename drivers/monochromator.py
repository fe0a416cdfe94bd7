"""Role interface: the TCSPC monochromator (``TcspcMonochromator``, role ``tcspc_mono``).

A scanning monochromator in front of the TCSPC detector(s) selects the band a decay is recorded in
(physics.md P1 step 3c, P2 step 3, P8 step 2: decays *at the SF and at the uncoupled wavelengths*).
Backends: ``drivers.cornerstone`` (Oriel Cornerstone 260, ASCII over RS-232; the [000] PL TCSPC setup),
``drivers.horiba`` (a second Horiba monochromator through horiba-sdk, ``HoribaMonochromator``; the
[000] time-resolved RL setup, MicroHR with 150 l/mm) and :class:`ManualMonochromator` (no link: set by
hand, its state recorded).

What procedures use: ``wavelength_nm`` / ``move_to(nm)``, ``bandpass_nm`` / ``set_bandpass(nm)`` (slit
width × reciprocal linear dispersion, the same slit at entrance and exit), ``window_nm()`` (the detection
window ``(lo, hi)`` = centre ∓ bandpass/2 that travels with every decay), ``open_shutter()`` /
``close_shutter()``. Safe state: shutter closed (nothing reaches the single-photon detectors).

The reciprocal linear dispersion (RLD, nm per mm of slit) is the grating's nominal figure: the option
``rld_nm_per_mm_at_1200`` (the RLD with a 1200 l/mm grating) scaled by 1200 / lines-per-mm of the
grating in use. The true RLD varies by a few % over the range (cos β); the bandpass recorded is the
nominal one.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from typing import Any

from .base import Option, OptionError, Role

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

__all__ = ["TcspcMonochromator", "ManualMonochromator", "MONO_OPTIONS"]

#: options every backend shares
MONO_OPTIONS: dict[str, Option] = {
    "rld_nm_per_mm_at_1200": Option(float, 3.2, min=0.01, max=100.0, unit="nm/mm",
                                    doc="nominal reciprocal linear dispersion with a 1200 l/mm grating "
                                        "(scales as 1200 / grooves); Cornerstone 260: 3.2, MicroHR: 6.6"),
    "min_slit_um": Option(float, 10.0, min=0.0, max=10000.0, unit="µm", doc="narrowest slit the driver sets"),
    "max_slit_um": Option(float, 2000.0, min=1.0, max=10000.0, unit="µm", doc="widest slit the driver sets"),
}


class TcspcMonochromator(Role):
    ROLE = "tcspc_mono"
    READBACKS = {"wavelength_nm": "nm", "bandpass_nm": "nm"}

    # -- what a backend implements ------------------------------------------------------------------
    @property
    @abstractmethod
    def wavelength_nm(self) -> float:
        """Measure the wavelength the monochromator passes (nm)."""

    @abstractmethod
    def move_to(self, wavelength_nm: float) -> None:
        """Move the wavelength drive and wait until it is there."""

    @property
    @abstractmethod
    def grating_lpmm(self) -> float:
        """Get the groove density of the grating in use (lines/mm)."""

    @property
    @abstractmethod
    def slit_um(self) -> float:
        """Measure the entrance slit width (µm)."""

    @abstractmethod
    def set_slits_um(self, width_um: float) -> None:
        """Set entrance and exit slits to ``width_um`` and wait until they are there."""

    @abstractmethod
    def open_shutter(self) -> None:
        """Open the monochromator's shutter (light reaches the detectors)."""

    @abstractmethod
    def close_shutter(self) -> None:
        """Close the shutter."""

    # -- shared ------------------------------------------------------------------------------------------
    @property
    def rld_nm_per_mm(self) -> float:
        """Nominal reciprocal linear dispersion of the grating in use (nm per mm of slit)."""
        return float(self.options["rld_nm_per_mm_at_1200"]) * 1200.0 / self.grating_lpmm

    @property
    def bandpass_nm(self) -> float:
        """Measure the bandpass (FWHM, nm): slit width × RLD."""
        return self.slit_um * 1e-3 * self.rld_nm_per_mm

    def slit_for(self, bandpass_nm: float) -> float:
        """The slit width (µm) giving ``bandpass_nm``, checked against the slit limits first."""
        lo, hi = float(self.options["min_slit_um"]), float(self.options["max_slit_um"])
        rld = self.rld_nm_per_mm
        if isinstance(bandpass_nm, bool) or not isinstance(bandpass_nm, int | float) or not bandpass_nm > 0:
            raise OptionError("bandpass_nm", bandpass_nm, "must be a positive number of nm")
        w = bandpass_nm / rld * 1e3
        if not lo <= w <= hi:
            raise OptionError("bandpass_nm", bandpass_nm,
                              f"needs a {w:.0f} µm slit; with {self.grating_lpmm:g} l/mm ({rld:.3g} nm/mm) the "
                              f"slits allow {lo * 1e-3 * rld:.3g}–{hi * 1e-3 * rld:.3g} nm")
        return w

    def set_bandpass(self, bandpass_nm: float) -> float:
        """Set both slits for ``bandpass_nm``; returns the bandpass set."""
        self.set_slits_um(self.slit_for(bandpass_nm))
        return self.bandpass_nm

    def window_nm(self) -> tuple[float, float]:
        """The detection window (lo, hi) in nm: centre ∓ bandpass / 2."""
        c, b = self.wavelength_nm, self.bandpass_nm
        return c - b / 2, c + b / 2

    def make_safe(self) -> None:
        self.close_shutter()

    def readback(self) -> dict[str, float]:
        return {"wavelength_nm": float(self.wavelength_nm), "bandpass_nm": float(self.bandpass_nm)}


class ManualMonochromator(TcspcMonochromator):
    """A monochromator (or band-pass filter) without a computer link: the driver keeps the state it was
    told (``move_to``, ``set_slits_um`` are logged as what the operator sets at the dial), so procedures
    still record the wavelength and bandpass with every decay. Also the in-memory fake of the role."""

    OPTIONS = {
        **MONO_OPTIONS,
        "grating_lpmm": Option(float, 1200.0, min=1.0, max=10000.0, unit="l/mm", doc="grating in use"),
        "wavelength_nm": Option(float, 0.0, min=0.0, max=10000.0, unit="nm", doc="where the dial is set"),
        "slit_um": Option(float, 500.0, min=0.0, max=10000.0, unit="µm", doc="entrance/exit slit width"),
    }

    def __init__(self, resource: str = "", *, clock: Any = None, **options: Any) -> None:
        opts = self.checked_options(options)
        super().__init__(resource, clock=clock, **opts)
        self._wl = float(opts["wavelength_nm"])
        self._slit = float(opts["slit_um"])
        self._open = True

    @property
    def wavelength_nm(self) -> float:
        return self._wl

    def move_to(self, wavelength_nm: float) -> None:
        log.info("TCSPC monochromator (manual): set the dial to %.2f nm", wavelength_nm)
        self._wl = float(wavelength_nm)

    @property
    def grating_lpmm(self) -> float:
        return float(self.options["grating_lpmm"])

    @property
    def slit_um(self) -> float:
        return self._slit

    def set_slits_um(self, width_um: float) -> None:
        log.info("TCSPC monochromator (manual): set both slits to %.0f µm", width_um)
        self._slit = float(width_um)

    def open_shutter(self) -> None:
        self._open = True

    def close_shutter(self) -> None:
        self._open = False
