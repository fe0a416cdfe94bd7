"""Photon correlations from time tags: linear-bin g2 histogram, multi-tau correlation, normalisation
and bunching fits.

* :func:`correlate` — all pairs (t2 − t1) inside ±n_bins·binwidth/2, a two-pointer merge over the
  two sorted streams, compiled with numba: O(N + pairs).
* :func:`multitau` — pair counts on the log-spaced multi-tau lag grid that FCS-style vendor software
  exports (PicoHarp ``.cor``: 8 lags per cascade, the step doubling each cascade), using the
  Laurence–Fore–Huser pointer algorithm (O(N · n_lags)), normalised with the overlap correction
  (T − τ)/(N1(t ≤ T − τ) · N2(t ≥ τ) · Δτ).
* :func:`normalize` — g2(τ) = C(τ)·Δt/(binwidth·N1·N2) with Poisson errors.
* :func:`fit_bunching` — bunching amplitude and timescale by the two published methods and by a
  double exponential with weights fixed from a spectrum (tcspc.md §6.2).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numba
import numpy as np
from iminuit import Minuit
from scipy.special import erfcx

from ._common import ResultMixin, Value

__all__ = [
    "Correlation",
    "MultiTau",
    "G2Curve",
    "G2Fit",
    "correlate",
    "correlate_numpy",
    "multitau",
    "multitau_grid",
    "normalize",
    "fit_bunching",
    "bunching_shape",
]

log = logging.getLogger(__name__)
_SIG_PER_FWHM = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


# ----------------------------------------------------------------------------- kernels
@numba.njit(cache=True, nogil=True)
def _corr_kernel(t1: np.ndarray, t2: np.ndarray, lo: np.int64, bw: np.int64, hist: np.ndarray) -> None:
    # pragma: no cover - compiled
    nb = hist.shape[0]
    n2 = t2.shape[0]
    span = bw * nb
    j0 = 0
    for i in range(t1.shape[0]):
        start = t1[i] + lo  # earliest t2 inside the window
        while j0 < n2 and t2[j0] < start:
            j0 += 1
        j = j0
        while j < n2:
            d = t2[j] - start
            if d >= span:
                break
            hist[d // bw] += 1
            j += 1


@numba.njit(cache=True, nogil=True)
def _laurence(
    t1: np.ndarray,
    t2: np.ndarray,
    e_lo: np.ndarray,
    e_hi: np.ndarray,
    c2: np.ndarray,
    counts: np.ndarray,
    s_lo: np.ndarray,
    s_hi: np.ndarray,
) -> None:
    # pragma: no cover - compiled
    # For each lag bin k and each t1[i]: pairs with e_lo[k] <= t2 - t1 < e_hi[k]; also the sum of
    # (t2 - t1) over those pairs, split at the bin centre (for triangular weights).
    nk = e_lo.shape[0]
    n2 = t2.shape[0]
    ilo = np.zeros(nk, dtype=np.int64)
    imid = np.zeros(nk, dtype=np.int64)
    ihi = np.zeros(nk, dtype=np.int64)
    for i in range(t1.shape[0]):
        ti = t1[i]
        for k in range(nk):
            a = ti + e_lo[k]
            b = ti + e_hi[k]
            c = ti + 0.5 * (e_lo[k] + e_hi[k])
            p = ilo[k]
            while p < n2 and t2[p] < a:
                p += 1
            ilo[k] = p
            q = imid[k]
            if q < p:
                q = p
            while q < n2 and t2[q] < c:
                q += 1
            imid[k] = q
            r = ihi[k]
            if r < q:
                r = q
            while r < n2 and t2[r] < b:
                r += 1
            ihi[k] = r
            counts[k, 0] += q - p
            counts[k, 1] += r - q
            s_lo[k] += (c2[q] - c2[p]) - (q - p) * ti
            s_hi[k] += (c2[r] - c2[q]) - (r - q) * ti


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Correlation(ResultMixin):
    """Coincidence histogram of t2 − t1.  Bin k covers
    [lo + k·binwidth, lo + (k+1)·binwidth) with lo = −(n_bins//2 + ½)·binwidth rounded to ps, so the
    bin centres ``tau_ps`` are (k − n_bins//2)·binwidth and τ = 0 is a bin centre."""

    tau_ps: np.ndarray
    counts: np.ndarray
    binwidth_ps: float
    n1: int
    n2: int
    duration_ps: float
    _array_fields = ("tau_ps", "counts")


@dataclass(frozen=True)
class MultiTau(ResultMixin):
    """Multi-tau correlation on its lag grid: ``G = g2 − 1`` (the convention of FCS exports),
    with Poisson errors from the pair counts."""

    tau_s: np.ndarray
    width_s: np.ndarray
    pairs: np.ndarray
    g2: np.ndarray
    g2_err: np.ndarray
    n1: int
    n2: int
    duration_s: float
    kernel: str
    _array_fields = ("tau_s", "width_s", "pairs", "g2", "g2_err")

    @property
    def G(self) -> np.ndarray:
        return self.g2 - 1.0


@dataclass(frozen=True)
class G2Curve(ResultMixin):
    """Normalised g2(τ) with its 1-sigma Poisson errors."""

    tau_ps: np.ndarray
    g2: np.ndarray
    g2_err: np.ndarray
    counts: np.ndarray
    norm: np.ndarray
    _array_fields = ("tau_ps", "g2", "g2_err", "counts", "norm")


@dataclass(frozen=True)
class G2Fit(ResultMixin):
    """Bunching fit.  ``amplitude`` = g2(0) − baseline of the fitted (instrument-convolved) peak.

    * ``lorentz_*``: Lorentzian peak; ``tau_lorentz_ps`` = √(FWHM² − FWHM_irf²), the quadrature
      deconvolution the Milano paper uses (it reads this directly as the SF lifetime).
    * ``exp_*``: two-sided exponential e^{−|τ|/τ_s} convolved with a Gaussian instrument response of
      FWHM ``irf_fwhm_ps``; τ_s is the emission lifetime (tcspc.md §6.2).
    * ``double_*``: A(τ) = Σ_j w_j e^{−|τ|/τ_j} Σ_i w_i/(τ_i+τ_j) ⊗ IRF with the photon weights w_i
      fixed (e.g. from the spectral decomposition, Technion method); present if weights were given.
    """

    baseline: Value
    amplitude: Value
    tau_exp_ps: Value
    exp_chi2_dof: float
    lorentz_fwhm_ps: Value
    tau_lorentz_ps: Value
    lorentz_chi2_dof: float
    double_taus_ps: tuple[Value, ...] | None
    double_weights: tuple[float, ...] | None
    double_chi2_dof: float | None
    irf_fwhm_ps: float
    significance: float
    tau_ps: np.ndarray = field(repr=False)
    g2: np.ndarray = field(repr=False)
    g2_err: np.ndarray = field(repr=False)
    exp_model: np.ndarray = field(repr=False)
    lorentz_model: np.ndarray = field(repr=False)
    double_model: np.ndarray | None = field(repr=False, default=None)
    _array_fields = ("tau_ps", "g2", "g2_err", "exp_model", "lorentz_model", "double_model")

    @property
    def bunched(self) -> bool:
        """Amplitude positive at ≥ 3 sigma."""
        return self.significance >= 3.0


# ----------------------------------------------------------------------------- correlators
def _as_sorted_int64(t: np.ndarray, name: str) -> np.ndarray:
    a = np.ascontiguousarray(t, dtype=np.int64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D")
    if a.size > 1 and np.any(a[1:] < a[:-1]):
        log.debug("%s not sorted; sorting", name)
        a = np.sort(a)
    return a


def _window(binwidth_ps: int, n_bins: int) -> int:
    return -(n_bins // 2) * binwidth_ps - binwidth_ps // 2


def correlate(
    t1_ps: np.ndarray, t2_ps: np.ndarray, binwidth_ps: int, n_bins: int, duration_ps: float | None = None
) -> Correlation:
    """All-pairs coincidence histogram of t2 − t1 for positive and negative delays.

    ``t1_ps``/``t2_ps``: integer time tags in ps (sorted; sorted here if not).  ``binwidth_ps`` must
    be an integer number of ps.  ``duration_ps`` (for normalisation) defaults to the span of both
    streams.  The kernel is a numba-compiled two-pointer merge, O(N + pairs).
    """
    bw = int(binwidth_ps)
    if bw <= 0 or n_bins <= 0:
        raise ValueError("binwidth_ps and n_bins must be positive")
    a = _as_sorted_int64(t1_ps, "t1_ps")
    b = _as_sorted_int64(t2_ps, "t2_ps")
    hist = np.zeros(n_bins, dtype=np.int64)
    lo = _window(bw, n_bins)
    if a.size and b.size:
        _corr_kernel(a, b, np.int64(lo), np.int64(bw), hist)
    if duration_ps is None:
        if a.size and b.size:
            duration_ps = float(max(a[-1], b[-1]) - min(a[0], b[0]))
        else:
            duration_ps = 0.0
    tau = (np.arange(n_bins) - n_bins // 2) * float(bw)
    return Correlation(
        tau_ps=tau,
        counts=hist,
        binwidth_ps=float(bw),
        n1=int(a.size),
        n2=int(b.size),
        duration_ps=float(duration_ps),
    )


def correlate_numpy(t1_ps: np.ndarray, t2_ps: np.ndarray, binwidth_ps: int, n_bins: int) -> np.ndarray:
    """Vectorised NumPy version of :func:`correlate` (searchsorted + repeat + bincount), the
    baseline for benchmarks.  Memory grows with the number of pairs."""
    bw = int(binwidth_ps)
    a = np.sort(np.asarray(t1_ps, dtype=np.int64))
    b = np.sort(np.asarray(t2_ps, dtype=np.int64))
    lo = _window(bw, n_bins)
    i0 = np.searchsorted(b, a + lo, side="left")
    i1 = np.searchsorted(b, a + lo + bw * n_bins, side="left")
    cnt = i1 - i0
    tot = int(cnt.sum())
    if tot == 0:
        return np.zeros(n_bins, dtype=np.int64)
    starts = np.repeat(i0 - np.concatenate(([0], np.cumsum(cnt)[:-1])), cnt)
    idx = starts + np.arange(tot)
    d = b[idx] - np.repeat(a + lo, cnt)
    return np.bincount(d // bw, minlength=n_bins)[:n_bins].astype(np.int64)


def multitau_grid(
    tau_resolution_s: float = 25e-9, *, n_per_cascade: int = 8, n_cascades: int = 19, first_step: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Multi-tau lag grid in units of the resolution, as PicoHarp/FCS exports use it: cascade 0 has
    lags 0..n_per_cascade−1 with step 1; each further cascade adds n_per_cascade lags with the step
    doubled.  Returns (tau_s, width_s), the bin width being the cascade step."""
    steps, widths = [], []
    cur = -1
    for c in range(n_cascades):
        st = 1 if c == 0 else 2**c
        for _ in range(n_per_cascade):
            cur += st
            steps.append(cur)
            widths.append(st)
    s = np.array(steps, dtype=float)
    w = np.array(widths, dtype=float)
    keep = s >= first_step
    return s[keep] * tau_resolution_s, w[keep] * tau_resolution_s


def multitau(
    t1_ps: np.ndarray,
    t2_ps: np.ndarray,
    *,
    tau_s: np.ndarray | None = None,
    width_s: np.ndarray | None = None,
    tau_resolution_s: float = 25e-9,
    n_per_cascade: int = 8,
    n_cascades: int = 19,
    t_start_ps: float | None = None,
    duration_ps: float | None = None,
    kernel: str = "triangle",
) -> MultiTau:
    """Correlation of two tag streams on a multi-tau (log-spaced) lag grid, g2 for positive lags
    τ = t2 − t1.

    The lag grid defaults to :func:`multitau_grid`; pass ``tau_s``/``width_s`` to use another
    (e.g. a vendor file's own grid).  ``kernel="rect"`` counts pairs with |t2 − t1 − τ| < w/2;
    ``kernel="triangle"`` weights pairs by (1 − |t2 − t1 − τ|/w) for |·| < w, which is what the
    multi-tau coarse-graining of time stamps by the step w amounts to.  Only tags in
    [t_start, t_start + duration) are used (defaults: the span of both streams).  Normalisation:
    g2 = P·(T − τ)/(N1(t1 ≤ T − τ)·N2(t2 ≥ τ)·w) with T the duration.
    """
    if kernel not in ("rect", "triangle"):
        raise ValueError("kernel must be 'rect' or 'triangle'")
    a = _as_sorted_int64(t1_ps, "t1_ps")
    b = _as_sorted_int64(t2_ps, "t2_ps")
    t0 = float(min(a[0], b[0])) if t_start_ps is None else float(t_start_ps)
    if duration_ps is None:
        duration_ps = float(max(a[-1], b[-1])) - t0 + 1.0
    T = float(duration_ps)
    a = a[(a >= t0) & (a < t0 + T)]
    b = b[(b >= t0) & (b < t0 + T)]
    if tau_s is None:
        tau_s, width_s = multitau_grid(tau_resolution_s, n_per_cascade=n_per_cascade, n_cascades=n_cascades)
    tau_s = np.asarray(tau_s, dtype=float)
    if width_s is None:
        raise ValueError("width_s is needed with a custom tau grid")
    width_s = np.asarray(width_s, dtype=float)
    tau = tau_s * 1e12
    w = width_s * 1e12
    half = 0.5 * w if kernel == "rect" else w
    e_lo = tau - half
    e_hi = tau + half
    af = a.astype(np.float64) - t0
    bf = b.astype(np.float64) - t0
    c2 = np.concatenate(([0.0], np.cumsum(bf)))
    nk = tau.size
    counts = np.zeros((nk, 2), dtype=np.int64)
    s_lo = np.zeros(nk)
    s_hi = np.zeros(nk)
    _laurence(af, bf, e_lo, e_hi, c2, counts, s_lo, s_hi)
    if kernel == "rect":
        pairs = counts.sum(axis=1).astype(float)
        var = pairs.copy()
    else:
        # weight 1 − |d − τ|/w: lower half  Σ (d − τ + w)/w ; upper half Σ (τ + w − d)/w
        lo_w = (s_lo - counts[:, 0] * (tau - w)) / w
        hi_w = (counts[:, 1] * (tau + w) - s_hi) / w
        pairs = lo_w + hi_w
        var = np.maximum(pairs, 0.0)  # Poisson-like error estimate (weights ≤ 1)
    n1_eff = np.searchsorted(af, T - tau, side="right").astype(float)
    n2_eff = (bf.size - np.searchsorted(bf, tau, side="left")).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        norm = (T - tau) / (n1_eff * n2_eff * w)
    g2 = pairs * norm
    g2_err = np.sqrt(np.maximum(var, 1.0)) * norm
    return MultiTau(
        tau_s=tau_s,
        width_s=width_s,
        pairs=pairs,
        g2=g2,
        g2_err=g2_err,
        n1=int(a.size),
        n2=int(b.size),
        duration_s=T * 1e-12,
        kernel=kernel,
    )


def normalize(
    corr: Correlation | np.ndarray,
    *,
    binwidth_ps: float | None = None,
    n1: int | None = None,
    n2: int | None = None,
    duration_ps: float | None = None,
    tau_ps: np.ndarray | None = None,
    overlap: bool = False,
) -> G2Curve:
    """g2(τ) = C(τ)·Δt/(binwidth·N1·N2) with Poisson errors √C (√max(C, 1) for empty bins).

    Pass a :class:`Correlation` or raw counts plus ``binwidth_ps``, ``n1``, ``n2``, ``duration_ps``
    and ``tau_ps``.  ``overlap=True`` uses (Δt − |τ|) in place of Δt (exact for uniform rates when
    the window is not small compared to the acquisition)."""
    if isinstance(corr, Correlation):
        counts = corr.counts
        binwidth_ps, n1, n2, duration_ps, tau_ps = (
            corr.binwidth_ps,
            corr.n1,
            corr.n2,
            corr.duration_ps,
            corr.tau_ps,
        )
    else:
        counts = np.asarray(corr)
        if binwidth_ps is None or n1 is None or n2 is None or duration_ps is None:
            raise ValueError("raw counts need binwidth_ps, n1, n2 and duration_ps")
        if tau_ps is None:
            nb = counts.size
            tau_ps = (np.arange(nb) - nb // 2) * float(binwidth_ps)
    assert binwidth_ps is not None and n1 is not None and n2 is not None and duration_ps is not None
    tau = np.asarray(tau_ps, dtype=float)
    dt = float(duration_ps) - (np.abs(tau) if overlap else 0.0)
    if n1 <= 0 or n2 <= 0 or float(duration_ps) <= 0:
        raise ValueError("n1, n2 and duration_ps must be positive")
    norm = dt / (float(binwidth_ps) * float(n1) * float(n2)) * np.ones_like(tau)
    c = np.asarray(counts, dtype=float)
    return G2Curve(tau_ps=tau, g2=c * norm, g2_err=np.sqrt(np.maximum(c, 1.0)) * norm, counts=c, norm=norm)


# ----------------------------------------------------------------------------- bunching fits
def _two_sided_exp_gauss(tau: np.ndarray, ts: float, sigma: float) -> np.ndarray:
    """e^{−|τ|/ts} convolved with a unit-area Gaussian of width sigma (value at τ)."""
    if sigma <= 1e-9:
        return np.exp(-np.abs(tau) / ts)
    lam = sigma / ts
    z = tau / sigma
    s2 = math.sqrt(2.0)
    # e^{-x/ts} for x>0 ⊗ G: 0.5·exp(λ²/2 − z λ)·erfc((λ − z)/√2) = 0.5·exp(−z²/2)·erfcx((λ − z)/√2)
    return _half(z, lam, s2) + _half(-z, lam, s2)


def _half(z: np.ndarray, lam: float, s2: float) -> np.ndarray:
    """e^{−x/ts}·H(x) ⊗ Gauss at z = τ/σ: 0.5·exp(−z²/2)·erfcx((λ − z)/√2), and for very negative
    erfcx arguments its asymptote exp(λ²/2 − zλ) (erfc → 2), avoiding 0·inf."""
    arg = (lam - z) / s2
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        a = 0.5 * np.exp(-0.5 * z * z) * erfcx(np.maximum(arg, -25.0))
        b = np.exp(np.minimum(0.5 * lam * lam - z * lam, 700.0))
    return np.where(arg < -25.0, b, a)


def bunching_shape(
    tau_ps: np.ndarray, taus_ps: Sequence[float], weights: Sequence[float], irf_fwhm_ps: float
) -> np.ndarray:
    """A(τ) = Σ_j w_j e^{−|τ|/τ_j} Σ_i w_i/(τ_i + τ_j) convolved with a Gaussian of FWHM
    ``irf_fwhm_ps``; unit area before convolution (tcspc.md §6.2)."""
    tau = np.asarray(tau_ps, dtype=float)
    sig = irf_fwhm_ps * _SIG_PER_FWHM
    out = np.zeros_like(tau)
    for tj, wj in zip(taus_ps, weights, strict=True):
        bj = wj * sum(wi / (ti + tj) for ti, wi in zip(taus_ps, weights, strict=True))
        out += bj * _two_sided_exp_gauss(tau, tj, sig)
    return out


def _lsq(
    model,
    tau: np.ndarray,
    y: np.ndarray,
    err: np.ndarray,
    p0: dict[str, float],
    limits: dict[str, tuple[float | None, float | None]],
) -> Minuit:
    names = list(p0)

    def cost(*p: float) -> float:
        return float(np.sum(((y - model(tau, *p)) / err) ** 2))

    m = Minuit(cost, *[p0[k] for k in names], name=names)
    m.errordef = Minuit.LEAST_SQUARES
    for k, lim in limits.items():
        m.limits[k] = lim
    m.migrad(ncall=20000)
    if not m.valid:
        m.migrad(ncall=20000)
    m.hesse()
    return m


def fit_bunching(
    tau_ps: np.ndarray,
    g2: np.ndarray,
    *,
    irf_fwhm_ps: float,
    g2_err: np.ndarray | None = None,
    weights: Sequence[float] | None = None,
    tau0_ps: float | None = None,
    fit_range_ps: float | None = None,
) -> G2Fit:
    """Fit a photon-bunching peak centred at τ = 0.

    ``g2_err`` defaults to the scatter of the far wings.  ``weights`` (photon fractions of the
    emission components, e.g. [w_SF, w_unc] from :func:`analysis.spectra.decompose`) enables the
    double-exponential fit with those weights fixed.  The peak position is fixed at τ = 0 (correct
    the channel delay first).  Fit quality is reported as χ²/dof (errors are ≈ Gaussian at the
    counts a g2 histogram holds; pass counts through :func:`normalize` for its errors).
    """
    tau = np.asarray(tau_ps, dtype=float)
    y = np.asarray(g2, dtype=float)
    if fit_range_ps is not None:
        sel = np.abs(tau) <= fit_range_ps
        tau, y = tau[sel], y[sel]
        if g2_err is not None:
            g2_err = np.asarray(g2_err, dtype=float)[sel]
    wing = np.abs(tau) > 0.6 * np.max(np.abs(tau))
    base0 = float(np.median(y[wing])) if wing.sum() > 3 else float(np.median(y))
    if g2_err is None:
        s = float(np.std(y[wing])) if wing.sum() > 3 else float(np.std(y))
        err = np.full_like(y, max(s, 1e-6))
    else:
        err = np.maximum(np.asarray(g2_err, dtype=float), 1e-12)
    peak0 = max(float(np.max(y) - base0), 1e-6)
    above = tau[(y - base0) > peak0 / 2]
    fwhm0 = float(above.max() - above.min()) if above.size > 1 else 2 * irf_fwhm_ps
    fwhm0 = max(fwhm0, irf_fwhm_ps * 0.5, 1.0)
    ts0 = tau0_ps if tau0_ps is not None else max(fwhm0 / (2 * math.log(2)), 1.0)
    sig = irf_fwhm_ps * _SIG_PER_FWHM
    span = float(np.max(np.abs(tau)))

    def exp_model(t: np.ndarray, base: float, amp: float, ts: float) -> np.ndarray:
        h0 = _two_sided_exp_gauss(np.zeros(1), ts, sig)[0]
        return base + amp * _two_sided_exp_gauss(t, ts, sig) / h0

    me = _lsq(
        exp_model,
        tau,
        y,
        err,
        {"base": base0, "amp": peak0, "ts": ts0},
        {"ts": (0.01, 10 * span), "base": (None, None), "amp": (None, None)},
    )
    dof_e = max(y.size - 3, 1)

    def lor(t: np.ndarray, base: float, amp: float, fw: float) -> np.ndarray:
        return base + amp / (1.0 + (2.0 * t / fw) ** 2)

    ml = _lsq(
        lor,
        tau,
        y,
        err,
        {"base": base0, "amp": peak0, "fw": fwhm0},
        {"fw": (0.01, 20 * span), "base": (None, None), "amp": (None, None)},
    )
    dof_l = max(y.size - 3, 1)
    fw, fw_e = float(ml.values["fw"]), float(ml.errors["fw"])
    if fw > irf_fwhm_ps:
        tl = math.sqrt(fw**2 - irf_fwhm_ps**2)
        tl_e = fw * fw_e / tl
    else:
        tl, tl_e = 0.0, math.nan

    d_taus = d_w = d_chi = None
    d_model = None
    if weights is not None:
        wts = tuple(float(x) for x in weights)
        if len(wts) != 2:
            raise ValueError("weights must hold two photon fractions (SF band, uncoupled band)")
        ssum = sum(wts)
        wts = tuple(x / ssum for x in wts)

        def dbl(t: np.ndarray, base: float, amp: float, t1: float, t2: float) -> np.ndarray:
            sh = bunching_shape(t, (t1, t2), wts, irf_fwhm_ps)
            h0 = bunching_shape(np.zeros(1), (t1, t2), wts, irf_fwhm_ps)[0]
            return base + amp * sh / h0

        ts_e = float(me.values["ts"])
        md = _lsq(
            dbl,
            tau,
            y,
            err,
            {
                "base": float(me.values["base"]),
                "amp": float(me.values["amp"]),
                "t1": 0.5 * ts_e,
                "t2": 2.0 * ts_e,
            },
            {"t1": (0.01, 10 * span), "t2": (0.01, 10 * span), "base": (None, None), "amp": (None, None)},
        )
        d_taus = (
            Value(float(md.values["t1"]), float(md.errors["t1"])),
            Value(float(md.values["t2"]), float(md.errors["t2"])),
        )
        d_w = wts
        d_chi = float(md.fval) / max(y.size - 4, 1)
        d_model = dbl(tau, *md.values)

    amp = Value(float(me.values["amp"]), float(me.errors["amp"]))
    return G2Fit(
        baseline=Value(float(me.values["base"]), float(me.errors["base"])),
        amplitude=amp,
        tau_exp_ps=Value(float(me.values["ts"]), float(me.errors["ts"])),
        exp_chi2_dof=float(me.fval) / dof_e,
        lorentz_fwhm_ps=Value(fw, fw_e),
        tau_lorentz_ps=Value(tl, tl_e),
        lorentz_chi2_dof=float(ml.fval) / dof_l,
        double_taus_ps=d_taus,
        double_weights=d_w,
        double_chi2_dof=d_chi,
        irf_fwhm_ps=float(irf_fwhm_ps),
        significance=amp.significance() if np.isfinite(amp.significance()) else 0.0,
        tau_ps=tau,
        g2=y,
        g2_err=err,
        exp_model=exp_model(tau, *me.values),
        lorentz_model=lor(tau, *ml.values),
        double_model=d_model,
    )


def warm_kernels() -> None:
    """Compile this module's numba kernels into numba's on-disk cache (see :func:`analysis.decay.warm_kernels`)."""
    rng = np.random.default_rng(0)
    t1 = np.sort(rng.integers(0, 10**10, 2000)).astype(np.int64)
    t2 = np.sort(rng.integers(0, 10**10, 2000)).astype(np.int64)
    correlate(t1, t2, 1000, 64)
    multitau(t1, t2, n_cascades=4)
