"""Scientific CCD: photons/s per pixel in, 16-bit counts out.

Chain (instruments.md §3.5 defaults): photons × QE(λ) → Poisson photo-electrons, plus dark current
(doubling every ``dark_doubling_K`` of chip temperature) and cosmic-ray tracks, clipped at the
pixel full well; on-chip binning (sum of electrons, output-register full well); read noise once
per (super-)pixel; gain (e⁻/count) and bias; 16-bit ADC saturation at 65535.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["CCD", "qe_back_illuminated"]


def qe_back_illuminated(wavelength_nm: np.ndarray) -> np.ndarray:
    """QE of a back-illuminated, UV-enhanced CCD: ~0.9 around 500–650 nm, falling at both ends."""
    lam = np.asarray(wavelength_nm, float)
    blue = 1.0 / (1.0 + np.exp(-(lam - 330.0) / 25.0))
    red = 1.0 / (1.0 + np.exp((lam - 900.0) / 60.0))
    return 0.92 * blue * red


@dataclass
class CCD:
    """A cooled scientific CCD (defaults: Horiba Syncerity-class, 1024 × 256, 26 µm pixels)."""

    n_cols: int = 1024
    n_rows: int = 256
    pixel_um: float = 26.0
    qe: float | None = None            # flat QE; None → back-illuminated curve (needs wavelengths)
    bias_counts: float = 500.0
    gain_e_per_count: float = 2.0
    read_noise_e: float = 6.0
    dark_e_per_px_s_ref: float = 0.01  # at dark_ref_C
    dark_ref_C: float = -60.0
    dark_doubling_K: float = 6.5
    chip_temp_C: float = -60.0
    full_well_e: float = 300_000.0
    register_full_well_e: float = 600_000.0
    cosmic_per_cm2_min: float = 1.5
    cosmic_e_per_px: float = 2_000.0
    adc_max: int = 65535

    def saturation_counts(self, binned: bool = False) -> float:
        """The count at which a pixel is saturated: the ADC ceiling or the full well (pixel, or the
        serial register when binning) converted to counts, whichever comes first."""
        well = self.register_full_well_e if binned else self.full_well_e
        return float(min(self.adc_max, well / self.gain_e_per_count + self.bias_counts))

    def saturated(self, counts: np.ndarray, binned: bool = False) -> np.ndarray:
        """Mask of the saturated pixels of ``counts`` (from :meth:`expose`)."""
        return np.asarray(counts) >= self.saturation_counts(binned) - 0.5 * self.read_noise_e / self.gain_e_per_count

    def dark_rate(self, chip_temp_C: float | None = None) -> float:
        """Dark current in e⁻/pixel/s at the chip temperature."""
        T = self.chip_temp_C if chip_temp_C is None else chip_temp_C
        return self.dark_e_per_px_s_ref * 2.0 ** ((T - self.dark_ref_C) / self.dark_doubling_K)

    def quantum_efficiency(self, wavelength_nm: np.ndarray | None, n: int) -> np.ndarray | float:
        if self.qe is not None:
            return self.qe
        if wavelength_nm is None:
            return 0.9
        return qe_back_illuminated(np.asarray(wavelength_nm, float))

    def expose(self, photon_rate_per_pixel: np.ndarray, exposure_s: float, rng: np.random.Generator, *,
               roi: tuple[int, int, int, int] | None = None, binning: tuple[int, int] = (1, 1),
               wavelength_nm: np.ndarray | None = None, shutter_open: bool = True,
               cosmics: bool = True) -> np.ndarray:
        """Counts of one exposure.

        ``photon_rate_per_pixel``: photons/s on every pixel, shape ``(rows, cols)`` (a 1-D array is
        one row). ``roi`` = ``(x0, y0, x_size, y_size)`` within that array (None = all of it);
        ``binning`` = ``(x_bin, y_bin)`` must divide the ROI; ``wavelength_nm`` (per column) selects
        the QE curve. Returns int64 counts of shape ``(y_size // y_bin, x_size // x_bin)``.
        """
        rate = np.asarray(photon_rate_per_pixel, dtype=float)
        if rate.ndim == 1:
            rate = rate[None, :]
        if roi is not None:
            x0, y0, xs, ys = (int(v) for v in roi)
            if x0 < 0 or y0 < 0 or x0 + xs > rate.shape[1] or y0 + ys > rate.shape[0]:
                raise ValueError(f"ROI {roi} outside the {rate.shape[1]} × {rate.shape[0]} pixel array")
            rate = rate[y0:y0 + ys, x0:x0 + xs]
            if wavelength_nm is not None:
                wavelength_nm = np.asarray(wavelength_nm)[x0:x0 + xs]
        xb, yb = (int(b) for b in binning)
        ny, nx = rate.shape
        if xb < 1 or yb < 1 or nx % xb or ny % yb:
            raise ValueError(f"binning {binning} must divide the ROI size {nx} × {ny}")
        if exposure_s < 0:
            raise ValueError("exposure must be >= 0")
        qe = self.quantum_efficiency(wavelength_nm, nx)
        mean_e = (rate * qe if shutter_open else np.zeros_like(rate)) * exposure_s
        mean_e = mean_e + self.dark_rate() * exposure_s
        e = rng.poisson(np.maximum(mean_e, 0.0)).astype(float)
        if cosmics and self.cosmic_per_cm2_min > 0 and exposure_s > 0:
            area_cm2 = nx * ny * (self.pixel_um * 1e-4) ** 2
            n_hits = rng.poisson(self.cosmic_per_cm2_min / 60.0 * area_cm2 * exposure_s)
            for _ in range(int(n_hits)):
                self._cosmic(e, rng)
        np.minimum(e, self.full_well_e, out=e)
        e = e.reshape(ny // yb, yb, nx // xb, xb).sum(axis=(1, 3))
        np.minimum(e, self.register_full_well_e, out=e)
        e += rng.normal(0.0, self.read_noise_e, e.shape)
        counts = np.round(e / self.gain_e_per_count + self.bias_counts)
        return np.clip(counts, 0, self.adc_max).astype(np.int64)

    def _cosmic(self, e: np.ndarray, rng: np.random.Generator) -> None:
        """A straight track of a few pixels, each with a Landau-like (log-normal) deposit."""
        ny, nx = e.shape
        y, x = rng.uniform(0, ny), rng.uniform(0, nx)
        length = rng.exponential(2.0) + 1.0
        ang = rng.uniform(0, 2 * math.pi)
        n = int(math.ceil(length))
        for k in range(n):
            yi = int(y + k * math.sin(ang))
            xi = int(x + k * math.cos(ang))
            if 0 <= yi < ny and 0 <= xi < nx:
                e[yi, xi] += self.cosmic_e_per_px * rng.lognormal(0.0, 0.5)
