"""Physics behaviour of the sample model (trends and internal consistency, not paper numbers)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulators.sample import BANDS, Conditions, Sample


@pytest.fixture(scope="module")
def sl() -> Sample:
    return Sample.preset("milano-2d-sl")


def _f(N: float) -> float:
    return N / 0.92e-14 * 3.06 * 1.602176634e-19 * 1e6


def test_optical_density(sl):
    assert sl.N_optical(Conditions(T_K=20, fluence_uJcm2=80.0)) == pytest.approx(1.5, rel=0.02)
    assert sl.N_optical(Conditions(T_K=20, fluence_uJcm2=80.0, photon_eV=2.0)) == 0.0  # below the gap


def test_onset_rises_with_density_and_weight_is_smooth(sl):
    assert sl.onset_K(0.01) < sl.onset_K(0.1) < sl.onset_K(1.5)
    T = np.linspace(5, 300, 120)
    w = np.array([sl.coherence(t, 0.05) for t in T])
    assert np.all(np.diff(w) <= 1e-12) and w[0] > 0.95 and w[-1] < 1e-3
    assert np.max(np.abs(np.diff(w))) < 0.1  # no step


def test_sf_times_shrink_with_density(sl):
    lo = sl.excited(20.0, 0.02).info
    hi = sl.excited(20.0, 3.0).info
    assert hi["tau_sf_ps"] < lo["tau_sf_ps"] and hi["tau_D_ps"] < lo["tau_D_ps"]
    assert hi["N_coupled"] > lo["N_coupled"]
    # tau_D ∝ tau_SF ln N_c ([002])
    for info in (lo, hi):
        expected = sl.p("sf", "kappa_D") * info["tau_sf_ps"] * math.log(info["N_coupled"])
        assert info["tau_D_ps"] == pytest.approx(expected)


def test_gos_speed_up_saturates_below_70K():
    iso = Sample.preset("isolated-ncs")
    t5, t70, t300 = iso.tau_X_ps(5), iso.tau_X_ps(70), iso.tau_X_ps(300)
    assert t5 == pytest.approx(200, rel=0.01) and t70 < 1.5 * t5 and t300 > 10 * t5


def test_decay_normalisation_and_band_sum(sl):
    t = np.concatenate([np.arange(0, 500, 0.05), np.geomspace(500, 2e5, 6000)])
    for cond in (Conditions(T_K=20, fluence_uJcm2=5.0), Conditions(T_K=80, xray_kV=20, xray_mA=1)):
        y = sl.decay(t, cond)
        assert np.trapezoid(y, t) == pytest.approx(1.0, abs=2e-3)
        parts = sum(sl.decay(t, cond, b) for b in BANDS)
        np.testing.assert_allclose(parts, y, rtol=1e-9, atol=1e-15)
        assert np.all(y >= 0)


def test_sf_peak_is_delayed_and_unc_is_prompt(sl):
    cond = Conditions(T_K=5, fluence_uJcm2=2.0)
    t = np.arange(0, 200, 0.05)
    sf = sl.decay(t, cond, "sf")
    unc = sl.decay(t, cond, "uncoupled")
    d = sl.truth(cond)["derived"]
    assert t[np.argmax(sf)] == pytest.approx(d["tau_D_ps"], abs=0.1)
    assert t[np.argmax(unc)] < 1.0
    assert sf[0] < 0.1 * sf.max()


def test_spectrum_integrates_to_band_rates(sl):
    cond = Conditions(T_K=20, fluence_uJcm2=5.0)
    lam = np.linspace(440, 650, 20001)
    total = np.trapezoid(sl.emission_spectrum(lam, cond), lam)
    assert total == pytest.approx(sum(sl.band_photon_rates(cond).values()), rel=1e-3)
    d = sl.truth(cond)["derived"]
    assert d["band_E_eV"]["uncoupled"] - d["E_sf_eV"] == pytest.approx(0.060, abs=1e-6)


def test_multiexciton_ratio_follows_poisson():
    iso = Sample.preset("isolated-ncs")
    R = [iso.excited(295.0, N).info["xx_x_amplitude_ratio"] for N in (0.1, 0.5, 1.5, 3.0)]
    assert np.all(np.diff(R) > 0)
    # small-<N> limit R ≈ (4 - c) N / 2 (physics.md 4.3)
    info = iso.excited(295.0, 0.01).info
    assert info["xx_x_amplitude_ratio"] == pytest.approx((4 - info["c_feed"]) * 0.01 / 2, rel=0.03)


def test_xray_bursts_and_kramers_scaling(sl):
    a = sl.truth(Conditions(T_K=20, xray_kV=20, xray_mA=1))["derived"]
    b = sl.truth(Conditions(T_K=20, xray_kV=40, xray_mA=2))["derived"]
    assert b["xray_absorbed_rate_per_s"] == pytest.approx(8 * a["xray_absorbed_rate_per_s"])
    assert a["xray_photons_per_event"] > 50 and a["xray_multiplicity_m2_over_m1sq"] > 1.0
    assert 30_000 < a["light_yield_ph_per_MeV"] < 100_000  # [000]: 64 000 ± 20 000 at 20 K
    assert sl.truth(Conditions(T_K=20))["derived"]["excitation_source"] == "none"


def test_confuser_signatures():
    # biexciton-only: red-shifted band present at every T, ~f^2 at low fluence
    bx = Sample.preset("biexciton-only")
    for T in (5.0, 150.0, 295.0):
        d = bx.truth(Conditions(T_K=T, fluence_uJcm2=_f(0.02)))["derived"]
        assert d["alpha_local"]["xx"] == pytest.approx(2.0, abs=0.1)
        assert 10 < (d["band_E_eV"]["uncoupled"] - d["band_E_eV"]["xx"]) * 1e3 < 40
    # ase-film: threshold, exponent far from 2, narrow, prompt
    ase = Sample.preset("ase-film")
    below = ase.truth(Conditions(T_K=20, fluence_uJcm2=_f(0.02)))["derived"]
    above = ase.truth(Conditions(T_K=20, fluence_uJcm2=_f(0.15)))["derived"]
    assert below["band_fraction"]["ase"] < 0.01 < 0.3 < above["band_fraction"]["ase"]
    assert above["band_fwhm_meV"]["ase"] < above["band_fwhm_meV"]["uncoupled"]
    t = np.arange(0, 100, 0.1)
    y = ase.decay(t, Conditions(T_K=20, fluence_uJcm2=_f(0.15)), "ase")
    assert t[np.argmax(y)] == 0.0
    # miniband: red shift at room temperature and in absorption, slower than the uncoupled band
    mb = Sample.preset("miniband-shift")
    d = mb.truth(Conditions(T_K=295, fluence_uJcm2=1.0))["derived"]
    assert d["band_fraction"]["miniband"] > 0.4
    lam = np.linspace(470, 560, 2000)
    a_mb = mb.absorbance(lam, Conditions(T_K=295))
    a_sl = Sample.preset("milano-2d-sl").absorbance(lam, Conditions(T_K=295))
    E_mb = 1239.84 / d["band_E_eV"]["miniband"]
    i = int(np.argmin(np.abs(lam - (E_mb - 6))))
    assert a_mb[i] > 3 * a_sl[i]
    assert mb.p("miniband", "tau_ps") > mb.tau_X_ps(295)


def test_ringing_option(sl):
    t = np.arange(0, 400, 0.1)
    hi = sl.decay(t, Conditions(T_K=5, fluence_uJcm2=_f(40.0)), "sf")
    d = sl.truth(Conditions(T_K=5, fluence_uJcm2=_f(40.0)))["derived"]
    assert d["ringing_amplitude"] > 0.1
    # a secondary maximum after the main burst
    dy = np.diff(hi)
    peaks = np.nonzero((dy[:-1] > 0) & (dy[1:] <= 0))[0]
    assert len(peaks) >= 2


@pytest.mark.parametrize("tau_D,tau_sf,ring,period_rel", [(40.0, 8.0, 0.0, 1.0), (120.0, 30.0, 0.4, 1.6),
                                                          (2.0, 0.7, 0.25, 2.5), (0.0, 5.0, 0.0, 1.0)])
def test_sf_norm_closed_form_matches_numerical_quadrature(tau_D, tau_sf, ring, period_rel):
    """The burst's normalisation (closed form) against scipy's adaptive quadrature of the shape itself."""
    from scipy.integrate import quad

    from simulators.sample import _sf_norm, _sf_shape

    t_end = tau_D + 60 * tau_sf + (4 * period_rel * tau_sf if ring > 0 else 0)
    brk = sorted({tau_D, *(tau_D + k * period_rel * tau_sf for k in range(1, 4))} - {0.0})
    num, _ = quad(lambda t: float(_sf_shape(np.array([t]), tau_D, tau_sf, ring, period_rel)[0]),
                  0.0, t_end, points=brk, limit=400, epsabs=1e-10, epsrel=1e-10)
    assert _sf_norm(tau_D, tau_sf, ring, period_rel) == pytest.approx(num, rel=1e-8)
