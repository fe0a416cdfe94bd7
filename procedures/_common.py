"""Building blocks shared by the measurements: temperature steps, CCD spectra with dark frames and
auto-exposure, TCSPC decays, the fluence calibration, and the lab-configuration cross-checks.

Everything here talks to the lab through the role interfaces of ``drivers`` (cryostat, spectrometer,
tcspc, attenuator, powermeter, xray). Where a backend offers more than its role (the CONEX wheel's
``set_calibration``), it is used only when present and the fallback is stated.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pymeasure.experiment import BooleanParameter, FloatParameter, IntegerParameter, Parameter

from acq.procedure import ROOM_K, Issue, Procedure
from acq.store import Field, Stream, open_run

log = logging.getLogger(__name__)

__all__ = ["LabProcedure", "Calibration", "load_calibration", "find_latest_calibration", "apply_calibration",
           "role_options", "CCD_SATURATION", "BAND_CODES", "band_peaks"]

#: 16-bit CCD: counts above this are treated as saturated (retake with a shorter exposure)
CCD_SATURATION = 60000
#: keep the brightest pixel near this many counts when the exposure is adjusted
CCD_TARGET = 30000
#: what a spectrum's statistics assume when neither the plan nor lab.toml gives the CCD's calibration (the
#: parameters' defaults before they were taken from the lab)
UNCALIBRATED_E_PER_COUNT = 2.0
UNCALIBRATED_READ_NOISE_E = 6.0


def role_options(lab_config: Any, role: str) -> dict[str, Any]:
    """``{option: value}`` of one role in a validated ``acq.config.LabConfig`` ({} when absent)."""
    roles = getattr(lab_config, "roles", None) or {}
    rc = roles.get(role)
    return dict(getattr(rc, "options", {}) or {}) if rc is not None else {}


# ---------------------------------------------------------------------------------------------------
# fluence calibration as data
@dataclass
class Calibration:
    """A fluence calibration measured by ``FluenceCalibration``: transmission table of the wheel and
    the fluence scale (µJ/cm² at transmission 1 = full_power_W / rep_rate_Hz / spot_area_cm2)."""

    table: list[list[float]]                 # [[angle_deg, transmission], …], transmission decreasing
    full_power_W: float
    rep_rate_Hz: float
    spot_area_cm2: float
    source: str = ""
    run_uid: str = ""
    fluence_map: list[list[float]] = field(default_factory=list)   # [[angle_deg, µJ/cm²], …]

    @property
    def fluence_at_full(self) -> float:
        """Fluence (µJ/cm²) at transmission 1."""
        return self.full_power_W / self.rep_rate_Hz / self.spot_area_cm2 * 1e6

    @property
    def transmission_range(self) -> tuple[float, float]:
        T = [row[1] for row in self.table]
        return float(min(T)), float(max(T))

    @property
    def fluence_range(self) -> tuple[float, float]:
        lo, hi = self.transmission_range
        return lo * self.fluence_at_full, hi * self.fluence_at_full

    def transmission_for(self, uJ_per_cm2: float) -> float:
        lo, hi = self.fluence_range
        if not lo * (1 - 1e-9) <= uJ_per_cm2 <= hi * (1 + 1e-9):
            raise ValueError(f"fluence {uJ_per_cm2:g} µJ/cm² is outside what the calibration reaches "
                             f"({lo:.3g}–{hi:.3g} µJ/cm², {self.source or 'calibration'})")
        T0, T1 = self.transmission_range
        return float(min(max(uJ_per_cm2 / self.fluence_at_full, T0), T1))

    def fluence_for_power(self, power_W: float) -> float:
        return power_W / self.rep_rate_Hz / self.spot_area_cm2 * 1e6

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "full_power_W": self.full_power_W, "rep_rate_Hz": self.rep_rate_Hz,
                "spot_area_cm2": self.spot_area_cm2, "source": self.source, "run_uid": self.run_uid,
                "fluence_at_full_uJcm2": self.fluence_at_full, "fluence_range_uJcm2": list(self.fluence_range)}


def load_calibration(path: str | Path) -> Calibration:
    """Read a ``FluenceCalibration`` run file (its ``calibration`` stream and parameters)."""
    run = open_run(path)
    if "calibration" not in run.streams:
        raise ValueError(f"{path}: not a FluenceCalibration run (no 'calibration' stream; "
                         f"procedure {run.procedure})")
    s = run.stream("calibration")
    a = np.asarray(s["angle"], float)
    T = np.asarray(s["transmission"], float)
    F = np.asarray(s["fluence_uJcm2"], float)
    ok = np.isfinite(a) & np.isfinite(T) & (T > 0)
    a, T, F = a[ok], T[ok], F[ok]
    order = np.argsort(a)
    a, T, F = a[order], T[order], F[order]
    # keep a strictly decreasing table (what the wheel driver accepts)
    keep = [0] if a.size else []
    for i in range(1, a.size):
        if a[i] > a[keep[-1]] and T[i] < T[keep[-1]]:
            keep.append(i)
    if len(keep) < 2:
        raise ValueError(f"{path}: fewer than two usable calibration rows")
    p = run.parameters
    P = np.asarray(s["power"], float)[ok][order]
    full = float(np.median(P / T)) if T.size else 0.0
    if not full > 0:
        raise ValueError(f"{path}: the calibration has no full power")
    area = math.pi * (float(p.get("spot_diameter_um", 100.0)) * 1e-4 / 2) ** 2
    return Calibration(table=[[float(a[i]), float(T[i])] for i in keep], full_power_W=full,
                       rep_rate_Hz=float(p.get("rep_rate_Hz", 76e6)), spot_area_cm2=area, source=str(path),
                       run_uid=run.run_uid, fluence_map=[[float(a[i]), float(F[i])] for i in keep])


def find_latest_calibration(folder: str | Path) -> Path | None:
    """Newest successful ``FluenceCalibration`` run file in ``folder`` (by start time), or None."""
    best: tuple[str, Path] | None = None
    for p in Path(folder).glob("*.h5"):
        if "FluenceCalibration" not in p.name:
            continue
        try:
            run = open_run(p)
        except (OSError, ValueError) as exc:
            log.debug("skipping %s: %s", p, exc)
            continue
        if run.procedure != "FluenceCalibration" or run.exit_status != "success":
            continue
        key = (run.start_time, p)
        if best is None or key[0] > best[0]:
            best = key
    return best[1] if best else None


def apply_calibration(attenuator: Any, cal: Calibration) -> bool:
    """Install the measured transmission table in the attenuator when its backend takes one
    (``set_calibration``, e.g. the CONEX wheel). Returns whether it did; without it the backend's
    own table maps transmission to angle and only the fluence scale comes from ``cal``."""
    setter = getattr(attenuator, "set_calibration", None)
    if not callable(setter):
        log.warning("%s has no set_calibration: using its own transmission table", type(attenuator).__name__)
        return False
    setter(cal.table)
    log.info("installed the fluence calibration %s (%d rows) in the attenuator", cal.source, len(cal.table))
    return True


#: lab seconds per kelvin of a temperature change in estimates, cooling and warming: the simulated He cryostat
#: (plans/reversibility.toml, 2 Dec 2026, holds left out: 295 → 5 K in 1474 s, 5.1 s/K; 5 → 295 K in 706 s, 2.4 s/K)
COOL_S_PER_K, WARM_S_PER_K = 5.0, 2.5


# ---------------------------------------------------------------------------------------------------
class LabProcedure(Procedure):
    """Common parameters and helpers of the sflab measurements (not run by itself)."""

    # temperature stabilisation
    band_K = FloatParameter("Stability band", units="K", minimum=0.001, maximum=10.0, default=0.2)
    hold_s = FloatParameter("Stability hold", units="s", minimum=0.0, maximum=7200.0, default=60.0)
    timeout_s = FloatParameter("Stability timeout", units="s", minimum=1.0, maximum=86400.0, default=3600.0)
    ramp_K_per_min = FloatParameter("Ramp rate (0 = step)", units="K/min", minimum=0.0, maximum=100.0, default=0.0)

    #: which streams carry per-point conditions (set in subclasses)
    T_FIELDS = (Field("T_set", (), "f8", "K", "temperature setpoint"),
                Field("T_K", (), "f8", "K", "sample temperature at the start of the point"),
                Field("stable", (), "u1", "", "1 if the stability criterion was met"))

    def startup(self) -> None:
        self._T_now: float | None = None
        self._stable = 1

    # ---- temperature --------------------------------------------------------------------------
    def goto_temperature(self, T: float) -> None:
        """Set T (optionally ramped) and wait for stability on the lab clock; a timeout is logged
        and the point is flagged ``stable = 0`` rather than losing the run."""
        if self._T_now is not None and abs(self._T_now - T) < 1e-9:
            return
        cryo = self.lab.cryostat
        ramp = self.ramp_K_per_min or None
        cryo.set_temperature(T, ramp_K_per_min=ramp)
        try:
            waited = cryo.wait_stable(T, band_K=self.band_K, hold_s=self.hold_s, timeout_s=self.timeout_s)
            self._stable = 1
            log.info("T = %g K stable after %.0f s", T, waited)
        except TimeoutError as exc:
            self._stable = 0
            log.warning("T = %g K not stable within %g s: %s (points flagged stable=0)", T, self.timeout_s, exc)
        self._T_now = T

    def temperature_waits(self, temps: Sequence[float]) -> list[float]:
        """Lab seconds the run waits at each of its temperatures (reach it, then the stability hold; at most
        ``timeout_s``), the first change from where it starts (:attr:`~acq.procedure.Procedure.start_K`, room
        temperature when unknown), at :data:`COOL_S_PER_K` down and :data:`WARM_S_PER_K` up."""
        start = self.start_K if self.start_K is not None else ROOM_K
        return [min(self.timeout_s, self.hold_s + (COOL_S_PER_K if b < a else WARM_S_PER_K) * abs(b - a) + 30.0)
                for a, b in zip([start, *temps], temps, strict=False)]

    def t_fields(self) -> dict[str, float]:
        return {"T_set": float(self._T_now if self._T_now is not None else math.nan),
                "T_K": float(self.lab.cryostat.temperature), "stable": int(self._stable)}

    def validate_temperatures(self, lab_config: Any, temps: list[float], key: str = "") -> list[str]:
        o = role_options(lab_config, "cryostat")
        errs: list[str] = []
        lo, hi = o.get("min_K"), o.get("max_K")
        key = key or ("temperatures" if "temperatures" in self.parameter_objects_cls() else "temperature")
        for T in temps:
            if lo is not None and T < lo:
                errs.append(Issue(f"{type(self).__name__}: T = {T:g} K is below the cryostat's min_K = {lo:g} K",
                                  key=key, value=T, allowed=f"≥ {lo:g} K (cryostat.min_K)"))
            if hi is not None and T > hi:
                errs.append(Issue(f"{type(self).__name__}: T = {T:g} K is above the cryostat's max_K = {hi:g} K",
                                  key=key, value=T, allowed=f"≤ {hi:g} K (cryostat.max_K)"))
        return errs

    def validate_xray(self, lab_config: Any, kV: float, mA: float) -> list[str]:
        o = role_options(lab_config, "xray")
        errs: list[str] = []
        name = type(self).__name__
        if o.get("max_kV") is not None and kV > o["max_kV"]:
            errs.append(Issue(f"{name}: {kV:g} kV is above the X-ray source's max_kV = {o['max_kV']:g} kV",
                              key="kV", value=kV, allowed=f"≤ {o['max_kV']:g} kV (xray.max_kV)"))
        if o.get("max_mA") is not None and mA > o["max_mA"]:
            errs.append(Issue(f"{name}: {mA:g} mA is above the X-ray source's max_mA = {o['max_mA']:g} mA",
                              key="mA", value=mA, allowed=f"≤ {o['max_mA']:g} mA (xray.max_mA)"))
        if o.get("max_power_W") is not None and kV * mA > o["max_power_W"]:
            errs.append(Issue(f"{name}: {kV:g} kV × {mA:g} mA = {kV * mA:g} W is above the tube rating "
                              f"max_power_W = {o['max_power_W']:g} W", key="mA", value=mA,
                              allowed=f"kV × mA ≤ {o['max_power_W']:g} W (xray.max_power_W)"))
        return errs

    def validate(self, lab_config: Any) -> list[str]:
        return []


class SpectrumMixin:
    """CCD spectra: centre wavelength, exposure with automatic adjustment, a dark frame per spectrum."""

    lab: Any   # the runner's Lab (declared on acq.procedure.Procedure, which the measurement also derives from)

    center_nm = FloatParameter("Spectrometer centre", units="nm", minimum=300.0, maximum=1000.0, default=525.0)
    exposure_s = FloatParameter("CCD exposure", units="s", minimum=0.001, maximum=600.0, default=0.1)
    auto_exposure = BooleanParameter("Adjust the exposure to stay below saturation", default=True)
    max_exposure_s = FloatParameter("Longest auto exposure", units="s", minimum=0.001, maximum=600.0, default=10.0)
    ccd_gain = FloatParameter("CCD gain (0 = the spectrometer's lab.toml calibration)", units="e-/count",
                              minimum=0.0, maximum=100.0, default=0.0)
    read_noise_e = FloatParameter("CCD read noise (0 = the spectrometer's lab.toml calibration)", units="e-",
                                  minimum=0.0, maximum=1000.0, default=0.0)

    def setup_spectrometer(self) -> np.ndarray:
        """Move to the centre wavelength and return the wavelength axis (from a short dark frame). A CCD gain
        or read noise left at 0 is taken from the spectrometer role's calibration (lab.toml ``e_per_count``,
        ``read_noise_e``) and written to the run file as the value used."""
        spec = self.lab.spectrometer
        self.resolve_ccd_calibration(spec)
        spec.move_to(self.center_nm)
        d = spec.dark_frame(0.001)
        wl = np.asarray(d.wavelength_nm, float)
        self._n_pix = wl.size
        self._exposure = float(self.exposure_s)
        return wl

    def resolve_ccd_calibration(self, spec: Any) -> None:
        cal = spec.ccd_calibration()
        for name, key, fallback in (("ccd_gain", "e_per_count", UNCALIBRATED_E_PER_COUNT),
                                    ("read_noise_e", "read_noise_e", UNCALIBRATED_READ_NOISE_E)):
            if float(getattr(self, name)) > 0:
                continue   # given by the plan: it wins
            if key in cal:
                setattr(self, name, float(cal[key]))
            else:
                setattr(self, name, fallback)
                log.warning("the spectrometer role has no %s in lab.toml: %s = %g assumed; the spectra's errors "
                            "and goodness of fit rest on it (give the camera's test-sheet value)", key, name,
                            fallback)

    def spectrum_fields(self) -> tuple[Field, ...]:
        n = self._n_pix
        return (Field("counts", (n,), "u4", "counts", "CCD counts (bias included)"),
                Field("dark", (n,), "u4", "counts", "dark frame, same exposure, shutter closed"),
                Field("exposure", (), "f8", "s"),
                Field("saturated", (), "i4", "", "pixels at the CCD ADC ceiling (not the charge collected)"))

    def _round_ms(self, t: float) -> float:
        return max(round(t * 1000.0) / 1000.0, 0.001)

    def take_spectrum(self) -> dict[str, Any]:
        """One spectrum + dark frame; the exposure is shortened (or lengthened) until the brightest
        pixel sits between ~2 000 and 60 000 counts. The next spectrum starts from that exposure."""
        spec = self.lab.spectrometer
        t = self._exposure
        for _ in range(6):
            s = spec.acquire(t)
            peak = float(np.max(s.counts))
            if not self.auto_exposure:
                break
            if peak > CCD_SATURATION and t > 0.001:
                t = self._round_ms(t * CCD_TARGET / peak * 0.5)
                continue
            if peak < 2000 and t < self.max_exposure_s:
                t = self._round_ms(min(self.max_exposure_s, t * 10))
                continue
            break
        self._exposure = t
        d = spec.dark_frame(t)
        sat = int(getattr(s, "saturated_pixels", 0))
        if sat:
            log.warning("CCD spectrum with %d saturated pixels (exposure %.3g s)", sat, t)
        return {"counts": np.asarray(s.counts, np.int64).clip(0), "dark": np.asarray(d.counts, np.int64).clip(0),
                "exposure": float(t), "saturated": sat}


#: the detection band of a decay, as written in the ``band`` field of the decay streams
BAND_CODES = {"all": 0, "sf": 1, "unc": 2, "laser": 3}


def band_peaks(wavelength_nm: np.ndarray, signal: np.ndarray, *, read_noise: float = 5.0, shift_meV: float = 55.0,
               min_fraction: float = 0.03, min_separation_meV: float = 20.0) -> tuple[float, float, bool]:
    """The SF (red) and uncoupled (main) detection wavelengths from one spectrum (dark subtracted; its read
    noise ``read_noise`` in the units of ``signal``): the band model the verdict would select
    (``analysis.sf.band_fits``: 1, 2 or 3 bands by BIC, fitted in photon energy); the lower-energy band is
    the red band. When the spectrum holds one band only (a red band below ``min_fraction`` of the light or
    closer than ``min_separation_meV``), the main peak is the uncoupled band and the SF wavelength is
    ``shift_meV`` below it. Returns ``(sf_nm, unc_nm, resolved)``. A detection aid for the monochromator,
    not the analysis: the verdict fits the spectra itself."""
    from analysis.spectra import HC_EV_NM  # the analysis' h·c (imported on use: it loads the numba kernels)

    wl = np.asarray(wavelength_nm, float)
    E = HC_EV_NM / wl
    order = np.argsort(E)
    return _band_peaks_E(E[order], np.asarray(signal, float)[order], read_noise, shift_meV=shift_meV,
                         min_fraction=min_fraction, min_separation_meV=min_separation_meV)


def _band_peaks_E(E: np.ndarray, y: np.ndarray, read_noise: float, *, shift_meV: float, min_fraction: float = 0.03,
                  min_separation_meV: float = 20.0) -> tuple[float, float, bool]:
    """:func:`band_peaks` on a spectrum sorted by photon energy ``E`` (eV)."""
    from analysis.sf import SpectrumRecord, band_fits  # the verdict's own band-model selection, remembered
    from analysis.spectra import HC_EV_NM

    sm = np.convolve(y, np.ones(5) / 5, mode="same")
    E0 = float(E[int(np.argmax(sm))])
    try:
        # the χ² statistic with the read noise (negative pixels are allowed)
        _one, fit, _table = band_fits(SpectrumRecord(E, y, math.nan, read_noise=float(read_noise)))
    except (RuntimeError, ValueError):
        fit = None
    if fit is not None and fit.n_bands >= 2:
        red, main = fit.band("sf"), fit.band("unc")
        frac, sep = float(fit.sf_fraction.value), float(fit.shift_meV.value)
        if red is not None and main is not None and frac >= min_fraction and sep >= min_separation_meV:
            return HC_EV_NM / float(red.center_eV.value), HC_EV_NM / float(main.center_eV.value), True
    return HC_EV_NM / (E0 - shift_meV * 1e-3), HC_EV_NM / E0, False


class DecayMixin:
    """TCSPC decays against the laser sync. With a TCSPC monochromator (role ``tcspc_mono``) and
    ``band_resolved``: one decay at the SF (red band) and one at the uncoupled wavelength per point,
    chosen from the spectrum just taken (or the ``sf_nm`` / ``unc_nm`` parameters), each written with its
    wavelength, bandpass and detection window; and, with ``measure_irf``, the instrument response
    measured from scattered laser (the monochromator on the laser line) at every new temperature.
    Without one the decays are of all light (window NaN), as before."""

    lab: Any   # the runner's Lab (declared on acq.procedure.Procedure, which the measurement also derives from)

    decay_s = FloatParameter("TCSPC acquisition", units="s", minimum=0.001, maximum=36000.0, default=1.0)
    # 0: one histogram of decay_s (it may end early at the stop count); > 0: histograms that end at the stop
    # count are summed until they hold decay_counts or decay_s is spent, as the IRF's are (take_irf)
    decay_counts = FloatParameter("Decay counts to collect (0 = one histogram)", units="counts", minimum=0.0,
                                  maximum=1e10, default=0.0)
    decay_binwidth_ps = FloatParameter("TCSPC bin width", units="ps", minimum=1.0, maximum=512.0, default=8.0)
    decay_bins = IntegerParameter("TCSPC bins", minimum=16, maximum=65536, default=1600)
    irf_fwhm_ps = FloatParameter("IRF FWHM (nominal Gaussian)", units="ps", minimum=1.0, maximum=2000.0,
                                 default=50.0)
    band_resolved = BooleanParameter("Band-resolved decays at the SF and uncoupled wavelengths (needs the "
                                     "tcspc_mono role)", default=True)
    sf_nm = FloatParameter("SF detection wavelength (0 = the red band of the spectrum just taken)", units="nm",
                           minimum=0.0, maximum=2000.0, default=0.0)
    unc_nm = FloatParameter("Uncoupled detection wavelength (0 = the main band of the spectrum just taken)",
                            units="nm", minimum=0.0, maximum=2000.0, default=0.0)
    tcspc_bandpass_nm = FloatParameter("TCSPC monochromator bandpass", units="nm", minimum=0.01, maximum=100.0,
                                       default=2.0)
    sf_shift_meV = FloatParameter("SF offset below the main band when the spectrum shows one band", units="meV",
                                  minimum=1.0, maximum=500.0, default=55.0)
    measure_irf = BooleanParameter("Measure the IRF (scattered laser) at every new temperature", default=True)
    irf_s = FloatParameter("Longest IRF acquisition", units="s",
                           minimum=0.001, maximum=3600.0, default=120.0)
    # IRF histograms are summed until they hold irf_counts (or irf_s is spent): see take_irf
    irf_counts = FloatParameter("IRF counts to collect", units="counts", minimum=0.0, maximum=1e10, default=4e6)
    laser_nm = FloatParameter("Laser wavelength (IRF)", units="nm", minimum=200.0, maximum=2000.0, default=405.2)

    # ---- the TCSPC monochromator -----------------------------------------------------------------
    def setup_decays(self) -> None:
        """Connect the TCSPC monochromator when the lab has one (it is not a required role: without it
        the decays are of all light) and set its bandpass."""
        self._mono: Any = None
        if "tcspc_mono" not in self.lab:
            if self.band_resolved:
                log.info("no tcspc_mono role in the lab: decays of all light")
            return
        self.lab.connect(["tcspc_mono"])
        self._mono = self.lab.get("tcspc_mono")
        if self.band_resolved:
            bp = self._mono.set_bandpass(float(self.tcspc_bandpass_nm))
            log.info("TCSPC monochromator bandpass %.3g nm", bp)

    @property
    def resolved(self) -> bool:
        """Band-resolved decays are recorded (a monochromator and ``band_resolved``)."""
        return bool(self.band_resolved) and getattr(self, "_mono", None) is not None

    def decay_streams(self, common: tuple[Field, ...], *, title: str = "TCSPC decay against the laser sync",
                      resolved: bool | None = None, irf: bool | None = None) -> list[Stream]:
        """The decay streams: ``decay`` (the SF band, or all light) and, band-resolved, ``decay_unc`` (the
        uncoupled band) and ``irf`` (scattered laser, at each new temperature)."""
        t = {"t": (self.decay_axis(), "ps")}
        f = (*self.decay_fields(), *common)
        if not (self.resolved if resolved is None else resolved):
            return [Stream("decay", f, signal="counts", axes=(".", "t"), static=t, long_name=f"{title} (all light)")]
        out = [Stream("decay", f, signal="counts", axes=(".", "t"), static=t, long_name=f"{title} (SF band)"),
               Stream("decay_unc", f, signal="counts", axes=(".", "t"), static=t,
                      long_name=f"{title} (uncoupled band)")]
        if self.measure_irf if irf is None else irf:
            out.append(Stream("irf", f, signal="counts", axes=(".", "t"), static=t,
                              long_name="instrument response: scattered laser through the TCSPC monochromator"))
        return out

    def detection_wavelengths(self, spectrum: Mapping[str, Any], wavelength_nm: np.ndarray, *, gain: float,
                              read_noise_e: float) -> tuple[float, float]:
        """(SF, uncoupled) detection wavelengths: the parameters when given, else the red and main band
        peaks of ``spectrum`` (``take_spectrum``'s counts − dark, × the CCD ``gain`` in e⁻/count, with its
        ``read_noise_e``)."""
        sf, unc = float(self.sf_nm), float(self.unc_nm)
        if sf > 0 and unc > 0:
            return sf, unc
        # photo-electrons as the run's analysis builds them (acq.summary), so that the band fit made here is
        # the one the analysis finds remembered (one select_bands per spectrum, not two)
        from acq.summary import spectrum_electrons

        E_s, e, rn, _ = spectrum_electrons(wavelength_nm, np.asarray(spectrum["counts"], float),
                                           np.asarray(spectrum["dark"], float), gain, read_noise_e)
        p_sf, p_unc, ok = _band_peaks_E(E_s, e, rn, shift_meV=float(self.sf_shift_meV))
        log.info("detection wavelengths from the spectrum: SF %.2f nm, uncoupled %.2f nm%s", p_sf, p_unc,
                 "" if ok else " (one band: SF at the offset)")
        return (sf if sf > 0 else p_sf), (unc if unc > 0 else p_unc)

    # ---- decays ------------------------------------------------------------------------------------
    def decay_fields(self) -> tuple[Field, ...]:
        return (Field("counts", (int(self.decay_bins),), "u4", "counts"),
                Field("band", (), "u1", "", "detection band: 0 all light, 1 SF, 2 uncoupled, 3 laser (IRF)"),
                Field("wavelength_nm", (), "f8", "nm", "TCSPC monochromator wavelength (NaN = all light)"),
                Field("bandpass_nm", (), "f8", "nm", "TCSPC monochromator bandpass, slit × dispersion (NaN = all)"),
                Field("window_lo_nm", (), "f8", "nm", "detection window (NaN = all light)"),
                Field("window_hi_nm", (), "f8", "nm", "detection window (NaN = all light)"),
                Field("duration", (), "f8", "s", "real acquisition time (shorter than asked after a stop)"),
                *self.decay_quality_fields())

    @staticmethod
    def decay_quality_fields() -> tuple[Field, ...]:
        """Per-point TCSPC data quality (``DecayHistogram.quality()``), read by the analysis."""
        return (Field("requested", (), "f8", "s", "acquisition time asked for"),
                Field("overflow", (), "u1", "", "FLAG_OVERFLOW: a bin reached the stop count / ceiling"),
                Field("stop_count", (), "i4", "counts", "stop-on-overflow count in force (0 = off)"),
                Field("clipped_bins", (), "i4", "", "bins at the ceiling without a stop (not photon counts)"),
                Field("pileup", (), "f8", "", "detector rate / sync rate (pile-up above a few %)"),
                Field("dead_time_fraction", (), "f8", "", "detector count rate × TDC dead time"),
                Field("lost_records", (), "i8", "", "FIFO records lost (T2/T3 read-out overrun)"))

    @staticmethod
    def decay_quality(h: Any) -> dict[str, Any]:
        q = h.quality() if hasattr(h, "quality") else {}
        return {"requested": float(q.get("requested_s", h.duration_s)), "overflow": int(bool(q.get("overflow"))),
                "stop_count": int(q.get("stop_count", 0)), "clipped_bins": int(q.get("clipped_bins", 0)),
                "pileup": float(q.get("pileup", math.nan)),
                "dead_time_fraction": float(q.get("dead_time_fraction", math.nan)),
                "lost_records": int(q.get("lost_records", 0))}

    def decay_axis(self) -> np.ndarray:
        return np.arange(int(self.decay_bins)) * float(self.decay_binwidth_ps)

    def _select(self, band: str, wavelength_nm: float | None) -> dict[str, float]:
        """Set the monochromator for ``band`` (all light: zero order) and open its shutter."""
        nan = {"wavelength_nm": math.nan, "bandpass_nm": math.nan, "window_lo_nm": math.nan, "window_hi_nm": math.nan}
        mono = getattr(self, "_mono", None)
        if mono is None:
            return nan
        mono.move_to(0.0 if band == "all" or wavelength_nm is None else float(wavelength_nm))
        mono.open_shutter()
        if band == "all":
            return nan
        lo, hi = mono.window_nm()
        return {"wavelength_nm": float(0.5 * (lo + hi)), "bandpass_nm": float(hi - lo), "window_lo_nm": float(lo),
                "window_hi_nm": float(hi)}

    def _histogram(self, duration_s: float) -> tuple[np.ndarray, dict[str, Any], float]:
        """One TCSPC histogram of ``decay_bins`` bins: (counts, quality fields, real acquisition time)."""
        h = self.lab.tcspc.histogram(duration_s, binwidth_ps=self.decay_binwidth_ps, n_bins=int(self.decay_bins))
        c = np.asarray(h.counts, np.int64)
        if c.size != int(self.decay_bins):
            out = np.zeros(int(self.decay_bins), np.int64)
            out[: min(c.size, out.size)] = c[: out.size]
            c = out
        q = self.decay_quality(h)
        if q["overflow"]:
            log.info("TCSPC histogram %s after %.3g of %.3g s (%d clipped bins)",
                     "stopped at the stop count" if q["stop_count"] else "overflowed", h.duration_s,
                     q["requested"], q["clipped_bins"])
        return c.clip(0), q, float(h.duration_s)

    def take_decay(self, band: str = "all", wavelength_nm: float | None = None, *,
                   duration_s: float | None = None) -> dict[str, Any]:
        """One decay histogram in ``band`` ("all", or "sf"/"unc"/"laser" at ``wavelength_nm`` through the
        TCSPC monochromator), with its wavelength, bandpass and window."""
        sel = self._select(band, wavelength_nm)
        c, q, elapsed = self._summed_histogram(float(self.decay_s if duration_s is None else duration_s),
                                               float(self.decay_counts), "decay")
        return {"counts": c, "band": BAND_CODES[band], **sel, "duration": elapsed, **q}

    def _summed_histogram(self, budget: float, want: float, what: str
                          ) -> tuple[np.ndarray, dict[str, Any], float]:
        """Histograms, each ending at the stop count or at the time left, summed until they hold ``want``
        counts or ``budget`` s is spent (``want`` = 0: one histogram). No bin of the sum was clipped unless
        one of its histograms overflowed without a stop count, which its fields say. The sum's fields: total
        time, ``overflow`` if any histogram stopped, clipped bins and lost records summed."""
        total: np.ndarray | None = None
        qs: list[dict[str, Any]] = []
        elapsed = 0.0
        while True:
            c, q, dt = self._histogram(max(budget - elapsed, 0.001))
            total = c if total is None else total + c
            qs.append(q)
            elapsed += dt
            # enough counts, the budget spent, or a histogram that ran its full time (no stop): no more to take
            if float(total.sum()) >= want or elapsed >= budget - 1e-9 or not q["overflow"]:
                break
        q = {**qs[-1], "requested": budget, "overflow": int(any(x["overflow"] for x in qs)),
             "clipped_bins": int(sum(x["clipped_bins"] for x in qs)),
             "lost_records": int(sum(x["lost_records"] for x in qs))}
        if len(qs) > 1:
            log.info("%s: %d histograms summed, %.3g counts in %.3g s", what, len(qs), float(total.sum()), elapsed)
        return total, q, elapsed

    def take_irf(self) -> dict[str, Any]:
        """The instrument response: scattered laser with the monochromator on the laser line. Histograms
        (each ending at the stop count, or at the time left) are summed until they hold ``irf_counts``
        or ``irf_s`` is used up: the fit treats the measured IRF as exact, so its shot noise must stay
        small against the decay's (docs/analysis.md, "Validation": a 20 k-photon IRF under a
        300 k-photon decay biased τ by −0.27σ; an IRF with 1/40 of a decay's counts doubles the reduced
        deviance). The sum's fields: total time, overflow if any histogram stopped, clipped bins summed."""
        sel = self._select("laser", float(self.laser_nm))
        total, q, elapsed = self._summed_histogram(float(self.irf_s), float(self.irf_counts), "IRF")
        return {"counts": total, "band": BAND_CODES["laser"], **sel, "duration": elapsed, **q}


