"""The SF verdict: physics.md §6.2 checklist applied to the evidence of one sample.

:func:`assess` takes an :class:`Evidence` (spectra vs T and fluence, decays, g2, absorption, …;
any part may be missing), runs the fits of this package on it and returns an :class:`SFVerdict`:
each checklist item as ``pass`` / ``fail`` / ``not measured`` with the numbers behind it, a
verdict (``SF``, ``not SF``, ``inconclusive``), the reasons, the likely confuser when it says
``not SF`` (``biexciton-only``, ``ASE``, ``miniband shift``, ``ordinary PL``) and the strength of
the evidence.  The decision rules are documented in docs/analysis.md and in :data:`RULES`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._common import ResultMixin, Value, to_jsonable
from .decay import DecayFit, fit_decay
from .g2 import G2Fit, fit_bunching
from .series import (
    OnsetFit,
    lifetime_vs_fluence,
    lifetime_vs_temperature,
    onset_temperature,
    power_law,
)
from .spectra import SpectralFit, decompose

__all__ = [
    "SpectrumRecord",
    "DecayRecord",
    "G2Record",
    "AbsorptionRecord",
    "Evidence",
    "CheckItem",
    "SFVerdict",
    "assess",
    "RULES",
    "PASS",
    "FAIL",
    "NOT_MEASURED",
]

log = logging.getLogger(__name__)

PASS, FAIL, NOT_MEASURED = "pass", "fail", "not measured"

#: Thresholds of the decision rules (documented in docs/analysis.md).
RULES: dict[str, float] = {
    "two_band_min_delta_deviance": 25.0,  # 1 → 2 bands must improve the deviance by this much
    "two_band_min_fraction": 0.03,  # and the red band must hold ≥ 3 % of the light
    "two_band_min_fraction_sigma": 3.0,  # at ≥ 3σ
    "shift_min_meV": 30.0,  # below: biexciton/trion-like shift ([001]: "a few tens of meV")
    "shift_max_optical_meV": 120.0,  # 40–100 meV optical ([000]) with margin
    "shift_max_xray_meV": 350.0,  # up to ~320 meV under X-rays ([001])
    "rt_K": 250.0,  # "room temperature" end of a series
    "rt_max_fraction": 0.10,  # red band allowed at RT (SF is absent at RT)
    "faster_max_ratio": 0.6,  # τ_SF/τ_unc ≲ 0.25–0.5 ([000],[001],[004]), with a margin
    "slower_min_ratio": 0.8,  # τ_red/τ_unc ≥ 0.8 → not accelerated
    "rise_min_sigma": 3.0,  # delayed rise resolved at ≥ 3σ (likelihood ratio)
    "rise_max_irf_fwhm_ps": 20.0,  # a few-ps rise can only be excluded with an IRF this sharp (streak)
    "prompt_max_tau_ps": 15.0,  # red band faster than this with no rise → stimulated (ASE), SF ≥ 20 ps
    "linear_max_alpha": 1.3,  # red band growing ≤ this and like the uncoupled band → static (miniband)
    "alpha_min_excess": 0.05,  # α_SF − α_unc ≥ 0.05 and ≥ 3σ
    "alpha_local_threshold": 3.0,  # a local slope this steep between neighbouring fluences → threshold
    "alpha_max": 2.0,  # quadratic limit ([000])
    "alpha_ase": 2.3,  # beyond the limit (by 2σ) → ASE-like arbitrary exponent
    "alpha_xx_low": 1.75,  # 1.75–2.3: biexciton-like ⟨N⟩² growth
    "threshold_delta_chi2": 20.0,  # broken power law better by this much …
    "threshold_slope_jump": 0.8,  # … with the slope rising by this much to above alpha_ase
    #   → threshold (ASE)
    "bunching_min_sigma": 3.0,  # g2(0) − 1 > 0 at ≥ 3σ
    "absorption_max_ratio": 0.3,  # A(E_SF)/A(edge) below this → no ground-state absorption
    "absorption_miniband_ratio": 0.5,  # above this → absorbing at E_SF (static shift)
    "ase_max_fwhm_ratio": 0.35,  # FWHM_red/FWHM_unc below this → very narrow (ASE-like)
    "sf_min_passes": 4,  # SF needs ≥ 4 passes, the three core items among them
    "confuser_min_flags": 2,  # a confuser is named with ≥ 2 independent flags
}


# ----------------------------------------------------------------------------- evidence
@dataclass
class SpectrumRecord:
    """One emission spectrum: per-pixel counts (photoelectrons, bias-subtracted) vs photon energy at
    temperature ``T_K`` and fluence ``fluence_uJcm2`` (None for X-ray excitation or unknown).
    ``exposure_s`` normalises band intensities in a fluence series; ``read_noise`` (e⁻ rms) switches
    the spectral fit to a χ² with variance model + read_noise²."""

    energy_eV: np.ndarray
    counts: np.ndarray
    T_K: float
    fluence_uJcm2: float | None = None
    read_noise: float = 0.0
    exposure_s: float = 1.0


@dataclass
class DecayRecord:
    """A TCSPC decay histogram of one spectral band (``band`` = "sf", "unc" or "all") with its IRF."""

    t_ps: np.ndarray
    counts: np.ndarray
    irf: np.ndarray
    T_K: float
    band: str = "all"
    fluence_uJcm2: float | None = None


@dataclass
class G2Record:
    """A normalised g2(τ) (τ in ps, peak at 0) with errors and the HBT instrument FWHM."""

    tau_ps: np.ndarray
    g2: np.ndarray
    g2_err: np.ndarray | None = None
    irf_fwhm_ps: float = 70.0
    T_K: float | None = None


@dataclass
class AbsorptionRecord:
    """Absorbance (or 1 − T) vs photon energy at ``T_K``."""

    energy_eV: np.ndarray
    absorbance: np.ndarray
    T_K: float


@dataclass
class Evidence:
    """Everything measured on one sample, as the procedures collect it from a run.

    * ``spectra``: emission spectra at several T (temperature series, P1/P7) and/or several fluences
      at one T (fluence series, P2).  Spectra within ``same_T_K`` of each other count as one T.
    * ``reference_spectra``: isolated-NC reference (NCs in polystyrene) under the same conditions.
    * ``decays``: band-resolved decays (``band="sf"`` at the red band, ``"unc"`` at the uncoupled
      band), any T / fluence; ``"all"`` for spectrally unfiltered decays.
    * ``g2``: HBT g2 curves (P5).
    * ``absorption``: absorption spectra (P6), ideally at the lowest T.
    * ``reversible``: result of a thermal-cycling check (P1 step 7), None if not done.
    * ``coherence``: optional dict, e.g. ``{"g1_ratio": 3.5}`` or ``{"ringing": True}``.
    * ``excitation``: "optical" or "xray" (changes the allowed shift and width rules).
    """

    spectra: list[SpectrumRecord] = field(default_factory=list)
    reference_spectra: list[SpectrumRecord] = field(default_factory=list)
    decays: list[DecayRecord] = field(default_factory=list)
    g2: list[G2Record] = field(default_factory=list)
    absorption: list[AbsorptionRecord] = field(default_factory=list)
    reversible: bool | None = None
    coherence: dict[str, Any] | None = None
    excitation: str = "optical"
    sample: str = ""
    same_T_K: float = 1.0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Evidence:
        """Build from plain dicts/lists (e.g. loaded from JSON or assembled by a procedure)."""

        def arr(x: Any) -> np.ndarray:
            return np.asarray(x, dtype=float)

        def spectrum(s: Mapping[str, Any]) -> SpectrumRecord:
            return SpectrumRecord(arr(s["energy_eV"]), arr(s["counts"]), float(s["T_K"]), s.get("fluence_uJcm2"),
                                  float(s.get("read_noise", 0.0)), float(s.get("exposure_s", 1.0)))

        return cls(
            spectra=[spectrum(s) for s in d.get("spectra", [])],
            reference_spectra=[spectrum(s) for s in d.get("reference_spectra", [])],
            decays=[
                DecayRecord(
                    arr(x["t_ps"]),
                    arr(x["counts"]),
                    arr(x["irf"]),
                    float(x["T_K"]),
                    x.get("band", "all"),
                    x.get("fluence_uJcm2"),
                )
                for x in d.get("decays", [])
            ],
            g2=[
                G2Record(
                    arr(x["tau_ps"]),
                    arr(x["g2"]),
                    None if x.get("g2_err") is None else arr(x["g2_err"]),
                    float(x.get("irf_fwhm_ps", 70.0)),
                    x.get("T_K"),
                )
                for x in d.get("g2", [])
            ],
            absorption=[
                AbsorptionRecord(arr(x["energy_eV"]), arr(x["absorbance"]), float(x["T_K"]))
                for x in d.get("absorption", [])
            ],
            reversible=d.get("reversible"),
            coherence=d.get("coherence"),
            excitation=d.get("excitation", "optical"),
            sample=d.get("sample", ""),
        )


# ----------------------------------------------------------------------------- verdict
@dataclass(frozen=True)
class CheckItem(ResultMixin):
    """One checklist item of physics.md §6.2."""

    number: int
    key: str
    title: str
    status: str
    detail: str
    numbers: dict[str, Any]


@dataclass(frozen=True)
class SFVerdict(ResultMixin):
    """Outcome of :func:`assess`.  ``fits`` holds the underlying fit results (for the report)."""

    verdict: str
    confuser: str | None
    reasons: tuple[str, ...]
    items: tuple[CheckItem, ...]
    strength: dict[str, Any]
    confuser_flags: dict[str, list[str]]
    sample: str
    excitation: str
    fits: dict[str, Any] = field(repr=False, default_factory=dict)
    _array_fields = ("fits",)

    def item(self, key: str) -> CheckItem:
        for it in self.items:
            if it.key == key:
                return it
        raise KeyError(key)

    @property
    def n_pass(self) -> int:
        return sum(it.status == PASS for it in self.items)

    @property
    def n_fail(self) -> int:
        return sum(it.status == FAIL for it in self.items)

    def summary(self) -> str:
        """One line: verdict, confuser and the pass/fail count."""
        s = f"{self.verdict}"
        if self.confuser:
            s += f" (likely {self.confuser})"
        return (
            s + f" — {self.n_pass} pass, {self.n_fail} fail, "
            f"{sum(it.status == NOT_MEASURED for it in self.items)} not measured"
        )

    def to_dict(self, arrays: bool = False) -> dict[str, Any]:
        d = super().to_dict(arrays=False)
        d["fits"] = {k: to_jsonable(v) for k, v in self.fits.items()}
        return d


@dataclass(frozen=True)
class _SpecPoint:
    T_K: float
    fluence: float | None
    fit2: SpectralFit
    fit1: SpectralFit
    delta_dev: float
    two_band: bool
    read_noise: float = 0.0
    exposure_s: float = 1.0

    @property
    def red(self) -> bool:
        """A resolved red band far enough below to be an SF candidate (not an XX/trion shoulder)."""
        sh = self.fit2.shift_meV
        err = sh.error if np.isfinite(sh.error) else 0.0
        return self.two_band and sh.value - 2 * err >= RULES["shift_min_meV"]


#: the band fits of this process's spectra by content (see _band_fits); bounded
_FIT_MEMO: OrderedDict[bytes, tuple[SpectralFit, SpectralFit]] = OrderedDict()
_FIT_MEMO_SIZE = 2048
_FIT_LOCK = threading.Lock()


def _band_fits(s: SpectrumRecord) -> tuple[SpectralFit, SpectralFit]:
    """The 1- and 2-band fits of one spectrum. A pure function of the spectrum, so remembered by its
    content: a campaign's spectra are fitted once per process although the per-run summaries and the
    campaign's pooled verdict both assess them (the demo fitted each spectrum twice, 12 s of 80 s)."""
    e = np.ascontiguousarray(s.energy_eV, dtype=float)
    c = np.ascontiguousarray(s.counts, dtype=float)
    key = hashlib.blake2b(e.tobytes() + b"|" + c.tobytes() + b"|" + repr(float(s.read_noise)).encode(),
                          digest_size=20).digest()
    with _FIT_LOCK:
        hit = _FIT_MEMO.get(key)
        if hit is not None:
            _FIT_MEMO.move_to_end(key)
            return hit
    out = (decompose(s.energy_eV, s.counts, n_bands=1, read_noise=s.read_noise),
           decompose(s.energy_eV, s.counts, n_bands=2, read_noise=s.read_noise))
    with _FIT_LOCK:
        _FIT_MEMO[key] = out
        if len(_FIT_MEMO) > _FIT_MEMO_SIZE:
            _FIT_MEMO.popitem(last=False)
    return out


