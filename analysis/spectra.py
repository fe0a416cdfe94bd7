"""Spectral decomposition into uncoupled and superfluorescent (SF) bands.

``decompose`` fits per-pixel counts with a sum of bands plus a constant background by Poisson
maximum likelihood (iminuit, deviance cost).  Each band is a Gaussian integrated exactly over the
pixel edges, optionally with an exponential tail to low energy (``shape="tail"``, an exponentially
modified Gaussian; this is the usual asymmetry of perovskite emission from phonon sidebands and
size distribution).  Bands are parameterised so that they cannot swap: the uncoupled band has a
free centre and every lower band is placed at ``center_unc - shift`` with ``shift > 0``.  The SF band
is the lowest-energy band.

Unit helpers convert wavelength and energy axes with the Jacobian ``|dλ/dE| = λ²/hc``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numba
import numpy as np
from iminuit import Minuit
from scipy.special import erf, erfc, erfcx

from ._common import ResultMixin, Value, deviance_residuals

__all__ = [
    "HC_EV_NM",
    "Band",
    "SpectralFit",
    "SeriesFit",
    "auto_rebin",
    "decompose",
    "decompose_series",
    "nm_to_ev",
    "ev_to_nm",
    "wavelength_to_energy",
    "energy_to_wavelength",
    "jacobian_nm_per_ev",
]

log = logging.getLogger(__name__)

HC_EV_NM = 1239.841984  # h·c in eV·nm
_FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


# ----------------------------------------------------------------------------- units
def nm_to_ev(wavelength_nm: np.ndarray | float) -> np.ndarray | float:
    """Photon energy in eV for a wavelength in nm."""
    return HC_EV_NM / np.asarray(wavelength_nm, dtype=float)


def ev_to_nm(energy_ev: np.ndarray | float) -> np.ndarray | float:
    """Wavelength in nm for a photon energy in eV."""
    return HC_EV_NM / np.asarray(energy_ev, dtype=float)


def jacobian_nm_per_ev(energy_ev: np.ndarray | float) -> np.ndarray | float:
    """|dλ/dE| in nm/eV at the given energy (= λ²/hc)."""
    lam = ev_to_nm(energy_ev)
    return lam**2 / HC_EV_NM


def wavelength_to_energy(
    wavelength_nm: np.ndarray, spectrum: np.ndarray | None = None, *, density: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Convert a wavelength axis (and optionally a spectrum on it) to an ascending energy axis.

    ``density=True``: the spectrum is a spectral density per nm and is returned per eV, multiplied by
    the Jacobian λ²/hc so that integrals are conserved.  ``density=False``: per-pixel counts, which
    are only reordered (a pixel holds the same photons whatever its axis).
    """
    wl = np.asarray(wavelength_nm, dtype=float)
    e = HC_EV_NM / wl
    order = np.argsort(e)
    if spectrum is None:
        return e[order], None
    s = np.asarray(spectrum, dtype=float)
    if density:
        s = s * wl**2 / HC_EV_NM
    return e[order], s[order]


