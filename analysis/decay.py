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

import numba
import numpy as np
from iminuit import Minuit

from ._common import ResultMixin, Value

__all__ = [
    "DecayComponent",
    "DecayFit",
    "fit_decay",
    "convolve_exponential",
    "shift_irf",
    "OccupancyEstimate",
    "mean_occupancy",
    "amplitude_ratio",
]

log = logging.getLogger(__name__)


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


@numba.njit(cache=True)
def _deviance(n: np.ndarray, mu: np.ndarray) -> float:  # pragma: no cover
    d = 0.0
    for i in range(n.shape[0]):
        m = mu[i]
        if m < 1e-300:
            m = 1e-300
        c = n[i]
        if c > 0:
            d += m - c + c * math.log(c / m)
        else:
            d += m
    return 2.0 * d


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
    _array_fields = ("t_ps", "counts", "model", "irf")

    @property
    def taus_ps(self) -> list[float]:
        return [c.tau_ps.value for c in self.components]

    @property
    def deviance_residuals(self) -> np.ndarray:
        """Signed square-root deviance residuals (≈ N(0, 1) for a good fit)."""
        n, m = self.counts, np.maximum(self.model, 1e-300)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(n > 0, n * np.log(n / m), 0.0)
        d = np.maximum(2 * (m - n + t), 0.0)
        return np.sign(n - m) * np.sqrt(d)


# ----------------------------------------------------------------------------- fit
class _Model:
    def __init__(self, irf: np.ndarray, dt: float, n_comp: int, sf: bool) -> None:
        self.irf = irf
        self.dt = dt
        self.n_comp = n_comp
        self.sf = sf
        self.shifted = np.empty_like(irf)
        self.tmp = np.empty_like(irf)
        self.tmp2 = np.empty_like(irf)
        self.names: list[str] = []
        for k in range(n_comp):
            self.names += [f"photons{k + 1}", f"tau{k + 1}"]
        if sf:
            self.names.append("tau_rise")
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
            self.component(k, p[2 * k + 1], rise if k == 0 else None, self.tmp)
            if comps is not None:
                comps[k] = p[2 * k] * self.tmp
            mu += p[2 * k] * self.tmp
        return mu


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
        ``"exp"`` (sum of exponentials) or ``"sf"`` (component 1 has a delayed rise τ_D).
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
    if model not in ("exp", "sf"):
        raise ValueError("model must be 'exp' or 'sf'")
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
    mdl = _Model(ir, dt, n_components, sf)
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

    def cost(*p: float) -> float:
        mu_ = mdl.evaluate(np.asarray(p))
        return _deviance(nn, mu_ if sel is None else np.ascontiguousarray(mu_[sel]))

    m = Minuit(cost, *p0, name=names)
    m.errordef = Minuit.LEAST_SQUARES
    for k in range(n_components):
        m.limits[f"photons{k + 1}"] = (0.0, None)
        m.limits[f"tau{k + 1}"] = (0.05 * dt, 20 * window)
    if sf:
        m.limits["tau_rise"] = (0.01 * dt, 20 * window)
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
    m.errors["background"] = 0.05 * max(bg0, 0.1)
    m.errors["shift"] = 0.2 * dt
    m.strategy = 1
    m.migrad(ncall=10000)
    for _ in range(2):
        if m.valid:
            break
        m.strategy = 2
        m.migrad(ncall=10000)
    try:
        m.hesse()
    except RuntimeError:  # pragma: no cover
        log.warning("fit_decay: HESSE failed")
    if not m.valid:
        log.warning("fit_decay: minimisation did not converge (EDM %.3g, deviance %.1f)", m.fmin.edm, m.fval)

    # likelihood-ratio test of the rise against the same model with the rise pinned at its lower bound;
    # if the pinned fit is better, the free fit was stuck: restart it from there
    rise_dd_pre = None
    if sf and "tau_rise" not in fixed:
        m0 = Minuit(cost, *np.array(m.values, dtype=float), name=names)
        m0.errordef = Minuit.LEAST_SQUARES
        for nm in names:
            m0.limits[nm] = m.limits[nm]
            m0.fixed[nm] = m.fixed[nm]
            m0.errors[nm] = max(float(m.errors[nm]), 1e-6)
        m0.values["tau_rise"] = 0.01 * dt
        m0.fixed["tau_rise"] = True
        m0.migrad(ncall=10000)
        if m0.fval < m.fval - 1e-3:
            for nm in names:
                m.values[nm] = m0.values[nm]
            m.values["tau_rise"] = 0.1 * dt
            m.migrad(ncall=10000)
            m.hesse()
        rise_dd_pre = float(max(m0.fval - m.fval, 0.0))
        if m0.fval < m.fval - 1e-3:  # pragma: no cover - defensive
            log.warning("fit_decay: rise fit above the pinned fit by %.2f", m.fval - m0.fval)

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
    rest = idx[1:] if sf else idx
    rest = sorted(rest, key=lambda k: p[2 * k + 1])
    order = ([0] + rest) if sf else rest
    tot = sum(p[2 * k] for k in range(n_components)) or 1.0

    def err(grad: np.ndarray) -> float:
        v = float(grad @ cov_full @ grad)
        return math.sqrt(v) if v >= 0 else math.nan

    def unit(i: int) -> np.ndarray:
        g = np.zeros(len(names))
        g[i] = 1.0
        return g

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
                tau_rise_ps=Value(p[2 * n_components], err(unit(2 * n_components)))
                if (sf and k == 0)
                else None,
            )
        )

    # ---- effective lifetimes with numerical error propagation
    def harmonic(pp: np.ndarray) -> float:
        tt = sum(pp[2 * k] for k in range(n_components))
        return 1.0 / sum((pp[2 * k] / tt) / pp[2 * k + 1] for k in range(n_components))

    def one_over_e(pp: np.ndarray) -> float:
        return _one_over_e_time(pp, n_components, sf)

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
    rise = peak = None
    rise_dd = None
    if sf:
        ri = 2 * n_components
        rise = Value(p[ri], err(unit(ri)))
        rise_dd = rise_dd_pre

        def peak_delay(pp: np.ndarray) -> float:
            ta, tr = pp[1], pp[2 * n_components]
            if abs(ta - tr) < 1e-9 * ta:
                return ta
            return ta * tr * math.log(ta / tr) / (ta - tr)

        peak = with_err(peak_delay)

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
        deviance=dev,
        dof=dof,
        reduced_deviance=dev / dof,
        converged=bool(m.valid),
        t_ps=t,
        counts=n,
        model=mu,
        irf=ir,
    )