def _fit_spectrum(s: SpectrumRecord) -> _SpecPoint:
    f1, f2 = _band_fits(s)
    dd = f1.deviance - f2.deviance
    fr = f2.sf_fraction
    sig = fr.value / fr.error if fr.error and np.isfinite(fr.error) and fr.error > 0 else 0.0
    two = (
        dd >= RULES["two_band_min_delta_deviance"]
        and fr.value >= RULES["two_band_min_fraction"]
        and sig >= RULES["two_band_min_fraction_sigma"]
        and (1 - fr.value) >= RULES["two_band_min_fraction"]
    )
    return _SpecPoint(
        s.T_K, s.fluence_uJcm2, f2, f1, float(dd), bool(two), float(s.read_noise), float(s.exposure_s)
    )


def _group_T(points: Sequence[_SpecPoint], tol: float) -> dict[float, list[_SpecPoint]]:
    groups: dict[float, list[_SpecPoint]] = {}
    for p in sorted(points, key=lambda q: q.T_K):
        for k in groups:
            if abs(k - p.T_K) <= tol:
                groups[k].append(p)
                break
        else:
            groups[p.T_K] = [p]
    return groups


def _fwhm(y: np.ndarray, x: np.ndarray) -> float:
    """Full width at half maximum of a sampled peak (linear interpolation of the crossings)."""
    y = np.asarray(y, dtype=float)
    i = int(np.argmax(y))
    h = y[i] / 2
    lo = i
    while lo > 0 and y[lo] > h:
        lo -= 1
    hi = i
    while hi < y.size - 1 and y[hi] > h:
        hi += 1
    xl = np.interp(h, [y[lo], y[lo + 1]], [x[lo], x[lo + 1]]) if y[lo + 1] != y[lo] else x[lo]
    xh = np.interp(h, [y[hi], y[hi - 1]], [x[hi], x[hi - 1]]) if y[hi - 1] != y[hi] else x[hi]
    return float(xh - xl)


