"""PicoHarp 300 backend (drivers.picoharp300) on the emulated PHLib, replaying real PTU files."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np
import pytest

from acq.clock import SimClock
from drivers import phlib_api
from drivers.base import DriverError, OptionError
from drivers.picoharp300 import PicoHarp300
from simulators.phlib import EmulatedPHLib
from simulators.replay import RecordedT2, replay_phlib

ptufile = pytest.importorskip("ptufile")

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "picoquant"
if not DATA.is_dir():  # pragma: no cover - repository layout
    DATA = Path("/work/shared/data/picoquant")
T2_FILE = DATA / "picoharp" / "v30_t2.ptu"
T3_FILES = sorted((DATA / "hydraharp").glob("v*_t3.ptu"))

pytestmark = pytest.mark.timeout(90)


def _backend(path: Path, **options) -> PicoHarp300:
    clock = SimClock()
    ph = PicoHarp300("", clock=clock, phlib=replay_phlib(path, clock=clock), **options)
    ph.connect()
    return ph


class RecordingTable:
    """Wraps a function table; records calls and checks the ctypes conventions of PHLib 3.0."""

    def __init__(self, table):
        self.table = table
        self.calls: list[str] = []

    def __getattr__(self, name):
        fn = getattr(self.table, name)

        def call(*args):
            for a in args:
                ok = isinstance(a, ctypes._SimpleCData | ctypes.Array) or type(a).__name__ == "CArgObject"
                assert ok, f"{name}: argument {a!r} is not passed as a ctypes object"
            self.calls.append(name)
            return fn(*args)

        return call


@pytest.mark.skipif(not T2_FILE.exists(), reason="shared/data/picoquant/picoharp/v30_t2.ptu not present")
def test_t2_replay_yields_exactly_the_ptu_records():
    ph = _backend(T2_FILE)
    ts = ph.stream(8.0)  # the recording stopped after 7.652 s
    rec = ptufile.PtuFile(T2_FILE).decode_records()
    photon = rec["channel"] >= 0
    assert len(ts) == int(photon.sum()) == 920_177
    np.testing.assert_array_equal(ts.time_ps, rec["time"][photon].astype(np.int64) * 4)
    np.testing.assert_array_equal(ts.channel, rec["channel"][photon])
    assert ts.meta["overflows"] > 0  # the records went through real T2 overflow encoding
    assert ph.clock.monotonic() == pytest.approx(8.0, abs=0.1)  # played at the lab clock's pace


@pytest.mark.skipif(not T2_FILE.exists(), reason="v30_t2.ptu not present")
def test_t2_correlation_is_antisymmetric_in_the_channels():
    a = _backend(T2_FILE).correlation(2.0, 0, 1, binwidth_ps=25_000, n_bins=40)
    b = _backend(T2_FILE).correlation(2.0, 1, 0, binwidth_ps=25_000, n_bins=40)
    np.testing.assert_array_equal(a.counts, b.counts[::-1])
    np.testing.assert_allclose(a.lag_ps, -b.lag_ps[::-1])
    assert a.n1 == b.n2 and a.n2 == b.n1
    assert 1.05 < a.g2[18:22].mean() < 1.25  # FCS sample: g2 - 1 ~ 0.13 at short lags


@pytest.mark.skipif(not T3_FILES, reason="no HydraHarp T3 files in shared/data")
@pytest.mark.parametrize("path", T3_FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("source", ["t3", "hist"])
def test_t3_replay_gives_the_ptufile_decay_histogram(path, source):
    with ptufile.PtuFile(path) as ptu:
        ref = ptu.decode_histogram(dtime=0)  # (channels, bins in one sync period)
        res_ps = ptu.tcspc_resolution * 1e12
        acq_s = ptu.tags["MeasDesc_AcquisitionTime"] / 1e3
    binning = int(round(np.log2(res_ps / 4.0)))
    ph = _backend(path, histogram_source=source, binning=binning)
    h = ph.histogram(acq_s + 0.5)
    assert h.binwidth_ps == pytest.approx(res_ps, rel=1e-6)
    n = ref.shape[1]
    if source == "t3":
        for c in range(ref.shape[0]):
            np.testing.assert_array_equal(h.counts_by_channel[c + 1][:n], ref[c])
            assert h.counts_by_channel[c + 1][n:].sum() == 0
    else:  # histogram mode: one detector input, all routed channels summed
        np.testing.assert_array_equal(h.counts[:n], ref.sum(axis=0))
    assert h.total == int(ref.sum())
    np.testing.assert_allclose(h.time_ps[:3], [0, res_ps, 2 * res_ps], rtol=1e-6)


def test_bad_settings_raise_before_anything_is_sent():
    clock = SimClock()
    feed = RecordedT2(np.array([0, 1]), np.array([0, 5000]))
    table = RecordingTable(EmulatedPHLib(feed, clock=clock))
    ph = PicoHarp300("", clock=clock, phlib=table)
    ph.connect()
    sent = list(table.calls)
    bad = [dict(sync_divider=3), dict(binning=8), dict(binning=-1), dict(cfd_level_mV=900),
           dict(cfd_zero_cross_mV=25), dict(sync_offset_ps=200_000), dict(dead_time_ps=50_000),
           dict(sync_divider=2, binning=9)]
    for settings in bad:
        with pytest.raises(OptionError) as err:
            ph.configure(**settings)
        assert str(next(iter(settings))) in str(err.value) or "binning" in str(err.value)
    for call in (lambda: ph.histogram(0.0), lambda: ph.histogram(1.0, binwidth_ps=12),
                 lambda: ph.histogram(1.0, n_bins=70_000), lambda: ph.correlation(1.0, 0, 7),
                 lambda: ph.correlation(1.0, 0, 1, binwidth_ps=10), lambda: ph.stream(1e6)):
        with pytest.raises(OptionError):
            call()
    assert table.calls == sent, "a rejected setting reached the library"
    with pytest.raises(OptionError, match="sync_divider"):
        PicoHarp300("", clock=clock, phlib=table, sync_divider=5)
    ph.configure(sync_divider=8, binning=3)
    assert table.calls[-2:] == ["PH_SetSyncDiv", "PH_SetBinning"]
    assert ph.resolution_ps == 32.0


def test_library_errors_carry_the_phlib_error_string():
    clock = SimClock()
    lib = EmulatedPHLib(RecordedT2(np.array([1]), np.array([10])), clock=clock)
    ph = PicoHarp300("", clock=clock, phlib=lib)
    with pytest.raises(DriverError, match="not connected"):
        ph.count_rates()
    ph.connect()
    with pytest.raises(DriverError, match=r"ERROR_INVALID_ARGUMENT \(-17\)"):
        ph.lib("PH_SetSyncDiv", ctypes.c_int(0), ctypes.c_int(3))  # bypassing the backend's checks
    with pytest.raises(DriverError, match="ERROR_DEVICE_BUSY"):
        PicoHarp300("", clock=clock, phlib=lib, device_index=0).connect()  # device already open
    with pytest.raises(DriverError, match="serial"):
        PicoHarp300("9999999", clock=clock, phlib=EmulatedPHLib(lib.feed, clock=clock)).connect()
    for resource in ("emulated", "sim", "1030228"):
        other = PicoHarp300(resource, clock=clock, phlib=EmulatedPHLib(lib.feed, clock=clock))
        other.connect()
        assert other.serial == "1030228"
        other.close()


def test_fifo_overrun_is_reported():
    clock = SimClock()
    n = 400_000  # 400 k tags within 4 ms: more than the 256 k-record FIFO between two reads
    feed = RecordedT2(np.ones(n, np.int16), np.arange(n, dtype=np.int64) * 10_000)
    ph = PicoHarp300("", clock=clock, phlib=EmulatedPHLib(feed, clock=clock), poll_s=0.05)
    ph.connect()
    with pytest.raises(DriverError, match="FIFO overrun"):
        ph.stream(1.0)


def test_count_rates_wait_for_the_rate_meter_and_warnings():
    clock = SimClock()
    feed = RecordedT2(np.array([0, 0, 1] * 1000, np.int16), np.arange(3000, dtype=np.int64) * 1_000_000,
                      duration_ps=3_000_000_000)
    ph = PicoHarp300("", clock=clock, phlib=EmulatedPHLib(feed, clock=clock))
    ph.connect()
    r = ph.count_rates()
    assert r["rate_ch0"] == pytest.approx(2000 / 3e-3, rel=1e-3)
    assert r["rate_ch1"] == pytest.approx(1000 / 3e-3, rel=1e-3)
    assert ph.warnings() == ["Input 1 count rate is high compared to the sync rate (pile-up).",
                             "The histogram time span is smaller than the sync period."]
    # straight after PH_Initialize the rate meters read 0 for 100 ms of lab time
    rate = ctypes.c_int(-1)
    ph.lib("PH_Initialize", ctypes.c_int(0), ctypes.c_int(phlib_api.MODE_HIST))
    ph.lib("PH_GetCountRate", ctypes.c_int(0), ctypes.c_int(0), ctypes.byref(rate))
    assert rate.value == 0
    clock.sleep(0.1)
    ph.lib("PH_GetCountRate", ctypes.c_int(0), ctypes.c_int(0), ctypes.byref(rate))
    assert rate.value > 0
    assert set(ph.readback()) == set(PicoHarp300.READBACKS)
    ph.make_safe()
    ph.close()


def test_real_library_boundary_without_the_dll(tmp_path):
    """Loading PHLib where it is not installed fails with a message that says what to do."""
    with pytest.raises(DriverError, match="PHLib 3.0.*not found.*'library' option"):
        phlib_api.load_library(str(tmp_path / "phlib64.dll"))
    with pytest.raises(DriverError, match="not found"):
        PicoHarp300("", library=str(tmp_path / "libph300.so")).connect()


@pytest.mark.hardware
@pytest.mark.skipif(not phlib_api.env_library_path(), reason="set SFLAB_PHLIB=/path/to/phlib and connect a "
                    "PicoHarp 300 to run this on hardware")
def test_real_picoharp_smoke():  # pragma: no cover - needs the instrument
    ph = PicoHarp300(os.environ.get("SFLAB_PICOHARP_SERIAL", ""), library=phlib_api.env_library_path())
    ph.connect()
    try:
        rates = ph.count_rates()
        assert set(rates) == {"rate_ch0", "rate_ch1"}
        h = ph.histogram(0.1)
        assert h.counts.size == phlib_api.HISTCHAN
    finally:
        ph.close()
