"""Light path to the CCD: a Czerny–Turner spectrograph.

:class:`Spectrograph` gives the pixel → wavelength map from the grating equation
(instruments.md §3.6: mλ = d(sin α + sin β), α = ψ − δ/2, β = ψ + δ/2 + atan((p − p₀)·w/f)), the
instrument line shape (the entrance-slit image, a box of width slit × magnification, blurred by a
Gaussian aberration/pixel term) and the photons/s that land on every pixel column for an emission
spectrum given in photons/s/nm (:meth:`Sample.emission_spectrum`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["Spectrograph", "Passband", "ScanningMonochromator"]


@dataclass
class Spectrograph:
    """Czerny–Turner spectrograph imaging onto a linear array of pixel columns."""

    grating_lpmm: float = 600.0
    focal_mm: float = 320.0
    pixel_um: float = 26.0
    n_pixels: int = 1024
    deviation_deg: float = 24.0     # full angle between incident and diffracted central rays
    order: int = 1
    slit_um: float = 50.0           # entrance slit width
    magnification: float = 1.0      # slit image width / slit width on the detector
    blur_um: float = 20.0           # FWHM of the Gaussian aberration blur on the detector
    throughput: float = 0.5         # mirrors × grating efficiency (flat)
    flip: bool = False              # True if wavelength decreases with pixel index

    def __post_init__(self) -> None:
        if self.grating_lpmm <= 0 or self.focal_mm <= 0 or self.pixel_um <= 0 or self.n_pixels < 2:
            raise ValueError("grating, focal length, pixel size and pixel count must be positive")

    @property
    def d_nm(self) -> float:
        """Groove spacing in nm."""
        return 1e6 / self.grating_lpmm

    def _psi(self, center_nm: float) -> float:
        half = math.radians(self.deviation_deg) / 2
        s = self.order * center_nm / (2 * self.d_nm * math.cos(half))
        if not -1 < s < 1:
            raise ValueError(f"{center_nm} nm is not reachable with {self.grating_lpmm} l/mm in order {self.order}")
        return math.asin(s)

    def wavelength_axis(self, center_nm: float) -> np.ndarray:
        """Wavelength (nm) at the centre of every pixel column, for the grating turned to ``center_nm``."""
        return self._wavelengths(center_nm, np.arange(self.n_pixels, dtype=float))

    def _wavelengths(self, center_nm: float, columns: np.ndarray) -> np.ndarray:
        """Wavelength (nm) at column positions ``columns`` (0 … n − 1 on the chip; beyond it, where the
        spectrum the slit image spreads onto the edge columns comes from)."""
        psi = self._psi(center_nm)
        half = math.radians(self.deviation_deg) / 2
        p = np.asarray(columns, dtype=float)
        if self.flip:
            p = (self.n_pixels - 1) - p
        p0 = (self.n_pixels - 1) / 2
        beta = psi + half + np.arctan((p - p0) * self.pixel_um * 1e-3 / self.focal_mm)
        alpha = psi - half
        return self.d_nm * (math.sin(alpha) + np.sin(beta)) / self.order

    def pixel_edges(self, center_nm: float, *, pad: int = 0) -> np.ndarray:
        """Wavelengths of the n + 1 column boundaries (of n + 2·``pad`` columns, ``pad`` beyond each end)."""
        wl = self._wavelengths(center_nm, np.arange(-pad, self.n_pixels + pad, dtype=float))
        mid = 0.5 * (wl[1:] + wl[:-1])
        return np.concatenate([[wl[0] - (mid[0] - wl[0])], mid, [wl[-1] + (wl[-1] - mid[-1])]])

    def dispersion_nm_per_px(self, center_nm: float) -> float:
        wl = self.wavelength_axis(center_nm)
        return float(abs(wl[-1] - wl[0]) / (self.n_pixels - 1))

    def line_fwhm_nm(self, center_nm: float, slit_um: float | None = None) -> float:
        """Approximate instrument FWHM (box ⊕ blur ⊕ one pixel, in quadrature) in nm."""
        s = (self.slit_um if slit_um is None else slit_um) * self.magnification
        w = math.sqrt(s**2 + self.blur_um**2 + self.pixel_um**2)
        return w / self.pixel_um * self.dispersion_nm_per_px(center_nm)

    def line_shape(self, slit_um: float | None = None, *, oversample: int = 8) -> tuple[np.ndarray, np.ndarray]:
        """Instrument line shape on the detector, in pixel units: ``(offsets_px, kernel)`` summing to 1.

        A box (slit image) convolved with a Gaussian (aberrations), sampled per pixel column.
        """
        s_px = (self.slit_um if slit_um is None else slit_um) * self.magnification / self.pixel_um
        sig_px = self.blur_um / self.pixel_um / 2.354820045
        half = int(math.ceil(s_px / 2 + 5 * sig_px + 1))
        x = np.arange(-half * oversample, half * oversample + 1) / oversample
        # box ⊗ Gaussian in closed form (difference of error functions)
        if sig_px > 0:
            from scipy.special import ndtr

            dens = ndtr((x + s_px / 2) / sig_px) - ndtr((x - s_px / 2) / sig_px)
        else:
            dens = (np.abs(x) <= s_px / 2).astype(float)
        # integrate over each pixel column (width 1)
        offs = np.arange(-half, half + 1)
        ker = np.array([dens[(x >= o - 0.5) & (x < o + 0.5)].sum() for o in offs], dtype=float)
        ker /= ker.sum()
        return offs, ker

    def column_rates(self, spectrum: Callable[[np.ndarray], np.ndarray], center_nm: float, *,
                     slit_um: float | None = None, source_image_um: float | None = None,
                     sub: int = 8) -> np.ndarray:
        """Photons/s reaching each pixel column for ``spectrum(λ_nm) -> photons/s/nm``.

        The spectrum is integrated over every column (``sub`` samples per column), multiplied by
        the throughput and by the slit transmission (slit / source image, ≤ 1, when
        ``source_image_um`` is given), then convolved with the line shape — from columns beyond the chip
        too, so the edge columns get the light the slit image spreads onto them from outside (a zero-padded
        convolution had dimmed the outermost two columns by up to 35 %).
        """
        offs, ker = self.line_shape(slit_um)
        pad = int(offs[-1])
        edges = self.pixel_edges(center_nm, pad=pad)
        fr = (np.arange(sub) + 0.5) / sub
        lam = edges[:-1, None] + (edges[1:] - edges[:-1])[:, None] * fr[None, :]
        dl = np.abs(edges[1:] - edges[:-1])
        col = np.asarray(spectrum(lam.ravel()), float).reshape(lam.shape).mean(axis=1) * dl
        col *= self.throughput
        s = self.slit_um if slit_um is None else slit_um
        if source_image_um:
            col *= min(s / source_image_um, 1.0)
        return np.convolve(col, ker, mode="valid")

    def chip_rates(self, column_rates: np.ndarray, n_rows: int = 256, row_center: float | None = None,
                   row_fwhm: float = 40.0) -> np.ndarray:
        """Spread column rates over ``n_rows`` rows with a Gaussian vertical profile (the fibre image)."""
        rows = np.arange(n_rows, dtype=float)
        c = (n_rows - 1) / 2 if row_center is None else row_center
        prof = np.exp(-0.5 * ((rows - c) / (row_fwhm / 2.354820045)) ** 2)
        return np.outer(prof / prof.sum(), column_rates)


# --------------------------------------------------------------------------------------------------
# the TCSPC monochromator: what reaches the single-photon detectors


@dataclass(frozen=True)
class Passband:
    """Spectral transmission of a scanning monochromator set to ``center_nm``: the entrance-slit image
    (a box ``entrance_nm`` wide) swept over the exit slit (a box ``exit_nm`` wide) — a trapezoid, a
    triangle of FWHM = slit × reciprocal linear dispersion for equal slits. Peak transmission 1 (the
    optics' absolute throughput is in the detector chain's ``tcspc_transmission``); 0 everywhere with
    the shutter closed. ``key`` identifies it for caches."""

    center_nm: float
    entrance_nm: float
    exit_nm: float
    open: bool = True

    @property
    def fwhm_nm(self) -> float:
        """FWHM of the trapezoid: the wider of the two slit images."""
        return max(self.entrance_nm, self.exit_nm)

    @property
    def key(self) -> tuple[float, float, float, bool]:
        return (round(self.center_nm, 6), round(self.entrance_nm, 6), round(self.exit_nm, 6), self.open)

    def transmission(self, wavelength_nm: np.ndarray) -> np.ndarray:
        """Relative transmission at ``wavelength_nm`` (box ⊗ box, normalised to a peak of 1)."""
        lam = np.asarray(wavelength_nm, dtype=float)
        if not self.open:
            return np.zeros_like(lam)
        a, b = sorted((max(self.entrance_nm, 1e-6), max(self.exit_nm, 1e-6)))
        x = np.abs(lam - self.center_nm)
        # trapezoid: flat top of half-width (b - a)/2, linear flanks of width a
        return np.clip(((a + b) / 2 - x) / a, 0.0, 1.0)

    def edges_nm(self) -> tuple[float, float]:
        """Where the transmission falls to 0."""
        h = 0.5 * (self.entrance_nm + self.exit_nm)
        return self.center_nm - h, self.center_nm + h


@dataclass
class ScanningMonochromator:
    """A scanning (single-exit-slit) Czerny–Turner monochromator in front of the TCSPC detectors.

    State: grating turret (``gratings_lpmm``, ``grating`` index), wavelength drive (moves at
    ``speed_nm_s`` in lab time), entrance and exit slits (µm), shutter. The bandpass is slit × reciprocal
    linear dispersion, RLD = d·cos β / (m·f) from the grating equation at the current wavelength
    (instruments.md §3.6; d groove spacing, β diffraction angle, f focal length). At 0 nm (zero order)
    the grating is a mirror and every wavelength passes: :meth:`passband` is then None (all light).

    Presets: :meth:`microhr` (Horiba MicroHR, f = 140 mm, [000] TR-RL with 150 l/mm: RLD ≈ 46 nm/mm at
    530 nm) and :meth:`cornerstone260` (Oriel Cornerstone 260, 1/4 m, f = 260 mm; 1200 l/mm: RLD ≈ 2.8 nm/mm
    at 530 nm; Newport's nominal figure is ≈ 3.2 nm/mm).
    """

    model: str = "scanning monochromator"
    focal_mm: float = 260.0
    deviation_deg: float = 20.0
    gratings_lpmm: tuple[float, ...] = (1200.0, 600.0, 300.0)
    grating: int = 0
    order: int = 1
    wavelength_nm: float = 0.0
    entrance_um: float = 500.0
    exit_um: float = 500.0
    shutter_open: bool = True      # at power-up (a simulator choice): at 0 nm the detectors then see all light
    speed_nm_s: float = 100.0
    max_nm_at_1200: float = 1400.0
    moving_until: float = 0.0

    @classmethod
    def microhr(cls) -> ScanningMonochromator:
        return cls(model="MicroHR", focal_mm=140.0, deviation_deg=24.0, gratings_lpmm=(150.0, 1200.0),
                   entrance_um=100.0, exit_um=100.0, speed_nm_s=200.0, max_nm_at_1200=1500.0)

    @classmethod
    def cornerstone260(cls) -> ScanningMonochromator:
        return cls(model="Cornerstone 260", focal_mm=260.0, deviation_deg=20.0,
                   gratings_lpmm=(1200.0, 600.0, 300.0), entrance_um=600.0, exit_um=600.0, speed_nm_s=100.0,
                   max_nm_at_1200=1400.0)

    @property
    def grating_lpmm(self) -> float:
        return float(self.gratings_lpmm[self.grating])

    def max_nm(self, grating: int | None = None) -> float:
        g = self.gratings_lpmm[self.grating if grating is None else grating]
        return self.max_nm_at_1200 * 1200.0 / g

    def reciprocal_dispersion_nm_per_mm(self, wavelength_nm: float | None = None) -> float:
        """RLD (nm per mm of exit-slit width) at ``wavelength_nm`` (default: where the drive is)."""
        lam = self.wavelength_nm if wavelength_nm is None else wavelength_nm
        d = 1e6 / self.grating_lpmm
        half = math.radians(self.deviation_deg) / 2
        s = self.order * max(lam, 0.0) / (2 * d * math.cos(half))
        psi = math.asin(min(s, 0.999999))
        beta = psi + half
        return d * math.cos(beta) / (self.order * self.focal_mm)

    def bandpass_nm(self) -> float:
        return max(self.entrance_um, self.exit_um) * 1e-3 * self.reciprocal_dispersion_nm_per_mm()

    def move(self, wavelength_nm: float, t: float) -> float:
        """Start a move; returns the lab time it ends."""
        self.moving_until = max(self.moving_until, t) + 0.05 + abs(wavelength_nm - self.wavelength_nm) / self.speed_nm_s
        self.wavelength_nm = float(wavelength_nm)
        return self.moving_until

    def passband(self) -> Passband | None:
        """What the detectors see through it now (None = zero order: all light)."""
        if self.wavelength_nm <= 1e-6 and self.shutter_open:
            return None
        rld = self.reciprocal_dispersion_nm_per_mm()
        return Passband(self.wavelength_nm, self.entrance_um * 1e-3 * rld, self.exit_um * 1e-3 * rld,
                        self.shutter_open)

    def state(self) -> dict[str, float | str | bool]:
        return {"model": self.model, "wavelength_nm": self.wavelength_nm, "grating_lpmm": self.grating_lpmm,
                "entrance_um": self.entrance_um, "exit_um": self.exit_um, "shutter_open": self.shutter_open,
                "bandpass_nm": self.bandpass_nm()}
