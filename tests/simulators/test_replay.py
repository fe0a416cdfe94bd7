"""Replay feeds: PTU (ptufile) and Photon-HDF5 recordings, played at the lab clock's pace."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from acq.clock import SimClock
from drivers.picoharp300 import PicoHarp300
from simulators.replay import RecordedT2, load_ptu, open_recording, replay_phlib, replay_tagger_module

DATA = Path("/work/shared/data/picoquant")
T2_FILE = DATA / "picoharp" / "v30_t2.ptu"
V20_T3 = DATA / "hydraharp" / "v20_t3.ptu"
pytestmark = [pytest.mark.timeout(60),
              pytest.mark.skipif(not T2_FILE.exists() or not V20_T3.exists(), reason="shared PTU files missing")]


def test_ptu_t2_feed():
    f = load_ptu(T2_FILE)
    assert f.kind == "t2" and len(f.time_ps) == 920_177
    assert int((f.channel == 0).sum()) == 531_477 and int((f.channel == 1).sum()) == 388_700
    assert f.end_ps == 7_652_000_000_000  # TTResult_StopAfter
    r = f.rates()
    assert r[0] == pytest.approx(531_477 / 7.652)
    chunk = f.read(1_000_000_000_000, 1_001_000_000_000)
    assert np.all((chunk.time_ps >= 1e12) & (chunk.time_ps < 1.001e12))


def test_ptu_t3_feed():
    f = load_ptu(V20_T3)
    assert f.kind == "t3" and f.resolution_ps == pytest.approx(64.0, rel=1e-6)
    assert f.sync_period_ps == pytest.approx(200_001.6, rel=1e-6)
    assert [int((f.channel == c).sum()) for c in (1, 2)] == [45_012, 32_871]
    chunk = f.read(0, 10_000_000_000)  # 10 ms: photons and one synthesised sync tag per sync with photons
    det = chunk.channel >= 1
    assert np.all(np.diff(chunk.time_ps) >= 0)
    syncs = chunk.time_ps[~det]
    assert syncs.size == np.unique(chunk.nsync[det]).size
    np.testing.assert_array_equal(chunk.time_ps[det] - chunk.dtime_ps[det],
                                  np.rint(chunk.nsync[det] * f.sync_period_ps).astype(np.int64))


def test_loop_replays_from_the_start():
    f = RecordedT2(np.array([1, 2]), np.array([10, 20]), duration_ps=100, loop=True)
    c = f.read(0, 250)
    assert c.time_ps.tolist() == [10, 20, 110, 120, 210, 220]
    assert c.channel.tolist() == [1, 2, 1, 2, 1, 2]


def test_replay_continues_across_measurements_at_the_clock_pace():
    clock = SimClock()
    ph = PicoHarp300("", clock=clock, phlib=replay_phlib(T2_FILE, clock=clock))
    ph.connect()
    a = ph.stream(1.0)
    b = ph.stream(1.0)
    f = load_ptu(T2_FILE)
    sel = (f.time_ps >= 1e12) & (f.time_ps < 2e12)
    np.testing.assert_array_equal(b.time_ps, f.time_ps[sel] - 1_000_000_000_000)
    assert a.time_ps.max() < 1e12 and len(a) == int((f.time_ps < 1e12).sum())
    assert clock.monotonic() == pytest.approx(2.0, abs=0.1)


def test_photon_hdf5_round_trip(tmp_path):
    from acq.photon_hdf5 import write_sidecar

    clock = SimClock()
    module = replay_tagger_module(T2_FILE, clock=clock)
    from drivers.swabian import SwabianTimeTagger

    tt = SwabianTimeTagger("", clock=clock, tagger_module=module, detector_channels=[2])
    tt.connect()
    ts = tt.stream(0.5)
    # channel 0 of a PicoHarp T2 file is an FCS detector, not a sync: store it as HBT
    path = write_sidecar(tmp_path / "fcs.h5", ts, kind="hbt")
    g = open_recording(path)
    np.testing.assert_array_equal(g.time_ps, ts.time_ps)
    np.testing.assert_array_equal(g.channel, np.where(ts.channel == 0, 1, 2))


def test_unknown_file_type(tmp_path):
    with pytest.raises(ValueError, match=r"\.ptu or Photon-HDF5"):
        open_recording(tmp_path / "data.ttbin")
