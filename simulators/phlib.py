"""A PHLib v3.0 compatible function table (PicoHarp 300), fed by the sample physics or a recording.

``EmulatedPHLib`` has the functions of ``phlib64.dll`` / ``libph300.so`` under the same names, takes
arguments the way ctypes passes them to the DLL (``ctypes.c_int(…)`` or plain ints by value,
``ctypes.byref(c_int/c_double)`` for outputs, ``ctypes.create_string_buffer`` for strings,
``(c_uint * n)()`` arrays for histograms and FIFO reads) and returns the DLL's int return codes
(0 = OK, negative = ``errorcodes.h``). The backend (``drivers.picoharp300``) cannot tell it from the
real library.

What it emulates (PHLib 3.0, ``phdefin.h`` / ``errorcodes.h``): one device (index 0); histogram mode
(65536 bins of 4 ps·2^binning, 16-bit bins saturating at 65535, ``PH_SetStopOverflow`` stopping the
measurement when the first bin reaches the stop count with ``PH_GetElapsedMeasTime`` the real time
to that moment, ``FLAG_OVERFLOW``; cabled for HBT (``wiring="hbt"``: detector 1 on input 0, detector 2
on input 1) the start–stop histogram, the first stop after each start, the sync offset delaying the
start), T2 and T3 FIFO modes with the
exact 32-bit record layouts (T2: channel[4] time[28], overflow = 0xF0000000 every 210 698 240 ticks;
T3: channel[4] dtime[12] nsync[16], overflow = 0xF0000000 every 65 536 syncs), a 256 k-record FIFO
that sets ``FLAG_FIFOFULL`` and stops the measurement when it is not read fast enough, CFD / sync
divider / offset / binning argument checks with ``ERROR_INVALID_ARGUMENT``, count-rate meters that
need 100 ms after ``PH_Initialize``/``PH_SetSyncDiv``, warnings and their texts, error strings.

Time is lab time (``clock.monotonic()``): a measurement started with ``PH_StartMeas(tacq)`` produces
records as lab time passes and is finished after ``tacq`` ms of lab time. In "as fast as possible"
mode a poll of ``PH_CTCStatus`` on a running measurement advances the clock by one FIFO-safe step
(the instrument "takes time"), so a polling loop without sleeps still terminates.

Not emulated: markers, routing (PHR 800) beyond passing detector channels 1–4 through, multistop,
the TDC dead time (95 ns; a physics feed models detector dead time itself), sync/channel offsets in
T2 mode.
"""

from __future__ import annotations

import ctypes
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["EmulatedPHLib", "encode_t2", "encode_t3", "ERROR_STRINGS"]

# phdefin.h
LIB_VERSION = "3.0"
MAXDEVNUM = 8
MODE_HIST, MODE_T2, MODE_T3 = 0, 2, 3
HISTCHAN = 65536
TTREADMAX = 131072
FIFO_RECORDS = 262144
BASE_RESOLUTION_PS = 4.0
BINSTEPSMAX = 8
SYNCDIVS = (1, 2, 4, 8)
ZCMIN, ZCMAX = 0, 20
DISCRMIN, DISCRMAX = 0, 800
OFFSETMIN, OFFSETMAX = 0, 1_000_000_000
SYNCOFFSMIN, SYNCOFFSMAX = -99_999, 99_999
CHANOFFSMIN, CHANOFFSMAX = -8000, 8000
ACQTMIN, ACQTMAX = 1, 360_000_000
FLAG_OVERFLOW = 0x0040
FLAG_FIFOFULL = 0x0003
FLAG_SYSERROR = 0x0100
T2WRAPAROUND = 210_698_240
T3WRAPAROUND = 65_536

WARNING_INP0_RATE_ZERO = 0x0001
WARNING_INP0_RATE_TOO_LOW = 0x0002
WARNING_INP0_RATE_TOO_HIGH = 0x0004
WARNING_INP1_RATE_ZERO = 0x0010
WARNING_INP1_RATE_TOO_HIGH = 0x0040
WARNING_INP_RATE_RATIO = 0x0100
WARNING_DIVIDER_GREATER_ONE = 0x0200
WARNING_TIME_SPAN_TOO_SMALL = 0x0400
WARNING_OFFSET_UNNECESSARY = 0x0800

WARNING_TEXTS = {
    WARNING_INP0_RATE_ZERO: "Input 0 (sync) count rate is zero.",
    WARNING_INP0_RATE_TOO_LOW: "Input 0 (sync) count rate is very low for histogramming.",
    WARNING_INP0_RATE_TOO_HIGH: "Input 0 (sync) count rate is too high for T2 mode.",
    WARNING_INP1_RATE_ZERO: "Input 1 count rate is zero.",
    WARNING_INP1_RATE_TOO_HIGH: "Input 1 count rate is very high, data may be distorted (pile-up).",
    WARNING_INP_RATE_RATIO: "Input 1 count rate is high compared to the sync rate (pile-up).",
    WARNING_DIVIDER_GREATER_ONE: "The sync divider is greater than 1 although the sync rate is low.",
    WARNING_TIME_SPAN_TOO_SMALL: "The histogram time span is smaller than the sync period.",
    WARNING_OFFSET_UNNECESSARY: "The offset is unnecessarily large.",
}