class FluenceMixin:
    """Setting the pulse fluence through a measured calibration (a ``FluenceCalibration`` run)."""

    lab: Any   # the runner's Lab (declared on acq.procedure.Procedure, which the measurement also derives from)

    calibration = Parameter("Fluence calibration run file ('latest' = newest in the run's folder; "
                            "'config' = the attenuator's lab.toml calibration and full_power_W)",
                            default="latest")
    dark_during_wait = BooleanParameter("Block the laser (maximum attenuation) while T changes", default=True)

    def goto_point_temperature(self, T: float) -> None:
        """A point's temperature: when it changes, the laser blocked first (``dark_during_wait``), then
        :meth:`LabProcedure.goto_temperature` and a checkpoint (a pause during the wait takes effect)."""
        now = getattr(self, "_T_now", None)
        if now is not None and abs(now - T) <= 1e-9:
            return
        if self.dark_during_wait:
            self.lab.attenuator.set_max_attenuation()
        self.goto_temperature(T)  # type: ignore[attr-defined]
        self.checkpoint()  # type: ignore[attr-defined]

    def _cal_path(self) -> Path | None:
        c = str(self.calibration or "latest").strip()
        if c == "config":
            return None
        if c == "latest":
            folder = Path(getattr(getattr(self, "runner", None), "path", Path("runs/x.h5"))).parent
            p = find_latest_calibration(folder)
            if p is None:
                raise FileNotFoundError(f"no successful FluenceCalibration run in {folder}: run FluenceCalibration "
                                        "first, or give calibration = <run file> or 'config'")
            return p
        return Path(c)

    def setup_fluence(self) -> None:
        p = self._cal_path()
        self._cal: Calibration | None = None
        if p is None:
            log.info("fluence from the attenuator's configured calibration (set_fluence)")
            return
        self._cal = load_calibration(p)
        apply_calibration(self.lab.attenuator, self._cal)

    def calibration_info(self) -> dict[str, Any]:
        return self._cal.to_dict() if self._cal is not None else {"source": "config"}

    def set_fluence(self, f: float) -> None:
        if self._cal is None:
            self.lab.attenuator.set_fluence(f)
        else:
            self.lab.attenuator.set_transmission(self._cal.transmission_for(f))

    def fluence_fields(self) -> tuple[Field, ...]:
        return (Field("fluence", (), "f8", "µJ/cm²", "fluence asked"),
                Field("fluence_measured", (), "f8", "µJ/cm²", "P / f_rep / spot area from the power meter"),
                Field("power", (), "f8", "W", "power meter reading"))

    def measured_fluence(self, f: float) -> dict[str, float]:
        P = math.nan
        fm = math.nan
        pm = self.lab.get("powermeter")
        if pm is not None and "powermeter" in self.lab.connected:
            try:
                P = float(pm.power)
                if self._cal is not None:
                    fm = self._cal.fluence_for_power(P)
            except Exception as exc:  # a power-meter hiccup must not lose a point
                log.warning("power meter reading failed: %s", exc)
        return {"fluence": float(f), "fluence_measured": fm, "power": P}

    def validate_fluences(self, lab_config: Any, fluences: list[float]) -> list[str]:
        """Fluences against what the calibration (an explicit file) or the lab.toml allow."""
        name = type(self).__name__
        c = str(self.calibration or "latest").strip()
        hi = None
        src = ""
        if c not in ("latest", "config"):
            try:
                cal = load_calibration(c)
            except (OSError, ValueError) as exc:
                why = "no such file" if not Path(c).exists() else str(exc)
                return [Issue(f"{name}: calibration = {c!r}: {why}", key="calibration", value=c,
                              allowed="an existing FluenceCalibration run file, 'latest' or 'config'")]
            lo, hi = cal.fluence_range
            src = f"the calibration {c}"
        else:
            o = role_options(lab_config, "attenuator")
            if c == "config" and lab_config is not None and "attenuator" in (getattr(lab_config, "roles", None) or {}) \
                    and not o.get("full_power_W"):
                return [Issue(f"{name}: calibration = 'config' but the attenuator has no full_power_W in the lab "
                              "configuration (measure it, or run FluenceCalibration and use 'latest')",
                              key="calibration", value=c, allowed="'latest', a calibration run file, or 'config' "
                              "with attenuator.full_power_W set")]
            folder = (getattr(lab_config, "lab", None) or {}).get("data_dir")
            latest = find_latest_calibration(folder) if c == "latest" and folder and Path(folder).is_dir() else None
            if latest is not None:
                try:
                    cal = load_calibration(latest)
                    hi = cal.fluence_range[1]
                    src = f"the latest calibration {latest}"
                except (OSError, ValueError) as exc:
                    log.warning("latest calibration %s not readable: %s", latest, exc)
            if hi is None and o.get("full_power_W"):
                table = o.get("calibration") or [[0.0, 10 ** -0.04]]
                tmax = max(float(r[1]) for r in table)
                hi = o["full_power_W"] * tmax / o.get("rep_rate_Hz", 76e6) / o.get("spot_area_cm2", 7.85e-5) * 1e6
                src = "the laser's full power through the attenuator (lab.toml)"
        errs: list[str] = []
        if hi is not None:
            for f in fluences:
                if f > hi * (1 + 1e-9):
                    errs.append(Issue(f"{name}: fluence {f:g} µJ/cm² is above the maximum {hi:.3g} µJ/cm² of {src}",
                                      key="fluences", value=f, allowed=f"≤ {hi:.3g} µJ/cm²"))
        return errs


