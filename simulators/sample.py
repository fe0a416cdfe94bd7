"""The virtual sample: a CsPbBr3 nanocrystal superlattice (or one of its confusers).

This module is the physics oracle of sflab (decision 0002). It knows nothing about instruments: it
says how many photons of which colour leave the sample, and when, for the conditions the lab
imposes (:class:`Conditions`). The light path, CCD and single-photon detectors are in
:mod:`simulators.optics`, :mod:`simulators.ccd`, :mod:`simulators.detectors` and
:mod:`simulators.tags`.

Model (numbers and sources in ``../shared/reference/physics.md``; every parameter lives in a preset
TOML file with its source, see ``simulators/presets/``):

* **Excitation density** ⟨N⟩ per NC: σ_abs·j for a laser pulse; for an X-ray event the local density
  of the excitation cloud (``xray.local_N``) while the number of excitations per event follows the
  deposited energy (:mod:`simulators.excitation`).
* **Bands** (each a Gaussian in energy with a smooth T/⟨N⟩-dependent centre and width):
  ``uncoupled`` (single excitons and trions of uncoupled NCs), ``xx`` (biexcitons, a few tens of meV
  below), ``sf`` (the superfluorescent band of coupled NCs), ``ase`` (amplified spontaneous emission,
  confuser) and ``miniband`` (statically coupled domains, confuser).
* **SF weight**: the fraction of excitations captured by the coherent state,
  η_c = w_max · C(T, ⟨N⟩) · s(⟨N⟩). C is a logistic in T around the onset T_on where the pure
  dephasing rate γ(T) = γ₀ + a·T³ ([002] §3.2) equals the phase-locking rate
  Γ_c(⟨N⟩) = Γ_c0·(1 + ⟨N⟩/N_Γ) (more excitations per domain lock faster), so T_on rises with ⟨N⟩;
  s(⟨N⟩) = 1 − exp(−(⟨N⟩/N_s)^β) is the cooperativity that makes I_SF ∝ f^(1+β) at low density.
* **SF dynamics**: N_c = N_c0·(1 + ⟨N⟩/N_ch)^κ coupled NCs; τ_SF = τ_X(T)/N_c ([002]: τ_R ∝ τ_n/N);
  delay τ_D = κ_D·τ_SF·ln N_c ([002]: τ_D ∝ (lg N)/N). Time profile: a delayed burst whose
  build-up is the leading half of a sech² of width τ_D/4 (so it starts from ≈ 0 at t = 0 and peaks
  at τ_D) and whose release is exponential with τ_SF — the domain-averaged tail of mean-field sech²
  bursts, and what [000] reports as the SF lifetime (a single mean-field sech² would make the 1/e
  time 2.2 τ_R) — plus optional Burnham–Chiao echoes (sech² bursts) whose size grows with ⟨N⟩.
* **Uncoupled dynamics**: the isolated-NC model of [003] (physics.md §4): GOS lifetime
  τ_X(T) = τ_low·(1 + b·n_BE(E_g, T)) saturating below ~70 K; Poisson X/XX occupation; Auger with
  re-excitation probability ξ; k_XX = 4 k_X; a trion share; optional substrate quenching (SL on Cu).
* Thermal quenching of all emission, Y(T) = 1 / (1 + C·e^{−E_q/kT}).

Nothing here is a lookup table of the papers' points; the presets hold physical parameters and the
tests in ``tests/simulators/test_fidelity.py`` measure the papers' numbers from simulated data.
"""

from __future__ import annotations

import copy
import logging
import math
import tomllib
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from simulators import excitation as _exc

log = logging.getLogger(__name__)

__all__ = ["Conditions", "Sample", "BANDS", "PRESET_DIR", "list_presets", "dumps_toml"]

PRESET_DIR = Path(__file__).with_name("presets")
BANDS: tuple[str, ...] = ("uncoupled", "xx", "sf", "ase", "miniband")
K_B_MEV = 0.08617333  # meV / K
HC_EV_NM = _exc.HC_EV_NM