ERROR_STRINGS = {
    0: "ERROR_NONE", -1: "ERROR_DEVICE_OPEN_FAIL", -2: "ERROR_DEVICE_BUSY", -3: "ERROR_DEVICE_HEVENT_FAIL",
    -4: "ERROR_DEVICE_CALLBSET_FAIL", -5: "ERROR_DEVICE_BARMAP_FAIL", -6: "ERROR_DEVICE_CLOSE_FAIL",
    -7: "ERROR_DEVICE_RESET_FAIL", -8: "ERROR_DEVICE_GETVERSION_FAIL", -9: "ERROR_DEVICE_VERSION_MISMATCH",
    -10: "ERROR_DEVICE_NOT_OPEN", -11: "ERROR_DEVICE_LOCKED", -16: "ERROR_INSTANCE_RUNNING",
    -17: "ERROR_INVALID_ARGUMENT", -18: "ERROR_INVALID_MODE", -19: "ERROR_INVALID_OPTION",
    -20: "ERROR_INVALID_MEMORY", -21: "ERROR_INVALID_RDATA", -22: "ERROR_NOT_INITIALIZED",
    -23: "ERROR_NOT_CALIBRATED", -24: "ERROR_DMA_FAIL", -25: "ERROR_XTDEVICE_FAIL",
    -26: "ERROR_FPGACONF_FAIL", -27: "ERROR_IFCONF_FAIL", -28: "ERROR_FIFORESET_FAIL",
    -29: "ERROR_STATUS_FAIL", -32: "ERROR_USB_GETDRIVERVER_FAIL", -33: "ERROR_USB_DRIVERVER_MISMATCH",
    -34: "ERROR_USB_GETIFINFO_FAIL", -35: "ERROR_USB_HISPEED_FAIL", -36: "ERROR_USB_VCMD_FAIL",
    -37: "ERROR_USB_BULKRD_FAIL",
}
ERROR_STRINGS.update({-64 - i: f"ERROR_HARDWARE_F{i + 1:02d}" for i in range(15)})

OK, E_OPEN_FAIL, E_BUSY, E_NOT_OPEN = 0, -1, -2, -10
E_INVALID_ARGUMENT, E_INVALID_MODE, E_NOT_INITIALIZED = -17, -18, -22


# -- ctypes argument helpers -------------------------------------------------------------------

def _target(arg: Any) -> Any:
    """The ctypes object behind ``byref(x)`` (or ``x`` itself)."""
    return getattr(arg, "_obj", arg)


def _int(arg: Any) -> int:
    v = getattr(arg, "value", arg)
    return int(v)


def _put(arg: Any, value: float | int) -> None:
    _target(arg).value = value


def _put_str(arg: Any, text: str) -> None:
    buf = _target(arg)
    raw = text.encode("ascii", "replace")
    n = ctypes.sizeof(buf)
    ctypes.memmove(buf, raw[: max(n - 1, 0)] + b"\0", min(len(raw) + 1, n))


def _as_uint32(arg: Any, n: int) -> np.ndarray:
    buf = _target(arg)
    if ctypes.sizeof(buf) < 4 * n:
        raise ValueError("buffer too small")
    return np.ctypeslib.as_array((ctypes.c_uint32 * n).from_buffer(buf))


# -- record encoders (also used by tests as the reference) --------------------------------------

def encode_t2(channel: np.ndarray, ticks: np.ndarray, wraps_before: int) -> tuple[np.ndarray, int]:
    """PicoHarp T2 records for sorted absolute ``ticks`` (4 ps units) on ``channel`` (0–14).

    ``wraps_before`` is the number of overflow records already emitted; returns (records, wraps).
    An overflow record (0xF0000000) is inserted for every 210 698 240 ticks passed.
    """
    ticks = np.asarray(ticks, np.int64)
    w = ticks // T2WRAPAROUND
    prev = np.concatenate(([wraps_before], w[:-1])) if w.size else w
    n_ovf = (w - prev).astype(np.int64)
    if np.any(n_ovf < 0):
        raise ValueError("T2 tags are not time ordered")
    rec = ((np.asarray(channel, np.uint32) & 0xF) << 28) | (ticks - w * T2WRAPAROUND).astype(np.uint32)
    return _interleave(rec.astype(np.uint32), n_ovf), int(w[-1]) if w.size else wraps_before


