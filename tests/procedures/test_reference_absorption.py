"""ReferenceSpectra (P1 step 1) and Transmission (P6 in situ) on the simulated lab: the reference is the
isolated-NC film, the absorbance is the sample's, and both reach the campaign's verdict."""

from __future__ import annotations

import numpy as np
import pytest

from acq.config import parse_config
from acq.store import open_run
from acq.summary import evidence_from_run, summarize_campaign
from analysis.sf import Evidence, assess
from procedures import FluenceCalibration, PLTemperatureSeries, ReferenceSpectra, Transmission
from procedures.absorption import MASK_CODES, absorbance_from_frames
from simulators.sample import Conditions

from .conftest import run, sim_lab
from .test_pl import milano_series

pytestmark = pytest.mark.timeout(180)


def reference_and_absorption(folder, sample, pl=None):
    """The new steps on one simulated lab: reference spectra at 5 K (the PL series' highest fluence) and the
    in-situ transmission at 5 K (after the PL series ``pl``, when given). Returns the two run files, the true
    absorbance at the measured T and the PL run file (or None)."""
    with sim_lab(folder, sample) as s:
        run(s, FluenceCalibration(n_steps=8, readings=1))
        pl_run = open_run(run(s, pl).path) if pl is not None else None
        ref = run(s, ReferenceSpectra(temperatures=[5.0], fluences=[6.0], hold_s=20.0))
        # the simulated CCD's default tokens: gain 0 = 4 e⁻/count, speed 0 = 3 e⁻ read noise (simulators.icl_server)
        tr = run(s, Transmission(temperatures=[5.0], hold_s=20.0, ccd_gain=4.0, read_noise_e=3.0))
        data = open_run(tr.path)
        wl = data.static_axes["absorption"]["wavelength"]
        T = float(data.stream("absorption")["T_K"][0])
        truth = s.sim.world.sample.absorbance(wl, Conditions(T_K=T))
        assert s.sim.world.sample_stage.pad().name == "sample"     # the sample is back in the beam
    return open_run(ref.path), data, truth, pl_run


@pytest.fixture(scope="module")
def milano_steps(tmp_path_factory):
    return reference_and_absorption(tmp_path_factory.mktemp("milano-steps"), "milano-2d-sl")[:3]


def test_reference_spectrum_is_the_isolated_nc_film(milano_steps):
    ref, _, _ = milano_steps
    s = ref.stream("reference_spectrum")
    assert ref.n_points == 1 and s["stage_mm"][0] == pytest.approx(12.5)
    recs = evidence_from_run(ref).reference_spectra
    assert len(recs) == 1 and recs[0].T_K == pytest.approx(5.0, abs=0.5)
    # alone, the reference film's 5 K spectrum has no red SF band: one band, or at 6 µJ/cm² the biexciton
    # shoulder of isolated NCs a few tens of meV below (clearly short of an SF shift)
    item = {it.key: it for it in assess(Evidence(spectra=recs)).items}["two_band"]
    assert item.status == "fail" and ("no resolved second band" in item.detail or "only" in item.detail), item.detail


def test_transmission_recovers_the_sample_absorbance(milano_steps):
    _, data, truth = milano_steps
    a = data.stream("absorption")
    A, err, mask = a["absorbance"][0], a["absorbance_error"][0], a["mask"][0]
    ok = mask == 0
    assert ok.sum() > 0.9 * ok.size and np.all(np.isfinite(A[ok])) and np.all(np.isnan(A[~ok]))
    z = (A[ok] - truth[ok]) / err[ok]
    # within its errors: the pulls are centred and of unit width (the spectrograph's line shape, ~0.1 nm,
    # is far narrower than the excitonic peaks)
    assert abs(np.mean(z)) < 0.2 and 0.8 < np.std(z) < 1.25, (np.mean(z), np.std(z))
    assert np.ptp(truth[ok]) > 1.0                 # the test spans the excitonic peak, not a flat baseline
    assert data.units["absorption"]["wavelength"] == "nm" and np.all(np.diff(data.static_axes["absorption"]
                                                                            ["wavelength"]) > 0)


def test_masks_name_saturated_dim_and_opaque_pixels():
    I0 = np.array([50000.0, 50000.0, 200.0, 50000.0])
    I = np.array([25000.0, 2050.0, 150.0, 50000.0])
    D = np.full(4, 2000.0)
    sat = np.array([False, False, False, True])
    r = absorbance_from_frames(I, I0, D, n_frames=1, gain=2.0, read_noise_e=6.0, min_snr=10.0, saturated=sat)
    assert list(r["mask"]) == [MASK_CODES["ok"], MASK_CODES["opaque"], MASK_CODES["too little light"],
                               MASK_CODES["saturated"]]
    assert r["absorbance"][0] == pytest.approx(-np.log10(23000 / 48000))
    assert np.isnan(r["absorbance"][1:]).all() and np.isfinite(r["absorbance_error"][0])


def test_campaign_with_reference_and_absorption_is_sf(milano_steps, tmp_path_factory):
    ref, absorption, _ = milano_steps
    _, series, _ = milano_series(tmp_path_factory)
    c = summarize_campaign([series, ref, absorption])
    assert c["verdict"] == "SF", c["reasons"]
    items = {it["key"]: it for it in c["checklist"]}
    assert items["no_absorption"]["status"] == "pass" and items["no_absorption"]["numbers"]["T_K"] < 10
    n = items["two_band"]["numbers"]
    assert n["reference_two_band"] is False and n["reference_T_K"] == pytest.approx(5.0, abs=1.0)


def test_isolated_ncs_in_the_sample_position_is_not_sf(tmp_path_factory):
    pl = PLTemperatureSeries(temperatures=[180.0, 5.0], fluences=[6.0], hold_s=20.0, record_decay=False)
    ref, absorption, _, series = reference_and_absorption(tmp_path_factory.mktemp("isolated-steps"), "isolated-ncs",
                                                          pl)
    c = summarize_campaign([series, ref, absorption])
    assert c["verdict"] == "not SF", c["reasons"]
    items = {it["key"]: it for it in c["checklist"]}
    assert items["two_band"]["status"] == "fail" and items["two_band"]["numbers"]["reference_T_K"] < 10
    assert items["no_absorption"]["status"] == "not measured"      # no SF band to test


LAB = """\
[cryostat]
backend = "fake"
[spectrometer]
backend = "fake"
[attenuator]
backend = "fake"
"""


@pytest.mark.parametrize("proc,extra,expected", [
    (ReferenceSpectra(), "", "ReferenceSpectra needs the sample_stage role"),
    (ReferenceSpectra(), '[sample_stage]\nbackend = "manual"\npositions = {sample = 0.0, blank = 25.0}\n',
     "ReferenceSpectra: the sample stage has no position named 'reference' (named: sample, blank)"),
    (Transmission(), '[sample_stage]\nbackend = "manual"\n', "Transmission needs the white_light role"),
    (Transmission(), '[white_light]\nbackend = "fake"\n', "Transmission needs the sample_stage role"),
])
def test_validation_before_anything_moves(proc, extra, expected):
    cfg = parse_config(LAB + extra, "lab.toml")
    errs = proc.validate(cfg)
    assert any(expected in str(e) for e in errs), errs
    ok = parse_config(LAB + '[sample_stage]\nbackend = "manual"\n[white_light]\nbackend = "fake"\n', "lab.toml")
    assert proc.validate(ok) == []