@dataclass
class Conditions:
    """What the lab imposes on the sample right now (decision 0002)."""

    T_K: float
    fluence_uJcm2: float = 0.0
    rep_rate_Hz: float = 76e6
    photon_eV: float = 3.06
    xray_kV: float = 0.0
    xray_mA: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def list_presets() -> list[str]:
    """Names of the preset sample files shipped in ``simulators/presets``."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def _bose(E_meV: float, T: float) -> float:
    if T <= 0.0:
        return 0.0
    x = E_meV / (K_B_MEV * T)
    return 0.0 if x > 700 else 1.0 / math.expm1(x)


def _logistic(x: float) -> float:
    if x > 700:
        return 0.0
    return 1.0 / (1.0 + math.exp(x))


# --------------------------------------------------------------------------------------------------
# the derived state for one excitation density


@dataclass(frozen=True)
class BandState:
    """Everything about one band at one (T, ⟨N⟩, source): photons per NC and its time profile."""

    name: str
    photons_per_nc: float
    E_eV: float
    fwhm_meV: float
    # profile: kind plus numbers (see Sample._profile)
    kind: str
    p: tuple[float, ...]


@dataclass(frozen=True)
class Excited:
    """The derived state of the sample after one excitation at density ⟨N⟩."""

    N: float
    T_K: float
    xray: bool
    bands: dict[str, BandState]
    info: dict[str, float]

    @property
    def photons_per_nc(self) -> float:
        return float(sum(b.photons_per_nc for b in self.bands.values()))


class Sample:
    """A virtual sample built from a parameter dict (normally a preset TOML file).

    ``params`` is nested: ``{section: {key: {"value": v, "unit": u, "source": s}}}`` plus a ``meta``
    section of plain strings. :meth:`p` reads a value, :meth:`replace` returns a modified copy.
    """

    def __init__(self, params: dict[str, Any], *, seed: int = 0, name: str | None = None) -> None:
        self.params: dict[str, Any] = copy.deepcopy(params)
        self.seed = int(seed)
        self.name = name or str(self.params.get("meta", {}).get("name", "custom"))
        self._validate()
        self._profile_cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    # ---- construction --------------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str, *, seed: int = 0) -> Sample:
        path = PRESET_DIR / f"{name}.toml"
        if not path.exists():
            raise ValueError(f"unknown sample preset {name!r}; known: {', '.join(list_presets())}")
        return cls.from_toml(path, seed=seed)

    @classmethod
    def from_toml(cls, path: str | Path, *, seed: int = 0) -> Sample:
        path = Path(path)
        with path.open("rb") as fh:
            params = tomllib.load(fh)
        log.debug("loaded sample %s from %s", params.get("meta", {}).get("name"), path)
        return cls(params, seed=seed)

    @classmethod
    def from_toml_string(cls, text: str, *, seed: int = 0) -> Sample:
        return cls(tomllib.loads(text), seed=seed)

    def to_toml(self) -> str:
        """The parameters as TOML text; ``Sample.from_toml_string(s.to_toml()).params == s.params``."""
        return dumps_toml(self.params)

    def replace(self, changes: dict[str, float], *, seed: int | None = None) -> Sample:
        """A copy with some values changed, keys as ``"section.key"`` (e.g. ``"sf.w_max"``)."""
        params = copy.deepcopy(self.params)
        for dotted, value in changes.items():
            sec, key = dotted.split(".", 1)
            entry = params[sec][key]
            if isinstance(entry, dict):
                entry["value"] = value
                entry["source"] = "override"
            else:
                params[sec][key] = value
        return Sample(params, seed=self.seed if seed is None else seed)

    def _validate(self) -> None:
        for sec in ("excitation", "uncoupled", "multiexciton", "sf", "ase", "miniband", "xray", "thermal",
                    "absorption"):
            if sec not in self.params:
                raise ValueError(f"sample {self.name!r}: missing section [{sec}]")
        for sec, table in self.params.items():
            if sec == "meta":
                continue
            for key, entry in table.items():
                if not isinstance(entry, dict) or "value" not in entry or "source" not in entry:
                    raise ValueError(f"sample {self.name!r}: {sec}.{key} needs value and source")

    def p(self, section: str, key: str, default: float | None = None) -> Any:
        try:
            return self.params[section][key]["value"]
        except KeyError:
            if default is None:
                raise
            return default

    def values(self) -> dict[str, Any]:
        """Flat ``{"section.key": value}`` view of every parameter."""
        out: dict[str, Any] = {}
        for sec, table in self.params.items():
            if sec == "meta":
                continue
            for key, entry in table.items():
                out[f"{sec}.{key}"] = entry["value"]
        return out

    # ---- elementary functions of T ----------------------------------------------------------------
    def E_uncoupled_eV(self, T: float) -> float:
        """Band-edge emission of uncoupled NCs: Bose–Einstein renormalisation with saturation."""
        x = self.p("uncoupled", "E_A_eV") * _bose(self.p("uncoupled", "E_theta_K") * K_B_MEV, T)
        s = self.p("uncoupled", "E_sat_eV")
        return self.p("uncoupled", "E0_eV") + x / (1.0 + x / s) + self.p("uncoupled", "static_shift_meV") * 1e-3

    def fwhm_uncoupled_meV(self, T: float) -> float:
        hom = self.p("uncoupled", "fwhm_LO_meV") * _bose(self.p("uncoupled", "E_LO_meV"), T)
        return math.hypot(self.p("uncoupled", "fwhm_inh_meV"), hom)

    def tau_X_ps(self, T: float) -> float:
        """Single-exciton lifetime of an isolated NC (GOS: fast and flat below ~70 K)."""
        return self.p("uncoupled", "tau_low_ps") * (
            1.0 + self.p("uncoupled", "gos_b") * _bose(self.p("uncoupled", "gos_E_meV"), T))

    def thermal_yield(self, T: float) -> float:
        C = self.p("thermal", "quench_C")
        return 1.0 / (1.0 + C * math.exp(-self.p("thermal", "quench_E_meV") / (K_B_MEV * max(T, 1e-3))))

    def dephasing_rate(self, T: float) -> float:
        """Pure dephasing rate γ(T) = γ₀ + a·T³ in ps⁻¹ ([002] §3.2)."""
        return self.p("sf", "gamma0_per_ps") + self.p("sf", "a_T3_per_ps_K3") * T**3

    def locking_rate(self, N: float) -> float:
        """Phase-locking (coherent coupling) rate of a domain holding ⟨N⟩ excitations per NC, ps⁻¹."""
        return self.p("sf", "lock0_per_ps") * (1.0 + N / self.p("sf", "lock_N"))

    def onset_K(self, N: float) -> float:
        """SF onset temperature (γ(T_on) = Γ_c(⟨N⟩)); 0 if SF never wins."""
        if not self.p("sf", "enabled"):
            return 0.0
        d = self.locking_rate(N) - self.p("sf", "gamma0_per_ps")
        return (d / self.p("sf", "a_T3_per_ps_K3")) ** (1.0 / 3.0) if d > 0 else 0.0

    def coherence(self, T: float, N: float) -> float:
        """Logistic coherence factor C(T, ⟨N⟩) in [0, 1]."""
        T_on = self.onset_K(N)
        if T_on <= 0:
            return 0.0
        return _logistic((T - T_on) / (self.p("sf", "onset_width_rel") * T_on))

    # ---- the state after one excitation ----------------------------------------------------------
    def excited(self, T: float, N: float, *, xray: bool = False) -> Excited:
        """Band photons per NC and their time profiles after one excitation at density ``N``."""
        return _excited_cached(self, float(T), float(N), bool(xray))

    def _excited(self, T: float, N: float, xray: bool) -> Excited:
        p = self.p
        Y = self.thermal_yield(T)
        tauX = self.tau_X_ps(T)
        # under X-rays the cluster of simultaneous neighbouring excitations couples even "uncoupled"
        # NCs weakly ([001] SI S8: coupling of any strength shortens the lifetime); the speed-up needs
        # the same coherence as SF, so it fades on warming
        sf_on = bool(p("sf", "enabled"))
        coh = self.coherence(T, N) if sf_on else 0.0
        speed = 1.0 + (p("xray", "unc_speedup") - 1.0) * coh if xray else 1.0
        # uncoupled single exciton rates (ps^-1)
        phiX0 = p("uncoupled", "phi_X")
        k_rad = speed * phiX0 / tauX
        k_nr = (1.0 - phiX0) / tauX
        tau_sub = p("uncoupled", "tau_sub_ps")
        k_sub = 1.0 / tau_sub if tau_sub > 0 else 0.0
        kX = k_rad + k_nr + k_sub
        phi_X = k_rad / kX
        k_XX = p("multiexciton", "kXX_over_kX") * k_rad
        k_AR = 1.0 / p("multiexciton", "tau_AR_ps")
        # a biexciton decays radiatively, by Auger (leaving an X with probability xi) or by losing one of
        # its two excitons to the substrate (leaving an X)
        K = k_XX + k_AR + 2.0 * k_sub
        xi = p("multiexciton", "xi")
        feed = k_XX + xi * k_AR + 2.0 * k_sub
        cX = feed / (K - kX) if abs(K - kX) > 1e-12 else 0.0
        # trions: a charged fraction with a faster decay
        f_tr = p("multiexciton", "trion_fraction")
        kT = kX / p("multiexciton", "trion_tau_ratio")
        phi_T = p("multiexciton", "trion_phi")
        cT = feed / (K - kT) if abs(K - kT) > 1e-12 else 0.0
        # trap filling: weakly superlinear single-exciton emission (exponent 1 + eps at low N)
        eps = p("uncoupled", "trap_eps")
        trap = (N / (N + p("uncoupled", "trap_N"))) ** eps if N > 0 else 0.0

        # superfluorescent share
        s_N = -math.expm1(-((N / p("sf", "coop_N")) ** p("sf", "coop_beta"))) if (sf_on and N > 0) else 0.0
        eta_c = p("sf", "w_max") * coh * s_N
        # ASE (confuser): above a density threshold a growing share of the excitations is emitted by
        # stimulated emission (threshold, free exponent, saturation; prompt, no delay)
        eta_ase = 0.0
        if p("ase", "enabled") and (not xray or p("ase", "xray_enabled")):
            dN = p("ase", "threshold_width_N")
            x = dN * math.log1p(math.exp(min((N - p("ase", "threshold_N")) / dN, 700.0)))
            z = (x / p("ase", "sat_N")) ** p("ase", "exponent")
            eta_ase = p("ase", "gain") * z / (1.0 + z)
        m_mb = p("miniband", "fraction") if p("miniband", "enabled") else 0.0
        Nu = max(N * (1.0 - eta_c - m_mb - eta_ase), 0.0)
        P1 = Nu * math.exp(-Nu)
        P2 = -math.expm1(-Nu) - P1
        bands: dict[str, BandState] = {}
        E_unc = self.E_uncoupled_eV(T)
        w_unc = self.fwhm_uncoupled_meV(T)
        x_int = (P1 + P2 * feed / K)
        ph_X = (1 - f_tr) * phi_X * x_int * trap * Y
        ph_T = f_tr * phi_T * x_int * trap * Y
        bands["uncoupled"] = BandState(
            "uncoupled", ph_X + ph_T, E_unc, w_unc, "unc",
            ((1 - f_tr) * k_rad * trap * Y, P1 + cX * P2, kX, cX * P2, K,
             f_tr * phi_T * kT * trap * Y, P1 + cT * P2, kT, cT * P2))
        ph_XX = P2 * k_XX / K * Y
        bands["xx"] = BandState("xx", ph_XX, E_unc - p("multiexciton", "xx_binding_meV") * 1e-3,
                                w_unc * p("multiexciton", "xx_width_ratio"), "exp", (K,))
        # SF band
        N_c = p("sf", "N_c0") * (1.0 + N / p("sf", "N_c_half")) ** p("sf", "N_c_kappa")
        tau_sf = tauX / N_c
        tau_D = p("sf", "kappa_D") * tau_sf * math.log(max(N_c, 1.0 + 1e-9))
        ring = p("sf", "ringing_amp") * N / (N + p("sf", "ringing_N0"))
        shift = p("sf", "shift0_meV") + p("sf", "shift_N_meV") * N / (N + p("sf", "shift_N_half"))
        fw_sf = math.hypot(p("sf", "fwhm0_meV"), p("sf", "fwhm_LO_meV") * _bose(p("uncoupled", "E_LO_meV"), T))
        if xray:
            shift += p("xray", "sf_shift_extra_meV")
            fw_sf += p("xray", "sf_fwhm_extra_meV")
        ph_sf = eta_c * N * p("sf", "phi_sf") * Y
        bands["sf"] = BandState("sf", ph_sf, E_unc - shift * 1e-3, fw_sf, "sf",
                                (tau_D, tau_sf, ring, p("sf", "ringing_period_rel")))
        ph_ase = eta_ase * N * Y
        bands["ase"] = BandState("ase", ph_ase, E_unc - p("ase", "shift_meV") * 1e-3, p("ase", "fwhm_meV"),
                                 "exp", (1.0 / p("ase", "tau_ps"),))
        # static miniband coupling (confuser): red-shifted at every T, same slow dynamics
        ph_mb = m_mb * N * p("miniband", "phi") * trap * Y
        bands["miniband"] = BandState(
            "miniband", ph_mb, E_unc - p("miniband", "shift_meV") * 1e-3,
            w_unc * p("miniband", "width_ratio"), "exp", (1.0 / p("miniband", "tau_ps"),))
        info = {
            "N": N, "eta_c": eta_c, "coherence": coh, "cooperativity": s_N, "T_onset_K": self.onset_K(N),
            "dephasing_rate_per_ps": self.dephasing_rate(T), "locking_rate_per_ps": self.locking_rate(N),
            "N_coupled": N_c, "tau_sf_ps": tau_sf, "tau_D_ps": tau_D, "tau_rise_ps": tau_D / 4.0,
            "ringing_amplitude": ring, "sf_shift_meV": shift,
            "tau_X_isolated_ps": tauX, "tau_X_ps": 1.0 / kX, "tau_XX_ps": 1.0 / K, "tau_trion_ps": 1.0 / kT,
            "phi_X": phi_X, "phi_XX": k_XX / K, "phi_AR": k_AR / K, "c_feed": cX,
            "P1": P1, "P2": P2, "thermal_yield": Y, "trap_factor": trap,
            # amplitude ratio A/B of the total-light decay B e^{-kX t} + A e^{-K t} (physics.md §4.3)
            "xx_x_amplitude_ratio": ((k_XX - cX * k_rad) * P2 / (k_rad * (P1 + cX * P2))
                                     if P1 + P2 > 0 else 0.0),
        }
        return Excited(N, T, xray, bands, info)

    # ---- time profiles -----------------------------------------------------------------------------
    @staticmethod
    def _band_rate(b: BandState, t: np.ndarray) -> np.ndarray:
        """Photon emission rate of a band (photons per NC per ps) at times ``t`` ≥ 0 after excitation."""
        t = np.asarray(t, dtype=float)
        out = np.zeros_like(t)
        pos = t >= 0
        tp = t[pos]
        if b.photons_per_nc <= 0:
            return out
        if b.kind == "exp":
            (k,) = b.p
            out[pos] = b.photons_per_nc * k * np.exp(-k * tp)
        elif b.kind == "unc":
            aX, bX, kX, dX, K, aT, bT, kT, dT = b.p
            out[pos] = (aX * (bX * np.exp(-kX * tp) - dX * np.exp(-K * tp))
                        + aT * (bT * np.exp(-kT * tp) - dT * np.exp(-K * tp)))
            np.maximum(out, 0.0, out=out)
        elif b.kind == "sf":
            out[pos] = b.photons_per_nc * _sf_shape(tp, *b.p) / _sf_norm(*b.p)
        else:  # pragma: no cover
            raise ValueError(b.kind)
        return out

    def _tau_max_ps(self, ex: Excited) -> float:
        taus = [ex.info["tau_X_ps"], ex.info["tau_trion_ps"], ex.info["tau_XX_ps"], ex.info["tau_sf_ps"]]
        if ex.bands["miniband"].photons_per_nc > 0:
            taus.append(self.p("miniband", "tau_ps"))
        return max(taus)

    def profile_table(self, ex: Excited, band: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(t_ps, cdf)`` of the emission time of one photon (of ``band`` or of all light).

        The grid is fine (0.05 ps) over the first 400 ps and geometric up to 15 longest lifetimes;
        ``cdf`` is normalised to 1 at the end. Used by the tag generator and the histogram mode.
        """
        key = (ex.T_K, ex.N, ex.xray, band)
        hit = self._profile_cache.get(key)
        if hit is not None:
            return hit
        t_end = max(15.0 * self._tau_max_ps(ex), 2000.0)
        t = np.concatenate([np.arange(0.0, 400.0, 0.05), np.geomspace(400.0, t_end, 6000)])
        names = BANDS if band is None else (band,)
        rate = np.zeros_like(t)
        for nm in names:
            rate += self._band_rate(ex.bands[nm], t)
        cdf = np.concatenate([[0.0], np.cumsum(0.5 * (rate[1:] + rate[:-1]) * np.diff(t))])
        if cdf[-1] <= 0:
            cdf = np.linspace(0.0, 1.0, t.size)
        else:
            cdf /= cdf[-1]
        if len(self._profile_cache) > 256:
            self._profile_cache.clear()
        self._profile_cache[key] = (t, cdf)
        return t, cdf

    # ---- public physics API (decision 0002) -----------------------------------------------------
    def N_optical(self, cond: Conditions) -> float:
        return _exc.optical_N(cond.fluence_uJcm2, cond.photon_eV, self.p("excitation", "sigma_abs_cm2"),
                              self.p("excitation", "abs_edge_eV"))

    def xray_rate(self, cond: Conditions) -> float:
        """Absorbed X-ray photons per second in the collected spot."""
        x = self.params["xray"]
        return _exc.xray_absorbed_rate(
            cond.xray_kV, cond.xray_mA, rate_ref_per_s=x["rate_ref_per_s"]["value"],
            kV_ref=x["kV_ref"]["value"], mA_ref=x["mA_ref"]["value"], kV_min=x["kV_min"]["value"],
            kV_power=x["kV_power"]["value"])

    def xray_excitations_per_event(self) -> float:
        return _exc.xray_excitations_per_event(self.p("xray", "E_dep_mean_keV"), self.p("xray", "eps_eh_over_Eg"),
                                               self.p("xray", "Eg_eV"))

    def band_photon_rates(self, cond: Conditions) -> dict[str, float]:
        """Photons per second of each band at the collection optics' output."""
        eta = self.p("excitation", "collection_efficiency")
        out = dict.fromkeys(BANDS, 0.0)
        N = self.N_optical(cond)
        if N > 0 and cond.rep_rate_Hz > 0:
            ex = self.excited(cond.T_K, N)
            scale = eta * self.p("excitation", "n_nc_spot") * cond.rep_rate_Hz
            for b in BANDS:
                out[b] += scale * ex.bands[b].photons_per_nc
        R = self.xray_rate(cond)
        if R > 0:
            exx = self.excited(cond.T_K, self.p("xray", "local_N"), xray=True)
            per_exc = self.xray_excitations_per_event() / exx.N
            for b in BANDS:
                out[b] += eta * R * per_exc * exx.bands[b].photons_per_nc
        return out

    def emission_spectrum(self, wavelength_nm: np.ndarray, cond: Conditions) -> np.ndarray:
        """Photons/s/nm reaching the collection optics' output (before the spectrometer)."""
        lam = np.asarray(wavelength_nm, dtype=float)
        E = HC_EV_NM / lam
        out = np.zeros_like(lam)
        rates = self.band_photon_rates(cond)
        ex = self._excited_for(cond)
        if ex is None:
            return out
        for b in BANDS:
            if rates[b] <= 0:
                continue
            bs = ex.bands[b]
            sig = bs.fwhm_meV * 1e-3 / 2.354820045
            g = np.exp(-0.5 * ((E - bs.E_eV) / sig) ** 2) / (sig * math.sqrt(2 * math.pi))  # per eV
            out += rates[b] * g * E / lam
        return out

    def band_spectrum(self, wavelength_nm: np.ndarray, cond: Conditions, band: str) -> np.ndarray:
        """Like :meth:`emission_spectrum` for one band only."""
        lam = np.asarray(wavelength_nm, dtype=float)
        E = HC_EV_NM / lam
        ex = self._excited_for(cond)
        r = self.band_photon_rates(cond)[band]
        if ex is None or r <= 0:
            return np.zeros_like(lam)
        bs = ex.bands[band]
        sig = bs.fwhm_meV * 1e-3 / 2.354820045
        return r * np.exp(-0.5 * ((E - bs.E_eV) / sig) ** 2) / (sig * math.sqrt(2 * math.pi)) * E / lam

    def _excited_for(self, cond: Conditions) -> Excited | None:
        """The state that sets band energies/widths and the decay shape for these conditions.

        The laser wins if it is on; otherwise the X-ray event state; None if nothing excites.
        """
        N = self.N_optical(cond)
        if N > 0 and cond.rep_rate_Hz > 0:
            return self.excited(cond.T_K, N)
        if self.xray_rate(cond) > 0:
            return self.excited(cond.T_K, self.p("xray", "local_N"), xray=True)
        return None

    def decay(self, t_ps: np.ndarray, cond: Conditions, band: str | None = None) -> np.ndarray:
        """Emission rate vs time after one excitation (laser pulse, or one X-ray event if the laser
        is off), in 1/ps, normalised so that all light integrates to 1 and each band to its share."""
        ex = self._excited_for(cond)
        t = np.asarray(t_ps, dtype=float)
        if ex is None:
            return np.zeros_like(t)
        total = ex.photons_per_nc
        if total <= 0:
            return np.zeros_like(t)
        names = BANDS if band is None else (band,)
        out = np.zeros_like(t)
        for nm in names:
            out += self._band_rate(ex.bands[nm], t)
        return out / total

    def absorbance(self, wavelength_nm: np.ndarray, cond: Conditions) -> np.ndarray:
        """Ground-state absorption (arbitrary units): 1S and 2nd excitonic peaks on a continuum.

        The SF band has no ground-state absorption; a miniband sample absorbs at its shifted
        energy too (the test that tells the two apart, physics.md §1.3 / P6).
        """
        lam = np.asarray(wavelength_nm, dtype=float)
        E = HC_EV_NM / lam
        T = cond.T_K
        a = self.params["absorption"]
        E1 = a["E1_RT_eV"]["value"] - a["dE1_dT_meV_per_K"]["value"] * 1e-3 * (295.0 - T)
        amp1 = 1.0 + a["gos_gain"]["value"] * (1.0 - T / 295.0)
        w1 = a["fwhm1_meV"]["value"] * 1e-3 / 2.3548
        E2 = E1 + a["dE12_meV"]["value"] * 1e-3
        out = amp1 * np.exp(-0.5 * ((E - E1) / w1) ** 2) + 0.7 * np.exp(-0.5 * ((E - E2) / (1.5 * w1)) ** 2)
        out += 0.8 / (1.0 + np.exp(-(E - E1 - 0.03) / 0.02))
        if self.p("miniband", "enabled"):
            m = self.p("miniband", "fraction")
            Em = E1 - self.p("miniband", "shift_meV") * 1e-3
            out = (1 - m) * out + m * amp1 * np.exp(-0.5 * ((E - Em) / w1) ** 2)
        return out

    # ---- truth -----------------------------------------------------------------------------------
    def truth(self, cond: Conditions) -> dict[str, Any]:
        """Every parameter and every derived quantity for these conditions (JSON-able)."""
        out: dict[str, Any] = {
            "sample": self.name,
            "seed": self.seed,
            "conditions": cond.to_dict(),
            "params": copy.deepcopy(self.params),
        }
        d: dict[str, Any] = {}
        N = self.N_optical(cond)
        R = self.xray_rate(cond)
        d["N_optical"] = N
        d["xray_absorbed_rate_per_s"] = R
        d["xray_excitations_per_event"] = self.xray_excitations_per_event()
        d["xray_local_N"] = self.p("xray", "local_N")
        rates = self.band_photon_rates(cond)
        tot = sum(rates.values())
        d["band_photon_rate_per_s"] = rates
        d["total_photon_rate_per_s"] = tot
        d["band_fraction"] = {b: (r / tot if tot > 0 else 0.0) for b, r in rates.items()}
        d["sf_fraction"] = d["band_fraction"]["sf"]
        d["E_uncoupled_eV"] = self.E_uncoupled_eV(cond.T_K)
        d["fwhm_uncoupled_meV"] = self.fwhm_uncoupled_meV(cond.T_K)
        d["tau_X_isolated_ps"] = self.tau_X_ps(cond.T_K)
        d["dephasing_rate_per_ps"] = self.dephasing_rate(cond.T_K)
        d["T_onset_low_density_K"] = self.onset_K(0.01)
        ex = self._excited_for(cond)
        if ex is not None:
            d["excitation_source"] = "xray" if ex.xray else "optical"
            d.update({k: float(v) for k, v in ex.info.items() if k != "N"})
            d["N"] = ex.N
            d["band_E_eV"] = {b: ex.bands[b].E_eV for b in BANDS}
            d["band_fwhm_meV"] = {b: ex.bands[b].fwhm_meV for b in BANDS}
            d["band_photons_per_nc"] = {b: ex.bands[b].photons_per_nc for b in BANDS}
            d["E_sf_eV"] = ex.bands["sf"].E_eV
            d["fwhm_sf_meV"] = ex.bands["sf"].fwhm_meV
            d["alpha_local"] = self._local_exponents(cond.T_K, ex.N, ex.xray)
            d["tau_eff_1e_ps"] = self._one_over_e(cond)
        else:
            d["excitation_source"] = "none"
        if R > 0:
            exx = self.excited(cond.T_K, self.p("xray", "local_N"), xray=True)
            Y = exx.photons_per_nc / exx.N
            m1, m2 = _exc.multiplicity_moments(self.xray_excitations_per_event(),
                                               self.p("xray", "E_dep_shape"), Y)
            d["xray_photons_per_event"] = m1
            d["xray_multiplicity_m2_over_m1sq"] = m2 / m1**2 if m1 > 0 else 0.0
            d["light_yield_ph_per_MeV"] = m1 / (self.p("xray", "E_dep_mean_keV") * 1e-3)
        out["derived"] = d
        return _jsonable(out)

    def _local_exponents(self, T: float, N: float, xray: bool) -> dict[str, float]:
        """d ln I_band / d ln ⟨N⟩ at this density (the true local fluence exponents)."""
        if N <= 0:
            return dict.fromkeys(BANDS, 0.0)
        lo, hi = self._excited(T, N / 1.05, xray), self._excited(T, N * 1.05, xray)
        out = {}
        for b in BANDS:
            a, c = lo.bands[b].photons_per_nc, hi.bands[b].photons_per_nc
            out[b] = math.log(c / a) / math.log(1.05**2) if a > 0 and c > 0 else 0.0
        return out

    def _one_over_e(self, cond: Conditions) -> float:
        t = np.concatenate([np.arange(0, 500, 0.05), np.geomspace(500, 1e6, 4000)])
        y = self.decay(t, cond)
        i = int(np.argmax(y))
        below = np.nonzero(y[i:] < y[i] / math.e)[0]
        return float(t[i + below[0]] - t[i]) if below.size else float("nan")


