"""Band-resolved decays on the simulated lab, end to end: a PL series with the TCSPC monochromator records a
decay at the SF and one at the uncoupled wavelength per point (chosen from the spectrum just taken), each
with its wavelength and bandpass, and the IRF from scattered laser; the decays recover the preset's τ_SF and
τ_unc; the summary passes the bands and the measured IRF to the analysis."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import curve_fit

from acq.composition import open_lab
from acq.store import open_run
from acq.summary import evidence_from_run
from procedures import FluenceCalibration, PLTemperatureSeries
from procedures._common import band_peaks

from .conftest import run

pytestmark = pytest.mark.timeout(180)
HC = 1239.84198


def tail_tau(t: np.ndarray, h: np.ndarray, irf: np.ndarray, start_ps: float, span_ps: float) -> tuple[float, float]:
    """τ ± σ of A·(IRF ⊗ exp(−t/τ)) + c over the tail (see tests/simulators/test_tcspc_mono.py)."""
    i = int(np.argmax(np.convolve(h, np.ones(5) / 5, mode="same")))
    m = (t > t[i] + start_ps) & (t < t[i] + start_ps + span_ps)
    k = np.clip(irf - np.median(irf[: irf.size // 10]), 0.0, None)
    k /= k.sum()
    x = t - t[0]

    def model(_t: np.ndarray, a: float, tau: float, c: float) -> np.ndarray:
        return (a * np.convolve(k, np.exp(-x / tau))[: h.size] + c)[m]

    y = h[m].astype(float)
    p, cov = curve_fit(model, t[m], y, p0=[h[i] / 5.0, 50.0, 1.0], sigma=np.sqrt(y + 1.0), absolute_sigma=True)
    return float(p[1]), float(np.sqrt(cov[1, 1]))


@pytest.fixture(scope="module", params=["cornerstone"])   # the horiba backend: tests/drivers/test_horiba_tcspc_mono.py
def series(request, tmp_path_factory):
    d = Path(tmp_path_factory.mktemp(f"band-{request.param}"))
    s = open_lab(sim=True, sample="milano-2d-sl", speed="max", data_dir=d, tcspc_mono=request.param)
    try:
        run(s, FluenceCalibration(n_steps=4, readings=1))
        p = PLTemperatureSeries(temperatures=[5.0], fluences=[1.0], hold_s=5.0, decay_s=5.0,
                                tcspc_bandpass_nm=2.0, decay_binwidth_ps=4.0, decay_bins=1500)
        res = run(s, p)
        from simulators.sample import Conditions

        truth = s.sim.world.sample.truth(Conditions(T_K=5.0, fluence_uJcm2=1.0))["derived"]
    finally:
        s.close()
    return request.param, res, open_run(res.path), truth


def test_decays_at_the_sf_and_uncoupled_wavelengths(series):
    mono, res, data, truth = series
    sf, unc, irf = data.stream("decay"), data.stream("decay_unc"), data.stream("irf")
    assert (int(sf["band"][0]), int(unc["band"][0]), int(irf["band"][0])) == (1, 2, 3)
    # the wavelengths come from the spectrum just taken: the red and the main band of the sample
    assert sf["wavelength_nm"][0] == pytest.approx(HC / truth["band_E_eV"]["sf"], abs=1.5)
    assert unc["wavelength_nm"][0] == pytest.approx(HC / truth["band_E_eV"]["uncoupled"], abs=1.5)
    assert irf["wavelength_nm"][0] == pytest.approx(405.2, abs=0.01)
    for st in (sf, unc, irf):
        assert st["bandpass_nm"][0] == pytest.approx(2.0, rel=0.02)
        assert st["window_hi_nm"][0] - st["window_lo_nm"][0] == pytest.approx(st["bandpass_nm"][0])
    t = data.static_axes["decay"]["t"]
    h_sf, h_unc, h_irf = (np.asarray(st["counts"][0], float) for st in (sf, unc, irf))
    assert min(h_sf.sum(), h_unc.sum()) > 3e4
    # the IRF: stop-count histograms summed until irf_counts (4e6) or irf_s (120 s) — many more counts than
    # either decay, since the fit treats the measured IRF as exact; no bin is clipped in the sum
    assert h_irf.sum() >= 4e6 or irf["duration"][0] == pytest.approx(120.0)
    assert h_irf.sum() > 10 * max(h_sf.sum(), h_unc.sum())
    assert h_irf.max() > 65535 and int(irf["clipped_bins"][0]) == 0 and int(irf["overflow"][0]) == 1
    assert irf["duration"][0] <= 120.0
    above = np.flatnonzero(h_irf >= h_irf.max() / 2)
    assert 30.0 < (above[-1] - above[0] + 1) * 4.0 < 90.0            # the measured IRF: ~50 ps FWHM
    tau_sf, s_sf = tail_tau(t, h_sf, h_irf, 30.0, 6 * truth["tau_sf_ps"])
    tau_unc, s_unc = tail_tau(t, h_unc, h_irf, 150.0, 6 * truth["tau_X_ps"])
    assert abs(tau_sf - truth["tau_sf_ps"]) < 3 * s_sf, (mono, tau_sf, s_sf, truth["tau_sf_ps"])
    assert abs(tau_unc - truth["tau_X_ps"]) < 3 * s_unc, (mono, tau_unc, s_unc, truth["tau_X_ps"])


def test_summary_passes_bands_and_the_measured_irf(series):
    _mono, res, data, _truth = series
    ev = evidence_from_run(data)
    bands = sorted(d.band for d in ev.decays)
    assert bands == ["sf", "unc"]
    for d in ev.decays:
        assert d.wavelength_nm is not None and d.wavelength_nm[1] - d.wavelength_nm[0] == pytest.approx(2.0, rel=0.02)
        assert d.irf.max() > 100                                       # the scattered-laser histogram, not a Gaussian
    assert "measured IRF" in res.analysis["irf_note"]
    assert "band-resolved" in res.analysis["decay_note"]
    assert {r["band"] for r in res.analysis["decays"]} == {"sf", "unc"}


def test_the_detection_band_fit_is_the_analysis_fit(tmp_path, monkeypatch):
    """The procedure chooses its detection wavelengths with the band fit of the spectrum as the run's analysis
    reads it back from the file (acq.summary.spectrum_electrons): the same photo-electrons and read noise, so
    the analysis finds that fit remembered — each spectrum is fitted once, not once for the monochromator and
    again for the verdict."""
    from analysis import sf as sf_mod

    calls: list[bytes] = []
    real = sf_mod.select_bands

    def counting(e, c, **kw):  # type: ignore[no-untyped-def]
        calls.append(hashlib.blake2b(np.ascontiguousarray(c, float).tobytes()).digest())
        return real(e, c, **kw)

    monkeypatch.setattr(sf_mod, "select_bands", counting)
    sf_mod._FIT_MEMO.clear()
    s = open_lab(sim=True, sample="milano-2d-sl", speed="max", data_dir=tmp_path, tcspc_mono="cornerstone")
    try:
        res = run(s, PLTemperatureSeries(temperatures=[5.0, 20.0], fluences=[1.0], hold_s=5.0, decay_s=1.0,
                                         tcspc_bandpass_nm=2.0, decay_binwidth_ps=4.0, decay_bins=1500,
                                         irf_s=1.0, calibration="config"))
    finally:
        s.close()
    ev = evidence_from_run(open_run(res.path))
    assert len(ev.spectra) == 2 and res.analysis["n_spectra"] == 2
    assert len(calls) == 2 and len(set(calls)) == 2   # one fit per spectrum, made while it was taken


def test_band_peaks_finds_two_bands_or_offsets_one():
    wl = np.linspace(490.0, 560.0, 700)
    E = HC / wl
    two = 1000 * np.exp(-0.5 * ((E - 2.369) / 0.015) ** 2) + 800 * np.exp(-0.5 * ((E - 2.310) / 0.009) ** 2)
    sf, unc, ok = band_peaks(wl, two)
    assert ok and sf == pytest.approx(HC / 2.310, abs=0.3) and unc == pytest.approx(HC / 2.369, abs=0.3)
    one = 1000 * np.exp(-0.5 * ((E - 2.42) / 0.018) ** 2)
    sf, unc, ok = band_peaks(wl, one, shift_meV=55.0)
    assert not ok and unc == pytest.approx(HC / 2.42, abs=0.3) and sf == pytest.approx(HC / 2.365, abs=0.3)


def test_decay_counts_sums_stop_count_histograms_without_clipping(tmp_path):
    """decay_counts > 0: a bright decay is summed from histograms that each end at the stop count, until it
    holds decay_counts (or decay_s is spent) — the IRF's mechanism; no bin of the sum is clipped. With the
    default (0) the same decay is one stop-count histogram."""
    s = open_lab(sim=True, sample="milano-2d-sl", speed="max", data_dir=tmp_path)
    try:
        run(s, FluenceCalibration(n_steps=4, readings=1))
        one = open_run(run(s, PLTemperatureSeries(temperatures=[5.0], fluences=[5.0], hold_s=5.0, decay_s=20.0,
                                                  measure_irf=False)).path)
        summed = open_run(run(s, PLTemperatureSeries(temperatures=[5.0], fluences=[5.0], hold_s=5.0, decay_s=20.0,
                                                     decay_counts=2e6, measure_irf=False)).path)
    finally:
        s.close()
    a, b = one.stream("decay"), summed.stream("decay")
    ha, hb = np.asarray(a["counts"][0], float), np.asarray(b["counts"][0], float)
    assert int(a["overflow"][0]) == 1 and ha.max() <= 65535 and ha.sum() < 2e6     # stopped at the stop count
    assert a["duration"][0] < 20.0
    assert hb.sum() >= 2e6 or b["duration"][0] == pytest.approx(20.0)
    assert hb.max() > 65535 and int(b["clipped_bins"][0]) == 0 and int(b["overflow"][0]) == 1
    assert a["duration"][0] < b["duration"][0] <= 20.0 + 1e-9
