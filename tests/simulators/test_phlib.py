"""The emulated PHLib function table: bit formats, return codes, lab-time behaviour."""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest

from acq.clock import SimClock
from drivers.phlib_api import decode_t2, decode_t3
from simulators.phlib import (
    FLAG_OVERFLOW,
    HISTCHAN,
    MODE_HIST,
    MODE_T2,
    MODE_T3,
    T2WRAPAROUND,
    EmulatedPHLib,
    encode_t2,
    encode_t3,
)
from simulators.replay import RecordedT2, RecordedT3

T2_FILE = Path("/work/shared/data/picoquant/picoharp/v30_t2.ptu")
pytestmark = pytest.mark.timeout(60)
c = ctypes.c_int


def test_t2_encoding_is_what_ptufile_decodes_as_picoharp_t2():
    ptufile = pytest.importorskip("ptufile")
    if not T2_FILE.exists():
        pytest.skip("v30_t2.ptu not present")
    rng = np.random.default_rng(1)
    ticks = np.sort(rng.integers(0, 5 * T2WRAPAROUND, 10_000))
    ch = rng.integers(0, 2, ticks.size)
    recs, wraps = encode_t2(ch, ticks, 0)
    assert wraps == ticks[-1] // T2WRAPAROUND and recs.size == ticks.size + wraps
    with ptufile.PtuFile(T2_FILE) as ptu:  # a PicoHarp 300 T2 file: decode our records with its format
        dec = ptu.decode_records(recs)
    ph = dec["channel"] >= 0
    np.testing.assert_array_equal(dec["time"][ph], ticks)
    np.testing.assert_array_equal(dec["channel"][ph], ch)
    back_ch, back_t, novf = decode_t2(recs)
    np.testing.assert_array_equal(back_t, ticks * 4)
    assert novf == wraps


def test_t3_record_layout_and_round_trip():
    recs, wraps = encode_t3(np.array([1]), np.array([0x1234]), np.array([0xABC]), 0)
    assert recs.tolist() == [(1 << 28) | (0xABC << 16) | 0x1234]
    nsync = np.array([5, 70_000, 70_001, 200_000])
    dtime = np.array([0, 4095, 17, 1])
    recs, wraps = encode_t3(np.array([1, 2, 1, 4]), nsync, dtime, 0)
    assert wraps == 3 and int((recs == 0xF0000000).sum()) == 3
    ch, ns, dt, novf = decode_t3(recs)
    np.testing.assert_array_equal(ns, nsync)
    np.testing.assert_array_equal(dt, dtime)
    np.testing.assert_array_equal(ch, [1, 2, 1, 4])


def test_return_codes_and_error_strings():
    lib = EmulatedPHLib(RecordedT2(np.array([1]), np.array([1])), clock=SimClock())
    serial = ctypes.create_string_buffer(8)
    assert lib.PH_Initialize(c(0), c(MODE_T2)) == -10  # not open
    assert lib.PH_OpenDevice(c(1), serial) == -1  # no device 1
    assert lib.PH_OpenDevice(c(0), serial) == 0 and serial.value == b"1030228"
    assert lib.PH_SetSyncDiv(c(0), c(2)) == -22  # not initialised
    assert lib.PH_Initialize(c(0), c(1)) == -18  # invalid mode
    assert lib.PH_Initialize(c(0), c(MODE_T2)) == 0
    for fn, args in (("PH_SetSyncDiv", (3,)), ("PH_SetBinning", (8,)), ("PH_SetInputCFD", (1, 801, 10)),
                     ("PH_SetInputCFD", (2, 100, 10)), ("PH_SetSyncOffset", (100_000,)), ("PH_StartMeas", (0,))):
        assert getattr(lib, fn)(c(0), *map(c, args)) == -17, fn
    text = ctypes.create_string_buffer(40)
    assert lib.PH_GetErrorString(text, c(-17)) == 0 and text.value == b"ERROR_INVALID_ARGUMENT"
    res = ctypes.c_double()
    assert lib.PH_GetResolution(c(0), ctypes.byref(res)) == 0 and res.value == 4.0
    buf = (ctypes.c_uint * HISTCHAN)()
    assert lib.PH_GetHistogram(c(0), ctypes.byref(buf), c(0)) == -18  # not in histogram mode


def test_polling_ctcstatus_without_sleeping_terminates_in_afap_mode():
    clock = SimClock()
    lib = EmulatedPHLib(RecordedT2(np.array([0, 1]), np.array([0, 10])), clock=clock)
    lib.PH_OpenDevice(c(0), ctypes.create_string_buffer(8))
    lib.PH_Initialize(c(0), c(MODE_T2))
    assert lib.PH_StartMeas(c(0), c(250)) == 0
    status = c(0)
    polls = 0
    while not status.value:
        lib.PH_CTCStatus(c(0), ctypes.byref(status))
        polls += 1
    assert clock.monotonic() == pytest.approx(0.25)
    assert 10 <= polls <= 40
    elapsed = ctypes.c_double()
    lib.PH_GetElapsedMeasTime(c(0), ctypes.byref(elapsed))
    assert elapsed.value == pytest.approx(250.0)