def encode_t3(channel: np.ndarray, nsync: np.ndarray, dtime: np.ndarray, wraps_before: int
              ) -> tuple[np.ndarray, int]:
    """PicoHarp T3 records: channel[4] dtime[12] nsync[16]; an overflow record per 65 536 syncs."""
    nsync = np.asarray(nsync, np.int64)
    w = nsync // T3WRAPAROUND
    prev = np.concatenate(([wraps_before], w[:-1])) if w.size else w
    n_ovf = (w - prev).astype(np.int64)
    if np.any(n_ovf < 0):
        raise ValueError("T3 tags are not time ordered")
    rec = (((np.asarray(channel, np.uint32) & 0xF) << 28)
           | ((np.asarray(dtime, np.uint32) & 0xFFF) << 16)
           | (nsync - w * T3WRAPAROUND).astype(np.uint32))
    return _interleave(rec.astype(np.uint32), n_ovf), int(w[-1]) if w.size else wraps_before


def _interleave(rec: np.ndarray, n_ovf: np.ndarray) -> np.ndarray:
    total = int(n_ovf.sum())
    if total == 0:
        return rec
    out = np.full(rec.size + total, 0xF0000000, dtype=np.uint32)
    pos = np.arange(rec.size) + np.cumsum(n_ovf)
    out[pos] = rec
    return out


class _Device:
    def __init__(self, serial: str):
        self.serial = serial
        self.open = False
        self.mode: int | None = None
        self.calibrated = False
        self.sync_div = 1
        self.cfd = {0: (100, 10), 1: (100, 10)}
        self.sync_offset_ps = 0
        self.offset_ps = 0
        self.binning = 0
        self.stop_ovfl = (0, 65535)
        self.rate_gate_t = -math.inf
        self.rate_reading: tuple[int, dict[int, float]] | None = None   # (gate number, rates)
        self.reset_meas()

    def reset_meas(self) -> None:
        self.running = False
        self.t_start = 0.0
        self.tacq_s = 0.0
        self.t_stop: float | None = None
        self.flags = 0
        self.fifo: list[np.ndarray] = []
        self.fifo_len = 0
        self.produced_until = 0.0  # lab seconds since start, already turned into records
        self.wraps = 0
        self.sync_count = 0  # divided syncs seen so far (T3 / histogram from tags)
        self.sync_phase = 0  # undivided syncs seen modulo the divider
        self.last_sync_ps: int | None = None
        self.nsync_origin: int | None = None  # T3 recordings: recorded sync count at the start
        self.hist = np.zeros(HISTCHAN, np.uint32)
        self.hist_done = False
        #: HBT start-stop from tags: starts still waiting for their first stop, and the stops a start of
        #: the next chunk may still see (its effective time can precede the chunk: negative sync offset)
        self.ss_pending = np.zeros(0, np.int64)
        self.ss_stops = np.zeros(0, np.int64)
        #: histogram mode with an exact feed: (lab seconds after the start at which the device stops,
        #: the histogram it holds then), decided at PH_StartMeas
        self.plan: tuple[float, np.ndarray, bool] | None = None


