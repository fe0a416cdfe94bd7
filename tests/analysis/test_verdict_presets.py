"""The SF verdict on data simulated by the independent oracle (``simulators``) for every preset.

Evidence is built the way the procedures would collect it: CCD spectra through the simulated
spectrograph and CCD (temperature series at 20 µJ/cm², fluence series at 10 K), TCSPC decays of the
red band (streak-like detector) and of the uncoupled band (PicoHarp + hybrid PMT) in the
exact-statistics mode, a g2 under CW X-rays, and the absorption spectrum.  The IRFs are independent
histograms of the detector timing model (Gaussian core + exponential tail).
"""

from __future__ import annotations

import numpy as np
import pytest

import simulators.sample as sample_mod
from analysis.sf import FAIL, PASS, Evidence, assess
from simulators.ccd import CCD
from simulators.detectors import Detectors, picoharp_hybrid, streak_like
from simulators.optics import Spectrograph
from simulators.tags import TagSource

Sample, Conditions = sample_mod.Sample, sample_mod.Conditions
HC = 1239.84198
TEMPS = [10, 30, 50, 70, 90, 110, 130, 160, 200, 250, 295]
FLUENCES = [0.5, 1, 1.5, 2, 3, 5, 8, 12, 20, 40, 80]
F_SERIES = 20.0


def _ccd_spectrum(s, cond, rng: np.random.Generator, exposure_s: float | None = None) -> dict:  # type: ignore[no-untyped-def]
    sp = Spectrograph(grating_lpmm=600.0)
    wl = sp.wavelength_axis(520.0)
    rate = sp.column_rates(lambda lam: s.emission_spectrum(lam, cond), 520.0)
    ccd = CCD(n_rows=1)
    if exposure_s is None:  # auto-exposure: ~5e4 photoelectrons at the peak
        exposure_s = min(5e4 / max(float(rate.max()), 1e-9), 100.0)
    counts = ccd.expose(rate, exposure_s, rng, wavelength_nm=wl, cosmics=False)[0]
    return {
        "energy_eV": HC / wl,
        "counts": (counts - ccd.bias_counts) * ccd.gain_e_per_count,
        "T_K": cond.T_K,
        "fluence_uJcm2": cond.fluence_uJcm2,
        "read_noise": ccd.read_noise_e,
        "exposure_s": exposure_s,
    }


def _irf(det: Detectors, dt: float, nb: int, rng: np.random.Generator, n: int = 2_000_000) -> np.ndarray:
    sp = det.spads[0]
    x = -det.sync_offset_ps + sp.delay_ps + rng.normal(0.0, det.sigma_ps(1), n)
    tail = rng.random(n) < sp.irf_tail_fraction
    x[tail] += rng.exponential(sp.irf_tail_tau_ps, int(tail.sum()))
    return np.histogram(x, np.arange(nb + 1) * dt)[0].astype(float)


