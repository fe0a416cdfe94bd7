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

__all__ = ["Spectrograph"]


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
        psi = self._psi(center_nm)
        half = math.radians(self.deviation_deg) / 2
        p = np.arange(self.n_pixels, dtype=float)
        if self.flip:
            p = p[::-1]
        p0 = (self.n_pixels - 1) / 2
        beta = psi + half + np.arctan((p - p0) * self.pixel_um * 1e-3 / self.focal_mm)
        alpha = psi - half
        return self.d_nm * (math.sin(alpha) + np.sin(beta)) / self.order

    def pixel_edges(self, center_nm: float) -> np.ndarray:
        """Wavelengths of the n + 1 column boundaries."""
        wl = self.wavelength_axis(center_nm)
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
        ``source_image_um`` is given), then convolved with the line shape.
        """
        edges = self.pixel_edges(center_nm)
        fr = (np.arange(sub) + 0.5) / sub
        lam = edges[:-1, None] + (edges[1:] - edges[:-1])[:, None] * fr[None, :]
        dl = np.abs(edges[1:] - edges[:-1])
        col = np.asarray(spectrum(lam.ravel()), float).reshape(lam.shape).mean(axis=1) * dl
        col *= self.throughput
        s = self.slit_um if slit_um is None else slit_um
        if source_image_um:
            col *= min(s / source_image_um, 1.0)
        _, ker = self.line_shape(slit_um)
        return np.convolve(col, ker, mode="same")

    def chip_rates(self, column_rates: np.ndarray, n_rows: int = 256, row_center: float | None = None,
                   row_fwhm: float = 40.0) -> np.ndarray:
        """Spread column rates over ``n_rows`` rows with a Gaussian vertical profile (the fibre image)."""
        rows = np.arange(n_rows, dtype=float)
        c = (n_rows - 1) / 2 if row_center is None else row_center
        prof = np.exp(-0.5 * ((rows - c) / (row_fwhm / 2.354820045)) ** 2)
        return np.outer(prof / prof.sum(), column_rates)
