"""The simulated TCSPC detector behind the TCSPC monochromator (simulators.optics.ScanningMonochromator,
World.tcspc_passband): it sees only the light the monochromator passes, so a decay at the SF wavelength and
one at the uncoupled wavelength differ as the sample says; zero order (and no monochromator) is all light;
on the laser line it records scattered laser, the instrument response."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import curve_fit

from acq.clock import SimClock
from simulators.optics import Passband, ScanningMonochromator
from simulators.sample import HC_EV_NM, Conditions
from simulators.tags import TagSource
from simulators.world import World

BW, NB = 4.0, 3000
COND = Conditions(T_K=5.0, fluence_uJcm2=0.4, rep_rate_Hz=76e6)


@pytest.fixture(scope="module")
def world():
    w = World(SimClock(), sample="milano-2d-sl", tick_s=0, tcspc_mono="cornerstone", seed=3)
    yield w
    w.stop()


def source(world: World, seed: int = 0) -> TagSource:
    return TagSource(world.sample, world.detectors, seed)


def at(world: World, nm: float, slit_um: float = 700.0, open_: bool = True) -> None:
    m = world.tcspc_monos["cornerstone"]
    m.wavelength_nm, m.entrance_um, m.exit_um, m.shutter_open = nm, slit_um, slit_um, open_


def tail_tau(h: np.ndarray, irf: np.ndarray, start_ps: float, span_ps: float) -> tuple[float, float]:
    """τ ± σ of the tail of ``h``: A·(IRF ⊗ exp(−t/τ))(t) + c, the measured ``irf`` (scattered laser, on the
    same sync) marking the pulse; Poisson weights, fitted from ``start_ps`` after the peak over ``span_ps``
    (the SF burst's few-ps delay and build-up are inside the excluded start, absorbed by A)."""
    t = (np.arange(h.size) + 0.5) * BW
    i = int(np.argmax(np.convolve(h, np.ones(5) / 5, mode="same")))
    m = (t > t[i] + start_ps) & (t < t[i] + start_ps + span_ps)
    k = np.clip(irf - np.median(irf[: irf.size // 10]), 0.0, None)
    k /= k.sum()
    x = np.arange(h.size) * BW

    def model(_t: np.ndarray, a: float, tau: float, c: float) -> np.ndarray:
        return (a * np.convolve(k, np.exp(-x / tau))[: h.size] + c)[m]

    y = h[m].astype(float)
    p, cov = curve_fit(model, t[m], y, p0=[h[i] / 5.0, 50.0, 1.0], sigma=np.sqrt(y + 1.0), absolute_sigma=True)
    return float(p[1]), float(np.sqrt(cov[1, 1]))


def test_zero_order_and_no_monochromator_are_all_light(world):
    at(world, 0.0)
    assert world.tcspc_passband() is None
    plain = World(SimClock(), sample="milano-2d-sl", tick_s=0, seed=3)
    try:
        assert plain.tcspc_passband() is None          # no monochromator configured: behaviour unchanged
        a = source(world).tcspc_histogram(COND, 1.0, BW, NB, expected=True)
        b = TagSource(plain.sample, None, 0).tcspc_histogram(COND, 1.0, BW, NB, expected=True)
        np.testing.assert_allclose(a, b, rtol=1e-12)
    finally:
        plain.stop()


def test_band_resolved_decays_recover_the_presets_lifetimes(world):
    """At the SF and the uncoupled wavelengths (truth band centres) the tails, reconvolved with the measured
    IRF, give τ_SF and τ_unc (= τ_X of the uncoupled NCs) of the preset within 3σ. (A plain exponential tail
    fit reads τ_SF ≈ 42 ps for 39.8: the hybrid detector's 3 % diffusion tail.)"""
    truth = world.sample.truth(COND)["derived"]
    e = truth["band_E_eV"]
    src = source(world, seed=11)
    at(world, HC_EV_NM / COND.photon_eV)
    irf = src.tcspc_histogram(COND, 60.0, BW, NB).astype(float)       # the IRF step: scattered laser
    at(world, HC_EV_NM / e["sf"])
    h_sf = src.tcspc_histogram(COND, 60.0, BW, NB)
    at(world, HC_EV_NM / e["uncoupled"])
    h_unc = src.tcspc_histogram(COND, 60.0, BW, NB)
    tau_sf, s_sf = tail_tau(h_sf, irf, 30.0, 6 * truth["tau_sf_ps"])
    tau_unc, s_unc = tail_tau(h_unc, irf, 150.0, 6 * truth["tau_X_ps"])
    assert abs(tau_sf - truth["tau_sf_ps"]) < 3 * s_sf, (tau_sf, s_sf, truth["tau_sf_ps"])
    assert abs(tau_unc - truth["tau_X_ps"]) < 3 * s_unc, (tau_unc, s_unc, truth["tau_X_ps"])
    assert tau_sf < 0.8 * tau_unc


def test_the_passband_sets_the_count_rate(world):
    """Wider slits pass more light (∝ bandpass for a band wider than it); a closed shutter passes none."""
    truth = world.sample.truth(COND)["derived"]
    nm = HC_EV_NM / truth["band_E_eV"]["uncoupled"]
    src = source(world)
    at(world, nm, 300.0)
    n1 = src.tcspc_histogram(COND, 1.0, BW, NB, expected=True).sum()
    at(world, nm, 600.0)
    n2 = src.tcspc_histogram(COND, 1.0, BW, NB, expected=True).sum()
    assert n2 / n1 == pytest.approx(2.0, rel=0.1)
    at(world, nm, 600.0, open_=False)
    dark = src.tcspc_histogram(COND, 1.0, BW, NB, expected=True).sum()
    assert dark == pytest.approx(world.detectors.spads[0].dark_cps, rel=0.2)   # dark counts only
    at(world, 0.0)


def test_scattered_laser_is_the_irf(world):
    """On the laser line the detector records scattered laser: the detector + tagger response, ~50 ps FWHM."""
    src = source(world)
    at(world, HC_EV_NM / COND.photon_eV, 700.0)
    h = src.tcspc_histogram(COND, 1.0, BW, NB, expected=True)
    above = np.flatnonzero(h >= h.max() / 2)
    fwhm = (above[-1] - above[0] + 1) * BW
    assert 30.0 < fwhm < 80.0
    assert h.sum() > 1e4
    at(world, 0.0)


def test_passband_shapes():
    tri = Passband(500.0, 2.0, 2.0)
    np.testing.assert_allclose(tri.transmission(np.array([498.0, 499.0, 500.0, 501.0, 502.5])),
                               [0.0, 0.5, 1.0, 0.5, 0.0])
    trap = Passband(500.0, 1.0, 3.0)          # unequal slits: flat top 2 nm wide, FWHM 3 nm
    assert trap.fwhm_nm == 3.0 and trap.transmission(np.array([500.9]))[0] == 1.0
    m = ScanningMonochromator.cornerstone260()
    m.wavelength_nm = 530.0
    assert 2.5 < m.reciprocal_dispersion_nm_per_mm() < 3.3     # 1200 l/mm, 1/4 m (Newport nominal 3.2)
    h = ScanningMonochromator.microhr()
    h.wavelength_nm = 530.0
    assert 40.0 < h.reciprocal_dispersion_nm_per_mm() < 56.0   # 150 l/mm, f = 140 mm