def build_evidence(name: str, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    s = Sample.preset(name, seed=seed)
    spectra = [
        _ccd_spectrum(s, Conditions(T_K=T, fluence_uJcm2=F_SERIES, rep_rate_Hz=15e3), rng) for T in TEMPS
    ]
    sp = Spectrograph(grating_lpmm=600.0)
    top = Conditions(T_K=10, fluence_uJcm2=FLUENCES[-1], rep_rate_Hz=15e3)
    exp_s = 2e5 / float(sp.column_rates(lambda lam: s.emission_spectrum(lam, top), 520.0).max())
    spectra += [
        _ccd_spectrum(s, Conditions(T_K=10, fluence_uJcm2=f, rep_rate_Hz=15e3), rng, exp_s) for f in FLUENCES
    ]
    # band-resolved decays at 10 K: monochromator windows (±1.5 nm) on the red-band maximum of the 10 K
    # spectrum and on the uncoupled band
    cond = Conditions(T_K=10, fluence_uJcm2=F_SERIES, rep_rate_Hz=1e6)
    e_unc = s.truth(cond)["derived"]["E_uncoupled_eV"]
    e10, c10 = spectra[0]["energy_eV"], spectra[0]["counts"]
    red = e10 < e_unc - 0.025
    decays = []
    for band, det, dt, nb, e_c in (
        ("sf", streak_like(), 1.0, 4096, float(e10[red][np.argmax(c10[red])])),
        ("unc", picoharp_hybrid(), 4.0, 2048, e_unc),
    ):
        lam = HC / e_c
        ts = TagSource(s, det, seed=seed)
        h = ts.tcspc_histogram(cond, 30.0, dt, nb, filter_nm=(lam - 1.5, lam + 1.5))
        h = ts.tcspc_histogram(
            cond, 30.0 * 2e5 / max(int(h.sum()), 1), dt, nb, filter_nm=(lam - 1.5, lam + 1.5)
        )
        decays.append(
            {
                "t_ps": np.arange(nb) * dt,
                "counts": h,
                "irf": _irf(det, dt, nb, rng),
                "T_K": 10.0,
                "band": band,
                "fluence_uJcm2": F_SERIES,
            }
        )
    # g2 under CW X-rays at 20 K, normalised to the accidental floor of the wings
    det = picoharp_hybrid()
    n, bw = 601, 10.0
    c = TagSource(s, det, seed=seed).g2_histogram(Conditions(T_K=20, xray_kV=20, xray_mA=1.0), 600.0, bw, n)
    tau = (np.arange(n) - n / 2 + 0.5) * bw
    floor = c[np.abs(tau) > 2000].mean()
    g2 = [
        {
            "tau_ps": tau,
            "g2": c / floor,
            "g2_err": np.sqrt(np.maximum(c, 1)) / floor,
            "irf_fwhm_ps": det.hbt_irf_fwhm_ps(),
            "T_K": 20.0,
        }
    ]
    wl = np.linspace(470, 560, 500)
    absorption = [{"energy_eV": HC / wl, "absorbance": s.absorbance(wl, Conditions(T_K=10)), "T_K": 10.0}]
    return {
        "spectra": spectra,
        "decays": decays,
        "g2": g2,
        "absorption": absorption,
        "excitation": "optical",
        "sample": name,
    }


def _show(v) -> str:  # type: ignore[no-untyped-def]
    return (
        v.summary() + "\n" + "\n".join(f"  {it.number} {it.key}: {it.status} — {it.detail}" for it in v.items)
    )


# Known failures of issue 14's analysis on the simulator presets, kept visible (strict: a fix makes them
# fail until the marker goes). Issue 14 stays open on them; see its closing note.
_DECAY_MODEL = ("item 4 'poor fit': the red-band decay is now fitted as an SF burst (model 'burst', selected by ΔBIC "
                "over the exponential rise; τ_SF within 1.5 % of the simulator's truth) but the simulated pulse — a "
                "sech² build-up joined to an exponential release with a kink at the peak — still fails the "
                "calibrated deviance gate at 2·10⁵ photons")
_SF_PRESETS = [
    pytest.param("milano-2d-sl", marks=pytest.mark.xfail(
        strict=True, raises=AssertionError, reason="inconclusive, 7 pass 0 fail 2 not measured: "
                 + _DECAY_MODEL + " (p = 3.5e-4), so item 5 is not measured; item 1 passes since select_bands "
                 "fits the preset's biexciton band (18 meV below the uncoupled one, 1.4 % of the light) as a third "
                 "band (session 11; it was the 10 K lineshape misfit, reduced deviance 1.16)")),
    pytest.param("technion-3d-sl", marks=pytest.mark.xfail(
        strict=True, raises=AssertionError, reason="inconclusive, 6 pass 1 fail: "
                 + _DECAY_MODEL + " (p = 9.4e-4 against gof_min_p = 1e-3; ratio 706/2221 = 0.32 would pass); "
                 "item 9 fails on the preset's absorption at E_SF; item 6 passes since the fluence fit adds the "
                 "points' relative scatter in quadrature (α excess 0.159)")),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("preset", _SF_PRESETS)
def test_sf_presets_are_sf(preset: str) -> None:
    v = assess(Evidence.from_dict(build_evidence(preset)))
    print(_show(v))
    assert v.verdict == "SF", _show(v)
    for key in ("two_band", "onset", "faster"):
        assert v.item(key).status == PASS, _show(v)
    truth = Sample.preset(preset).truth(Conditions(T_K=10, fluence_uJcm2=F_SERIES, rep_rate_Hz=1e6))[
        "derived"
    ]
    # the verdict's numbers against the oracle's truth
    shift = v.strength["shift_meV"]["value"]
    assert abs(shift - truth["sf_shift_meV"]) < 8.0
    tau_sf = v.strength["tau_sf_ps"]["value"]
    assert abs(tau_sf - truth["tau_sf_ps"]) / truth["tau_sf_ps"] < 0.1


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "preset,confuser",
    [("biexciton-only", "biexciton-only"),
     pytest.param("ase-film", "ASE", marks=pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
         "verdict not SF, but one signature each for ASE (threshold near 5–8 µJ/cm²) and biexciton (a red band "
         "34.2 ± 0.3 meV below): the band is not ASE-narrow (FWHM ratio 0.49 > 0.35) and both decays fail the "
         "goodness-of-fit gate (reduced deviance 3.7: the red window holds prompt ASE and slow PL, one component "
         "does not describe it), so the prompt-without-build-up signature is not tested"))),
     ("miniband-shift", "miniband shift")],
)
def test_confuser_presets_are_not_sf(preset: str, confuser: str) -> None:
    v = assess(Evidence.from_dict(build_evidence(preset)))
    print(_show(v))
    assert v.verdict == "not SF", _show(v)
    assert v.confuser == confuser, _show(v)
    assert v.item("two_band").status == FAIL or v.item("onset").status == FAIL
