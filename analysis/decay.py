"""TCSPC decay fitting by IRF reconvolution, and ⟨N⟩ from the fast/slow amplitude ratio.

Model for the counts in bin i (bin width Δt, bins of the measured IRF and of the decay coincide)::

    m_i = b + Σ_k N_k · (IRF(· − s) ⊗ h_k)_i

* ``IRF(· − s)``: the measured IRF, normalised to unit sum, shifted by a fractional number of bins
  (cubic-convolution interpolation, smooth in ``s``; ``s`` in ps is a fit parameter).
* ``h_k``: a unit-area exponential ``e^{−t/τ}/τ``.  The convolution treats each IRF bin as photons
  spread uniformly over the bin and integrates the exponential over each decay bin exactly; it is
  computed by an O(n) recursion compiled with numba.
* ``model="sf"``: the first component is the superfluorescent band with a delayed rise,
  ``h(t) = (e^{−t/τ} − e^{−t/τ_D})/(τ − τ_D)`` (rise time τ_D, unit area); its peak lags the
  prompt emission by ``τ τ_D ln(τ/τ_D)/(τ − τ_D)``.
* ``model="burst"``: the first component is a superfluorescent *burst* (see :func:`burst_density`):
  ``h(t) ∝ [e^{−(t−t_d)/(2τ_g)} + e^{(t−t_d)/(2τ)}]^{−2}`` for t ≥ 0, i.e. the mean-field
  Dicke/Rehler–Eberly pulse ``sech²((t − t_d)/(2τ_R))`` (physics.md §1.1, textbook relations; [002]
  §3.1) whose leading-edge growth time τ_g and trailing decay time τ may differ (τ_g = τ is the single
  mean-field burst): delay t_d, exponential build-up e^{t/τ_g} from the initial noise level, release
  e^{−t/τ} — the SF lifetime the seeds quote ([000]: "lifetime … down to ~40 ps"). τ_g ≤ τ by
  construction (τ_g = ρ τ, 0 < ρ ≤ 1). It is bin-integrated numerically and convolved with the IRF by FFT.
* ``b``: constant background per bin.

``N_k`` are photon counts of each component (so intensity weights R_k = N_k/ΣN are direct), the
pre-exponential amplitudes are ``a_k = N_k Δt/τ_k`` counts per bin.  The fit minimises the Poisson
deviance with iminuit (MIGRAD + HESSE).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
from iminuit import Minuit

from ._common import ResultMixin, Value, deviance_residuals

__all__ = [
    "DecayComponent",
    "DecayFit",
    "fit_decay",
    "convolve_exponential",
    "convolve_burst",
    "burst_density",
    "burst_peak_delay",
    "shift_irf",
    "OccupancyEstimate",
    "mean_occupancy",
    "amplitude_ratio",
]

log = logging.getLogger(__name__)
_RHO_MIN = 1e-3  # lower bound of τ_g/τ in model="burst" (a build-up 1000× faster than the release)


# ----------------------------------------------------------------------------- compiled kernels
@numba.njit(cache=True, fastmath=False)
def _expconv(irf: np.ndarray, dt: float, tau: float, out: np.ndarray) -> None:  # pragma: no cover
    n = irf.shape[0]
    x = dt / tau
    one_m_q = -math.expm1(-x)
    q = 1.0 - one_m_q
    r = one_m_q / x  # (τ/Δt)(1 − q)
    a = r * one_m_q
    b = 1.0 - r
    s = 0.0
    for i in range(n):
        out[i] = a * s + b * irf[i]
        s = s * q + irf[i]


@numba.njit(cache=True)
def _shift(irf: np.ndarray, shift_bins: float, out: np.ndarray) -> None:  # pragma: no cover
    # out[i] = irf(i − shift) with Keys cubic-convolution interpolation (a = −0.5, Catmull-Rom):
    # continuous first derivative in the shift, so MIGRAD sees a smooth cost near integer shifts.
    n = irf.shape[0]
    k = math.floor(shift_bins)
    f = shift_bins - k  # sample position x = i − k − f lies between j − 1 and j, j = i − k
    u = 1.0 - f  # distance of x from j − 1
    # weights for samples j − 2, j − 1, j, j + 1 at fractional position u from j − 1
    w0 = ((-0.5 * u + 1.0) * u - 0.5) * u
    w1 = (1.5 * u - 2.5) * u * u + 1.0
    w2 = ((-1.5 * u + 2.0) * u + 0.5) * u
    w3 = (0.5 * u - 0.5) * u * u
    for i in range(n):
        j = i - k
        acc = 0.0
        jj = j - 2
        if 0 <= jj < n:
            acc += w0 * irf[jj]
        jj = j - 1
        if 0 <= jj < n:
            acc += w1 * irf[jj]
        if 0 <= j < n:
            acc += w2 * irf[j]
        jj = j + 1
        if 0 <= jj < n:
            acc += w3 * irf[jj]
        out[i] = acc


@numba.njit(cache=True, inline="always")
def _deviance_term(c: float, m: float) -> float:  # pragma: no cover
    """Half the Poisson deviance of one bin: μ − n + n ln(n/μ) (μ floored at 1e-300; μ when n = 0)."""
    if m < 1e-300:
        m = 1e-300
    if c > 0:
        return m - c + c * math.log(c / m)
    return m


@numba.njit(cache=True)
def _deviance(n: np.ndarray, mu: np.ndarray) -> float:  # pragma: no cover
    d = 0.0
    for i in range(n.shape[0]):
        d += _deviance_term(n[i], mu[i])
    return 2.0 * d


@numba.njit(cache=True)
def _exp_cost(p: np.ndarray, irf: np.ndarray, dt: float, nc: int, sf: bool, n: np.ndarray, use: np.ndarray,
              shifted: np.ndarray, tmp: np.ndarray, tmp2: np.ndarray, mu: np.ndarray) -> float:  # pragma: no cover
    """The Poisson deviance of the ``exp`` / ``sf`` model at ``p`` over the bins where ``use``: the same
    model as :meth:`_Model.evaluate` (shifted IRF, exponentials convolved bin-exactly, component 0 with the
    exponential rise when ``sf``, background) in one compiled call — the fit's cost, which MIGRAD calls
    ~250 times per decay (the Python of evaluate was half of it)."""
    m = mu.shape[0]
    _shift(irf, p[p.shape[0] - 1] / dt, shifted)
    bg = p[p.shape[0] - 2]
    for i in range(m):
        mu[i] = bg
    for k in range(nc):
        tau = p[2 * k + 1]
        amp = p[2 * k]
        _expconv(shifted, dt, tau, tmp)
        if k == 0 and sf:
            r = p[2 * nc]
            if abs(tau - r) < 1e-6 * tau:
                r = tau * (1 - 1e-6)
            _expconv(shifted, dt, r, tmp2)
            a = tau / (tau - r)
            c = r / (tau - r)
            for i in range(m):
                mu[i] += amp * (tmp[i] * a - c * tmp2[i])
        else:
            for i in range(m):
                mu[i] += amp * tmp[i]
    d = 0.0
    for i in range(m):
        if use[i]:
            d += _deviance_term(n[i], mu[i])
    return 2.0 * d


@numba.njit(cache=True, fastmath=False)
def _expconv_grad(irf: np.ndarray, dirf: np.ndarray, dt: float, tau: float, out: np.ndarray, dtau: np.ndarray,
                  dout: np.ndarray) -> None:  # pragma: no cover
    """:func:`_expconv` of ``irf`` into ``out`` with, in the same pass, its derivative in τ (``dtau``) and
    :func:`_expconv` of ``dirf`` (``dout``; the convolution is linear, so with ``dirf`` = ∂irf/∂s this is
    ∂out/∂s). The recursion differentiated: q, r, a, b are functions of τ, ∂s/∂τ is carried alongside s."""
    n = irf.shape[0]
    x = dt / tau
    one_m_q = -math.expm1(-x)
    q = 1.0 - one_m_q
    r = one_m_q / x
    a = r * one_m_q
    b = 1.0 - r
    dq = q * x / tau  # ∂q/∂τ (x = Δt/τ, ∂x/∂τ = −x/τ)
    dr = (r - q) / tau  # ∂r/∂τ = (∂r/∂x)(∂x/∂τ), ∂r/∂x = (q − r)/x
    da = dr * one_m_q - r * dq
    s = 0.0
    ds = 0.0
    sd = 0.0
    for i in range(n):
        out[i] = a * s + b * irf[i]
        dtau[i] = da * s + a * ds - dr * irf[i]
        dout[i] = a * sd + b * dirf[i]
        ds = ds * q + s * dq
        s = s * q + irf[i]
        sd = sd * q + dirf[i]


@numba.njit(cache=True)
def _shift_grad(irf: np.ndarray, shift_bins: float, out: np.ndarray, dout: np.ndarray) -> None:  # pragma: no cover
    """:func:`_shift` into ``out`` and its derivative in ``shift_bins`` into ``dout`` (the Keys weights are
    cubics in u = 1 − f; ∂u/∂shift = −1, continuous across integer shifts)."""
    n = irf.shape[0]
    k = math.floor(shift_bins)
    u = 1.0 - (shift_bins - k)
    w0 = ((-0.5 * u + 1.0) * u - 0.5) * u
    w1 = (1.5 * u - 2.5) * u * u + 1.0
    w2 = ((-1.5 * u + 2.0) * u + 0.5) * u
    w3 = (0.5 * u - 0.5) * u * u
    d0 = -((-1.5 * u + 2.0) * u - 0.5)  # −∂w/∂u
    d1 = -((4.5 * u - 5.0) * u)
    d2 = -((-4.5 * u + 4.0) * u + 0.5)
    d3 = -((1.5 * u - 1.0) * u)
    for i in range(n):
        j = i - k
        acc = 0.0
        dacc = 0.0
        jj = j - 2
        if 0 <= jj < n:
            acc += w0 * irf[jj]
            dacc += d0 * irf[jj]
        jj = j - 1
        if 0 <= jj < n:
            acc += w1 * irf[jj]
            dacc += d1 * irf[jj]
        if 0 <= j < n:
            acc += w2 * irf[j]
            dacc += d2 * irf[j]
        jj = j + 1
        if 0 <= jj < n:
            acc += w3 * irf[jj]
            dacc += d3 * irf[jj]
        out[i] = acc
        dout[i] = dacc


@numba.njit(cache=True)
def _exp_cost_grad(p: np.ndarray, irf: np.ndarray, dt: float, nc: int, sf: bool, n: np.ndarray, use: np.ndarray,
                   work: np.ndarray, mu: np.ndarray, grad: np.ndarray) -> float:  # pragma: no cover
    """:func:`_exp_cost` at ``p`` and its analytic gradient in all parameters (into ``grad``) in one call.

    ∂dev/∂μ_i = 2(1 − n_i/μ_i); μ is linear in the photon numbers and the background; the τ derivative of
    each component and the shift derivative (the convolution of ∂IRF(· − s)/∂s) come from
    :func:`_expconv_grad`, the rise time's (``sf``) likewise from the second exponential. ``work`` is a
    scratch array of shape (3·nc + 5, n_bins)."""
    m = mu.shape[0]
    npar = p.shape[0]
    shifted = work[0]
    dshifted = work[1]
    er = work[2]  # the rise exponential (sf): value, ∂/∂τ_D, ∂/∂s
    er_t = work[3]
    er_s = work[4]
    _shift_grad(irf, p[npar - 1] / dt, shifted, dshifted)
    bg = p[npar - 2]
    for i in range(m):
        mu[i] = bg
    for k in range(nc):
        tau = p[2 * k + 1]
        amp = p[2 * k]
        c = work[5 + 3 * k]
        c_t = work[6 + 3 * k]
        c_s = work[7 + 3 * k]
        _expconv_grad(shifted, dshifted, dt, tau, c, c_t, c_s)
        if k == 0 and sf:
            r = p[2 * nc]
            drdt = 0.0  # ∂r/∂τ of the rise time used (≠ 0 only where it is pinned just below τ)
            drdr = 1.0
            if abs(tau - r) < 1e-6 * tau:
                r = tau * (1 - 1e-6)
                drdt = 1 - 1e-6
                drdr = 0.0
            _expconv_grad(shifted, dshifted, dt, r, er, er_t, er_s)
            inv = 1.0 / (tau - r)
            a = tau * inv
            cc = r * inv
            ga = -r * inv * inv  # ∂a/∂τ = ∂c/∂τ;  ∂a/∂r = ∂c/∂r = τ/(τ − r)²
            gr = tau * inv * inv
            for i in range(m):
                e = c[i]
                diff = e - er[i]
                # ∂/∂τ_D (into er_t) and ∂/∂τ (c_t), the total through the pinned r included
                d_r = gr * diff - cc * er_t[i]
                c_t[i] = ga * diff + a * c_t[i] + drdt * d_r
                er_t[i] = drdr * d_r
                c_s[i] = a * c_s[i] - cc * er_s[i]
                c[i] = a * e - cc * er[i]
                mu[i] += amp * c[i]
        else:
            for i in range(m):
                mu[i] += amp * c[i]
    for j in range(npar):
        grad[j] = 0.0
    d = 0.0
    gbg = 0.0
    gsh = 0.0
    gr_ = 0.0
    for i in range(m):
        if not use[i]:
            continue
        mi = mu[i]
        ni = n[i]
        d += _deviance_term(ni, mi)
        if mi < 1e-300:
            continue  # the floored term is constant in μ
        g = 2.0 * (1.0 - ni / mi) if ni > 0 else 2.0
        gbg += g
        sh = 0.0
        for k in range(nc):
            amp = p[2 * k]
            grad[2 * k] += g * work[5 + 3 * k, i]
            grad[2 * k + 1] += g * amp * work[6 + 3 * k, i]
            sh += amp * work[7 + 3 * k, i]
        gsh += g * sh
        if sf:
            gr_ += g * p[0] * er_t[i]
    grad[npar - 2] = gbg
    grad[npar - 1] = gsh / dt
    if sf:
        grad[2 * nc] = gr_
    return 2.0 * d


@numba.njit(cache=True)
def _burst_h(t: float, tau: float, tg: float, td: float) -> float:  # pragma: no cover
    x = t - td
    ua = -x / (2.0 * tg)
    ub = x / (2.0 * tau)
    if ua > 300.0 or ub > 300.0:
        m = max(ua, ub)
        return math.exp(-2.0 * m) / (math.exp(ua - m) + math.exp(ub - m)) ** 2
    return 1.0 / (math.exp(ua) + math.exp(ub)) ** 2


@numba.njit(cache=True)
def _burst_bins(  # pragma: no cover
    dt: float, tau: float, tg: float, td: float, out: np.ndarray, os: int = 16
) -> float:
    # H_k = ∫ h(t) Λ_k(t) dt, Λ_k the triangle of half-width Δt centred on kΔt: photons of one IRF bin
    # spread uniformly over that bin, counted in decay bin i = j + k (the convention of _expconv). With
    # D(t) = ∫_0^t (t − u) h(u) du: H_k = [D((k+1)Δ) − 2D(kΔ) + D((k−1)Δ)]/Δ, D ≤ 0 → 0. D by the
    # trapezoid rule on a grid of ``os`` points per bin, the same for every parameter value (a grid that
    # followed τ_g would make the cost jump under MIGRAD). Returns the unit-area normaliser.
    n = out.shape[0]
    d = dt / os
    dvals = np.zeros(n + 2)
    c1 = 0.0
    c2 = 0.0
    hp = _burst_h(0.0, tau, tg, td)
    al = d / (2.0 * tg)  # per-step decrease of −(t − t_d)/(2τ_g)
    be = d / (2.0 * tau)  # per-step increase of (t − t_d)/(2τ)
    fa = math.exp(-al)
    fb = math.exp(be)
    for k in range(n):
        # within bin k the two exponentials are geometric sequences (no exp per point); scaled by
        # e^{−M}, M the largest exponent over the bin, so neither overflows
        ua0 = (td - k * dt) / (2.0 * tg)
        ub1 = ((k + 1) * dt - td) / (2.0 * tau)
        mx = max(ua0, ub1)
        a = math.exp(ua0 - mx)
        b = math.exp(ub1 - mx - os * be)
        e2m = math.exp(-2.0 * mx)
        for i in range(1, os + 1):
            a *= fa
            b *= fb
            s_ = a + b
            if s_ > 1e-140:
                hj = e2m / (s_ * s_)
            else:
                hj = _burst_h((k * os + i) * d, tau, tg, td)
            c1n = c1 + 0.5 * (hp + hj) * d
            c2 += 0.5 * (c1 + c1n) * d
            c1 = c1n
            hp = hj
        dvals[k + 2] = c2  # dvals[k + 1] = D(kΔ); dvals[0] = D(−Δ) = 0
    area = c1 + hp * tau  # the release beyond the window is exponential with τ
    for k in range(n):
        out[k] = (dvals[k + 2] - 2.0 * dvals[k + 1] + dvals[k]) / (dt * area)
    return area


def _burst_area(tau: float, tg: float, td: float) -> float:
    """∫_0^∞ of the unnormalised burst (the normaliser :func:`_burst_bins` uses)."""
    span = td + 30.0 * tau
    buf = np.empty(256)
    return float(_burst_bins(span / 256, float(tau), float(tg), float(td), buf))


def burst_density(t_ps: np.ndarray, tau_ps: float, tau_g_ps: float, t_d_ps: float) -> np.ndarray:
    """Unit-area SF burst for t ≥ 0 (0 before): ``h ∝ [e^{−(t−t_d)/(2τ_g)} + e^{(t−t_d)/(2τ)}]^{−2}``.

    For τ_g = τ = τ_R this is the mean-field Dicke/Bonifacio–Lugiato burst
    ``I(t) ∝ sech²[(t − τ_D)/(2τ_R)]`` of physics.md §1.1 (textbook relations, not in the seeds; the seeds
    state the delayed burst: [002] §3.1 "short buildup period τ_D", [000] "delayed photon bursts").
    Different τ_g < τ describe an ensemble of domains: the build-up is the exponential growth e^{t/τ_g}
    of the collective polarisation from the initial noise (linear regime), the release the averaged
    trailing edge, whose e^{−t/τ} is the SF lifetime measured in [000] (Fig. 2d,h). The maximum is at
    ``t_d + 2 τ τ_g ln(τ/τ_g)/(τ + τ_g)``. Written from these relations (not from ``simulators``).
    """
    def h(t: np.ndarray) -> np.ndarray:
        x = t - t_d_ps
        ua, ub = -x / (2 * tau_g_ps), x / (2 * tau_ps)
        m = np.maximum(ua, ub)
        return np.exp(-2 * m) / (np.exp(ua - m) + np.exp(ub - m)) ** 2

    t = np.asarray(t_ps, dtype=float)
    return np.where(t >= 0, h(t) / _burst_area(tau_ps, tau_g_ps, t_d_ps), 0.0)


def burst_peak_delay(tau_ps: float, tau_g_ps: float, t_d_ps: float) -> float:
    """Time of the burst maximum after excitation: t_d + 2ττ_g ln(τ/τ_g)/(τ + τ_g) (≥ 0)."""
    if tau_g_ps <= 0 or tau_ps <= 0:
        return math.nan
    return max(t_d_ps + 2 * tau_ps * tau_g_ps * math.log(tau_ps / tau_g_ps) / (tau_ps + tau_g_ps), 0.0)


def convolve_burst(irf: np.ndarray, dt_ps: float, tau_ps: float, tau_g_ps: float, t_d_ps: float) -> np.ndarray:
    """Unit-area burst (:func:`burst_density`) integrated over the bins and convolved with ``irf``."""
    irf = np.ascontiguousarray(irf, dtype=float)
    h = np.empty_like(irf)
    _burst_bins(float(dt_ps), float(tau_ps), float(tau_g_ps), float(t_d_ps), h)
    return _causal_conv(irf, h)


def _causal_conv(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    n = a.shape[0]
    size = 1 << int(math.ceil(math.log2(2 * n)))
    return np.fft.irfft(np.fft.rfft(a, size) * np.fft.rfft(b, size), size)[:n]


def convolve_exponential(irf: np.ndarray, dt_ps: float, tau_ps: float) -> np.ndarray:
    """Unit-area exponential of lifetime ``tau_ps`` convolved with ``irf`` (bin width ``dt_ps``)."""
    irf = np.ascontiguousarray(irf, dtype=float)
    out = np.empty_like(irf)
    _expconv(irf, float(dt_ps), float(tau_ps), out)
    return out


def shift_irf(irf: np.ndarray, shift_bins: float) -> np.ndarray:
    """Shift ``irf`` later by a fractional number of bins (Keys cubic interpolation, zero fill)."""
    irf = np.ascontiguousarray(irf, dtype=float)
    out = np.empty_like(irf)
    _shift(irf, float(shift_bins), out)
    return out


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class DecayComponent(ResultMixin):
    """One decay component: lifetime, photons in the component, pre-exponential amplitude
    (counts per bin at t = 0 of the unconvolved decay), intensity weight R_i and, for the SF
    component of ``model="sf"``, its rise time."""

    tau_ps: Value
    photons: Value
    amplitude: Value
    intensity_fraction: Value
    tau_rise_ps: Value | None = None


@dataclass(frozen=True)
class DecayFit(ResultMixin):
    """Result of :func:`fit_decay`.

    ``tau_eff_1e_ps`` is the time at which the fitted (IRF-free) decay falls to 1/e of its peak;
    ``tau_eff_harmonic_ps`` is (Σ R_i/τ_i)⁻¹.  For ``model="sf"`` component 0 is the SF component
    and ``tau_rise_ps`` / ``peak_delay_ps`` describe its delayed rise; ``rise_delta_deviance`` is
    the deviance gained by the rise against the same fit with the rise time pinned at ~0 (a
    likelihood-ratio test: ≥ 9 means the rise is resolved at ≥ 3σ; the HESSE error of τ_D is not
    meaningful when τ_D sits at its lower bound)."""

    model_name: str
    components: tuple[DecayComponent, ...]
    background: Value
    shift_ps: Value
    tau_eff_1e_ps: Value
    tau_eff_harmonic_ps: Value
    tau_rise_ps: Value | None
    peak_delay_ps: Value | None
    rise_delta_deviance: float | None
    deviance: float
    dof: int
    reduced_deviance: float
    converged: bool
    t_ps: np.ndarray = field(repr=False)
    counts: np.ndarray = field(repr=False)
    model: np.ndarray = field(repr=False)
    irf: np.ndarray = field(repr=False)
    rise_dof: int | None = None
    delay_ps: Value | None = None
    _array_fields = ("t_ps", "counts", "model", "irf")

    @property
    def taus_ps(self) -> list[float]:
        return [c.tau_ps.value for c in self.components]

    @property
    def deviance_residuals(self) -> np.ndarray:
        """Signed square-root deviance residuals (≈ N(0, 1) for a good fit)."""
        return deviance_residuals(self.counts, self.model)


# ----------------------------------------------------------------------------- fit
class _Model:
    def __init__(self, irf: np.ndarray, dt: float, n_comp: int, sf: bool, burst: bool = False) -> None:
        self.irf = irf
        self.dt = dt
        self.n_comp = n_comp
        self.sf = sf
        self.burst = burst
        self.shifted = np.empty_like(irf)
        self.tmp = np.empty_like(irf)
        self.tmp2 = np.empty_like(irf)
        self.names: list[str] = []
        for k in range(n_comp):
            self.names += [f"photons{k + 1}", f"tau{k + 1}"]
        if sf:
            self.names.append("tau_rise")
        if burst:
            self.names += ["rise_ratio", "delay"]
        self.names += ["background", "shift"]

    def component(self, k: int, tau: float, rise: float | None, out: np.ndarray) -> None:
        _expconv(self.shifted, self.dt, tau, out)
        if rise is not None:
            r = rise
            if abs(tau - r) < 1e-6 * tau:
                r = tau * (1 - 1e-6)
            _expconv(self.shifted, self.dt, r, self.tmp2)
            out *= tau / (tau - r)
            out -= (r / (tau - r)) * self.tmp2

    def evaluate(self, p: np.ndarray, comps: np.ndarray | None = None) -> np.ndarray:
        nc = self.n_comp
        _shift(self.irf, p[-1] / self.dt, self.shifted)
        mu = np.full(self.irf.shape[0], p[-2])
        rise = p[2 * nc] if self.sf else None
        for k in range(nc):
            if k == 0 and self.burst:
                _burst_bins(self.dt, p[1], p[2 * nc] * p[1], p[2 * nc + 1], self.tmp2)
                self.tmp[:] = _causal_conv(self.shifted, self.tmp2)
            else:
                self.component(k, p[2 * k + 1], rise if k == 0 else None, self.tmp)
            if comps is not None:
                comps[k] = p[2 * k] * self.tmp
            mu += p[2 * k] * self.tmp
        return mu


class _ExpCost:
    """The ``exp`` / ``sf`` cost of :func:`fit_decay` and its analytic gradient, for iminuit's ``grad=``.

    The last point is kept with its cost (and gradient, when computed): Minuit asks for the gradient at the
    point whose cost it has just had, and HESSE starts at MIGRAD's last point. While MIGRAD iterates
    (``fused``: set by the first gradient call) :meth:`cost` computes the gradient along
    (:func:`_exp_cost_grad`, ~1.6 costs), since most of its points are then asked for the gradient too;
    MIGRAD's seed (numerical second derivatives) and HESSE only want costs (:func:`_exp_cost`) —
    :func:`fit_decay` clears ``fused`` before each."""

    def __init__(self, irf: np.ndarray, dt: float, nc: int, sf: bool, n: np.ndarray, use: np.ndarray) -> None:
        self.irf, self.dt, self.nc, self.sf, self.n, self.use = irf, dt, nc, sf, n, use
        self.bufs = tuple(np.empty(n.size) for _ in range(4))
        self.work = np.empty((3 * nc + 5, n.size))
        self.g = np.zeros(2 * nc + 2 + int(sf))
        self.key = b""
        self.c = math.nan
        self.have_grad = False
        self.fused = False

    def _both(self, p: np.ndarray, key: bytes) -> None:
        self.c = float(_exp_cost_grad(p, self.irf, self.dt, self.nc, self.sf, self.n, self.use, self.work,
                                      self.bufs[0], self.g))
        self.key = key
        self.have_grad = True

    def cost(self, p: np.ndarray) -> float:
        key = p.tobytes()
        if key != self.key:
            if self.fused:
                self._both(p, key)
            else:
                self.c = float(_exp_cost(p, self.irf, self.dt, self.nc, self.sf, self.n, self.use, *self.bufs))
                self.key = key
                self.have_grad = False
        return self.c

    def grad(self, p: np.ndarray) -> np.ndarray:
        self.fused = True
        key = p.tobytes()
        if not (self.have_grad and key == self.key):
            self._both(p, key)
        return self.g.copy()


# False: MIGRAD with numerical gradients (strategy 1, the former path), the baseline of benchmarks/bench_decay_grad
_ANALYTIC_GRAD = True


def fit_decay(
    t_ps: np.ndarray,
    counts: np.ndarray,
    irf: np.ndarray,
    *,
    model: str = "exp",
    n_components: int = 1,
    background: bool = True,
    fit_shift: bool = True,
    tau0_ps: list[float] | None = None,
    fixed: dict[str, float] | None = None,
    max_shift_ps: float | None = None,
    sharpen_irf: bool = True,
    mask: np.ndarray | None = None,
) -> DecayFit:
    """Fit a TCSPC decay histogram by IRF reconvolution with Poisson maximum likelihood.

    Parameters
    ----------
    t_ps:
        Bin start times (uniform spacing) in ps.
    counts:
        Counts per bin.
    irf:
        Measured instrument response on the same bins (any normalisation; negative values are
        clipped).  It should be recorded at the same time origin: its shift is fitted.
    model:
        ``"exp"`` (sum of exponentials), ``"sf"`` (component 1 has a delayed exponential rise τ_D) or
        ``"burst"`` (component 1 is the SF burst of :func:`burst_density`: release τ = ``tau1``, build-up
        τ_g = ``rise_ratio``·τ ≤ τ, delay ``delay`` ps; ``tau_rise_ps`` reports τ_g and ``peak_delay_ps``
        the burst maximum).
    n_components:
        1–3 exponential components.
    background, fit_shift:
        Fit a constant background / a fractional IRF shift.
    tau0_ps:
        Optional starting lifetimes.
    fixed:
        Parameters to hold fixed by name: ``tau1``, ``tau2``, ``tau_rise``, ``background``,
        ``shift`` (ps), ``photons1``...
    max_shift_ps:
        Bound of the IRF shift (default: 20 bins or 2 ns, whichever is smaller).
    sharpen_irf:
        Correct the IRF for the bin-integration smoothing counted twice by the model (subtract
        Δ²IRF/12); leave on unless the IRF is already a point-sampled density.
    mask:
        Boolean per bin, False = leave the bin out of the likelihood (e.g. bins clipped at the
        histogram ceiling, whose count is not the number of photons). The dof count only the bins used.

    With ``model="sf"`` the rise term (e^{−t/τ} − e^{−t/τ_D})/(τ − τ_D) is symmetric in τ and τ_D;
    the rise is the shorter of the two by construction (the fit's values are ordered after MIGRAD).
    """
    if model not in ("exp", "sf", "burst"):
        raise ValueError("model must be 'exp', 'sf' or 'burst'")
    if not 1 <= n_components <= 3:
        raise ValueError("n_components must be 1, 2 or 3")
    t = np.asarray(t_ps, dtype=float)
    n = np.ascontiguousarray(counts, dtype=float)
    ir = np.clip(np.asarray(irf, dtype=float), 0.0, None)
    if t.shape != n.shape or ir.shape != n.shape or n.ndim != 1:
        raise ValueError("t_ps, counts and irf must be 1-D arrays of equal length")
    if ir.sum() <= 0:
        raise ValueError("irf has no positive content")
    ir = ir / ir.sum()
    if sharpen_irf and ir.size >= 3:
        # The IRF histogram is the IRF density integrated over bins (one box smoothing) and the
        # model integrates again over the decay bins (a second box): remove the extra box variance
        # Δt²/12 to second order, m ≈ (1 − Δ²/12) — cuts the model error ~100× (docs/analysis.md).
        lap = np.zeros_like(ir)
        lap[1:-1] = ir[2:] - 2 * ir[1:-1] + ir[:-2]
        ir = ir - lap / 12.0
    ir = np.ascontiguousarray(ir)
    dt = float(np.median(np.diff(t)))
    if not np.allclose(np.diff(t), dt, rtol=1e-6, atol=1e-9 * abs(dt)):
        raise ValueError("t_ps must be uniformly spaced")
    sf = model == "sf"
    burst = model == "burst"
    mdl = _Model(ir, dt, n_components, sf, burst)
    names = mdl.names
    fixed = dict(fixed or {})

    # ---- starting values
    cir = np.cumsum(ir)
    pre = cir < 1e-3
    if background:
        if pre.sum() >= 5:
            bg0 = float(np.mean(n[pre]))
        else:
            bg0 = float(max(np.min(np.convolve(n, np.ones(9) / 9, mode="valid")), 0.0))
        bg0 = max(bg0, 1e-3)
    else:
        bg0 = 0.0
    signal = max(float(n.sum() - bg0 * n.size), 1.0)
    w = np.clip(n - bg0, 0, None)
    t_mean_irf = float(np.sum(t * ir))
    tau_m = float(np.sum(t * w) / max(w.sum(), 1.0)) - t_mean_irf
    window = float(t[-1] - t[0] + dt)
    tau_m = min(max(tau_m, 2 * dt), window / 3)
    if tau0_ps is None:
        tau0 = {1: [tau_m], 2: [tau_m * 0.3, tau_m * 1.5], 3: [tau_m * 0.1, tau_m * 0.5, tau_m * 2]}[
            n_components
        ]
    else:
        tau0 = list(tau0_ps)
    frac0 = {1: [1.0], 2: [0.4, 0.6], 3: [0.3, 0.3, 0.4]}[n_components]
    p0 = []
    for k in range(n_components):
        p0 += [signal * frac0[k], tau0[k]]
    if sf:
        p0.append(min(0.2 * tau0[0], 10 * dt))
    if burst:
        # peak of the data after the peak of the IRF: a first guess of the delay
        lag = float(t[int(np.argmax(n))] - t[int(np.argmax(ir))])
        p0 += [0.2, float(min(max(lag, 0.0), window / 4))]
    p0 += [bg0, 0.0]
    if max_shift_ps is None:
        max_shift_ps = min(20 * dt, 2000.0)

    nn = n  # contiguous float array for the compiled deviance
    sel: np.ndarray | None = None
    if mask is not None:
        sel = np.asarray(mask, dtype=bool)
        if sel.shape != n.shape:
            raise ValueError("mask must have one entry per bin")
        if sel.all():
            sel = None
        else:
            nn = np.ascontiguousarray(n[sel])

    grad: Callable[[np.ndarray], np.ndarray] | None = None
    ecost: _ExpCost | None = None
    if burst:
        def cost(p: np.ndarray) -> float:
            mu_ = mdl.evaluate(np.asarray(p))
            return _deviance(nn, mu_ if sel is None else np.ascontiguousarray(mu_[sel]))
    else:
        use = np.ones(n.size, dtype=np.bool_) if sel is None else np.ascontiguousarray(sel)
        ecost = _ExpCost(np.ascontiguousarray(mdl.irf, dtype=float), dt, int(n_components), bool(sf), n, use)
        cost = ecost.cost
        if _ANALYTIC_GRAD:
            grad = ecost.grad
        else:
            ecost = None

    def migrad(mm: Minuit) -> None:
        if ecost is not None:
            ecost.fused = False
        mm.migrad(ncall=10000)

    def hesse(mm: Minuit) -> None:
        if ecost is not None:
            ecost.fused = False
        mm.hesse()

    m = Minuit(cost, np.array(p0, dtype=float), grad=grad, name=names)
    m.errordef = Minuit.LEAST_SQUARES
    for k in range(n_components):
        m.limits[f"photons{k + 1}"] = (0.0, None)
        m.limits[f"tau{k + 1}"] = (0.05 * dt, 20 * window)
    if sf:
        m.limits["tau_rise"] = (0.01 * dt, 20 * window)
    if burst:
        m.limits["rise_ratio"] = (_RHO_MIN, 1.0)
        m.limits["delay"] = (0.0, window / 2)
    m.limits["background"] = (0.0, None)
    m.limits["shift"] = (-max_shift_ps, max_shift_ps)
    if not background:
        m.values["background"] = 0.0
        m.fixed["background"] = True
    if not fit_shift:
        m.fixed["shift"] = True
    for key, v in fixed.items():
        if key not in names:
            raise ValueError(f"unknown fixed parameter {key!r}; known: {names}")
        m.values[key] = float(v)
        m.fixed[key] = True
    # initial step sizes on the scale of each parameter help MIGRAD's first gradient
    for k in range(n_components):
        m.errors[f"photons{k + 1}"] = 0.02 * max(p0[2 * k], 1.0)
        m.errors[f"tau{k + 1}"] = 0.05 * p0[2 * k + 1]
    if sf:
        m.errors["tau_rise"] = 0.1 * max(p0[2 * n_components], dt)
    if burst:
        m.errors["rise_ratio"] = 0.05
        m.errors["delay"] = max(dt, 1.0)
    m.errors["background"] = 0.05 * max(bg0, 0.1)
    m.errors["shift"] = 0.2 * dt
    # with the analytic gradient strategy 0: strategy 1 would check that gradient numerically and end
    # MIGRAD with a HESSE of its own, both redundant with the HESSE below (iminuit: "faster" with grad)
    strategy = 1 if grad is None else 0
    m.strategy = strategy
    migrad(m)
    for _ in range(2):
        if m.valid:
            break
        m.strategy = 2
        migrad(m)
    try:
        hesse(m)
        if not m.valid:  # HESSE's better curvature can move the EDM above the goal: descend again
            migrad(m)
            hesse(m)
    except RuntimeError:  # pragma: no cover
        log.warning("fit_decay: HESSE failed")

    # likelihood-ratio test of the rise against the same model with the rise pinned at its lower bound;
    # if the pinned fit is better, the free fit was stuck: restart it from there
    rise_dd_pre = None
    rise_pinned = False
    pinned = {"tau_rise": 0.01 * dt} if sf else ({"rise_ratio": _RHO_MIN, "delay": 0.0} if burst else {})
    if pinned and not set(pinned) & set(fixed):
        m0 = Minuit(cost, np.array(m.values, dtype=float), grad=grad, name=names)
        m0.errordef = Minuit.LEAST_SQUARES
        for nm in names:
            m0.limits[nm] = m.limits[nm]
            m0.fixed[nm] = m.fixed[nm]
            m0.errors[nm] = max(float(m.errors[nm]), 1e-6)
        for nm, v in pinned.items():
            m0.values[nm] = v
            m0.fixed[nm] = True
        m0.strategy = strategy
        migrad(m0)
        if m0.fval < m.fval - 1e-3:
            for nm in names:
                m.values[nm] = m0.values[nm]
            if sf:
                m.values["tau_rise"] = 0.1 * dt
            else:
                m.values["rise_ratio"] = 0.05
            migrad(m)
            hesse(m)
        rise_dd_pre = float(max(m0.fval - m.fval, 0.0))
        if m0.fval < m.fval - 1e-3:  # pragma: no cover - defensive
            # the restarted free fit ends a hair above the pinned one: numerically the same minimum (no rise);
            # a warning only when the gap is a deviance unit or more (1σ), i.e. the minimiser really failed
            (log.warning if m.fval - m0.fval >= 1.0 else log.debug)(
                "fit_decay: rise fit above the pinned fit by %.2f", m.fval - m0.fval)
        if not m.valid and m0.valid and m.fval > m0.fval - 1.0:
            # the free fit ran into the bound where the rise vanishes and cannot meet the EDM goal there (a
            # minimum on a limit); the rise it finds is worth less than one deviance unit (1σ): the pinned
            # fit is that minimum, valid, with the rise unresolved (its value the bound, its error NaN)
            m, rise_pinned = m0, True

    if not m.valid:   # after the restart from the pinned rise, which often settles a stuck free fit
        log.warning("fit_decay: minimisation did not converge (EDM %.3g, deviance %.1f)", m.fmin.edm, m.fval)

    p = np.array(m.values, dtype=float)
    free = [k for k in names if not m.fixed[k]]
    cov_full = np.zeros((len(names), len(names)))
    if m.covariance is not None:
        cov_full = np.array(m.covariance, dtype=float)
    if sf and p[2 * n_components] > p[1]:
        # the rise term is symmetric in (τ, τ_D): the same model with the two times exchanged, so
        # the rise is the shorter one by construction
        i, j = 1, 2 * n_components
        p[[i, j]] = p[[j, i]]
        cov_full[[i, j], :] = cov_full[[j, i], :]
        cov_full[:, [i, j]] = cov_full[:, [j, i]]
    comps_arr = np.zeros((n_components, n.size))
    mu = mdl.evaluate(p, comps_arr)
    dev = float(m.fval)
    dof = max((n.size if sel is None else int(sel.sum())) - len(free), 1)

    # ---- components (sorted by lifetime; the SF component stays first)
    idx = list(range(n_components))
    rest = idx[1:] if (sf or burst) else idx
    rest = sorted(rest, key=lambda k: p[2 * k + 1])
    order = ([0] + rest) if (sf or burst) else rest
    tot = sum(p[2 * k] for k in range(n_components)) or 1.0

    def err(grad: np.ndarray) -> float:
        v = float(grad @ cov_full @ grad)
        return math.sqrt(v) if v >= 0 else math.nan

    def unit(i: int) -> np.ndarray:
        g = np.zeros(len(names))
        g[i] = 1.0
        return g

    grise = np.zeros(len(names))
    if burst:  # τ_g = ρ τ
        grise[1], grise[2 * n_components] = p[2 * n_components], p[1]
    comps = []
    for k in order:
        ni, ti = 2 * k, 2 * k + 1
        gfrac = np.zeros(len(names))
        for j in range(n_components):
            gfrac[2 * j] = -p[ni] / tot**2
        gfrac[ni] += 1.0 / tot
        gamp = np.zeros(len(names))
        gamp[ni] = dt / p[ti]
        gamp[ti] = -p[ni] * dt / p[ti] ** 2
        comps.append(
            DecayComponent(
                tau_ps=Value(p[ti], err(unit(ti))),
                photons=Value(p[ni], err(unit(ni))),
                amplitude=Value(p[ni] * dt / p[ti], err(gamp)),
                intensity_fraction=Value(p[ni] / tot, err(gfrac)),
                tau_rise_ps=(Value(p[2 * n_components], math.nan if rise_pinned else err(unit(2 * n_components)))
                             if sf
                             else Value(p[2 * n_components] * p[1], err(grise)))
                if ((sf or burst) and k == 0)
                else None,
            )
        )

    # ---- effective lifetimes with numerical error propagation
    def harmonic(pp: np.ndarray) -> float:
        tt = sum(pp[2 * k] for k in range(n_components))
        return 1.0 / sum((pp[2 * k] / tt) / pp[2 * k + 1] for k in range(n_components))

    def one_over_e(pp: np.ndarray) -> float:
        return _one_over_e_time(pp, n_components, sf, burst)

    def with_err(fn: Callable[[np.ndarray], float]) -> Value:
        v0 = fn(p)
        g = np.zeros(len(names))
        for i, nm in enumerate(names):
            if nm not in free:
                continue
            h = 1e-4 * max(abs(p[i]), 1e-3)
            pp = p.copy()
            pp[i] += h
            pm = p.copy()
            pm[i] -= h
            g[i] = (fn(pp) - fn(pm)) / (2 * h)
        return Value(v0, err(g))

    tau_h = with_err(harmonic)
    tau_1e = with_err(one_over_e)
    rise = peak = delay = None
    rise_dd = None
    if sf:
        ri = 2 * n_components
        rise = Value(p[ri], math.nan if rise_pinned else err(unit(ri)))
        rise_dd = rise_dd_pre

        def peak_delay(pp: np.ndarray) -> float:
            ta, tr = pp[1], pp[2 * n_components]
            if abs(ta - tr) < 1e-9 * ta:
                return ta
            return ta * tr * math.log(ta / tr) / (ta - tr)

        peak = with_err(peak_delay)
    if burst:
        ri = 2 * n_components
        rise = Value(p[ri] * p[1], err(grise))
        rise_dd = rise_dd_pre
        peak = with_err(lambda pp: burst_peak_delay(pp[1], pp[ri] * pp[1], pp[ri + 1]))
        delay = Value(p[ri + 1], err(unit(ri + 1)))

    return DecayFit(
        model_name=model,
        components=tuple(comps),
        background=Value(p[-2], err(unit(len(names) - 2))),
        shift_ps=Value(p[-1], err(unit(len(names) - 1))),
        tau_eff_1e_ps=tau_1e,
        tau_eff_harmonic_ps=tau_h,
        tau_rise_ps=rise,
        peak_delay_ps=peak,
        rise_delta_deviance=rise_dd,
        rise_dof=1 if sf else (2 if burst else None),
        delay_ps=delay,
        deviance=dev,
        dof=dof,
        reduced_deviance=dev / dof,
        converged=bool(m.valid),
        t_ps=t,
        counts=n,
        model=mu,
        irf=ir,
    )


def _one_over_e_time(p: np.ndarray, nc: int, sf: bool, burst: bool = False) -> float:
    """Time at which the IRF-free decay drops to 1/e of its maximum."""
    if nc == 1 and not sf and not burst:
        return float(p[1])  # a single exponential: its maximum at 0, 1/e of it at τ (exactly)
    taus = [float(p[2 * k + 1]) for k in range(nc)]
    amps = [float(p[2 * k]) for k in range(nc)]
    rise = float(p[2 * nc]) if sf else None
    if burst:
        bt, bg, bd = taus[0], float(p[2 * nc]) * taus[0], float(p[2 * nc + 1])
        scale_b = 1.0 / _burst_area(bt, bg, bd)
        rise = bg

    def density(x: Any, exp: Callable[[Any], Any], maximum: Callable[[Any, Any], Any]) -> Any:
        # the IRF-free decay at x: NumPy functions over the 400-point peak search below, plain floats (math)
        # for the root finder (~20 calls in each of the ~13 solves per fit in with_err; through NumPy
        # scalars they were a third of a 2-exponential fit's CPU)
        s: Any = 0.0
        for k in range(nc):
            if k == 0 and burst:
                xx = x - bd
                a_, b_ = -xx / (2 * bg), xx / (2 * bt)
                mm = maximum(a_, b_)
                s = s + amps[0] * scale_b * exp(-2 * mm) / (exp(a_ - mm) + exp(b_ - mm)) ** 2
            elif k == 0 and rise is not None:
                r = rise if abs(rise - taus[0]) > 1e-9 * taus[0] else taus[0] * (1 - 1e-6)
                s = s + amps[0] * (exp(-x / taus[0]) - exp(-x / r)) / (taus[0] - r)
            else:
                s = s + amps[k] * exp(-x / taus[k]) / taus[k]
        return s

    def f(tt: np.ndarray) -> np.ndarray:
        return np.asarray(density(np.asarray(tt, dtype=float), np.exp, np.maximum))

    def fs(x: float) -> float:
        return float(density(float(x), math.exp, max))

    tmax = 50 * max(taus) + (p[2 * nc + 1] if burst else 0.0)
    t0 = 0.0
    if rise is not None:
        grid = np.linspace(0, 5 * max(taus[0], rise) + (p[2 * nc + 1] if burst else 0.0), 400)
        t0 = float(grid[int(np.argmax(f(grid)))])
    peak = fs(t0)
    if peak <= 0:
        return math.nan
    target = peak / math.e
    if rise is None and min(amps) >= 0:
        # Σ a_k e^{−t/τ_k}/τ_k − target is decreasing and convex: Newton from t = 0 rises monotonically to
        # the root (~6 steps, to rounding; brentq's ~18 calls of f were most of with_err's CPU)
        x = 0.0
        for _ in range(100):
            fx = -target
            dfx = 0.0
            for a_k, t_k in zip(amps, taus, strict=True):
                e_k = a_k * math.exp(-x / t_k) / t_k
                fx += e_k
                dfx -= e_k / t_k
            if dfx >= 0 or fx <= 0:
                break
            step = fx / dfx
            x -= step
            if -step <= 1e-13 * x or x > tmax:
                break
        if 0 < x <= tmax:
            return x
    try:
        from scipy.optimize import brentq  # here: scipy.optimize costs ≈ 0.5 s of every sflab start

        return brentq(lambda x: fs(x) - target, t0, tmax, xtol=1e-9 * tmax)
    except ValueError:
        return math.nan


# ----------------------------------------------------------------------------- ⟨N⟩ (physics.md §4.3)
@dataclass(frozen=True)
class OccupancyEstimate(ResultMixin):
    """Mean exciton occupancy ⟨N⟩ inferred from the fast/slow (XX/X) amplitude ratio."""

    mean_occupancy: Value
    ratio: Value
    c: float
    phi_ar: float
    xi: float


def _poisson_p1_p2(nbar: float) -> tuple[float, float]:
    e = math.exp(-nbar)
    return nbar * e, -math.expm1(-nbar) - nbar * e


def amplitude_ratio(
    nbar: float, *, phi_ar: float = 0.9, xi: float = 0.5, kxx_over_kx: float = 4.0, c: float | None = None
) -> float:
    """R = A/B (fast XX amplitude over slow X amplitude) for mean occupancy ⟨N⟩ (physics.md §4.3)."""
    if c is None:
        c = (1.0 - phi_ar) + xi * phi_ar
    p1, p2 = _poisson_p1_p2(nbar)
    return (kxx_over_kx - c) * p2 / (p1 + c * p2)


def mean_occupancy(
    ratio: float,
    ratio_err: float = math.nan,
    *,
    phi_ar: float = 0.9,
    xi: float = 0.5,
    kxx_over_kx: float = 4.0,
    c: float | None = None,
) -> OccupancyEstimate:
    """Invert the Poisson amplitude-ratio relation R(⟨N⟩) of physics.md §4.3 for ⟨N⟩.

    ``ratio`` is A/B, the amplitude of the fast (biexciton) component over that of the slow
    (exciton) component from an IRF-convolved fit.  ``c = Φ_XX + ξ Φ_AR`` (default from
    ``phi_ar`` and ``xi`` with Φ_XX = 1 − Φ_AR).  The error is propagated through dR/d⟨N⟩.
    """
    if c is None:
        c = (1.0 - phi_ar) + xi * phi_ar
    rmax = amplitude_ratio(50.0, c=c, kxx_over_kx=kxx_over_kx)
    if not 0 < ratio < rmax:
        raise ValueError(f"ratio {ratio} outside the invertible range (0, {rmax:.3g})")
    from scipy.optimize import brentq

    nb = brentq(lambda x: amplitude_ratio(x, c=c, kxx_over_kx=kxx_over_kx) - ratio, 1e-9, 50.0, xtol=1e-12)
    h = 1e-5 * max(nb, 1e-3)
    d = (
        amplitude_ratio(nb + h, c=c, kxx_over_kx=kxx_over_kx)
        - amplitude_ratio(max(nb - h, 1e-12), c=c, kxx_over_kx=kxx_over_kx)
    ) / (2 * h)
    e = ratio_err / d if np.isfinite(ratio_err) and d > 0 else math.nan
    return OccupancyEstimate(
        mean_occupancy=Value(nb, e), ratio=Value(ratio, ratio_err), c=c, phi_ar=phi_ar, xi=xi
    )


def warm_kernels() -> None:
    """Compile this module's numba kernels into numba's on-disk cache (``make venv`` calls it once, so the
    first decay fit of every later process loads them instead of compiling them for ~5 s). The "exp" fit
    compiles the cost kernels with and without the analytic gradient (MIGRAD asks for both)."""
    t = np.arange(256) * 16.0
    irf = np.exp(-0.5 * ((t - 400.0) / 40.0) ** 2)
    counts = np.random.default_rng(0).poisson(1e3 * convolve_burst(irf, 16.0, 300.0, 60.0, 100.0) + 2.0)
    for model in ("exp", "burst"):
        fit_decay(t, counts.astype(float), irf, model=model)