def _excited_cached(sample: Sample, T: float, N: float, xray: bool) -> Excited:
    cache = sample.__dict__.setdefault("_ex_cache", {})
    key = (T, N, xray)
    ex = cache.get(key)
    if ex is None:
        if len(cache) > 4096:
            cache.clear()
        ex = cache[key] = sample._excited(T, N, xray)
    return ex


# ---- SF burst shape ------------------------------------------------------------------------------


def _sf_shape(t: np.ndarray, tau_D: float, tau_sf: float, ring: float, period_rel: float) -> np.ndarray:
    """Delayed burst: sech² build-up of width τ_D/4 peaking at τ_D, exponential release with τ_SF
    (the domain-averaged tail of the mean-field sech² bursts), plus Burnham–Chiao echoes."""
    t = np.asarray(t, dtype=float)
    lead = max(tau_D / 4.0, 1e-3)
    x = (t - tau_D) / (2 * lead)
    out = np.where(t < tau_D, 1.0 / np.cosh(np.clip(x, -350, 350)) ** 2,
                   np.exp(-np.clip(t - tau_D, 0.0, None) / tau_sf))
    if ring > 0:
        for k in range(1, 4):
            tk = tau_D + k * period_rel * tau_sf
            out = out + ring**k * 1.0 / np.cosh(np.clip((t - tk) / tau_sf, -350, 350)) ** 2
    return out


