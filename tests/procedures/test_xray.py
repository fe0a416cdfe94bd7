"""X-ray procedures on the simulated lab: RL spectra vs T, HBT g2 with Photon-HDF5 sidecars, the
RL time profile; the X-ray ends safe."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from acq.photon_hdf5 import validate_sidecar
from acq.store import open_run
from acq.summary import summarize_campaign
from procedures import HBTCorrelation, RLTemperatureSeries, TimeResolvedRL

from .conftest import run, sim_lab, suspenders
from .test_pl import milano_series

pytestmark = pytest.mark.timeout(180)


TEMPS_RL = [180.0, 100.0, 50.0, 20.0]


@pytest.fixture(scope="module")
def rl(tmp_path_factory):
    with sim_lab(tmp_path_factory.mktemp("rl")) as s:
        res = run(s, RLTemperatureSeries(temperatures=TEMPS_RL, kV=20.0, mA=0.5, hold_s=20.0))
        assert not s.sim.world.tube.hv_on  # switched off by the procedure and the backstop
    return res


@pytest.fixture(scope="module")
def hbt(tmp_path_factory):
    with sim_lab(tmp_path_factory.mktemp("hbt"), hbt=True) as s:
        res = run(s, HBTCorrelation(temperatures=[20.0], g2_s=2.0, tags_s=0.05, hold_s=10.0))
        assert not s.sim.world.tube.hv_on
    return res


def test_rl_temperature_series(rl):
    res, temps = rl, TEMPS_RL
    data = open_run(res.path)
    sp = data.stream("spectrum")
    assert data.n_points == 4
    np.testing.assert_allclose(sp["T_K"], temps, atol=1.0)
    np.testing.assert_allclose(sp["kV"], 20.0, atol=0.5)
    np.testing.assert_allclose(sp["mA"], 0.5, atol=0.05)
    net = (sp["counts"].astype(float) - sp["dark"]).sum(axis=1)
    assert np.all(net > 1e4)  # radioluminescence on the CCD at every T
    assert np.all(sp["background"].sum(axis=1) > 0)  # X-ray-off background per point
    a = res.analysis
    assert a["excitation"] == "xray" and a["verdict"] in ("SF", "inconclusive")
    assert a["n_spectra"] == 4
    # the simulated SL under X-rays ([000] Fig. 3d): SF > 90 % of the RL at 20 K, > 70 % up to 180 K
    fr = {round(r["T_K"]): r["sf_fraction"] for r in a["spectra"]}
    assert fr[20] > 0.85 and min(fr.values()) > 0.7
    assert a["shift_meV"]["value"] == pytest.approx(60.0, abs=8.0)
    assert data.backstop.get("xray") == "ok"


def test_rl_spectra_fit_with_the_background_frames_noise(rl):
    """The variance of spectrum − X-ray-off background holds the background frame's own noise: read noise
    and the shot noise of its dark charge (~70 e⁻ per binned pixel in 10 s), measured from the frame
    (acq.summary.frame_noise_e). With the camera's 3 e⁻ read noise alone the band fits of these spectra had
    reduced deviance ~5 from the wings, where only the dark charge is."""
    from acq.summary import _spectrum_records, frame_noise_e
    from analysis.sf import is_poor, select_bands

    data = open_run(rl.path)
    sp = data.stream("spectrum")
    gain = float(data.parameters["ccd_gain"])
    bg_noise = [frame_noise_e(b, gain) for b in sp["background"]]
    assert min(bg_noise) > 1.5 * float(data.parameters["read_noise_e"])  # the dark charge dominates
    recs = _spectrum_records(data, "spectrum", True)
    assert [r.read_noise for r in recs] == pytest.approx([np.sqrt(2) * n for n in bg_noise])
    for r in recs:
        _, sel, _ = select_bands(r.energy_eV, r.counts, read_noise=r.read_noise)
        assert not is_poor(sel), (r.T_K, sel.reduced_deviance)


def test_hbt_g2_with_sidecars(hbt):
    res = hbt
    data = open_run(res.path)
    g = data.stream("g2")
    assert data.n_points == 1 and g["counts"].shape == (1, 500)
    tau = data.static_axes["g2"]["tau"]
    assert tau.min() < 0 < tau.max()  # negative and positive delays
    assert g["n1"][0] > 1000 and g["n2"][0] > 1000
    # the PicoHarp took it as a start-stop histogram (histogram mode), with its quality figures
    assert g["start_stop"][0] == 1 and g["overflow"][0] == 0 and g["clipped_bins"][0] == 0
    assert g["duration"][0] == pytest.approx(g["requested"][0]) and 0 < g["pileup"][0] < 0.05
    a = res.analysis
    bunch = next(it for it in a["checklist"] if it["key"] == "bunching")
    assert bunch["status"] == "pass", bunch["detail"]
    # RL lifetime from the bunching peak: the simulated τ_SF under X-rays is ~25–40 ps
    assert 10.0 < a["g2_vs_T"][0]["tau_exp_ps"]["value"] < 80.0
    # the raw tags: a Photon-HDF5 file next to the run, linked from it
    side = data.sidecars["g2"][0]
    path = res.path.parent / side
    assert path.exists()
    validate_sidecar(path)
    with h5py.File(res.path, "r") as f:
        assert "photon_data" in f["entry/g2/raw/point_000000"]


def test_time_resolved_rl_hbt_and_pulsed_refusal(tmp_path):
    with sim_lab(tmp_path, hbt=True) as s:
        res = run(s, TimeResolvedRL(temperatures=[20.0, 120.0], g2_s=1.5, tags_s=0.0, hold_s=10.0))
        data = open_run(res.path)
        assert data.n_points == 2 and "g2" in data.streams
        taus = [r["tau_exp_ps"]["value"] for r in res.analysis["g2_vs_T"]]
        assert taus[0] < taus[1]  # RL emission slower when warm (less SF)
        # the simulated X-ray tube is CW: the pulsed method stops before any X-ray
        bad = s.make_runner(TimeResolvedRL(method="pulsed", temperatures=[20.0]), suspenders=suspenders()).run()
        assert bad.exit_status == "failed" and "no pulsed X-ray trigger" in bad.error
        assert not s.sim.world.tube.hv_on


def test_campaign_pl_rl_hbt(tmp_path_factory, rl, hbt):
    pl = milano_series(tmp_path_factory)[1]   # the PL series test_pl.py reads (made once per session)
    c = summarize_campaign([pl, open_run(rl.path), open_run(hbt.path)])
    assert c["verdict"] == "SF" and c["basis"] == "PL series (+ HBT g2)"
    status = {it["key"]: it["status"] for it in c["checklist"]}
    assert status["bunching"] == "pass"  # the HBT g2 joins the optical evidence
    assert c["rl"]["verdict"] in ("SF", "inconclusive")
    assert "RL" in c["sf_fraction_vs_T_by_series"] and "PL 6 µJ/cm²" in c["sf_fraction_vs_T_by_series"]
    assert [r["procedure"] for r in c["runs"]] == ["PLTemperatureSeries", "RLTemperatureSeries", "HBTCorrelation"]