def _v(x: Value | None) -> dict[str, float | None] | None:
    return None if x is None else x.to_dict()


def assess(evidence: Evidence | Mapping[str, Any]) -> SFVerdict:
    """Apply the physics.md §6.2 checklist to ``evidence`` and return the verdict (see module doc)."""
    ev = evidence if isinstance(evidence, Evidence) else Evidence.from_dict(evidence)
    xray = ev.excitation.lower().startswith("x")
    items: list[CheckItem] = []
    flags: dict[str, list[str]] = {"biexciton-only": [], "ASE": [], "miniband shift": []}
    fits: dict[str, Any] = {}
    strength: dict[str, Any] = {}

    # ---------------------------------------------------------------- spectra
    pts = [_fit_spectrum(s) for s in ev.spectra]
    refs = [_fit_spectrum(s) for s in ev.reference_spectra]
    fits["spectra"] = [
        {
            "T_K": p.T_K,
            "fluence_uJcm2": p.fluence,
            "two_band": p.two_band,
            "delta_deviance": p.delta_dev,
            "fit": p.fit2 if p.two_band else p.fit1,
        }
        for p in pts
    ]
    groups = _group_T(pts, ev.same_T_K)
    Ts = sorted(groups)
    # representative spectrum per T: the temperature series' fluence (the fluence found at the most
    # temperatures), or the closest one available at that T
    f_count: dict[float | None, int] = {}
    for g in groups.values():
        for f_ in {q.fluence for q in g}:
            f_count[f_] = f_count.get(f_, 0) + 1
    f_series = max(f_count, key=lambda k: (f_count[k], k or 0.0)) if f_count else None

    def _closest(g: list[_SpecPoint]) -> _SpecPoint:
        if f_series is None:
            return g[0]
        return min(g, key=lambda q: abs(math.log((q.fluence or 1e-9) / f_series)) if q.fluence else math.inf)

    rep = {T: _closest(g) for T, g in groups.items()}
    low = rep[Ts[0]] if Ts else None
    high = rep[Ts[-1]] if Ts else None
    # weight of the red band at every T with its shift fixed to the low-T value, so that a band that
    # is still there at high T is measured where it sits instead of being swallowed by a broad band
    tfrac: dict[float, Value] = {}
    tfits: dict[float, SpectralFit] = {}
    if low is not None and low.red:
        fx = {"shift_sf": low.fit2.shift_meV.value / 1e3}
        for T in Ts:
            q = rep[T]
            try:
                ft = decompose(q.fit2.energy_eV, q.fit2.counts, n_bands=2, fixed=fx, read_noise=q.read_noise)
            except (ValueError, RuntimeError) as exc:  # pragma: no cover - defensive
                log.warning("fixed-shift refit at %s K failed: %s", T, exc)
                continue
            if q.red:  # the free fit already resolves the red band
                ft, use = q.fit2, True
            else:  # the fixed-shift fit counts only if it needs both bands and beats one band clearly
                fr_ = ft.sf_fraction.value
                use = (
                    q.fit1.deviance - ft.deviance >= RULES["two_band_min_delta_deviance"]
                    and RULES["two_band_min_fraction"] <= fr_ <= 1 - RULES["two_band_min_fraction"]
                )
            tfits[T] = ft
            e_ = ft.sf_fraction.error if np.isfinite(ft.sf_fraction.error) else 0.02
            tfrac[T] = Value(ft.sf_fraction.value if use else 0.0, max(e_, 0.005))
    fits["temperature_series"] = [{"T_K": T, "fit": f_} for T, f_ in tfits.items()]

    # 1. two-band spectrum
    shift_max = RULES["shift_max_xray_meV"] if xray else RULES["shift_max_optical_meV"]
    if low is None:
        items.append(
            CheckItem(1, "two_band", "Two-band spectrum (new red band)", NOT_MEASURED, "no spectra", {})
        )
    else:
        nums: dict[str, Any] = {
            "T_K": low.T_K,
            "delta_deviance": low.delta_dev,
            "sf_fraction": _v(low.fit2.sf_fraction),
            "shift_meV": _v(low.fit2.shift_meV),
        }
        shift = low.fit2.shift_meV.value
        at_rt = high is not None and high.T_K >= RULES["rt_K"]
        rt_frac = tfrac.get(high.T_K) if high is not None else None
        rt_present = (
            at_rt
            and rt_frac is not None
            and rt_frac.value > RULES["rt_max_fraction"]
            and rt_frac.value > 3 * rt_frac.error
        )
        ref_present = any(r.red and r.fit2.sf_fraction.value > RULES["rt_max_fraction"] for r in refs)
        if at_rt and high is not None:
            nums["rt_T_K"] = high.T_K
            nums["rt_sf_fraction"] = _v(tfrac.get(high.T_K))
        if refs:
            nums["reference_two_band"] = bool(ref_present)
        # shift of the SL emission against the isolated-NC reference (static red shift)
        if refs:
            ref_peak = refs[0].fit1.unc.center_eV.value
            sl_peak = low.fit1.unc.center_eV.value
            nums["sl_vs_reference_shift_meV"] = 1e3 * (ref_peak - sl_peak)
        if not low.two_band:
            status, det = FAIL, f"no resolved second band at {low.T_K:g} K (Δdeviance {low.delta_dev:.1f})"
            if refs and nums.get("sl_vs_reference_shift_meV", 0.0) > RULES["shift_min_meV"]:
                d_ref = nums["sl_vs_reference_shift_meV"]
                flags["miniband shift"].append(
                    f"single band red-shifted by {d_ref:.0f} meV from the isolated-NC reference"
                )
        elif not low.red:
            status, det = (
                FAIL,
                f"red band only {low.fit2.shift_meV} meV below the uncoupled band "
                f"(not clearly ≥ {RULES['shift_min_meV']:g})",
            )
            flags["biexciton-only"].append(f"small shift {shift:.0f} meV (biexciton/trion-like)")
        elif shift > shift_max:
            status, det = FAIL, f"shift {shift:.0f} meV above the {shift_max:g} meV expected for SF"
        elif rt_present:
            assert high is not None
            status, det = FAIL, f"red band present at {high.T_K:g} K (fraction {rt_frac})"
        elif ref_present:
            status, det = FAIL, "red band also in the isolated-NC reference"
            flags["biexciton-only"].append("red band present in isolated NCs")
        else:
            status = PASS
            pct = 100 * low.fit2.sf_fraction.value
            det = f"red band {shift:.0f} meV below, {pct:.0f} % of the light at {low.T_K:g} K"
            if at_rt:
                det += f"; absent at {high.T_K:g} K"  # type: ignore[union-attr]
        items.append(CheckItem(1, "two_band", "Two-band spectrum (new red band)", status, det, nums))
    strength["sf_fraction"] = _v(low.fit2.sf_fraction) if low is not None and low.red else None
    strength["shift_meV"] = _v(low.fit2.shift_meV) if low is not None and low.red else None

    # 2. temperature onset / reversibility
    onset: OnsetFit | None = None
    if len(tfrac) >= 4:
        T_arr = np.array(sorted(tfrac))
        fr = [tfrac[T] for T in T_arr]
        try:
            onset = onset_temperature(
                T_arr, np.array([f.value for f in fr]), np.array([max(f.error, 0.005) for f in fr])
            )
        except (ValueError, RuntimeError) as exc:
            log.warning("onset fit failed: %s", exc)
    fits["onset"] = onset
    if onset is None:
        no_red = len(Ts) >= 4 and not (low is not None and low.red)
        items.append(
            CheckItem(
                2,
                "onset",
                "Temperature onset (and reversibility)",
                FAIL if no_red else NOT_MEASURED,
                "no red band at the lowest temperature" if no_red else "fewer than 4 temperatures",
                {},
            )
        )
    else:
        nums = {
            "T_on_K": _v(onset.t_on_K),
            "step": onset.w_max.value - onset.w_min.value,
            "step_sigma": onset.significance,
            "reversible": ev.reversible,
        }
        in_range = (
            Ts[0] < onset.t_on_K.value < Ts[-1]
            and np.isfinite(onset.t_on_K.error)
            and 0 < onset.t_on_K.error < 0.3 * onset.t_on_K.value
        )
        if ev.reversible is False:
            st, det = FAIL, "red band does not come back after thermal cycling (degradation)"
        elif (
            onset.rises_on_cooling
            and in_range
            and onset.w_min.value < RULES["rt_max_fraction"] + 2 * max(onset.w_min.error, 0.01)
        ):
            st, det = PASS, f"SF weight rises on cooling below T_on = {onset.t_on_K} K"
        elif onset.rises_on_cooling and in_range:
            st, det = (
                FAIL,
                f"weight rises on cooling but stays {onset.w_min.value:.2f} at high T (no true onset)",
            )
        else:
            st, det = FAIL, "no rise of the red-band weight on cooling"
        items.append(CheckItem(2, "onset", "Temperature onset (and reversibility)", st, det, nums))
    strength["T_on_K"] = _v(onset.t_on_K) if onset is not None else None

    # 3. narrower band
    if low is None or not low.red:
        items.append(
            CheckItem(
                3,
                "narrower",
                "SF band narrower than the uncoupled band",
                NOT_MEASURED,
                "no SF-candidate band to compare",
                {},
            )
        )
    else:
        fs, fu = low.fit2.sf.fwhm_eV, low.fit2.unc.fwhm_eV  # type: ignore[union-attr]
        ratio = fs.value / fu.value
        nums = {"fwhm_sf_meV": 1e3 * fs.value, "fwhm_unc_meV": 1e3 * fu.value, "ratio": ratio}
        if ratio < RULES["ase_max_fwhm_ratio"]:
            flags["ASE"].append(f"very narrow red band (FWHM ratio {ratio:.2f})")
        if ratio < 1.0:
            st, det = PASS, f"FWHM {1e3 * fs.value:.0f} vs {1e3 * fu.value:.0f} meV"
        elif xray:
            st, det = PASS, f"broader ({ratio:.2f}×), allowed under X-rays ([001])"
        else:
            st, det = FAIL, f"SF band not narrower ({ratio:.2f}×) under optical excitation"
        items.append(CheckItem(3, "narrower", "SF band narrower than the uncoupled band", st, det, nums))

    # ---------------------------------------------------------------- decays
    dfits: list[dict[str, Any]] = []
    for d in ev.decays:
        try:
            if d.band == "sf":
                f = fit_decay(d.t_ps, d.counts, d.irf, model="sf", n_components=1)
            elif d.band == "all":
                f = fit_decay(d.t_ps, d.counts, d.irf, model="exp", n_components=2)
            else:
                f = fit_decay(d.t_ps, d.counts, d.irf, model="exp", n_components=1)
        except (ValueError, RuntimeError) as exc:
            log.warning("decay fit failed (%s band, %s K): %s", d.band, d.T_K, exc)
            continue
        dfits.append({"T_K": d.T_K, "band": d.band, "fluence_uJcm2": d.fluence_uJcm2, "fit": f})
    fits["decays"] = dfits

    def pick(band: str) -> list[dict[str, Any]]:
        return [x for x in dfits if x["band"] == band]

    sf_d, unc_d, all_d = pick("sf"), pick("unc"), pick("all")
    # 4. faster decay: pair sf/unc decays at the same (lowest) T
    tau_sf = tau_unc = None
    pair = None
    for s in sorted(sf_d, key=lambda x: x["T_K"]):
        for u in unc_d:
            if abs(u["T_K"] - s["T_K"]) <= ev.same_T_K and u["fluence_uJcm2"] == s["fluence_uJcm2"]:
                pair = (s, u)
                break
        if pair:
            break
    if pair is not None:
        tau_sf = pair[0]["fit"].components[0].tau_ps
        tau_unc = pair[1]["fit"].components[0].tau_ps
        T_pair = pair[0]["T_K"]
    elif all_d:
        a = min(all_d, key=lambda x: x["T_K"])
        comps = a["fit"].components
        tau_sf, tau_unc, T_pair = comps[0].tau_ps, comps[-1].tau_ps, a["T_K"]
    if tau_sf is None or tau_unc is None:
        items.append(
            CheckItem(
                4, "faster", "Faster decay of the red band", NOT_MEASURED, "no band-resolved decays", {}
            )
        )
    else:
        ratio = tau_sf.value / tau_unc.value
        rerr = ratio * math.hypot(tau_sf.error / tau_sf.value, tau_unc.error / tau_unc.value)
        nums = {
            "T_K": T_pair,
            "tau_sf_ps": _v(tau_sf),
            "tau_unc_ps": _v(tau_unc),
            "ratio": ratio,
            "ratio_err": rerr,
        }
        # trends of τ_SF with T and with fluence
        if len({x["T_K"] for x in sf_d}) >= 3:
            tr = lifetime_vs_temperature(
                np.array([x["T_K"] for x in sf_d]),
                np.array([x["fit"].components[0].tau_ps.value for x in sf_d]),
                np.array([x["fit"].components[0].tau_ps.error for x in sf_d]),
            )
            fits["tau_sf_vs_T"] = tr
            nums["tau_sf_vs_T"] = tr.direction
        fl = [x for x in sf_d if x["fluence_uJcm2"]]
        if len({x["fluence_uJcm2"] for x in fl}) >= 3:
            tr2 = lifetime_vs_fluence(
                np.array([x["fluence_uJcm2"] for x in fl]),
                np.array([x["fit"].components[0].tau_ps.value for x in fl]),
                np.array([x["fit"].components[0].tau_ps.error for x in fl]),
            )
            fits["tau_sf_vs_fluence"] = tr2
            nums["tau_sf_vs_fluence"] = tr2.direction
        if ratio + 2 * rerr <= RULES["faster_max_ratio"] + 0.1 and ratio <= RULES["faster_max_ratio"]:
            st, det = PASS, f"τ_SF/τ_unc = {ratio:.2f} ({tau_sf} vs {tau_unc} ps at {T_pair:g} K)"
        else:
            lim = RULES["faster_max_ratio"]
            if ratio <= lim:  # small, but not significantly so
                st, det = FAIL, (f"τ_red/τ_unc = {ratio:.2f} ± {rerr:.2f}: not significantly ≤ {lim:g} "
                                 f"(2σ upper bound {ratio + 2 * rerr:.2f} > {lim + 0.1:g})")
            else:
                st, det = FAIL, f"τ_red/τ_unc = {ratio:.2f}, not ≤ {lim:g}"
            if ratio >= RULES["slower_min_ratio"]:
                flags["miniband shift"].append(f"red band not accelerated (τ ratio {ratio:.2f})")
        items.append(CheckItem(4, "faster", "Faster decay of the red band", st, det, nums))
        strength["tau_sf_ps"] = _v(tau_sf)
        strength["acceleration"] = 1.0 / ratio if ratio > 0 else None

    # 5. delayed rise
    rise_fit: DecayFit | None = min(sf_d, key=lambda x: x["T_K"])["fit"] if sf_d else None
    if rise_fit is None or rise_fit.tau_rise_ps is None:
        items.append(
            CheckItem(5, "delayed_rise", "Delayed rise (τ_D > 0)", NOT_MEASURED, "no SF-band decay", {})
        )
    else:
        r = rise_fit.tau_rise_ps
        dd = rise_fit.rise_delta_deviance if rise_fit.rise_delta_deviance is not None else 0.0
        sig = math.sqrt(max(dd, 0.0))
        nums = {
            "tau_rise_ps": _v(r),
            "peak_delay_ps": _v(rise_fit.peak_delay_ps),
            "delta_deviance": dd,
            "sigma": sig,
        }
        if sig >= RULES["rise_min_sigma"]:
            st, det = (
                PASS,
                (
                    f"rise time τ_D = {r} ps (peak delayed by {rise_fit.peak_delay_ps} ps; "
                    f"likelihood ratio {sig:.1f}σ)"
                ),
            )
        elif _fwhm(rise_fit.irf, rise_fit.t_ps) > RULES["rise_max_irf_fwhm_ps"]:
            fw = _fwhm(rise_fit.irf, rise_fit.t_ps)
            st, det = (
                NOT_MEASURED,
                f"no resolved rise, but the IRF ({fw:.0f} ps FWHM) cannot resolve a few-ps τ_D",
            )
        else:
            st, det = FAIL, f"no rise: τ_D = {r.value:.3g} ps, likelihood ratio {sig:.1f}σ"
            tau_red = rise_fit.components[0].tau_ps.value
            if tau_red < RULES["prompt_max_tau_ps"]:
                flags["ASE"].append(f"prompt red band (τ = {tau_red:.1f} ps) without build-up")
        nums["irf_fwhm_ps"] = _fwhm(rise_fit.irf, rise_fit.t_ps)
        items.append(CheckItem(5, "delayed_rise", "Delayed rise (τ_D > 0)", st, det, nums))
        strength["tau_rise_ps"] = _v(r)

    # 6. fluence exponent
    fl_groups = {T: g for T, g in groups.items() if len({p.fluence for p in g if p.fluence}) >= 3}
    pl_sf = pl_unc = None
    if fl_groups:
        T_f = min(fl_groups)
        by_f: dict[float, _SpecPoint] = {}
        for p in fl_groups[T_f]:
            if p.fluence and p.fluence not in by_f:  # one spectrum per fluence (the first given)
                by_f[p.fluence] = p
        g = [by_f[k] for k in sorted(by_f)]
        fvals = np.array([p.fluence for p in g], dtype=float)
        if not g[-1].two_band:
            g = []
        try:
            if not g:
                raise ValueError("no red band at the highest fluence")
            # band positions and widths fixed from the highest fluence (physics.md P7 step 3), so that
            # weak bands at low fluence give meaningful areas (possibly ~0) instead of wandering
            top = g[-1].fit2
            fx = {
                "center_unc": top.unc.center_eV.value,
                "shift_sf": top.shift_meV.value / 1e3,
                "fwhm_unc": top.unc.fwhm_eV.value,
                "fwhm_sf": top.sf.fwhm_eV.value,  # type: ignore[union-attr]
            }
            refits = [
                decompose(p.fit2.energy_eV, p.fit2.counts, n_bands=2, fixed=fx, read_noise=p.read_noise)
                for p in g
            ]
            fits["fluence_series"] = [
                {"T_K": T_f, "fluence_uJcm2": float(f_), "fit": r_}
                for f_, r_ in zip(fvals, refits, strict=True)
            ]
            expo = np.array([p.exposure_s for p in g], dtype=float)
            a_sf = np.array([r_.sf.area.value for r_ in refits]) / expo  # type: ignore[union-attr]
            e_sf = np.array([r_.sf.area.error for r_ in refits]) / expo  # type: ignore[union-attr]
            a_un = np.array([r_.unc.area.value for r_ in refits]) / expo
            e_un = np.array([r_.unc.area.error for r_ in refits]) / expo
            pl_sf = power_law(fvals, a_sf, np.maximum(np.nan_to_num(e_sf, nan=1.0), 1.0 / expo))
            pl_unc = power_law(fvals, a_un, np.maximum(np.nan_to_num(e_un, nan=1.0), 1.0 / expo))
        except (ValueError, RuntimeError) as exc:
            log.warning("power-law fit failed: %s", exc)
    fits["power_law_sf"] = pl_sf
    fits["power_law_unc"] = pl_unc
    if pl_sf is None or pl_unc is None:
        items.append(
            CheckItem(
                6,
                "fluence_exponent",
                "Superlinear fluence exponent (α_SF > α_unc, ≤ 2)",
                NOT_MEASURED,
                "no fluence series (≥ 3 fluences at one T)",
                {},
            )
        )
    else:
        a_s, a_u = pl_sf.exponent, pl_unc.exponent
        diff = a_s.value - a_u.value
        derr = math.hypot(a_s.error, a_u.error)
        thr = pl_sf.threshold or {}
        threshold = (
            thr.get("delta_chi2", 0.0) >= RULES["threshold_delta_chi2"]
            and thr.get("slope_above", 0) - thr.get("slope_below", 0) >= RULES["threshold_slope_jump"]
            and thr.get("slope_above", 0) >= RULES["alpha_ase"]
        )
        nums = {
            "alpha_sf": _v(a_s),
            "alpha_unc": _v(a_u),
            "threshold": thr,
            "threshold_detected": threshold,
            "alpha_sf_chi2_dof": pl_sf.chi2_dof,
        }
        # steepest growth between neighbouring fluences (a threshold shows up as a jump)
        lf, la = np.log(pl_sf.fluence), np.log(np.maximum(pl_sf.intensity, 1e-300))
        le = pl_sf.intensity_err / np.maximum(pl_sf.intensity, 1e-300)
        loc = np.diff(la) / np.diff(lf)
        loc_err = np.hypot(le[1:], le[:-1]) / np.diff(lf)
        k_max = int(np.argmax(loc - 3 * loc_err)) if loc.size else -1
        steep = k_max >= 0 and loc[k_max] - 3 * loc_err[k_max] >= RULES["alpha_local_threshold"]
        if steep:
            nums["local_slope_max"] = float(loc[k_max])
            nums["local_slope_between"] = [float(pl_sf.fluence[k_max]), float(pl_sf.fluence[k_max + 1])]
        threshold = threshold or steep
        nums["threshold_detected"] = threshold
        if threshold:
            where = (
                f"{pl_sf.fluence[k_max]:g}–{pl_sf.fluence[k_max + 1]:g}"
                if steep
                else f"{thr.get('break_fluence')}"
            )
            flags["ASE"].append(f"threshold in the fluence dependence near {where} µJ/cm²")
        if a_s.value - 2 * a_s.error > RULES["alpha_ase"]:
            flags["ASE"].append(f"exponent {a_s} beyond the quadratic limit")
        elif RULES["alpha_xx_low"] <= a_s.value <= RULES["alpha_ase"]:
            flags["biexciton-only"].append(f"red-band exponent {a_s} ≈ 2 (⟨N⟩² biexciton growth)")
        if a_s.value <= RULES["linear_max_alpha"] and abs(diff) < RULES["alpha_min_excess"]:
            flags["miniband shift"].append(f"red band grows like the uncoupled band (α = {a_s} vs {a_u})")
        ok = (
            diff >= RULES["alpha_min_excess"]
            and diff >= 3 * derr
            and a_s.value <= RULES["alpha_max"] + 2 * a_s.error
            and not threshold
        )
        if ok:
            st, det = PASS, f"α_SF = {a_s} vs α_unc = {a_u}"
        else:
            why = (
                "threshold"
                if threshold
                else (
                    "above the quadratic limit"
                    if a_s.value > RULES["alpha_max"] + 2 * a_s.error
                    else "not above α_unc"
                )
            )
            st, det = FAIL, f"α_SF = {a_s} vs α_unc = {a_u} ({why})"
        items.append(
            CheckItem(
                6, "fluence_exponent", "Superlinear fluence exponent (α_SF > α_unc, ≤ 2)", st, det, nums
            )
        )
        strength["alpha_sf"] = _v(a_s)

    # 7. bunching
    g2fits: list[G2Fit] = []
    # photon weights of the SF and uncoupled bands for the Technion double-exponential fit, from the
    # spectrum closest in temperature to the g2 (an approximation when the excitations differ)
    red_pts = [p for p in pts if p.red]
    for g2r in ev.g2:
        wts = None
        if red_pts:
            near = min(red_pts, key=lambda p: abs(p.T_K - (g2r.T_K if g2r.T_K is not None else p.T_K)))
            fsf = float(near.fit2.sf_fraction.value)
            wts = [fsf, 1.0 - fsf]
        try:
            g2fits.append(
                fit_bunching(g2r.tau_ps, g2r.g2, irf_fwhm_ps=g2r.irf_fwhm_ps, g2_err=g2r.g2_err, weights=wts)
            )
        except (ValueError, RuntimeError) as exc:
            log.warning("g2 fit failed: %s", exc)
    fits["g2"] = g2fits
    if not g2fits:
        items.append(CheckItem(7, "bunching", "Photon bunching in g2", NOT_MEASURED, "no g2", {}))
    else:
        gf = max(g2fits, key=lambda x: x.significance)
        nums = {
            "amplitude": _v(gf.amplitude),
            "sigma": gf.significance,
            "tau_exp_ps": _v(gf.tau_exp_ps),
            "tau_lorentz_ps": _v(gf.tau_lorentz_ps),
            "double_taus_ps": [_v(x) for x in gf.double_taus_ps] if gf.double_taus_ps else None,
            "double_weights": list(gf.double_weights) if gf.double_weights else None,
        }
        if gf.significance >= RULES["bunching_min_sigma"] and gf.amplitude.value > 0:
            st, det = PASS, f"g2(0) − 1 = {gf.amplitude} ({gf.significance:.0f}σ), τ = {gf.tau_exp_ps} ps"
            if tau_sf is not None and not (0.2 < gf.tau_exp_ps.value / tau_sf.value < 5):
                det += f"; width does not match τ_SF = {tau_sf} ps"
        else:
            st, det = FAIL, f"no significant bunching ({gf.significance:.1f}σ)"
            flags["ASE"].append("no photon bunching")
        items.append(CheckItem(7, "bunching", "Photon bunching in g2", st, det, nums))
        strength["bunching_amplitude"] = _v(gf.amplitude)

    # 8. coherence
    coh = ev.coherence or {}
    if not coh:
        items.append(
            CheckItem(
                8,
                "coherence",
                "Coherence features (G1, beats, ringing)",
                NOT_MEASURED,
                "no coherence measurement",
                {},
            )
        )
    else:
        good = bool(coh.get("ringing") or coh.get("beats") or (coh.get("g1_ratio", 0) > 1.5))
        items.append(
            CheckItem(
                8,
                "coherence",
                "Coherence features (G1, beats, ringing)",
                PASS if good else FAIL,
                str(coh),
                dict(coh),
            )
        )
        if not good:
            flags["ASE"].append("no coherence features")

    # 9. no ground-state absorption at E_SF
    if not ev.absorption or low is None or not low.red:
        items.append(
            CheckItem(
                9,
                "no_absorption",
                "No ground-state absorption at E_SF",
                NOT_MEASURED,
                "no absorption spectrum" if not ev.absorption else "no SF band to test",
                {},
            )
        )
    else:
        ab = min(ev.absorption, key=lambda a: abs(a.T_K - low.T_K))
        e_sf = low.fit2.sf.center_eV.value  # type: ignore[union-attr]
        e_unc = low.fit2.unc.center_eV.value
        ea, aa = np.asarray(ab.energy_eV, float), np.asarray(ab.absorbance, float)
        order = np.argsort(ea)
        ea, aa = ea[order], aa[order]
        win = (ea >= e_sf - 0.05) & (ea <= e_unc + 0.15)
        edge_i = int(np.argmax(np.where(win, aa, -np.inf)))
        a_sf = float(np.interp(e_sf, ea, aa))
        base = float(np.min(aa[(ea < e_sf - 0.05)])) if np.any(ea < e_sf - 0.05) else 0.0
        ratio = (a_sf - base) / max(aa[edge_i] - base, 1e-12)
        nums = {"E_sf_eV": e_sf, "E_edge_eV": float(ea[edge_i]), "ratio": ratio, "T_K": ab.T_K}
        if ratio <= RULES["absorption_max_ratio"]:
            st, det = PASS, f"A(E_SF)/A(edge) = {ratio:.2f}; edge at {ea[edge_i]:.3f} eV, SF at {e_sf:.3f} eV"
        else:
            st, det = FAIL, f"absorbs at E_SF (A(E_SF)/A(edge) = {ratio:.2f})"
            if ratio >= RULES["absorption_miniband_ratio"]:
                flags["miniband shift"].append(f"ground-state absorption at E_SF (ratio {ratio:.2f})")
        items.append(CheckItem(9, "no_absorption", "No ground-state absorption at E_SF", st, det, nums))

    # 10. exclusions
    named = {k: v for k, v in flags.items() if v}
    if not (ev.spectra or ev.decays or ev.g2):
        items.append(
            CheckItem(
                10,
                "exclusions",
                "Exclusions (biexciton, miniband, ASE, degradation)",
                NOT_MEASURED,
                "no data",
                {},
            )
        )
    elif named:
        items.append(
            CheckItem(
                10,
                "exclusions",
                "Exclusions (biexciton, miniband, ASE, degradation)",
                FAIL,
                "; ".join(f"{k}: {', '.join(v)}" for k, v in named.items()),
                {k: len(v) for k, v in named.items()},
            )
        )
    else:
        items.append(
            CheckItem(
                10,
                "exclusions",
                "Exclusions (biexciton, miniband, ASE, degradation)",
                PASS,
                "no confuser signature",
                {},
            )
        )

    verdict, confuser, reasons = _decide(items, flags)
    return SFVerdict(
        verdict=verdict,
        confuser=confuser,
        reasons=tuple(reasons),
        items=tuple(items),
        strength=strength,
        confuser_flags={k: list(v) for k, v in flags.items()},
        sample=ev.sample,
        excitation=ev.excitation,
        fits=fits,
    )