def test_histogram_mode_bins_stop_on_overflow_and_offset():
    clock = SimClock()
    n = 70_000  # one bin gets 70 000 counts: above the 65 535 stop count
    feed = RecordedT3(np.ones(n + 1, np.int16), np.arange(n + 1), np.r_[np.full(n, 400), 1000],
                      sync_period_ps=12_500.0, resolution_ps=4.0)
    lib = EmulatedPHLib(feed, clock=clock)
    lib.PH_OpenDevice(c(0), ctypes.create_string_buffer(8))
    lib.PH_Initialize(c(0), c(MODE_HIST))
    lib.PH_SetBinning(c(0), c(2))  # 16 ps
    lib.PH_SetOffset(c(0), c(160))
    lib.PH_SetStopOverflow(c(0), c(1), c(65535))
    lib.PH_StartMeas(c(0), c(2000))
    clock.sleep(2.0)
    st = c(0)
    lib.PH_CTCStatus(c(0), ctypes.byref(st))
    assert st.value == 1
    buf = (ctypes.c_uint * HISTCHAN)()
    assert lib.PH_GetHistogram(c(0), ctypes.byref(buf), c(0)) == 0
    h = np.ctypeslib.as_array(buf)
    assert h[(400 - 160) // 16] == 65535 and h[(1000 - 160) // 16] == 1
    flags = c(0)
    lib.PH_GetFlags(c(0), ctypes.byref(flags))
    assert flags.value & FLAG_OVERFLOW


def test_t3_mode_applies_the_sync_divider_to_recorded_syncs():
    clock = SimClock()
    feed = RecordedT3(np.array([1, 1, 1]), np.array([8, 9, 11]), np.array([100, 100, 100]),
                      sync_period_ps=1000.0, resolution_ps=4.0)
    lib = EmulatedPHLib(feed, clock=clock)
    lib.PH_OpenDevice(c(0), ctypes.create_string_buffer(8))
    lib.PH_Initialize(c(0), c(MODE_T3))
    lib.PH_SetSyncDiv(c(0), c(4))
    lib.PH_StartMeas(c(0), c(10))
    clock.sleep(0.02)
    st, n = c(0), c(0)
    lib.PH_CTCStatus(c(0), ctypes.byref(st))
    buf = (ctypes.c_uint * 131072)()
    lib.PH_ReadFiFo(c(0), ctypes.byref(buf), c(131072), ctypes.byref(n))
    ch, nsync, dtime, _ = decode_t3(np.ctypeslib.as_array(buf)[: n.value])
    np.testing.assert_array_equal(nsync, [2, 2, 2])  # divided syncs 8, 9, 11 -> 2
    np.testing.assert_array_equal(dtime, [25, 275, 775])  # 100 ps + (nsync % 4) periods, in 4 ps bins


def _minimal_picoharp_t3_ptu(path: Path, records: np.ndarray, sync_hz: int = 80_000_000) -> None:
    """A PTU file with just the tags ptufile needs, holding PicoHarp 300 T3 records."""
    import struct

    def tag(name: str, typ: int, val: float) -> bytes:
        head = name.encode().ljust(32, b"\0") + struct.pack("<iI", -1, typ)
        return head + (struct.pack("<d", val) if typ == 0x20000008 else struct.pack("<q", int(val)))

    hdr = b"PQTTTR\0\0" + b"1.0.00\0\0"
    for name, typ, val in (("Measurement_Mode", 0x10000008, 3), ("Measurement_SubMode", 0x10000008, 0),
                           ("TTResultFormat_TTTRRecType", 0x10000008, 0x00010303),
                           ("TTResultFormat_BitsPerRecord", 0x10000008, 32),
                           ("TTResult_NumberOfRecords", 0x10000008, records.size),
                           ("MeasDesc_GlobalResolution", 0x20000008, 1.0 / sync_hz),
                           ("MeasDesc_Resolution", 0x20000008, 4e-12), ("TTResult_SyncRate", 0x10000008, sync_hz),
                           ("Header_End", 0xFFFF0008, 0)):
        hdr += tag(name, typ, val)
    path.write_bytes(hdr + records.astype("<u4").tobytes())


def test_t3_encoding_is_what_ptufile_decodes_as_picoharp_t3_and_replays(tmp_path):
    ptufile = pytest.importorskip("ptufile")
    from drivers.picoharp300 import PicoHarp300
    from simulators.replay import replay_phlib

    rng = np.random.default_rng(2)
    nsync = np.sort(rng.integers(0, 400_000, 5000))  # 5 ms at 80 MHz, several T3 overflows
    ch = rng.integers(1, 3, nsync.size)
    dtime = rng.integers(0, 3125, nsync.size)
    order = np.lexsort((dtime, nsync))  # time order, as the hardware records them
    nsync, ch, dtime = nsync[order], ch[order], dtime[order]
    recs, wraps = encode_t3(ch, nsync, dtime, 0)
    assert wraps == nsync[-1] // 65536
    path = tmp_path / "ph300_t3.ptu"
    _minimal_picoharp_t3_ptu(path, recs)
    with ptufile.PtuFile(path) as ptu:
        dec = ptu.decode_records()
    ph = dec["channel"] >= 0
    np.testing.assert_array_equal(dec["time"][ph], nsync)
    np.testing.assert_array_equal(dec["dtime"][ph], dtime)
    np.testing.assert_array_equal(dec["channel"][ph], ch - 1)  # ptufile: 0-based detector channels
    # and the file replays through the PicoHarp backend in T3 mode record for record
    clock = SimClock()
    tcspc = PicoHarp300("", clock=clock, phlib=replay_phlib(path, clock=clock))
    tcspc.connect()
    ts = tcspc.stream(0.01, mode="t3")
    np.testing.assert_array_equal(ts.channel, ch)
    np.testing.assert_array_equal(ts.nanotime, dtime)
    np.testing.assert_array_equal(ts.meta["nsync"], nsync)


class _ExactFeed:
    """A physics-like feed with a statistically exact histogram: a decay whose peak bin gets 200 000
    counts in 10 s (well above the 65 535 the PicoHarp 300 bins hold)."""

    sync_period_ps = 12_500.0

    def __init__(self) -> None:
        t = np.arange(HISTCHAN)
        self.lam = np.where(t < 2000, 200_000.0 * np.exp(-np.maximum(t - 100, 0) / 200.0) * (t >= 100), 0.0)

    def exact_histogram(self, duration_s: float, binwidth_ps: float, n_bins: int) -> np.ndarray:
        rng = np.random.default_rng(7)
        return rng.poisson(self.lam[:n_bins] * duration_s / 10.0)

    def rates(self) -> dict[int, float]:
        return {0: 8e7, 1: float(self.lam.sum() / 10.0)}


def _run_hist(stop: int, seconds: float = 10.0) -> tuple[np.ndarray, float, int]:
    clock = SimClock()
    lib = EmulatedPHLib(_ExactFeed(), clock=clock, seed=3)
    lib.PH_OpenDevice(c(0), ctypes.create_string_buffer(8))
    lib.PH_Initialize(c(0), c(MODE_HIST))
    lib.PH_SetStopOverflow(c(0), c(stop), c(65535))
    lib.PH_ClearHistMem(c(0), c(0))
    lib.PH_StartMeas(c(0), c(int(seconds * 1e3)))
    st = c(0)
    while not st.value:  # the way the backend polls: the lab clock advances until the device is done
        lib.PH_CTCStatus(c(0), ctypes.byref(st))
        if not st.value:
            clock.sleep(0.05)
    buf = (ctypes.c_uint * HISTCHAN)()
    lib.PH_GetHistogram(c(0), ctypes.byref(buf), c(0))
    elapsed, flags = ctypes.c_double(), c(0)
    lib.PH_GetElapsedMeasTime(c(0), ctypes.byref(elapsed))
    lib.PH_GetFlags(c(0), ctypes.byref(flags))
    return np.ctypeslib.as_array(buf).astype(np.int64), elapsed.value / 1e3, flags.value


def test_stop_on_overflow_stops_when_the_first_bin_reaches_the_stop_count_with_the_real_elapsed_time():
    h, elapsed, flags = _run_hist(stop=1)
    assert flags & FLAG_OVERFLOW
    # the peak bin expects 200 000 counts in 10 s: it reaches 65 535 after ≈ 3.28 s, not at the end
    assert 2.9 < elapsed < 3.6
    assert h.max() == 65535 and int(np.sum(h == 65535)) == 1  # one bin at the count, no flat top
    # every other bin holds what arrived until then: the decay shape is intact (ratio of two bins)
    assert h[400] / h[100] == pytest.approx(np.exp(-300 / 200.0), rel=0.03)


def test_without_stop_the_16_bit_bins_saturate_and_the_flag_says_so():
    h, elapsed, flags = _run_hist(stop=0)
    assert flags & FLAG_OVERFLOW
    assert elapsed == pytest.approx(10.0)
    assert int(np.sum(h == 65535)) > 100  # a flat top: these bins are clipped