@lru_cache(maxsize=4096)
def _sf_norm(tau_D: float, tau_sf: float, ring: float, period_rel: float) -> float:
    """∫ _sf_shape dt over [0, t_end], in closed form (∫ sech²(u) du = tanh u): the build-up
    2L·tanh(τ_D / 2L), the release τ_SF·(1 − e^{−(t_end − τ_D)/τ_SF}) and each echo
    ring^k·τ_SF·[tanh((t_end − t_k)/τ_SF) + tanh(t_k/τ_SF)]. The 200 001-point trapezoid it replaces
    agreed to 1e-7 and cost 21 ms for every new temperature of the simulated sample."""
    t_end = tau_D + 60 * tau_sf + (4 * period_rel * tau_sf if ring > 0 else 0)
    lead = max(tau_D / 4.0, 1e-3)
    total = 2 * lead * math.tanh(tau_D / (2 * lead)) + tau_sf * -math.expm1(-(t_end - tau_D) / tau_sf)
    if ring > 0:
        for k in range(1, 4):
            tk = tau_D + k * period_rel * tau_sf
            total += ring**k * tau_sf * (math.tanh((t_end - tk) / tau_sf) + math.tanh(tk / tau_sf))
    return total


# ---- TOML writing (round-trip of the parameter files) --------------------------------------------


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isinf(v) or math.isnan(v):
            return {"inf": "inf", "-inf": "-inf"}.get(str(v), "nan")
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def dumps_toml(params: dict[str, Any]) -> str:
    """Write a two-level parameter dict as TOML (sections of scalars or inline tables)."""
    lines: list[str] = []
    for sec, table in params.items():
        lines.append(f"[{sec}]")
        for key, val in table.items():
            lines.append(f"{key} = {_toml_value(val)}")
        lines.append("")
    return "\n".join(lines)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    return x
