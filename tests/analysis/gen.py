"""Independent data generators for the analysis tests.

Nothing here imports ``analysis``: spectra are Poisson draws from Gaussian pdfs sampled at pixel
centres, decays are histograms of sampled photon arrival times (IRF jitter + exponential delays),
g2 data are correlated tag streams from simulated bursts, so fits are tested against truth.
"""

from __future__ import annotations

import math

import numpy as np

HC = 1239.841984


def gauss_pdf(x: np.ndarray, c: float, fwhm: float) -> np.ndarray:
    s = fwhm / (2 * math.sqrt(2 * math.log(2)))
    return np.exp(-0.5 * ((x - c) / s) ** 2) / (s * math.sqrt(2 * math.pi))


def spectrum(rng: np.random.Generator, e: np.ndarray, bands: list[tuple[float, float, float]],
             bg: float = 2.0) -> np.ndarray:
    """Poisson counts per pixel; bands = [(centre eV, FWHM eV, photons)]."""
    de = np.gradient(e)
    lam = np.full(e.size, bg, dtype=float)
    for c, w, a in bands:
        lam += a * gauss_pdf(e, c, w) * np.abs(de)
    return rng.poisson(lam)


def decay(rng: np.random.Generator, n_photons: float, taus: list[float], fractions: list[float], *,
          dt: float = 4.0, n_bins: int = 1024, t0: float = 400.0, irf_sigma: float = 30.0, bg: float = 2.0,
          rise: float | None = None, irf_photons: int = 200_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t, counts, irf): photons = t0 + N(0, σ) + Exp(τ_k) [+ Exp(rise) for component 0]."""
    edges = np.arange(n_bins + 1) * dt
    k = rng.poisson(n_photons)
    comp = rng.choice(len(taus), size=k, p=np.asarray(fractions) / np.sum(fractions))
    x = t0 + rng.normal(0.0, irf_sigma, k) + rng.exponential(np.asarray(taus, float)[comp])
    if rise is not None:
        m = comp == 0
        x[m] += rng.exponential(rise, int(m.sum()))
    counts = np.histogram(x, edges)[0] + rng.poisson(bg, n_bins)
    irf = np.histogram(t0 + rng.normal(0.0, irf_sigma, irf_photons), edges)[0]
    return edges[:-1], counts.astype(float), irf.astype(float)


def burst_tags(rng: np.random.Generator, *, rate_hz: float, duration_s: float, mean_photons: float, tau_ps: float,
               eta: float = 0.02, jitter_ps: float = 30.0, dark_hz: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Two detectors behind a 50/50 splitter watching bursts (Poisson events, Poisson photons with
    exponential emission delays).  Returns sorted int64 tags (ps) for each detector."""
    T = duration_s * 1e12
    n_ev = rng.poisson(rate_hz * duration_s)
    t_ev = rng.uniform(0, T, n_ev)
    m = rng.poisson(mean_photons, n_ev)
    t_ph = np.repeat(t_ev, m) + rng.exponential(tau_ps, int(m.sum()))
    keep = rng.random(t_ph.size) < eta
    t_ph = t_ph[keep]
    det = rng.random(t_ph.size) < 0.5
    out = []
    for d in (det, ~det):
        t = t_ph[d] + rng.normal(0, jitter_ps / 2.3548 / math.sqrt(2), int(d.sum()))
        if dark_hz:
            t = np.concatenate([t, rng.uniform(0, T, rng.poisson(dark_hz * duration_s))])
        out.append(np.sort(t[(t >= 0) & (t < T)]).astype(np.int64))
    return out[0], out[1]


def g2_curve(rng: np.random.Generator, tau: np.ndarray, *, amp: float, tau_s: float, irf_fwhm: float,
             accidentals_per_bin: float) -> tuple[np.ndarray, np.ndarray]:
    """Poisson coincidence counts for g2 = 1 + amp·(e^{−|τ|/τs} ⊗ Gauss) (numerical convolution on a fine
    grid) normalised by the accidental level; returns (g2, g2_err)."""
    fine = np.arange(-20 * tau_s - 5 * irf_fwhm, 20 * tau_s + 5 * irf_fwhm, 0.5)
    shape = np.exp(-np.abs(fine) / tau_s) if amp else np.zeros_like(fine)
    s = irf_fwhm / 2.3548
    k = np.exp(-0.5 * (fine / s) ** 2)
    k /= k.sum()
    conv = np.convolve(shape, k, mode="same")
    peak = np.interp(tau, fine, conv)
    lam = accidentals_per_bin * (1 + amp * peak / (conv.max() if conv.max() > 0 else 1.0))
    c = rng.poisson(lam)
    return c / accidentals_per_bin, np.sqrt(np.maximum(c, 1)) / accidentals_per_bin


def logistic(T: np.ndarray | float, t_on: float, width: float, wmax: float) -> np.ndarray:
    return wmax / (1 + np.exp((np.asarray(T, float) - t_on) / width))