def _decide(items: list[CheckItem], flags: dict[str, list[str]]) -> tuple[str, str | None, list[str]]:
    st = {it.key: it.status for it in items}
    passes = [it for it in items if it.status == PASS and it.key != "exclusions"]
    fails = [it for it in items if it.status == FAIL and it.key != "exclusions"]
    core = ("two_band", "onset", "faster")
    score = {k: len(v) for k, v in flags.items()}
    best = max(score, key=lambda k: score[k]) if score else None
    reasons: list[str] = []
    if best is not None and score[best] >= RULES["confuser_min_flags"]:
        reasons.append(f"{best} signatures: " + "; ".join(flags[best]))
        reasons += [f"{it.title}: {it.detail}" for it in fails]
        return "not SF", best, reasons
    if all(st.get(k) == PASS for k in core) and len(passes) >= RULES["sf_min_passes"] and len(fails) <= 1:
        reasons.append(
            f"{len(passes)} checklist items pass, including the two-band spectrum, the onset on "
            "cooling and the accelerated decay"
        )
        reasons += [f"{it.title}: {it.detail}" for it in passes]
        reasons += [f"(fails) {it.title}: {it.detail}" for it in fails]
        return "SF", None, reasons
    if st.get("two_band") == FAIL or len(fails) >= 3:
        conf = best if best is not None and score[best] >= 1 else "ordinary PL"
        reasons.append("core SF signatures fail: " + ", ".join(it.title for it in fails))
        if conf in flags and flags[conf]:
            reasons.append(f"likely {conf}: " + "; ".join(flags[conf]))
        else:
            reasons.append("likely ordinary PL: no SF band and no confuser signature")
        reasons += [f"{it.title}: {it.detail}" for it in fails]
        return "not SF", conf, reasons
    missing = [it.title for it in items if it.key in core and it.status != PASS]
    reasons.append(
        "not enough evidence: " + (", ".join(missing) if missing else f"only {len(passes)} items pass")
    )
    reasons += [f"{it.title}: {it.detail}" for it in items if it.status != NOT_MEASURED]
    return "inconclusive", None, reasons