def energy_to_wavelength(
    energy_ev: np.ndarray, spectrum: np.ndarray | None = None, *, density: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Inverse of :func:`wavelength_to_energy` (density per eV → per nm with hc/λ²)."""
    e = np.asarray(energy_ev, dtype=float)
    wl = HC_EV_NM / e
    order = np.argsort(wl)
    if spectrum is None:
        return wl[order], None
    s = np.asarray(spectrum, dtype=float)
    if density:
        s = s * HC_EV_NM / wl**2
    return wl[order], s[order]


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Band(ResultMixin):
    """One emission band: centre (Gaussian mean, eV), FWHM of the Gaussian core (eV), integrated
    counts, fraction of all band counts, and the low-energy tail length (eV, 0 for a pure Gaussian)."""

    role: str
    center_eV: Value
    fwhm_eV: Value
    area: Value
    fraction: Value
    tail_eV: Value = Value(0.0, 0.0)
    #: Lorentzian share of a Voigt-like band (``shape="voigt"``; 0 otherwise)
    eta: Value = Value(0.0, 0.0)
    #: energy of the band's maximum (eV): the centre for a symmetric band, below it for a low-energy tail —
    #: the "peak" whose position and shift the papers quote ([000]: a peak at 2.33 eV, ~60 meV below 2.39 eV)
    peak_eV: Value | None = None

    @property
    def peak(self) -> Value:
        return self.center_eV if self.peak_eV is None else self.peak_eV


@dataclass(frozen=True)
class SpectralFit(ResultMixin):
    """Result of :func:`decompose`.  ``bands`` are ordered from low to high energy; ``sf_fraction``
    is the fraction of band counts in the lowest band (0 when ``n_bands == 1``) and ``shift_meV``
    the distance of the SF band's peak below the uncoupled band's (:attr:`Band.peak_eV`; for bands
    without a tail the distance of the centres)."""

    bands: tuple[Band, ...]
    sf_fraction: Value
    shift_meV: Value
    background: Value
    deviance: float
    dof: int
    reduced_deviance: float
    converged: bool
    n_bands: int
    shape: str
    energy_eV: np.ndarray = field(repr=False)
    counts: np.ndarray = field(repr=False)
    model: np.ndarray = field(repr=False)
    components: np.ndarray = field(repr=False)
    #: "deviance" (Poisson) or "chi2" (Pearson χ² with variance model + read_noise²)
    statistic: str = "deviance"
    #: the variance floor of the χ² statistic per bin (rebin × read_noise², at least rebin × 1 count²)
    var_floor: float = 1.0
    #: pixels per fit bin (``energy_eV``, ``counts``, ``model`` and ``components`` are per bin; divide by this
    #: for counts per pixel)
    rebin: int = 1
    _array_fields = ("energy_eV", "counts", "model", "components")

    @property
    def residuals(self) -> np.ndarray:
        """Per-bin residuals of the statistic the fit minimised (their squares sum to ``deviance``):
        signed square-root Poisson deviance terms, or Pearson (n − μ)/√(μ + var_floor) for "chi2"."""
        n, mu = self.counts, self.model
        if self.statistic == "chi2":
            return (n - mu) / np.sqrt(np.maximum(mu, 0.0) + self.var_floor)
        return deviance_residuals(n, np.maximum(mu, 1e-12))  # the floor _model_eval uses

    def band(self, role: str) -> Band | None:
        for b in self.bands:
            if b.role == role:
                return b
        return None

    def params(self) -> dict[str, float]:
        """The fitted parameters by :func:`decompose`'s names (a ``start`` for a richer fit, or ``fixed``
        shapes for another spectrum)."""
        out = {"background": float(self.background.value)}
        unc = self.unc
        for b in self.bands:
            out[f"fwhm_{b.role}"] = float(b.fwhm_eV.value)
            out[f"area_{b.role}"] = float(b.area.value)
            if b.role != "unc":
                out[f"shift_{b.role}"] = float(unc.center_eV.value - b.center_eV.value)
            if self.shape != "gauss":
                out[f"tail_{b.role}"] = float(b.tail_eV.value)
            if self.shape == "voigt":
                out[f"eta_{b.role}"] = float(b.eta.value)
        out["center_unc"] = float(unc.center_eV.value)
        return out

    @property
    def sf(self) -> Band | None:
        return self.band("sf") if self.n_bands > 1 else None

    @property
    def unc(self) -> Band:
        b = self.band("unc")
        assert b is not None
        return b


# ----------------------------------------------------------------------------- model
def _edges(x: np.ndarray) -> np.ndarray:
    mid = 0.5 * (x[1:] + x[:-1])
    first = x[0] - (mid[0] - x[0])
    last = x[-1] + (x[-1] - mid[-1])
    return np.concatenate(([first], mid, [last]))


def _band_cdf(edges: np.ndarray, center: float, fwhm: float, tail: float) -> np.ndarray:
    """CDF of a unit-area band at the pixel edges (Gaussian, or Gaussian convolved with a one-sided
    exponential of length ``tail`` extending to lower energy)."""
    s = max(fwhm * _FWHM_TO_SIGMA, 1e-9)
    z = (edges - center) / s
    g = 0.5 * (1.0 + erf(z / math.sqrt(2.0)))
    if tail <= 1e-9:
        return g
    # X = G − Y, Y ~ Exp(tail): F(x) = Φ(z) + exp(zλ + λ²/2)·Φ(−z − λ), λ = σ/τ.
    # For b = z + λ > 0 this is 0.5·exp(−z²/2)·erfcx(b/√2) (no overflow); otherwise the direct form.
    lam = s / tail
    b = z + lam
    with np.errstate(over="ignore", under="ignore"):
        pos = 0.5 * np.exp(-0.5 * z * z) * erfcx(np.maximum(b, 0.0) / math.sqrt(2.0))
        neg = (
            0.5
            * np.exp(np.minimum(z * lam + 0.5 * lam * lam, 700.0))
            * erfc(np.minimum(b, 0.0) / math.sqrt(2.0))
        )
    corr = np.where(b > 0, pos, neg)
    return g + corr


def _band_counts(edges: np.ndarray, center: float, fwhm: float, tail: float, eta: float = 0.0) -> np.ndarray:
    c = _band_cdf(edges, center, fwhm, tail)
    if eta > 0.0:  # Voigt-like wings: a Lorentzian share of the band (same centre, HWHM = FWHM/2)
        lor = 0.5 + np.arctan((edges - center) / max(0.5 * fwhm, 1e-9)) / math.pi
        c = (1.0 - eta) * c + eta * lor
    d = np.diff(c)
    return np.abs(d)


@dataclass
class _Spec:
    roles: list[str]
    names: list[str]
    tail: bool
    voigt: bool = False


def _param_names(n_bands: int, shape: str) -> _Spec:
    roles = {1: ["unc"], 2: ["sf", "unc"], 3: ["sf", "mid", "unc"]}[n_bands]
    names = ["center_unc", "fwhm_unc", "area_unc"]
    for r in roles[:-1]:
        names += [f"shift_{r}", f"fwhm_{r}", f"area_{r}"]
    tail = shape in ("tail", "voigt")
    voigt = shape == "voigt"
    if tail:
        names += [f"tail_{r}" for r in roles]
    if voigt:
        names += [f"eta_{r}" for r in roles]
    names.append("background")
    return _Spec(roles=roles, names=names, tail=tail, voigt=voigt)


def _components(p: Mapping[str, float], spec: _Spec, edges: np.ndarray) -> np.ndarray:
    comps = []
    cu = p["center_unc"]
    for r in spec.roles:
        c = cu if r == "unc" else cu - p[f"shift_{r}"]
        t = p[f"tail_{r}"] if spec.tail else 0.0
        eta = p[f"eta_{r}"] if spec.voigt else 0.0
        comps.append(p[f"area_{r}"] * _band_counts(edges, c, p[f"fwhm_{r}"], t, eta))
    return np.array(comps)


# ----------------------------------------------------------------------------- compiled model
_SQRT2 = math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)
_INV_SQRTPI = 1.0 / math.sqrt(math.pi)
#: |z| beyond which a band's Gaussian CDF is 0 or 1 to double precision (Φ(−9) ≈ 1e-19): a numerical cut-off
_Z_FAR = 9.0


@numba.njit(cache=True)
def _erfcx_pos(x: float) -> float:  # pragma: no cover - compiled
    """exp(x²)·erfc(x) for x ≥ 0 (the scaled complementary error function, without overflow)."""
    if x < 25.0:
        return math.exp(x * x) * math.erfc(x)
    r = 1.0 / (2.0 * x * x)  # asymptotic series, relative error < 1e-10 here
    return _INV_SQRTPI / x * (1.0 - r + 3.0 * r * r - 15.0 * r * r * r + 105.0 * r * r * r * r)


@numba.njit(cache=True)
def _model_eval(p: np.ndarray, edges: np.ndarray, n: np.ndarray, lay: np.ndarray, use_chi2: bool,
                var_floor: float, want_grad: bool, comps: np.ndarray, grad: np.ndarray) -> float:  # pragma: no cover
    """The band model at the pixels (``comps``, one row per band), its cost (Poisson deviance or the
    Pearson χ² with variance model + read_noise²) and, when ``want_grad``, the cost's gradient.

    ``lay`` holds per band the parameter indices of (shift, fwhm, area, tail, eta), −1 where absent;
    p[0] is the uncoupled centre and p[-1] the background."""
    nb = lay.shape[0]
    m1 = edges.size
    m = m1 - 1
    # per band and edge: CDF and its derivatives by centre, fwhm, tail, eta
    D = np.zeros((nb, 5, m1))
    for k in range(nb):
        ish, ifw, itl, iet = lay[k, 0], lay[k, 1], lay[k, 3], lay[k, 4]
        c = p[0] - (p[ish] if ish >= 0 else 0.0)
        fw = p[ifw]
        s = max(fw * _FWHM_TO_SIGMA, 1e-9)
        tau = p[itl] if itl >= 0 else 0.0
        eta = p[iet] if iet >= 0 else 0.0
        h = max(0.5 * fw, 1e-9)
        for j in range(m1):
            u = 0.0
            L = 0.0
            z = (edges[j] - c) / s
            dFdlam = 0.0
            dFdtau = 0.0
            dFds = 0.0
            lam = s / tau if tau > 1e-9 else 0.0
            far = z > _Z_FAR or (z < -_Z_FAR and (tau <= 1e-9 or z + lam > 0.0))
            if far:
                # far from the band (and, below it, beyond its tail): the CDF is 0 or 1 to < 1e-17 and its
                # derivatives vanish; no special functions (most pixels of a wide window)
                F = 1.0 if z > 0.0 else 0.0
                ez = dFdz = 0.0
            else:
                ez = math.exp(-0.5 * z * z)
                F = 0.5 * (1.0 + math.erf(z / _SQRT2))
                dFdz = ez * _INV_SQRT2PI
            if tau > 1e-9 and not far:
                lam = s / tau
                b = z + lam
                if b > 0.0:
                    cc = 0.5 * ez * _erfcx_pos(b / _SQRT2)
                else:
                    cc = 0.5 * math.exp(min(z * lam + 0.5 * lam * lam, 700.0)) * math.erfc(b / _SQRT2)
                F += cc
                dFdlam = b * cc - ez * _INV_SQRT2PI
                dFdz = lam * cc
                dFds = dFdlam / tau
                dFdtau = -dFdlam * lam / tau
            if iet >= 0:
                u = (edges[j] - c) / h
                L = 0.5 + math.atan(u) / math.pi
                D[k, 0, j] = (1.0 - eta) * F + eta * L
            else:
                D[k, 0, j] = F
            if not want_grad:
                continue
            dFdc = -dFdz / s
            dFdfw = (dFdz * (-z / s) + dFds) * _FWHM_TO_SIGMA
            if iet >= 0:
                dLdu = 1.0 / (math.pi * (1.0 + u * u))
                D[k, 1, j] = (1.0 - eta) * dFdc - eta * dLdu / h
                D[k, 2, j] = (1.0 - eta) * dFdfw - eta * dLdu * u / h * 0.5
                D[k, 3, j] = (1.0 - eta) * dFdtau
                D[k, 4, j] = L - F
            else:
                D[k, 1, j] = dFdc
                D[k, 2, j] = dFdfw
                D[k, 3, j] = dFdtau
    bg = p[p.size - 1]
    mu = np.full(m, bg)
    for k in range(nb):
        a = p[lay[k, 2]]
        for i in range(m):
            v = a * abs(D[k, 0, i + 1] - D[k, 0, i])
            comps[k, i] = v
            mu[i] += v
    cost = 0.0
    w = np.empty(m)
    for i in range(m):
        if use_chi2:
            var = max(mu[i], 0.0) + var_floor
            r = n[i] - mu[i]
            cost += r * r / var
            w[i] = -2.0 * r / var - (r * r / (var * var) if mu[i] > 0.0 else 0.0)
        else:
            mi = max(mu[i], 1e-12)
            t = n[i] * math.log(n[i] / mi) if n[i] > 0.0 else 0.0
            cost += 2.0 * (mi - n[i] + t)
            w[i] = 2.0 * (1.0 - n[i] / mi)
    if want_grad:
        grad[:] = 0.0
        for i in range(m):
            grad[p.size - 1] += w[i]
        for k in range(nb):
            ish, ifw, iar, itl, iet = lay[k, 0], lay[k, 1], lay[k, 2], lay[k, 3], lay[k, 4]
            a = p[iar]
            for i in range(m):
                dd = D[k, 0, i + 1] - D[k, 0, i]
                sg = 1.0 if dd >= 0.0 else -1.0
                wa = w[i] * a * sg
                grad[iar] += w[i] * abs(dd)
                gc = wa * (D[k, 1, i + 1] - D[k, 1, i])
                grad[0] += gc
                if ish >= 0:
                    grad[ish] -= gc
                grad[ifw] += wa * (D[k, 2, i + 1] - D[k, 2, i])
                if itl >= 0:
                    grad[itl] += wa * (D[k, 3, i + 1] - D[k, 3, i])
                if iet >= 0:
                    grad[iet] += wa * (D[k, 4, i + 1] - D[k, 4, i])
    return cost


def _layout(spec: _Spec) -> np.ndarray:
    """Parameter indices per band for :func:`_model_eval`: (shift, fwhm, area, tail, eta), −1 where absent."""
    ix = {k: i for i, k in enumerate(spec.names)}
    return np.array([[ix.get(f"shift_{r}", -1), ix[f"fwhm_{r}"], ix[f"area_{r}"], ix.get(f"tail_{r}", -1),
                      ix.get(f"eta_{r}", -1)] for r in spec.roles], dtype=np.int64)


def decompose(
    energy_eV: np.ndarray,
    counts: np.ndarray,
    *,
    n_bands: int = 2,
    background: bool = True,
    fixed: Mapping[str, float] | None = None,
    shape: str = "gauss",
    read_noise: float = 0.0,
    max_starts: int | None = None,
    start: Mapping[str, float] | Sequence[Mapping[str, float]] | None = None,
    rebin: int | None = None,
) -> SpectralFit:
    """Decompose a spectrum (per-pixel counts vs photon energy) into bands.

    Parameters
    ----------
    energy_eV, counts:
        Pixel energies (any order) and the counts in each pixel (bias-subtracted CCD counts or
        photon counts; not a density — convert wavelength axes with :func:`wavelength_to_energy`
        using ``density=False``).
    n_bands:
        1 (uncoupled only), 2 (uncoupled + SF) or 3 (SF, an intermediate band, uncoupled).
    background:
        Fit a constant per-pixel background (otherwise it is fixed at 0).
    fixed:
        Parameters held fixed, e.g. positions from another spectrum (physics.md P7 step 3):
        ``center_unc``, ``center_sf`` (converted to ``shift_sf``, needs ``center_unc``),
        ``shift_sf``, ``fwhm_unc``, ``fwhm_sf``, ``tail_unc``, ``background``...
    shape:
        ``"gauss"``, ``"tail"`` (Gaussian with an exponential low-energy tail) or ``"voigt"`` (the
        tailed Gaussian plus a Lorentzian share ``eta`` of the band: Voigt-like wings).
    read_noise:
        CCD read noise in counts RMS.  When > 0, or when any count is negative, the statistic is a
        Pearson χ² with variance ``model + read_noise²`` instead of the Poisson deviance.
    max_starts:
        Use at most this many of the built-in starting points (default: all, stopping early at the
        first good fit).
    start:
        Starting values tried first, one mapping or several (e.g. built from a simpler fit of the same
        spectrum, see :meth:`SpectralFit.params`); parameters they lack start from the built-in values.
    rebin:
        Adjacent pixels summed into one fit bin (default: :func:`auto_rebin`, bins of at most
        1/``REBIN_FWHM_DIVISOR`` of the brightest band's width; 1 fits every pixel). The model is the band
        integrated over each bin's energy range, so binning loses only sub-bin detail, and the fit is that
        many times cheaper. Pixels left over at the high-energy end (fewer than ``rebin``) are not fitted.
        The result's arrays, deviance and dof are those of the bins; ``background`` stays per pixel.
    """
    if n_bands not in (1, 2, 3):
        raise ValueError("n_bands must be 1, 2 or 3")
    if shape not in ("gauss", "tail", "voigt"):
        raise ValueError("shape must be 'gauss', 'tail' or 'voigt'")
    e = np.asarray(energy_eV, dtype=float)
    n = np.asarray(counts, dtype=float)
    if e.shape != n.shape or e.ndim != 1 or e.size < 8:
        raise ValueError("energy_eV and counts must be 1-D arrays of equal length (≥ 8 pixels)")
    order = np.argsort(e)
    e, n = e[order], n[order]
    edges = _edges(e)
    spec = _param_names(n_bands, shape)
    if rebin is not None and int(rebin) < 1:
        raise ValueError(f"rebin must be a whole number of pixels ≥ 1, got {rebin}")
    fixed = dict(fixed or {})
    if "center_sf" in fixed:
        if "center_unc" not in fixed:
            raise ValueError("fixing center_sf needs center_unc as well (the SF band is placed by shift)")
        fixed["shift_sf"] = float(fixed["center_unc"]) - float(fixed.pop("center_sf"))
    use_chi2 = read_noise > 0 or bool(np.any(n < 0))

    pk = int(np.argmax(_smooth(n)))
    epk = e[pk]
    total = max(float(np.sum(n)), 1.0)
    span = e[-1] - e[0]
    bg0 = max(float(np.percentile(n, 5)), 0.1) if background else 0.0
    fwhm0 = _fwhm_estimate(e, n - bg0, pk)
    b = _rebin_for(fwhm0, e) if rebin is None else int(rebin)
    if b > 1 and e.size // b >= 8:
        nbin = e.size // b
        edges = edges[: nbin * b + 1 : b]
        n = n[: nbin * b].reshape(nbin, b).sum(axis=1)
        e = 0.5 * (edges[:-1] + edges[1:])
    else:
        b = 1
    var_floor = b * max(read_noise**2, 1.0)  # each bin is b read-outs
    de = float(np.median(np.diff(e)))

    lay = _layout(spec)
    nb = len(spec.roles)
    comps_buf = np.empty((nb, n.size))
    grad_buf = np.empty(len(spec.names))

    def per_bin(p: np.ndarray) -> np.ndarray:  # the background parameter is per pixel, the kernel's per bin
        if b == 1:
            return p
        q = p.copy()
        q[-1] *= b
        return q

    def cost(p: np.ndarray) -> float:
        return float(_model_eval(per_bin(p), edges, n, lay, use_chi2, var_floor, False, comps_buf, grad_buf))

    def grad(p: np.ndarray) -> np.ndarray:
        _model_eval(per_bin(p), edges, n, lay, use_chi2, var_floor, True, comps_buf, grad_buf)
        g = grad_buf.copy()
        g[-1] *= b
        return g

    starts = []
    if n_bands == 1:
        starts.append({"center_unc": epk, "fwhm_unc": fwhm0, "area_unc": total})
    elif n_bands == 2:
        for cu, sh, fsf in (
            (epk + 0.03, 0.06, 0.5),
            (epk, 0.06, 0.2),
            (epk + 0.06, 0.06, 0.8),
            (epk + 0.015, 0.03, 0.5),
        ):
            starts.append(
                {
                    "center_unc": cu,
                    "shift_sf": sh,
                    "fwhm_unc": fwhm0,
                    "fwhm_sf": fwhm0 * 0.7,
                    "area_unc": total * (1 - fsf),
                    "area_sf": total * fsf,
                }
            )
    else:
        for cu in (epk + 0.05, epk + 0.1):
            starts.append(
                {
                    "center_unc": cu,
                    "shift_mid": 0.05,
                    "shift_sf": 0.1,
                    "fwhm_unc": fwhm0,
                    "fwhm_mid": fwhm0,
                    "fwhm_sf": fwhm0,
                    "area_unc": total / 3,
                    "area_mid": total / 3,
                    "area_sf": total / 3,
                }
            )
    best: Minuit | None = None
    n_best = 0
    if max_starts is not None:
        starts = starts[: max(int(max_starts), 1)]
    if start:
        given = [start] if isinstance(start, Mapping) else list(start)
        starts[:0] = [{**starts[0], **{k: float(v) for k, v in st.items() if k in spec.names}} for st in given]
    for st in starts:
        p0 = {k: st.get(k, 0.0) for k in spec.names}
        for r in spec.roles:
            if spec.tail:
                p0[f"tail_{r}"] = max(st.get(f"tail_{r}", 0.0), 0.3 * fwhm0 if not spec.voigt else 0.1 * fwhm0)
            if spec.voigt:
                p0[f"eta_{r}"] = st.get(f"eta_{r}", 0.05)
        p0["background"] = st.get("background", bg0)
        for k, v in fixed.items():
            if k not in p0:
                raise ValueError(f"unknown fixed parameter {k!r}; known: {spec.names}")
            p0[k] = float(v)
        m = Minuit(cost, np.array([p0[k] for k in spec.names], dtype=float), grad=grad, name=spec.names)
        m.errordef = Minuit.LEAST_SQUARES
        m.strategy = 1
        for k in spec.names:
            if k.startswith("center"):
                m.limits[k] = (e[0] - 0.2 * span, e[-1] + 0.2 * span)
            elif k.startswith("shift"):
                m.limits[k] = (0.0, span)
            elif k.startswith("fwhm"):  # a band cannot be wider than the spectral window
                m.limits[k] = (max(abs(de), 1e-4), span)
            elif k.startswith("area"):
                m.limits[k] = (0.0, None)
            elif k.startswith("tail"):
                m.limits[k] = (1e-6, span)
            elif k.startswith("eta"):
                m.limits[k] = (0.0, 1.0)
            elif k == "background":
                m.limits[k] = (0.0 if not use_chi2 else None, None)
        if not background:
            m.values["background"] = 0.0
            m.fixed["background"] = True
        for k in fixed:
            m.fixed[k] = True
        try:
            m.migrad(ncall=20000)
        except (RuntimeError, ValueError) as exc:  # pragma: no cover - defensive
            log.debug("decompose start %s failed: %s", st, exc)
            continue
        if best is not None and m.valid and abs(m.fval - best.fval) < 1e-2:
            n_best += 1
        elif best is None or m.fval < best.fval:
            best, n_best = m, 1 if m.valid else 0
        good = best.valid and best.fval / max(n.size - len(spec.names), 1) < 1.3
        # overlapping bands have several minima, each of them a "good" fit (a 20 meV shoulder under a 70 meV
        # band was fitted at 34 meV, Δdeviance 2.3 above the minimum two other starts found): the built-in
        # starts stop when the best minimum has been reached twice; a given start (the basin of a simpler
        # fit) stops at the first good fit
        if good and (n_best >= 2 or (start and st is starts[0]) or len(starts) == 1):
            break
    assert best is not None
    m = best
    if n_bands == 3 and m.values["shift_mid"] > m.values["shift_sf"] and not ({"shift_sf", "shift_mid"} & set(fixed)):
        # the model is symmetric in the two lower bands: name them by position (the SF band is the lowest)
        sw = [k[: -len("_mid")] for k in spec.names if k.endswith("_mid")]
        lo = {k: float(m.values[f"{k}_mid"]) for k in sw}
        for k in sw:
            m.values[f"{k}_mid"] = float(m.values[f"{k}_sf"])
            m.values[f"{k}_sf"] = lo[k]
    try:
        m.hesse()
    except RuntimeError:  # pragma: no cover
        log.warning("decompose: HESSE failed")
    vals = {k: float(m.values[k]) for k in spec.names}
    free = [k for k in spec.names if not m.fixed[k]]
    return _result(e, n, spec, vals, free, _cov(m, free), float(m.fval), bool(m.valid), use_chi2, var_floor,
                   n_bands, shape, dof=max(int(n.size - len(free)), 1), edges=edges, rebin=b)


def _peak_offset(fw: float, tail: float, eta: float) -> float:
    """Where a band of core FWHM ``fw``, low-energy tail ``tail`` and Lorentzian share ``eta`` has its maximum,
    relative to its centre (eV, ≤ 0): 0 without a tail, else the maximum of (1 − η)·EMG + η·Lorentzian (the
    density whose integral :func:`_model_eval` evaluates), found on a grid and refined by parabolic steps."""
    if tail <= 1e-9 or fw <= 0:
        return 0.0
    s = fw * _FWHM_TO_SIGMA
    h = 0.5 * fw
    lam = s / tail

    def pdf(x: np.ndarray) -> np.ndarray:
        z = x / s
        b = (z + lam) / _SQRT2
        with np.errstate(over="ignore", under="ignore"):
            emg = np.where(b > 0, np.exp(-0.5 * z * z) * erfcx(np.maximum(b, 0.0)),
                           np.exp(np.minimum(z * lam + 0.5 * lam * lam, 700.0)) * erfc(np.minimum(b, 0.0)))
        return (1.0 - eta) * emg / (2.0 * tail) + eta * h / (math.pi * (x * x + h * h))

    lo, hi = -(3.0 * s + 4.0 * tail), 0.5 * s
    x = np.linspace(lo, hi, 257)
    i = int(np.argmax(pdf(x)))
    step = x[1] - x[0]
    xm = float(x[min(max(i, 1), x.size - 2)])
    for _ in range(40):   # parabola through three points around the maximum, the bracket halved each time
        y0, y1, y2 = pdf(np.array([xm - step, xm, xm + step]))
        den = y0 - 2.0 * y1 + y2
        dx = 0.5 * step * (y0 - y2) / den if den < 0 else 0.0
        xm += max(min(dx, step), -step)
        if step < 1e-9 * max(fw, 1e-6):
            break
        step *= 0.5
    return min(xm, 0.0)


def _positions(spec: _Spec, vals: Mapping[str, float], cov: np.ndarray | None, free: list[str]
               ) -> tuple[dict[str, Value], dict[str, Value], Value | None]:
    """Each band's centre and peak energy (:func:`_peak_offset` from its centre), and the peak-to-peak shift
    of the SF band below the uncoupled one (meV; None for one band); the peaks' errors propagated with
    numerical derivatives of the offsets in each band's width, tail and Lorentzian share."""
    centres: dict[str, Value] = {}
    peaks: dict[str, Value] = {}
    off: dict[str, float] = {}
    dnames: dict[str, list[str]] = {}
    dgrads: dict[str, list[float]] = {}
    for r in spec.roles:
        q = [vals[f"fwhm_{r}"], vals[f"tail_{r}"] if spec.tail else 0.0, vals[f"eta_{r}"] if spec.voigt else 0.0]
        off[r] = _peak_offset(*q)
        dnames[r], dgrads[r] = [], []
        for k, nm in enumerate((f"fwhm_{r}", f"tail_{r}", f"eta_{r}")):
            if off[r] == 0.0 or nm not in free:
                continue
            h = 1e-4 * max(abs(q[k]), 1e-4 if k == 2 else 1e-5)
            up, dn = list(q), list(q)
            up[k] += h
            dn[k] = max(dn[k] - h, 0.0)
            dnames[r].append(nm)
            dgrads[r].append((_peak_offset(*up) - _peak_offset(*dn)) / (up[k] - dn[k]))
        cn, cg = (["center_unc"], [1.0]) if r == "unc" else (["center_unc", f"shift_{r}"], [1.0, -1.0])
        c = vals["center_unc"] - (0.0 if r == "unc" else vals[f"shift_{r}"])
        centres[r] = Value(c, _err(cov, free, cn, cg))
        peaks[r] = Value(c + off[r], _err(cov, free, cn + dnames[r], cg + dgrads[r]))
    if len(spec.roles) == 1:
        return centres, peaks, None
    # shift = (c_unc + δ_unc) − (c_unc − shift_sf + δ_sf) = shift_sf + δ_unc − δ_sf
    names = ["shift_sf"] + dnames["unc"] + dnames["sf"]
    grads = [1.0] + dgrads["unc"] + [-g for g in dgrads["sf"]]
    return centres, peaks, Value(1e3 * (vals["shift_sf"] + off["unc"] - off["sf"]), 1e3 * _err(cov, free, names, grads))


def _result(e: np.ndarray, n: np.ndarray, spec: _Spec, vals: Mapping[str, float], free: list[str],
            cov: np.ndarray | None, dev: float, converged: bool, use_chi2: bool, var_floor: float, n_bands: int,
            shape: str, *, dof: int, edges: np.ndarray | None = None, rebin: int = 1) -> SpectralFit:
    """The :class:`SpectralFit` of fitted parameter values ``vals`` (``free``: the fitted ones, in the order of
    the covariance ``cov``): bands with propagated errors, model and components at the pixels."""
    lay = _layout(spec)
    comps_buf = np.empty((len(spec.roles), n.size))
    grad_buf = np.empty(len(spec.names))
    pv = np.array([vals[k] for k in spec.names], dtype=float)
    pv[-1] *= rebin  # background per pixel → per bin
    _model_eval(pv, _edges(e) if edges is None else edges, n, lay, use_chi2, var_floor, False, comps_buf, grad_buf)
    comps = comps_buf.copy()
    model = comps.sum(axis=0) + rebin * vals["background"]

    # band results with propagated errors
    area_names = [f"area_{r}" for r in spec.roles]
    areas = np.array([vals[a] for a in area_names])
    tot = areas.sum() if areas.sum() > 0 else 1.0
    bands = []
    centres, peaks, shift_pk = _positions(spec, vals, cov, free)
    for r in spec.roles:
        cen = centres[r]
        a = vals[f"area_{r}"]
        grads = [((1.0 / tot) if an == f"area_{r}" else 0.0) - a / tot**2 for an in area_names]
        frac = Value(a / tot, _err(cov, free, area_names, grads))
        a_err = _err(cov, free, [f"area_{r}"], [1.0])
        if f"area_{r}" in free and a <= 1e-4 * max(float(np.sum(np.abs(n))), 1.0):
            # a band pinned at zero area: HESSE says nothing there; bound it by the Poisson noise of the
            # counts within ±1 FWHM of where the band sits (a conservative 1σ scale)
            w = vals[f"fwhm_{r}"]
            win = np.abs(e - cen.value) <= w
            a_err = max(math.sqrt(max(float(np.sum(np.clip(n[win], 0, None))), 1.0)), a_err)
            frac = Value(a / tot, a_err / tot)
            log.debug("decompose: area_%s at its lower limit; error set to %.3g", r, a_err)
        bands.append(
            Band(
                role=r,
                center_eV=cen,
                fwhm_eV=Value(vals[f"fwhm_{r}"], _err(cov, free, [f"fwhm_{r}"], [1.0])),
                area=Value(a, a_err),
                fraction=frac,
                tail_eV=Value(vals[f"tail_{r}"], _err(cov, free, [f"tail_{r}"], [1.0]))
                if spec.tail
                else Value(0.0, 0.0),
                eta=Value(vals[f"eta_{r}"], _err(cov, free, [f"eta_{r}"], [1.0])) if spec.voigt else Value(0.0, 0.0),
                peak_eV=peaks[r] if spec.tail else None,
            )
        )
    if n_bands > 1:
        sf_frac = bands[0].fraction
        assert shift_pk is not None
        shift = shift_pk
    else:
        sf_frac = Value(0.0, 0.0)
        shift = Value(math.nan, math.nan)
    bgv = Value(vals["background"], _err(cov, free, ["background"], [1.0]))
    return SpectralFit(
        bands=tuple(bands),
        sf_fraction=sf_frac,
        shift_meV=shift,
        background=bgv,
        deviance=dev,
        dof=dof,
        reduced_deviance=dev / dof,
        converged=converged,
        n_bands=n_bands,
        shape=shape,
        energy_eV=e,
        counts=n,
        model=model,
        components=comps,
        statistic="chi2" if use_chi2 else "deviance",
        var_floor=var_floor,
        rebin=rebin,
    )


@dataclass(frozen=True)
class SeriesFit(ResultMixin):
    """Result of :func:`decompose_series`: one :class:`SpectralFit` per spectrum (the shared band shapes with
    that spectrum's own areas and background; its ``dof`` counts its own parameters and its share of the
    shared ones) and the joint statistic of all spectra (``model``/``counts`` concatenated, for the
    goodness of fit)."""

    fits: tuple[SpectralFit, ...]
    deviance: float
    dof: int
    reduced_deviance: float
    converged: bool
    n_bands: int
    shape: str
    red: str
    n_free: int
    #: the shared parameters that are not band shapes, with HESSE errors (``ratio_sf``; ``amp_sf``, ``alpha_sf``)
    shared: dict[str, Value]
    model: np.ndarray = field(repr=False)
    counts: np.ndarray = field(repr=False)
    statistic: str = "deviance"
    _array_fields = ("model", "counts")

    @property
    def bic(self) -> float:
        """Bayesian information criterion of the joint fit: deviance + k ln(pixels)."""
        return float(self.deviance + self.n_free * math.log(max(self.counts.size, 2)))


def _limit(m: Minuit, name: str, e_lo: float, e_hi: float, span: float, de: float, use_chi2: bool) -> None:
    """The physical bounds of one band-model parameter (by its name's prefix)."""
    if name.startswith("center"):
        m.limits[name] = (e_lo - 0.2 * span, e_hi + 0.2 * span)
    elif name.startswith("shift"):
        m.limits[name] = (0.0, span)
    elif name.startswith("fwhm"):  # a band cannot be wider than the spectral window
        m.limits[name] = (max(abs(de), 1e-4), span)
    elif name.startswith(("area", "ratio", "amp")):
        m.limits[name] = (0.0, None)
    elif name.startswith("tail"):
        m.limits[name] = (1e-6, span)
    elif name.startswith("eta"):
        m.limits[name] = (0.0, 1.0)
    elif name.startswith("background"):
        m.limits[name] = (0.0 if not use_chi2 else None, None)


def decompose_series(
    energies: Sequence[np.ndarray],
    counts: Sequence[np.ndarray],
    *,
    n_bands: int = 2,
    shape: str = "gauss",
    read_noise: float | Sequence[float] = 0.0,
    red: str = "free",
    fluence: Sequence[float] | None = None,
    exposure: Sequence[float] | None = None,
    start: Mapping[str, float] | Sequence[Mapping[str, float]] | None = None,
) -> SeriesFit:
    """Joint decomposition of several spectra of one sample at one temperature (a fluence series).

    Every band has the same centre, width and shape (tail, Lorentzian share) in all spectra; only its
    area and the background are each spectrum's own. Two overlapping bands that one spectrum cannot tell
    apart (an exciton band with a low-energy tail and a biexciton shoulder a few tens of meV below) are
    then separated by their different fluence dependence, the way physics.md P10 step 2 isolates the XX
    decay by subtracting the curves of a fluence series.

    ``red`` (two bands) says how the red (lower) band's area varies from spectrum to spectrum:

    * ``"free"``: its own area in every spectrum (like the uncoupled band's);
    * ``"ratio"``: one shared multiple ``ratio_sf`` of the uncoupled band's area, i.e. a lineshape that
      does not change with fluence — the null model against which a band that grows differently is
      tested;
    * ``"power"``: a power law of the spectra's ``fluence``, ``amp_sf · (f/f_ref)^alpha_sf`` with f_ref
      the geometric mean fluence (physics.md P2: I ∝ f^α per band; counts × ``exposure``/its geometric
      mean when the exposures differ), fitted in the same likelihood as the shapes, so the exponent
      comes with the spectra's own Poisson information — a weak band at the lowest fluence is neither
      pinned at a zero area nor dropped from a log-log fit.

    In the ``"ratio"`` and ``"power"`` modes the per-spectrum red areas carry no error of their own (see
    ``ratio_sf`` / ``amp_sf``, ``alpha_sf`` in :attr:`SeriesFit.shared`). ``start``: mappings of
    :func:`decompose`'s parameter names for the shared parameters, optionally ``sf_fraction`` (the red
    band's share, for the area starts) and ``alpha_sf``; by default the shapes of a single-spectrum fit of
    the brightest spectrum. Statistic: as :func:`decompose`, summed over the spectra."""
    if n_bands not in (1, 2, 3):
        raise ValueError("n_bands must be 1, 2 or 3")
    if shape not in ("gauss", "tail", "voigt"):
        raise ValueError("shape must be 'gauss', 'tail' or 'voigt'")
    if len(energies) != len(counts) or len(energies) < 2:
        raise ValueError("decompose_series needs ≥ 2 spectra (energies and counts of equal number)")
    if red not in ("free", "ratio", "power"):
        raise ValueError("red must be 'free', 'ratio' or 'power'")
    if red != "free" and n_bands != 2:
        raise ValueError(f"red={red!r} needs n_bands=2")
    if red == "power" and (fluence is None or len(fluence) != len(counts) or min(fluence) <= 0):
        raise ValueError("red='power' needs one positive fluence per spectrum")
    shared_ratio = red == "ratio"
    tied = red != "free"  # the red areas follow shared parameters
    rn = ([float(read_noise)] * len(counts) if isinstance(read_noise, (int, float))
          else [float(x) for x in read_noise])
    es, ns, edges_l = [], [], []
    for e_, n_ in zip(energies, counts, strict=True):
        e = np.asarray(e_, dtype=float)
        n = np.asarray(n_, dtype=float)
        if e.shape != n.shape or e.ndim != 1 or e.size < 8:
            raise ValueError("every spectrum needs 1-D energy and count arrays of equal length (≥ 8 pixels)")
        o = np.argsort(e)
        es.append(e[o])
        ns.append(n[o])
        edges_l.append(_edges(e[o]))
    K = len(ns)
    chi2_k = [r > 0 or bool(np.any(n < 0)) for r, n in zip(rn, ns, strict=True)]
    floors = [max(r**2, 1.0) for r in rn]
    spec = _param_names(n_bands, shape)
    lay = _layout(spec)
    own = [f"area_{r}" for r in spec.roles] + ["background"]
    if tied:
        own = ["area_unc", "background"]
    shared = [k for k in spec.names if not k.startswith("area") and k != "background"]
    extra = {"free": [], "ratio": ["ratio_sf"], "power": ["amp_sf", "alpha_sf"]}[red]
    names = shared + [f"{k}#{i}" for i in range(K) for k in own] + extra
    x_f = np.ones(K)
    if red == "power":
        fl_ = np.asarray(fluence, dtype=float)
        x_f = fl_ / float(np.exp(np.mean(np.log(fl_))))
    if exposure is not None and len(exposure) != K:
        raise ValueError("exposure needs one value per spectrum")
    t_x = np.ones(K) if exposure is None else np.asarray(exposure, dtype=float)
    t_x = t_x / float(np.exp(np.mean(np.log(t_x))))
    lx_f = np.log(x_f)
    gi = {k: i for i, k in enumerate(names)}
    idx = np.full((K, len(spec.names)), -1, dtype=np.int64)
    for i in range(K):
        for j, k in enumerate(spec.names):
            idx[i, j] = gi[k] if k in gi else gi.get(f"{k}#{i}", -1)
    j_asf = spec.names.index("area_sf") if tied else -1
    j_au = spec.names.index("area_unc")
    i_r = gi.get("ratio_sf", -1)
    i_amp, i_alpha = gi.get("amp_sf", -1), gi.get("alpha_sf", -1)
    comps_buf = [np.empty((len(spec.roles), n.size)) for n in ns]
    grad_buf = np.empty(len(spec.names))

    def local(g: np.ndarray, i: int) -> np.ndarray:
        p = g[np.maximum(idx[i], 0)].copy()
        if shared_ratio:
            p[j_asf] = g[i_r] * g[idx[i, j_au]]
        elif red == "power":
            p[j_asf] = g[i_amp] * t_x[i] * math.exp(g[i_alpha] * lx_f[i])
        return p

    def cost(g: np.ndarray) -> float:
        return float(sum(_model_eval(local(g, i), edges_l[i], ns[i], lay, chi2_k[i], floors[i], False, comps_buf[i],
                                     grad_buf) for i in range(K)))

    def grad(g: np.ndarray) -> np.ndarray:
        out = np.zeros(g.size)
        for i in range(K):
            _model_eval(local(g, i), edges_l[i], ns[i], lay, chi2_k[i], floors[i], True, comps_buf[i], grad_buf)
            ok = idx[i] >= 0
            out[idx[i][ok]] += grad_buf[ok]
            if shared_ratio:
                out[i_r] += grad_buf[j_asf] * g[idx[i, j_au]]
                out[idx[i, j_au]] += grad_buf[j_asf] * g[i_r]
            elif red == "power":
                w = t_x[i] * math.exp(g[i_alpha] * lx_f[i])
                out[i_amp] += grad_buf[j_asf] * w
                out[i_alpha] += grad_buf[j_asf] * g[i_amp] * w * lx_f[i]
        return out

    bright = int(np.argmax([float(np.sum(n)) for n in ns]))
    if start is None:
        f0 = decompose(es[bright], ns[bright], n_bands=n_bands, shape=shape, read_noise=rn[bright])
        starts: list[Mapping[str, float]] = [{**f0.params(), "sf_fraction": float(f0.sf_fraction.value)}]
    else:
        starts = [start] if isinstance(start, Mapping) else list(start)
    e_lo = min(float(e[0]) for e in es)
    e_hi = max(float(e[-1]) for e in es)
    span = e_hi - e_lo
    de = float(np.median(np.diff(es[bright])))
    fwhm0 = _fwhm_estimate(es[bright], ns[bright], int(np.argmax(_smooth(ns[bright]))))
    best: Minuit | None = None
    for st in starts:
        fr = float(st.get("sf_fraction", 0.2)) if n_bands > 1 else 0.0
        g0 = {}
        for k in shared:
            if k in st:
                g0[k] = float(st[k])
            elif k.startswith("tail"):
                g0[k] = 0.3 * fwhm0 if not spec.voigt else 0.1 * fwhm0
            elif k.startswith("eta"):
                g0[k] = 0.05
            elif k.startswith("fwhm"):
                g0[k] = fwhm0
            elif k.startswith("shift"):
                g0[k] = 0.5 * fwhm0
            else:  # center_unc
                g0[k] = float(es[bright][int(np.argmax(_smooth(ns[bright])))])
        for k in shared:
            if k.startswith("tail"):
                g0[k] = max(g0[k], 1e-5)
        for i, n in enumerate(ns):
            tot = max(float(np.sum(n)), 1.0)
            g0[f"background#{i}"] = max(float(np.percentile(n, 5)), 0.1)
            if n_bands == 1:
                g0[f"area_unc#{i}"] = tot
            elif n_bands == 2:
                g0[f"area_unc#{i}"] = tot * (1 - fr)
                if not tied:
                    g0[f"area_sf#{i}"] = tot * fr
            else:
                for r in spec.roles:
                    g0[f"area_{r}#{i}"] = tot / 3
        if shared_ratio:
            g0["ratio_sf"] = fr / max(1 - fr, 1e-3)
        if red == "power":  # the red band's share of the geometric-mean spectrum
            g0["alpha_sf"] = float(st.get("alpha_sf", 1.5))
            g0["amp_sf"] = fr * float(np.exp(np.mean(np.log([max(float(np.sum(n)), 1.0) for n in ns]))))
        m = Minuit(cost, np.array([g0[k] for k in names], dtype=float), grad=grad, name=names)
        m.errordef = Minuit.LEAST_SQUARES
        m.strategy = 1
        for k in names:
            _limit(m, k, e_lo, e_hi, span, de, any(chi2_k))
        if red == "power":
            m.limits["alpha_sf"] = (-10.0, 10.0)
        try:
            m.migrad(ncall=40000)
        except (RuntimeError, ValueError) as exc:  # pragma: no cover - defensive
            log.debug("decompose_series start %s failed: %s", st, exc)
            continue
        if best is None or m.fval < best.fval:
            best = m
    if best is None:  # pragma: no cover - defensive
        raise RuntimeError("decompose_series: no start converged")
    m = best
    try:
        m.hesse()
    except RuntimeError:  # pragma: no cover
        log.warning("decompose_series: HESSE failed")
    full = np.array(m.covariance) if m.covariance is not None else None
    g = np.array([float(m.values[k]) for k in names])
    n_free = len(names)
    fits = []
    for i in range(K):
        p = local(g, i)
        vals = {k: float(p[j]) for j, k in enumerate(spec.names)}
        free = [k for j, k in enumerate(spec.names) if idx[i, j] >= 0]
        cov = None
        if full is not None:
            gidx = [int(idx[i, spec.names.index(k)]) for k in free]
            cov = full[np.ix_(gidx, gidx)]
        dev_i = float(_model_eval(p, edges_l[i], ns[i], lay, chi2_k[i], floors[i], False, comps_buf[i], grad_buf))
        dof_i = max(int(round(ns[i].size - len(own) - len(shared) / K)), 1)
        fits.append(_result(es[i], ns[i], spec, vals, free, cov, dev_i, bool(m.valid), chi2_k[i], floors[i],
                            n_bands, shape, dof=dof_i))
    n_all = sum(n.size for n in ns)
    dof = max(n_all - n_free, 1)
    return SeriesFit(
        fits=tuple(fits),
        deviance=float(m.fval),
        dof=dof,
        reduced_deviance=float(m.fval) / dof,
        converged=bool(m.valid),
        n_bands=n_bands,
        shape=shape,
        red=red,
        n_free=n_free,
        shared={k: Value(float(m.values[k]), float(m.errors[k])) for k in extra},
        model=np.concatenate([f.model for f in fits]),
        counts=np.concatenate(ns),
        statistic="chi2" if all(chi2_k) else "deviance",
    )


#: fit bins are at most 1/REBIN_FWHM_DIVISOR of the brightest band's FWHM. Binning a Gaussian of width σ in bins
#: of width h adds h²/12 to its variance (Sheppard's correction); a band 3× narrower than the brightest one (an
#: ASE peak is 7–9 nm against the 20 nm PL, physics.md §1.3) still has h ≤ σ/2.8: its width inflated by < 0.6 %
REBIN_FWHM_DIVISOR = 20.0


def auto_rebin(energy_eV: np.ndarray, counts: np.ndarray) -> int:
    """Pixels per fit bin for :func:`decompose`: bins no wider than FWHM/``REBIN_FWHM_DIVISOR`` of the
    brightest band (its FWHM estimated from the smoothed peak), and at least 64 bins."""
    e = np.asarray(energy_eV, float)
    n = np.asarray(counts, float)
    order = np.argsort(e)
    e, n = e[order], n[order]
    bg = max(float(np.percentile(n, 5)), 0.1)  # as decompose estimates it
    return _rebin_for(_fwhm_estimate(e, n - bg, int(np.argmax(_smooth(n)))), e)


def _rebin_for(fwhm_eV: float, e_sorted: np.ndarray) -> int:
    """:func:`auto_rebin` given the brightest band's FWHM estimate and the sorted pixel energies."""
    if e_sorted.size < 128:
        return 1
    de = abs(float(np.median(np.diff(e_sorted))))
    if de <= 0:
        return 1
    return max(1, min(int(fwhm_eV / (REBIN_FWHM_DIVISOR * de)), e_sorted.size // 64))


def _smooth(n: np.ndarray, w: int = 5) -> np.ndarray:
    k = np.ones(w) / w
    return np.convolve(n, k, mode="same")


def _fwhm_estimate(e: np.ndarray, n: np.ndarray, pk: int) -> float:
    s = _smooth(n)
    half = s[pk] / 2
    lo = pk
    while lo > 0 and s[lo] > half:
        lo -= 1
    hi = pk
    while hi < len(s) - 1 and s[hi] > half:
        hi += 1
    w = float(e[hi] - e[lo])
    return max(w, 3 * abs(float(np.median(np.diff(e)))), 0.005)


def _cov(m: Minuit, free: list[str]) -> np.ndarray | None:
    if m.covariance is None:
        return None
    c = np.array(m.covariance)
    idx = [m.parameters.index(k) for k in free]
    return c[np.ix_(idx, idx)]


def _err(cov: np.ndarray | None, free: list[str], names: list[str], grads: list[float]) -> float:
    if cov is None:
        return math.nan
    g = np.zeros(len(free))
    for nm, gr in zip(names, grads, strict=True):
        if nm in free:
            g[free.index(nm)] = gr
    v = float(g @ cov @ g)
    return math.sqrt(v) if v >= 0 else math.nan


def warm_kernels() -> None:
    """Compile this module's numba kernels into numba's on-disk cache (see :func:`analysis.decay.warm_kernels`)."""
    e = np.linspace(2.3, 2.6, 200)
    mu = 1e4 * np.exp(-0.5 * ((e - 2.45) / 0.02) ** 2) + 5e3 * np.exp(-0.5 * ((e - 2.42) / 0.01) ** 2) + 50.0
    counts = np.random.default_rng(0).poisson(mu).astype(float)
    for shape in ("gauss", "tail", "voigt"):
        decompose(e, counts, n_bands=2, shape=shape, max_starts=1)
