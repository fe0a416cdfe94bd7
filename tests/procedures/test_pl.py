"""PL temperature and fluence series on the simulated lab, end to end, with the SF verdict
compared against the virtual sample's truth stored in the run file."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from acq.store import open_run
from acq.summary import summarize_campaign
from procedures import FluenceCalibration, FluenceSeries, PLTemperatureSeries
from procedures._common import BAND_CODES

from ..conftest import made_once
from .conftest import run, sim_lab

pytestmark = pytest.mark.timeout(180)

TEMPS = [5.0, 40.0, 70.0, 100.0, 140.0, 180.0]
FLUENCES = [0.4, 1.6, 6.0]


def t_series(tmp_path, sample, temps=TEMPS, fluences=FLUENCES):
    with sim_lab(tmp_path, sample) as s:
        run(s, FluenceCalibration(n_steps=8, readings=1))
        p = PLTemperatureSeries(temperatures=temps, fluences=fluences, hold_s=20.0, decay_s=0.5)
        res = run(s, p)
        truth = s.sim.truth()
    return res, open_run(res.path), truth


def milano_series(tmp_path_factory):
    """The milano PL temperature series, made once for the session (tests/procedures/test_xray.py's campaign
    reads it too); no test writes to it."""
    def make(folder):
        res, _, truth = t_series(folder, "milano-2d-sl")
        return res, truth

    res, truth = made_once(tmp_path_factory, "milano-pl-series", make)
    return res, open_run(res.path), truth


@pytest.fixture(scope="module")
def milano(tmp_path_factory):
    return milano_series(tmp_path_factory)


@pytest.fixture(scope="module")
def isolated(tmp_path_factory):
    # the control sample on four of the six temperatures and the two outer fluences: the same verdict and the
    # same checklist as on the full grid (measured: not SF, two_band and faster fail), at 60 % of its CPU
    return t_series(tmp_path_factory.mktemp("isolated"), "isolated-ncs", temps=[5.0, 40.0, 100.0, 180.0],
                    fluences=[0.4, 6.0])


def test_pl_series_writes_a_sensible_run_file(milano):
    res, data, _ = milano
    n = len(TEMPS) * len(FLUENCES)
    assert data.n_points == n and data.exit_status == "success"
    sp, dec = data.stream("spectrum"), data.stream("decay")
    assert sp["counts"].shape == (n, data.static_axes["spectrum"]["wavelength"].size)
    # every point reached its temperature and its fluence
    np.testing.assert_allclose(sp["T_K"], np.repeat(TEMPS, len(FLUENCES)), atol=1.0)
    assert np.all(sp["stable"] == 1)
    np.testing.assert_allclose(sp["fluence_measured"], np.tile(FLUENCES, len(TEMPS)), rtol=0.05)
    # spectra below saturation and above the dark level; decays with a peak
    assert np.all(sp["counts"].max(axis=1) < 65000)
    assert np.all((sp["counts"] - sp["dark"]).max(axis=1) > 1000)
    # band-resolved (the TCSPC monochromator): the uncoupled band's decay at every point, the SF band's where
    # the sample has a red band (below its ~90 K onset; at 140–180 K the SF window sees only the uncoupled tail)
    # (every decay ≥ 100 counts: 10 σ of its own Poisson noise above nothing; 180 K at 0.4 µJ/cm² is the dimmest)
    unc = data.stream("decay_unc")
    assert np.all(unc["counts"].sum(axis=1) > 100)
    cold = sp["T_K"] < 80.0
    assert np.all(dec["counts"][cold].sum(axis=1) > 100) and dec["counts"].sum(axis=1).max() > 1e5
    assert set(dec["band"]) == {BAND_CODES["sf"]} and set(unc["band"]) == {BAND_CODES["unc"]}
    assert data.units["spectrum"]["wavelength"] == "nm" and data.units["decay"]["t"] == "ps"
    assert data.readbacks["cryostat"]["T_sample"].shape == (n,)
    with h5py.File(res.path, "r") as f:
        stored = json.loads(f["entry/analysis/summary"][()])
    assert list(res.analysis)[0] == "verdict"  # the store sorts the JSON keys
    assert stored["verdict"] == res.analysis["verdict"]


def test_milano_pl_temperature_series_is_sf(milano):
    res, data, truth = milano
    a = res.analysis
    assert data.truth["preset"] == "milano-2d-sl" and a["truth"]["sf_enabled"] is True
    assert a["verdict"] == "SF", a["reasons"]
    status = {it["key"]: it["status"] for it in a["checklist"]}
    assert status["two_band"] == status["onset"] == status["faster"] == "pass"
    # numbers against the simulated sample: shift 60 meV, onset of the order of 90 K
    assert a["shift_meV"]["value"] == pytest.approx(60.0, abs=10.0)
    assert 40.0 < a["T_on_K"]["value"] < 150.0
    assert a["tau_sf_ps"]["value"] < a["tau_unc_ps"]["value"]
    assert a["alpha_sf"]["value"] > a["alpha_unc"]["value"]
    # SF fraction at the lowest T, highest fluence vs the truth at the end of the run (180 K → low)
    assert a["sf_fraction"]["value"] > 0.3
    assert truth["derived"]["sf_fraction"] < 0.2  # the run ended warm: little SF left, as measured
    fr = {round(r["T_K"]): r["sf_fraction"] for r in a["sf_fraction_vs_T"]}
    assert fr[5] > fr[180]


def test_isolated_ncs_pl_temperature_series_is_not_sf(isolated):
    res, data, _ = isolated
    a = res.analysis
    assert data.truth["preset"] == "isolated-ncs" and a["truth"]["sf_enabled"] is False
    assert a["verdict"] == "not SF", a["reasons"]
    status = {it["key"]: it["status"] for it in a["checklist"]}
    assert status["two_band"] == status["faster"] == "fail"   # one band; no faster red decay


@pytest.fixture(scope="module")
def fluence_series(tmp_path_factory):
    with sim_lab(tmp_path_factory.mktemp("fluence")) as s:
        run(s, FluenceCalibration(n_steps=8, readings=1))
        p = FluenceSeries(temperature=5.0, fluences=[0.2, 0.5, 1.2, 3.0, 7.0], hold_s=20.0, decay_s=0.3)
        return run(s, p)


def test_fluence_series_power_law(fluence_series):
    res = fluence_series
    data = open_run(res.path)
    assert data.n_points == 5
    np.testing.assert_allclose(data.stream("spectrum")["fluence_measured"], [0.2, 0.5, 1.2, 3.0, 7.0], rtol=0.05)
    a = res.analysis
    # SF band superlinear (truth: I_SF ~ f^1.4), uncoupled band ~ linear; bounded by 2
    assert a["alpha_sf"]["value"] > a["alpha_unc"]["value"] + 0.2
    assert a["alpha_sf"]["value"] < 2.0
    item = next(it for it in a["checklist"] if it["key"] == "fluence_exponent")
    assert item["status"] == "pass"


def test_campaign_summary_across_run_files(milano, fluence_series):
    runs = [milano[1], open_run(fluence_series.path)]
    c = summarize_campaign(runs)
    assert list(c)[0] == "verdict"
    assert c["verdict"] == "SF" and c["truth"]["sf_enabled"] is True
    assert c["n_runs"] == 2 and [r["verdict"] for r in c["runs"]] == ["SF", fluence_series.analysis["verdict"]]
    series = c["sf_fraction_vs_T_by_series"]
    assert {"PL 0.4 µJ/cm²", "PL 1.6 µJ/cm²", "PL 6 µJ/cm²"} <= set(series)
    hi = series["PL 6 µJ/cm²"]
    assert hi[0]["T_K"] < hi[-1]["T_K"] and hi[0]["sf_fraction"] > hi[-1]["sf_fraction"]
    assert c["onset_temperature_K"]["value"] > 40.0
    assert c["fluence_exponents"]["alpha_sf"]["value"] > c["fluence_exponents"]["alpha_unc"]["value"]
    # a row per decay: the SF and the uncoupled band's at each point of the T series, the fluence series' five
    assert len(c["tau_sf_vs_T"]) == 2 * len(TEMPS) * len(FLUENCES) + 5
    json.dumps(c)  # JSON-able