def _one_over_e_time(p: np.ndarray, nc: int, sf: bool) -> float:
    """Time at which the IRF-free decay drops to 1/e of its maximum."""
    taus = [p[2 * k + 1] for k in range(nc)]
    amps = [p[2 * k] for k in range(nc)]
    rise = p[2 * nc] if sf else None

    def f(tt: float) -> float:
        s = 0.0
        for k in range(nc):
            if k == 0 and rise is not None:
                r = rise if abs(rise - taus[0]) > 1e-9 * taus[0] else taus[0] * (1 - 1e-6)
                s += amps[0] * (math.exp(-tt / taus[0]) - math.exp(-tt / r)) / (taus[0] - r)
            else:
                s += amps[k] * math.exp(-tt / taus[k]) / taus[k]
        return s

    tmax = 50 * max(taus)
    t0 = 0.0
    if rise is not None:
        grid = np.linspace(0, 5 * max(taus[0], rise), 400)
        vals = [f(x) for x in grid]
        t0 = float(grid[int(np.argmax(vals))])
    peak = f(t0)
    if peak <= 0:
        return math.nan
    target = peak / math.e
    try:
        from scipy.optimize import brentq  # here: scipy.optimize costs ≈ 0.5 s of every sflab start

        return brentq(lambda x: f(x) - target, t0, tmax, xtol=1e-9 * tmax) - (0.0 if rise is None else 0.0)
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
