"""Photon-HDF5 sidecars (acq.photon_hdf5) from simulated and replayed points, validated by phconvert."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from acq.clock import SimClock
from acq.photon_hdf5 import phconvert_hdf5, sidecar_path, validate_sidecar, write_sidecar
from drivers.picoharp300 import PicoHarp300
from drivers.swabian import SwabianTimeTagger
from drivers.tcspc import TagStream
from simulators.phlib import EmulatedPHLib
from simulators.replay import load_photon_hdf5, replay_phlib
from simulators.timetagger import make_module
from simulators.vendor import PhysicsFeed

tables = pytest.importorskip("tables")

T3_FILE = Path("/work/shared/data/picoquant/hydraharp/v20_t3.ptu")
pytestmark = pytest.mark.timeout(120)


def _read(path: Path) -> dict:
    with tables.open_file(str(path)) as f:
        phconvert_hdf5().assert_valid_photon_hdf5(f, warnings=False)
        pd = f.root.photon_data
        dets = pd.detectors.read() if "detectors" in pd else np.ones(pd.timestamps.shape, np.uint8)
        out = {"timestamps": pd.timestamps.read(), "detectors": dets,
               "unit": float(pd.timestamps_specs.timestamps_unit.read()),
               "type": pd.measurement_specs.measurement_type.read().decode(),
               "lifetime": bool(f.root.setup.lifetime.read()), "split": int(f.root.setup.num_split_ch.read()),
               "cw": list(f.root.setup.excitation_cw.read()), "version": f.root._v_attrs.format_version}
        if "nanotimes" in pd:
            out["nanotimes"] = pd.nanotimes.read()
            out["tcspc_unit"] = float(pd.nanotimes_specs.tcspc_unit.read())
            out["rep"] = float(pd.measurement_specs.laser_repetition_rate.read())
        return out


class _XrayWorld:
    """A world with CW X-rays on the sample and the laser blocked (the HBT geometry)."""

    def __init__(self):
        from simulators.sample import Conditions, Sample

        self.clock = SimClock()
        self.sample = Sample.preset("milano-2d-sl")
        self.rng_seed = 1
        self._cond = Conditions(T_K=10.0, fluence_uJcm2=0.0, xray_kV=40.0, xray_mA=1.0)

    def conditions(self):
        return self._cond


def test_hbt_sidecar_from_a_simulated_point(tmp_path):
    world = _XrayWorld()
    module = make_module(lambda: PhysicsFeed(world, mode="hbt"), clock=world.clock)
    tt = SwabianTimeTagger("", clock=world.clock, tagger_module=module)
    tt.connect()
    ts = tt.stream(0.2)
    assert set(np.unique(ts.channel)) == {1, 2}
    path = write_sidecar(sidecar_path(tmp_path / "run.h5", 3), ts, sample_name="milano-2d-sl",
                         user={"run_uid": "test", "xray": {"kV": 40.0, "mA": 1.0}, "point_id": 3})
    assert path.name == "run.tags.p00003.h5"
    validate_sidecar(path)
    got = _read(path)
    assert got["version"] in (b"0.5", "0.5")
    assert got["type"] == "generic" and got["split"] == 2 and not got["lifetime"] and got["cw"] == [True]
    np.testing.assert_array_equal(got["timestamps"], ts.time_ps)
    np.testing.assert_array_equal(got["detectors"], ts.channel)
    assert got["unit"] == 1e-12


def test_tcspc_sidecar_from_a_simulated_point(tmp_path):
    from simulators.world import World

    world = World(SimClock(), sample="milano-2d-sl", tick_s=0)  # laser on at 76 MHz by default
    lib = EmulatedPHLib(lambda mode: PhysicsFeed(world, mode=mode), clock=world.clock)
    ph = PicoHarp300("", clock=world.clock, phlib=lib, binning=2)
    ph.connect()
    ts = ph.stream(0.02, mode="t3")
    assert ts.sync_period_ps == pytest.approx(1e12 / 76e6, rel=1e-3)
    path = write_sidecar(tmp_path / "tcspc.h5", ts)
    got = _read(path)
    assert got["lifetime"] and got["cw"] == [False]
    assert got["rep"] == pytest.approx(76e6, rel=1e-3)
    assert got["tcspc_unit"] == pytest.approx(16e-12)
    np.testing.assert_array_equal(got["nanotimes"], ts.nanotime)
    world.stop()


def test_tcspc_sidecar_from_a_t2_stream_with_syncs(tmp_path):
    from simulators.world import World

    world = World(SimClock(), sample="milano-2d-sl", tick_s=0)
    module = make_module(lambda: PhysicsFeed(world, mode="tcspc"), clock=world.clock)
    tt = SwabianTimeTagger("", clock=world.clock, tagger_module=module, detector_channels=[2])
    tt.connect()
    ts = tt.stream(0.001)
    assert (ts.channel == 0).sum() > 70_000
    path = write_sidecar(tmp_path / "t2.h5", ts, kind="tcspc")
    got = _read(path)
    assert got["lifetime"] and set(np.unique(got["detectors"])) == {1}
    assert got["rep"] == pytest.approx(76e6, rel=1e-3)
    assert got["nanotimes"].max() < 13_158
    world.stop()


@pytest.mark.skipif(not T3_FILE.exists(), reason="HydraHarp T3 file not present")
def test_t3_replay_sidecar_round_trip(tmp_path):
    clock = SimClock()
    ph = PicoHarp300("", clock=clock, phlib=replay_phlib(T3_FILE, clock=clock), binning=4)
    ph.connect()
    ts = ph.stream(10.5, mode="t3")
    path = write_sidecar(tmp_path / "replay.h5", ts, description="replay of v20_t3.ptu")
    validate_sidecar(path)
    feed = load_photon_hdf5(path)  # and it replays again
    for c in (1, 2):
        ref = np.bincount(ts.nanotime[ts.channel == c], minlength=4096)
        np.testing.assert_array_equal(feed.histogram(c, 4096), ref)


def test_hbt_needs_at_most_two_detectors(tmp_path):
    ts = TagStream(time_ps=np.array([1, 2, 3]), channel=np.array([1, 2, 3]), duration_s=1.0)
    with pytest.raises(ValueError, match="two detectors"):
        write_sidecar(tmp_path / "x.h5", ts, kind="hbt")