class EmulatedPHLib:
    """The PHLib function table. ``feed_factory(mode)`` returns a :class:`simulators.feeds.TagFeed`
    (mode "tcspc" or "hbt", see ``wiring``); one feed lives as long as the device is open, so a
    recording is replayed continuously across measurements."""

    def __init__(self, feed_factory: Callable[..., Any] | Any, *, clock: Any = None, world: Any = None,
                 serial: str = "1030228", wiring: str = "tcspc", afap_step_s: float = 0.01, seed: int = 0):
        self._feed_factory = feed_factory
        self._feed: Any = None
        self.clock = clock if clock is not None else _Wall()
        self.world = world
        self.wiring = wiring
        self.afap_step_s = afap_step_s
        self._lock = threading.RLock()
        self._dev = {0: _Device(serial)}
        self.feed_origin_ps = 0  # feed time at which the next measurement starts
        self.calls: list[str] = []  # names of the functions called, for tests and debugging
        self._rng = np.random.default_rng(seed)  # when the stop-on-overflow count is reached

    # -- plumbing --------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"EmulatedPHLib(wiring={self.wiring!r}, feed={self._feed!r})"

    @property
    def feed(self) -> Any:
        if self._feed is None:
            f = self._feed_factory
            if callable(f) and not hasattr(f, "read"):
                try:
                    self._feed = f(self.wiring)
                except TypeError:
                    self._feed = f()
            else:
                self._feed = f
        return self._feed

    def _device(self, dev: Any, *, need_open: bool = True, need_init: bool = False) -> _Device | int:
        i = _int(dev)
        if i not in self._dev:
            return E_OPEN_FAIL if not need_open else E_NOT_OPEN
        d = self._dev[i]
        if need_open and not d.open:
            return E_NOT_OPEN
        if need_init and d.mode is None:
            return E_NOT_INITIALIZED
        return d

    def _now(self) -> float:
        return float(self.clock.monotonic())

    RATE_GATE_S = 0.1

    def _gate_rates(self, d: Any) -> dict[int, float]:
        """The rate meters' reading: they count in 100 ms gates (PHLib manual, PH_GetCountRate: "wait at
        least 100 ms to get a new reading"), so every read within one gate (the sync channel, then the
        input, then the warnings) returns the same completed gate, simulated once."""
        gate = math.floor((self._now() - d.rate_gate_t) / self.RATE_GATE_S) if d.rate_gate_t > -math.inf else 0
        if d.rate_reading is None or d.rate_reading[0] != gate:
            d.rate_reading = (gate, self.feed.rates())
        return d.rate_reading[1]

    def _afap(self) -> bool:
        return bool(getattr(self.clock, "afap", False))

    def _elapsed(self, d: _Device) -> float:
        if d.t_stop is not None:
            return d.t_stop - d.t_start
        return min(self._now() - d.t_start, d.tacq_s)

    def _resolution_ps(self, d: _Device) -> float:
        return BASE_RESOLUTION_PS * (2 ** d.binning) if d.mode != MODE_T2 else BASE_RESOLUTION_PS

    # -- library -----------------------------------------------------------------------------
    def PH_GetLibraryVersion(self, vers: Any) -> int:
        _put_str(vers, LIB_VERSION)
        return OK

    def PH_GetErrorString(self, errstring: Any, errcode: Any) -> int:
        _put_str(errstring, ERROR_STRINGS.get(_int(errcode), f"ERROR_UNKNOWN ({_int(errcode)})"))
        return OK

    def PH_OpenDevice(self, devidx: Any, serial: Any) -> int:
        with self._lock:
            i = _int(devidx)
            if not 0 <= i < MAXDEVNUM:
                return E_INVALID_ARGUMENT
            d = self._dev.get(i)
            if d is None:
                return E_OPEN_FAIL
            if d.open:
                return E_BUSY
            d.open = True
            _put_str(serial, d.serial)
            return OK

    def PH_CloseDevice(self, devidx: Any) -> int:
        with self._lock:
            d = self._dev.get(_int(devidx))
            if d is not None:
                d.open = False
                d.mode = None
                d.reset_meas()
            self._feed = None  # re-cabling (``wiring``) takes effect at the next open, as on the bench
            return OK

    def PH_Initialize(self, devidx: Any, mode: Any) -> int:
        with self._lock:
            d = self._device(devidx)
            if isinstance(d, int):
                return d
            m = _int(mode)
            if m not in (MODE_HIST, MODE_T2, MODE_T3):
                return E_INVALID_MODE
            d.mode = m
            d.calibrated = False
            d.reset_meas()
            d.rate_gate_t = self._now()
            d.rate_reading = None
            return OK

    def PH_GetHardwareInfo(self, devidx: Any, model: Any, partno: Any, version: Any = None) -> int:
        d = self._device(devidx)
        if isinstance(d, int):
            return d
        _put_str(model, "PicoHarp 300")
        _put_str(partno, "930004")
        if version is not None:
            _put_str(version, "2.0")
        return OK

    def PH_GetSerialNumber(self, devidx: Any, serial: Any) -> int:
        d = self._device(devidx)
        if isinstance(d, int):
            return d
        _put_str(serial, d.serial)
        return OK

    def PH_GetFeatures(self, devidx: Any, features: Any) -> int:
        d = self._device(devidx)
        if isinstance(d, int):
            return d
        _put(features, 0)
        return OK

    def PH_GetBaseResolution(self, devidx: Any, resolution: Any, binsteps: Any) -> int:
        d = self._device(devidx, need_init=True)
        if isinstance(d, int):
            return d
        _put(resolution, BASE_RESOLUTION_PS)
        _put(binsteps, BINSTEPSMAX)
        return OK

    def PH_Calibrate(self, devidx: Any) -> int:
        d = self._device(devidx, need_init=True)
        if isinstance(d, int):
            return d
        d.calibrated = True
        return OK

    def PH_SetInputCFD(self, devidx: Any, channel: Any, level: Any, zc: Any) -> int:
        d = self._device(devidx, need_init=True)
        if isinstance(d, int):
            return d
        ch, lv, z = _int(channel), _int(level), _int(zc)
        if ch not in (0, 1) or not DISCRMIN <= lv <= DISCRMAX or not ZCMIN <= z <= ZCMAX:
            return E_INVALID_ARGUMENT
        d.cfd[ch] = (lv, z)
        return OK

    def PH_SetSyncDiv(self, devidx: Any, div: Any) -> int:
        d = self._device(devidx, need_init=True)
        if isinstance(d, int):
            return d
        v = _int(div)
        if v not in SYNCDIVS:
            return E_INVALID_ARGUMENT
        d.sync_div = v
        d.rate_gate_t = self._now()
        d.rate_reading = None
        return OK

    def PH_SetSyncOffset(self, devidx: Any, offset: Any) -> int:
        d = self._device(devidx, need_init=True)
        if isinstance(d, int):
            return d
        v = _int(offset)
        if not SYNCOFFSMIN <= v <= SYNCOFFSMAX:
            return E_INVALID_ARGUMENT
        d.sync_offset_ps = v
        return OK

    def PH_SetStopOverflow(self, devidx: Any, stop_ovfl: Any, stopcount: Any) -> int:
        d = self._device(devidx, need_init=True)
        if isinstance(d, int):
            return d
        s, c = _int(stop_ovfl), _int(stopcount)
        if s not in (0, 1) or not 1 <= c <= 65535:
            return E_INVALID_ARGUMENT
        d.stop_ovfl = (s, c)
        return OK

    def PH_SetBinning(self, devidx: Any, binning: Any) -> int:
        d = self._device(devidx, need_init=True)
        if isinstance(d, int):
            return d
        b = _int(binning)
        if not 0 <= b < BINSTEPSMAX:
            return E_INVALID_ARGUMENT
        d.binning = b
        return OK

    def PH_SetOffset(self, devidx: Any, offset: Any) -> int:
        d = self._device(devidx, need_init=True)
        if isinstance(d, int):
            return d
        v = _int(offset)
        if not OFFSETMIN <= v <= OFFSETMAX:
            return E_INVALID_ARGUMENT
        d.offset_ps = v
        return OK

    def PH_SetMultistopEnable(self, devidx: Any, enable: Any) -> int:
        d = self._device(devidx, need_init=True)
        return d if isinstance(d, int) else OK

    def PH_SetMarkerEnable(self, devidx: Any, *enables: Any) -> int:
        d = self._device(devidx, need_init=True)
        return d if isinstance(d, int) else OK

    def PH_SetMarkerEdges(self, devidx: Any, *edges: Any) -> int:
        d = self._device(devidx, need_init=True)
        return d if isinstance(d, int) else OK

    def PH_ClearHistMem(self, devidx: Any, block: Any = 0) -> int:
        d = self._device(devidx, need_init=True)
        if isinstance(d, int):
            return d
        if _int(block) != 0:
            return E_INVALID_ARGUMENT
        d.hist[:] = 0
        d.hist_done = False
        return OK

    def PH_GetResolution(self, devidx: Any, resolution: Any) -> int:
        d = self._device(devidx, need_init=True)
        if isinstance(d, int):
            return d
        _put(resolution, self._resolution_ps(d))
        return OK

    def PH_GetCountRate(self, devidx: Any, channel: Any, rate: Any) -> int:
        d = self._device(devidx, need_init=True)
        if isinstance(d, int):
            return d
        ch = _int(channel)
        if ch not in (0, 1):
            return E_INVALID_ARGUMENT
        if self._now() - d.rate_gate_t < self.RATE_GATE_S:
            _put(rate, 0)  # the rate meters need 100 ms after Initialize / SetSyncDiv
            return OK
        rates = self._gate_rates(d)
        _put(rate, int(round(self._input_rates(rates)[ch])))
        return OK

    def _input_rates(self, rates: dict[int, float]) -> tuple[float, float]:
        """(input 0, input 1) count rates from the feed's channel rates, as the device is cabled:
        ``tcspc`` sync on input 0 and the detector(s) on input 1 (through the router); ``hbt``
        detector 1 on input 0 and detector 2 on input 1."""
        if self.wiring == "hbt":
            return rates.get(1, 0.0), sum(v for k, v in rates.items() if k >= 2)
        return rates.get(0, 0.0), sum(v for k, v in rates.items() if k >= 1)

    def PH_GetFlags(self, devidx: Any, flags: Any) -> int:
        d = self._device(devidx, need_init=True)
        if isinstance(d, int):
            return d
        with self._lock:
            if d.running:
                self._produce(d)
            _put(flags, d.flags)
        return OK

    def PH_GetElapsedMeasTime(self, devidx: Any, elapsed: Any) -> int:
        d = self._device(devidx, need_init=True)
        if isinstance(d, int):
            return d
        _put(elapsed, self._elapsed(d) * 1e3 if (d.running or d.t_stop is not None) else 0.0)
        return OK

    def PH_GetWarnings(self, devidx: Any, warnings: Any) -> int:
        d = self._device(devidx, need_init=True)
        if isinstance(d, int):
            return d
        sync, inp = self._input_rates(self._gate_rates(d))
        w = 0
        if sync <= 0:
            w |= WARNING_INP0_RATE_ZERO
        elif d.mode == MODE_T2 and sync / d.sync_div > 5e6:
            w |= WARNING_INP0_RATE_TOO_HIGH
        if inp <= 0:
            w |= WARNING_INP1_RATE_ZERO
        elif inp > 1e7:
            w |= WARNING_INP1_RATE_TOO_HIGH
        if d.mode != MODE_T2 and sync > 0 and inp > 0.05 * sync:
            w |= WARNING_INP_RATE_RATIO
        if d.mode == MODE_HIST and sync > 0:
            span = HISTCHAN * self._resolution_ps(d)
            if span < 1e12 / sync * d.sync_div:
                w |= WARNING_TIME_SPAN_TOO_SMALL
        _put(warnings, w)
        return OK

    def PH_GetWarningsText(self, devidx: Any, text: Any, warnings: Any) -> int:
        w = _int(warnings)
        _put_str(text, "".join(t + "\n" for bit, t in WARNING_TEXTS.items() if w & bit))
        return OK

    # -- measurement ----------------------------------------------------------------------------
    def PH_StartMeas(self, devidx: Any, tacq: Any) -> int:
        with self._lock:
            d = self._device(devidx, need_init=True)
            if isinstance(d, int):
                return d
            t = _int(tacq)
            if not ACQTMIN <= t <= ACQTMAX:
                return E_INVALID_ARGUMENT
            if d.running:
                return E_BUSY
            hist = d.hist.copy()
            d.reset_meas()
            d.hist = hist
            try:
                _ = self.feed  # fail here, not in the middle of a read, if there is no feed
            except Exception as exc:
                log.error("emulated PicoHarp has no tag feed: %s", exc)
                raise
            d.running = True
            d.t_start = self._now()
            d.tacq_s = t / 1e3
            if d.mode == MODE_HIST:
                self._plan_hist(d)
            self.calls.append("PH_StartMeas")
            return OK

    def PH_StopMeas(self, devidx: Any) -> int:
        with self._lock:
            d = self._device(devidx, need_init=True)
            if isinstance(d, int):
                return d
            if d.running:
                self._produce(d, final=True)
                self._finish(d)
            return OK

    def PH_CTCStatus(self, devidx: Any, ctcstatus: Any) -> int:
        with self._lock:
            d = self._device(devidx, need_init=True)
            if isinstance(d, int):
                return d
            end = self._end_s(d)
            if d.running and self._now() - d.t_start < end and self._afap():
                # the instrument takes time: a poll in AFAP mode lets one FIFO-safe step of lab time pass
                step = min(self.afap_step_s, end - (self._now() - d.t_start))
                self._lock.release()
                try:
                    self.clock.sleep(max(step, 1e-9))
                finally:
                    self._lock.acquire()
            if d.running:
                done = self._now() - d.t_start >= end
                self._produce(d, final=done)
                if done and d.running:
                    self._finish(d)
            _put(ctcstatus, 0 if d.running else 1)
            return OK

    def PH_GetHistogram(self, devidx: Any, chcount: Any, block: Any = 0) -> int:
        with self._lock:
            d = self._device(devidx, need_init=True)
            if isinstance(d, int):
                return d
            if d.mode != MODE_HIST:
                return E_INVALID_MODE
            if _int(block) != 0:
                return E_INVALID_ARGUMENT
            if d.running:
                self._produce(d)
            out = _as_uint32(chcount, HISTCHAN)
            out[:] = d.hist
            return OK

    def PH_ReadFiFo(self, devidx: Any, buffer: Any, count: Any, nactual: Any) -> int:
        with self._lock:
            d = self._device(devidx, need_init=True)
            if isinstance(d, int):
                return d
            if d.mode not in (MODE_T2, MODE_T3):
                return E_INVALID_MODE
            n = _int(count)
            if not 0 < n <= TTREADMAX:
                return E_INVALID_ARGUMENT
            if d.running:
                self._produce(d)
            out = _as_uint32(buffer, n)
            got = 0
            while d.fifo and got < n:
                head = d.fifo[0]
                take = min(n - got, head.size)
                out[got:got + take] = head[:take]
                got += take
                if take == head.size:
                    d.fifo.pop(0)
                else:
                    d.fifo[0] = head[take:]
            d.fifo_len -= got
            _put(nactual, got)
            return OK

    # -- the engine behind the FIFO / histogram ---------------------------------------------------
    def _end_s(self, d: _Device) -> float:
        """Lab seconds after the start at which the running measurement ends by itself."""
        return min(d.tacq_s, d.plan[0]) if d.plan is not None else d.tacq_s

    def _plan_hist(self, d: _Device) -> None:
        """Histogram mode with an exact physics feed: draw the histogram of the whole ``tacq`` now and,
        with stop-on-overflow, the moment the first bin reaches the stop count.

        Photons of a stationary source arrive uniformly in time, so the time at which bin k (n_k counts
        over tacq) collects its c-th count is tacq·Beta(c, n_k − c + 1); the device stops at the first
        such time t_s, that bin holds exactly c and every other bin the Binomial(n_j, t_s/tacq) part of
        its counts (PHLib: "stop_ovfl … stopcount: the measurement stops when any bin reaches it",
        ``PH_GetElapsedMeasTime`` then gives t_s). Without stop the 16-bit bins saturate at 65535.

        The same holds for the HBT wiring, whose histogram is the start–stop one (input 0 = detector 1
        starts, input 1 = detector 2 stops, the first stop after each start; the sync offset is the
        start's cable delay and the divider keeps every div-th start): the feed's
        ``exact_histogram(…, start_delay_ps=, sync_div=)`` draws it (``TagSource.start_stop_histogram``)."""
        d.plan = None
        if d.hist.any():  # accumulating on top of an uncleared histogram: the incremental path
            return
        res = self._resolution_ps(d)
        shift = int(d.offset_ps // res)
        if self.wiring == "hbt":
            # the offset only hides the first bins: the first stop is taken from h = 0 on
            exact = self.feed.exact_histogram(d.tacq_s, res, HISTCHAN + shift,
                                              start_delay_ps=float(d.sync_offset_ps), sync_div=d.sync_div)
            if exact is None:
                return
            counts = np.asarray(exact, np.int64)[shift:shift + HISTCHAN]
        else:
            exact = self.feed.exact_histogram(d.tacq_s, res, HISTCHAN)
            if exact is None:
                return
            counts = np.asarray(exact, np.int64)
            counts = np.concatenate([counts[shift:], np.zeros(shift, np.int64)])[:HISTCHAN]
        stop, stopcount = d.stop_ovfl
        t_end, overflow = d.tacq_s, False
        if stop and counts.max(initial=0) >= stopcount:
            hot = np.flatnonzero(counts >= stopcount)
            t_hit = self._rng.beta(stopcount, counts[hot] - stopcount + 1)
            k = int(hot[int(np.argmin(t_hit))])
            frac = float(t_hit.min())
            kept = self._rng.binomial(counts, frac)
            counts = np.minimum(kept, stopcount - 1)
            counts[k] = stopcount
            t_end, overflow = frac * d.tacq_s, True
        elif counts.max(initial=0) > 65535:
            counts, overflow = np.minimum(counts, 65535), True
        d.plan = (t_end, counts, overflow)

    def _finish(self, d: _Device) -> None:
        d.running = False
        d.t_stop = d.t_start + min(self._now() - d.t_start, self._end_s(d)) if d.t_stop is None else d.t_stop
        self.feed_origin_ps += int(round((d.t_stop - d.t_start) * 1e12))

    def _produce(self, d: _Device, final: bool = False) -> None:
        """Turn the lab time passed since the last call into records / histogram counts.

        Histogram mode accumulates when the measurement ends (``final``), so that a physics feed can
        use its statistically exact histogram for the whole acquisition."""
        until = min(self._now() - d.t_start, self._end_s(d))
        if d.mode == MODE_HIST:
            if final:
                self._produce_hist(d, until)
            return
        step = 0.05
        while d.produced_until < until and not (d.flags & FLAG_FIFOFULL):
            t0 = d.produced_until
            t1 = min(until, t0 + step)
            chunk = self._read(d, self.feed_origin_ps + int(round(t0 * 1e12)),
                               self.feed_origin_ps + int(round(t1 * 1e12)))
            recs = self._encode(d, chunk)
            d.produced_until = t1
            if recs.size:
                room = FIFO_RECORDS - d.fifo_len
                if recs.size > room:
                    recs = recs[:room]
                    d.flags |= FLAG_FIFOFULL
                    log.warning("emulated PicoHarp FIFO overrun: measurement stopped")
                d.fifo.append(recs)
                d.fifo_len += recs.size
        if d.flags & FLAG_FIFOFULL and d.running:
            d.t_stop = d.t_start + d.produced_until
            self._finish(d)

    def _read(self, d: _Device, t0_ps: int, t1_ps: int) -> Any:
        """T2 needs every tag; T3 and histogram mode only need the sync before each photon (the HBT
        start-stop histogram needs every start and stop)."""
        if d.mode != MODE_T2 and self.wiring != "hbt" and hasattr(self.feed, "read_t3"):
            return self.feed.read_t3(t0_ps, t1_ps)
        return self.feed.read(t0_ps, t1_ps)

    def _t3_fields(self, d: _Device, chunk: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(channel, nsync, dtime_ps) of the detector tags of a chunk."""
        if chunk.nsync is not None:  # T3-native recording
            det = chunk.channel >= 1
            period = float(self.feed.sync_period_ps)
            if d.nsync_origin is None:
                d.nsync_origin = int(np.floor(self.feed_origin_ps / period + 1e-9))
            nsync = chunk.nsync[det] - d.nsync_origin
            dtime_ps = chunk.dtime_ps[det]
            if d.sync_div > 1:  # the start is the last *divided* sync
                dtime_ps = dtime_ps + np.rint((nsync % d.sync_div) * period).astype(np.int64)
                nsync = nsync // d.sync_div
            return chunk.channel[det], nsync, dtime_ps
        ch, t = chunk.channel, chunk.time_ps
        sync_t = t[ch == 0] + d.sync_offset_ps
        # the divider keeps every div-th sync (phase continues across chunks)
        idx = (np.arange(sync_t.size) + d.sync_phase) % d.sync_div == 0
        d.sync_phase = (d.sync_phase + sync_t.size) % d.sync_div
        sync_t = sync_t[idx]
        det = ch >= 1
        pt, pch = t[det], ch[det]
        k = np.searchsorted(sync_t, pt, side="right") - 1
        base = np.where(k >= 0, sync_t[np.maximum(k, 0)], d.last_sync_ps if d.last_sync_ps is not None else -1)
        valid = (k >= 0) | (d.last_sync_ps is not None)
        nsync = d.sync_count + k  # k = -1 -> the last sync of the previous chunk
        if sync_t.size:
            d.last_sync_ps = int(sync_t[-1])
        d.sync_count += sync_t.size
        return pch[valid], nsync[valid], (pt - base)[valid]

    def _start_stop(self, d: _Device, chunk: Any, t_end_ps: int, res: float) -> np.ndarray:
        """HBT wiring, histogram mode from tags: for each start (detector 1 on input 0, delayed by the
        sync offset, every div-th one) the time ``h ≥ 0`` to the first stop (detector 2 on input 1) —
        the start–stop statistics that ``TagSource.start_stop_histogram`` gives in closed form.

        The tags of one chunk end at ``t_end_ps``: a start without a stop yet waits into the next chunk
        while its TAC range (offset + 65536 bins) is open, and the stops a later start may still see
        are kept."""
        ch, t = chunk.channel, chunk.time_ps
        starts = t[ch == 1] + d.sync_offset_ps
        keep = (np.arange(starts.size) + d.sync_phase) % d.sync_div == 0
        d.sync_phase = (d.sync_phase + starts.size) % d.sync_div
        starts = np.concatenate([d.ss_pending, starts[keep]])
        stops = np.concatenate([d.ss_stops, t[ch == 2]])
        k = np.searchsorted(stops, starts, side="left")
        found = k < stops.size
        h = stops[k[found]] - starts[found]
        span = d.offset_ps + HISTCHAN * res
        d.ss_pending = starts[~found & (starts + span > t_end_ps)]
        d.ss_stops = stops[stops >= t_end_ps + min(d.sync_offset_ps, 0)]
        return h

    def _encode(self, d: _Device, chunk: Any) -> np.ndarray:
        if len(chunk) == 0:
            return np.zeros(0, np.uint32)
        if d.mode == MODE_T2:
            ch = chunk.channel
            if self.wiring == "hbt":
                ch = ch - 1  # detectors 1, 2 on inputs 0, 1
            t = chunk.time_ps - self.feed_origin_ps
            recs, d.wraps = encode_t2(ch, t // int(BASE_RESOLUTION_PS), d.wraps)
            return recs
        ch, nsync, dtime_ps = self._t3_fields(d, chunk)
        res = self._resolution_ps(d)
        dt = np.floor((dtime_ps - d.offset_ps) / res + 1e-9).astype(np.int64)
        ok = (dt >= 0) & (dt < 4096)
        recs, d.wraps = encode_t3(ch[ok], nsync[ok], dt[ok], d.wraps)
        return recs

    def _produce_hist(self, d: _Device, until: float) -> None:
        if until <= d.produced_until:
            return
        res = self._resolution_ps(d)
        if d.plan is not None:
            t_end, planned, overflow = d.plan
            if until >= t_end - 1e-12 or d.produced_until > 0:
                counts = planned
                if overflow:
                    d.flags |= FLAG_OVERFLOW
            else:  # stopped by PH_StopMeas before the end: the photons of the elapsed part
                counts = self._rng.binomial(planned, until / t_end) if t_end > 0 else planned * 0
            d.produced_until = until
            d.plan = None
            d.hist = np.minimum(counts, 0xFFFFFFFF).astype(np.uint32)
            return
        counts = np.zeros(HISTCHAN, np.int64)
        step = 0.05
        while d.produced_until < until:
            t0 = d.produced_until
            t1 = min(until, t0 + step)
            chunk = self._read(d, self.feed_origin_ps + int(round(t0 * 1e12)),
                               self.feed_origin_ps + int(round(t1 * 1e12)))
            d.produced_until = t1
            if self.wiring == "hbt":
                dtime_ps = self._start_stop(d, chunk, self.feed_origin_ps + int(round(t1 * 1e12)), res)
            elif len(chunk):
                _, _, dtime_ps = self._t3_fields(d, chunk)
            else:
                continue
            if dtime_ps.size:
                b = np.floor((dtime_ps - d.offset_ps) / res + 1e-9).astype(np.int64)
                b = b[(b >= 0) & (b < HISTCHAN)]
                counts += np.bincount(b, minlength=HISTCHAN)
        total = d.hist.astype(np.int64) + counts
        stop, stopcount = d.stop_ovfl
        if total.max(initial=0) > 65535 or (stop and total.max(initial=0) >= stopcount):
            # the incremental path checks once per call: the stop lands at the end of this step
            d.flags |= FLAG_OVERFLOW
            total = np.minimum(total, stopcount if stop else 65535)
            if stop:
                d.t_stop = d.t_start + d.produced_until
                if d.running:
                    self._finish(d)
        d.hist = np.minimum(total, 0xFFFFFFFF).astype(np.uint32)


class _Wall:
    """Wall clock used when no lab clock is given (interactive use)."""

    def __init__(self) -> None:
        self._t0 = time.monotonic()

    def monotonic(self) -> float:
        return time.monotonic() - self._t0

    def sleep(self, s: float) -> None:
        if s > 0:
            time.sleep(s)