def json_param(d: Mapping[str, Any]) -> str:
    return json.dumps(d, sort_keys=True, default=str)


class StageMixin:
    """The sample stage (role ``sample_stage``): which holder position is in the beam, validated before
    anything moves, and the sample put back in the beam when the procedure ends (``restore_stage``)."""

    lab: Any   # the runner's Lab (declared on acq.procedure.Procedure, which the measurement also derives from)

    #: the named positions the procedure moves to (checked against lab.toml [sample_stage] positions)
    STAGE_POSITIONS: tuple[str, ...] = ("sample",)
    #: the position this procedure last put in the beam (None: it has not moved the holder)
    _stage_at: str | None = None

    def validate_stage(self, lab_config: Any) -> list[str]:
        name = type(self).__name__
        roles = getattr(lab_config, "roles", None) or {}
        if lab_config is not None and "sample_stage" not in roles:
            return [Issue(f"{name} needs the sample_stage role (the holder with the sample, the isolated-NC "
                          f"reference film and a blank): add [sample_stage] to lab.toml — backend 'conex' "
                          f"(a CONEX-CC stage) or 'manual' (the operator moves the holder when prompted)",
                          key="sample_stage", value=None, allowed="a lab with [sample_stage]")]
        pos = role_options(lab_config, "sample_stage").get("positions") or {}
        missing = [p for p in self.STAGE_POSITIONS if p not in pos]
        if lab_config is not None and missing:
            return [Issue(f"{name}: the sample stage has no position named {', '.join(map(repr, missing))} "
                          f"(named: {', '.join(pos) or 'none'}); name it in lab.toml [sample_stage] positions",
                          key="sample_stage.positions", value=sorted(pos),
                          allowed=f"positions naming {', '.join(self.STAGE_POSITIONS)}")]
        return []

    def stage_to(self, position: str) -> None:
        """Put the holder's ``position`` in the beam (a no-op when it is there already)."""
        if self._stage_at == position:
            return
        self.lab.sample_stage.move_to_position(position)
        self._stage_at = position

    def restore_stage(self) -> None:
        """Put the sample back in the beam if the procedure moved the holder (the next run measures the sample)."""
        at = self._stage_at
        if at is not None and at != "sample" and "sample_stage" in self.lab.connected:
            self.lab.sample_stage.move_to_position("sample")
            self._stage_at = "sample"
