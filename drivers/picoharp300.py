"""PicoHarp 300 backend of the ``TCSPC`` role: PHLib 3.0 through ctypes.

The same code drives the vendor library (``phlib64.dll`` / ``libph300.so``) at the setup and the
emulated function table (``simulators.phlib.EmulatedPHLib``) in simulation and tests::

    tcspc = PicoHarp300("", clock=clock, phlib=emulated_table)        # simulation / replay ("emulated" too)
    tcspc = PicoHarp300("1030228", library="C:/…/phlib64.dll")        # setup (serial or "")

Measurement modes (PHLib needs ``PH_Initialize`` to switch; the backend re-initialises and re-sends
every setting when the next call needs another mode):

* ``histogram()`` — histogram mode (``histogram_source = "hist"``, 65 536 bins of 4 ps·2^binning,
  single detector input) or T3 FIFO records binned per detector channel (``"t3"``, 4096 bins);
* ``correlation()`` — T2 FIFO records of two inputs, all pairs histogrammed in software (PicoHarp
  T2 inputs: 0 = the "sync" input, 1 = the detector input; routed detectors 1–4);
* ``start_stop_correlation()`` — HBT the way [000] did it: histogram mode with one detector on the
  sync input as the start and the other, delayed, on input 1 as the stop, so the device accumulates
  the g2 histogram itself and nothing is listed photon by photon. The delay that puts negative τ on
  the histogram is the sync offset (``PH_SetSyncOffset``, "emulates a cable delay" on the start,
  here a negative one: ±99 999 ps) plus a real cable on the stop input (``hbt_stop_cable_ps``).
  Each start records the *first* stop after it within the 65 536 bins, so the counts are the
  all-pairs ones times the probability of no earlier stop (``Correlation.pileup`` bounds the loss);
  n1, n2 come from the count-rate meters, averaged over the acquisition.
  ``hbt_correlation()`` (what the HBT procedures call) uses it, or the T2 path with
  ``hbt_source = "t2"``;
* ``stream()`` — raw T2 (or T3) tags.
"""

from __future__ import annotations

import ctypes
import logging
import math
from typing import Any

import numpy as np

from . import phlib_api as api
from .base import POLL_S, Clock, DriverError, Option, OptionError
from .tcspc import (
    TCSPC,
    Correlation,
    DecayHistogram,
    TagStream,
    check_duration,
    correlate_tags,
    validate_backend_options,
)

log = logging.getLogger(__name__)

__all__ = ["PicoHarp300"]

#: resources meaning "the first device found" (the emulated table has one device)
ANY_DEVICE = ("", "sim", "emulated", "any", "first")
#: PicoHarp 300 histogram memory: 16-bit bins (PHLib manual, PH_SetStopOverflow: stopcount ≤ 65535)
HIST_CEILING = 65535
#: TDC dead time of the PicoHarp 300 detector input (data sheet: < 95 ns)
DEAD_TIME_S = 95e-9


class PicoHarp300(TCSPC):
    """PicoHarp 300 via PHLib 3.0. ``phlib=`` injects a function table instead of loading the DLL."""

    READBACKS = {"rate_ch0": "1/s", "rate_ch1": "1/s"}
    OPTIONS = {
        "library": Option(str, default="", doc="path to phlib64.dll / libph300.so ('' = search the usual names)"),
        "device_index": Option(int, default=-1, min=-1, max=7,
                               doc="PHLib device index (-1 = the first one, or the one with the serial)"),
        "histogram_source": Option(str, default="hist", choices=("hist", "t3"),
                                   doc="histogram mode of the device, or T3 records binned per channel"),
        "hbt_source": Option(str, default="hist", choices=("hist", "t2"),
                             doc="HBT g2 (hbt_correlation): start-stop histogram mode, or all pairs of T2 tags"),
        "hbt_stop_cable_ps": Option(int, default=0, min=0, max=1_000_000, unit="ps",
                                    doc="delay cable on the stop input (input 1) for start-stop HBT"),
        "stop_on_overflow": Option(bool, default=True, doc="stop a histogram when a bin reaches stop_count"),
        "stop_count": Option(int, default=HIST_CEILING, min=1, max=HIST_CEILING,
                             doc="PH_SetStopOverflow stop count (the histogram stops when a bin reaches it)"),
        "poll_s": Option(float, default=0.02, min=0.001, max=1.0, unit="s",
                         doc="lab-clock interval between FIFO reads / status polls"),
        "sync_divider": Option(int, default=1, choices=api.SYNCDIVS),
        "sync_cfd_level_mV": Option(int, default=100, min=0, max=800, unit="mV"),
        "sync_cfd_zero_cross_mV": Option(int, default=10, min=0, max=20, unit="mV"),
        "cfd_level_mV": Option(int, default=100, min=0, max=800, unit="mV"),
        "cfd_zero_cross_mV": Option(int, default=10, min=0, max=20, unit="mV"),
        "binning": Option(int, default=0, min=0, max=7, doc="resolution = 4 ps * 2**binning"),
        "offset_ps": Option(int, default=0, min=0, max=1_000_000_000, unit="ps"),
        "sync_offset_ps": Option(int, default=0, min=-99_999, max=99_999, unit="ps"),
    }
    SETTINGS = {k: v for k, v in OPTIONS.items()
                if k in ("sync_divider", "sync_cfd_level_mV", "sync_cfd_zero_cross_mV", "cfd_level_mV",
                         "cfd_zero_cross_mV", "binning", "offset_ps", "sync_offset_ps")}

    def __init__(self, resource: str = "", *, clock: Clock | None = None, phlib: Any = None, **options: Any):
        values = validate_backend_options(type(self), options)
        super().__init__(resource, clock=clock, **values)
        self._table = phlib
        self.lib: api.PHLib | None = None
        self.dev: int | None = None
        self.mode: int | None = None
        self.settings = {k: values[k] for k in self.SETTINGS}
        self._rate_ready_at = 0.0
        self.serial = ""
        self.model = ""
        self.library_version = ""

    # -- connection ------------------------------------------------------------------------------
    def connect(self) -> None:
        table = self._table if self._table is not None else api.load_library(self.options["library"] or None)
        self.lib = api.PHLib(table)
        ver = ctypes.create_string_buffer(8)
        self.lib("PH_GetLibraryVersion", ver)
        self.library_version = ver.value.decode()
        if not self.library_version.startswith("3."):
            log.warning("PHLib version %s; this backend follows the 3.0 API", self.library_version)
        want_serial = "" if self.resource.strip().lower() in ANY_DEVICE else self.resource.strip()
        indices = [self.options["device_index"]] if self.options["device_index"] >= 0 else range(api.MAXDEVNUM)
        errors = []
        for i in indices:
            serial = ctypes.create_string_buffer(8)
            try:
                self.lib("PH_OpenDevice", ctypes.c_int(i), serial)
            except DriverError as exc:
                errors.append(f"#{i}: {exc}")
                continue
            sn = serial.value.decode(errors="replace")
            if want_serial and want_serial != sn:
                self.lib("PH_CloseDevice", ctypes.c_int(i))
                errors.append(f"#{i}: serial {sn} is not {want_serial}")
                continue
            self.dev, self.serial = i, sn
            break
        if self.dev is None:
            raise DriverError("no PicoHarp 300 could be opened: " + "; ".join(errors[:4]))
        self._initialize(api.MODE_HIST)
        model, partno, version = (ctypes.create_string_buffer(16), ctypes.create_string_buffer(8),
                                  ctypes.create_string_buffer(8))
        self.lib("PH_GetHardwareInfo", ctypes.c_int(self.dev), model, partno, version)
        self.model = f"{model.value.decode()} {partno.value.decode()} v{version.value.decode()}"
        log.info("PicoHarp opened: %s S/N %s, PHLib %s", self.model, self.serial, self.library_version)

    def close(self) -> None:
        if self.lib is not None and self.dev is not None:
            try:
                self.lib("PH_StopMeas", ctypes.c_int(self.dev))
            except DriverError:
                pass
            try:
                self.lib("PH_CloseDevice", ctypes.c_int(self.dev))
            except DriverError as exc:  # pragma: no cover - logged only
                log.warning("PH_CloseDevice: %s", exc)
        self.dev = None
        self.mode = None

    def _require(self) -> tuple[api.PHLib, ctypes.c_int]:
        if self.lib is None or self.dev is None:
            raise DriverError("PicoHarp300 is not connected (call connect() first)")
        return self.lib, ctypes.c_int(self.dev)

    def _initialize(self, mode: int) -> None:
        lib, dev = self._require()
        lib("PH_Initialize", dev, ctypes.c_int(mode))
        lib("PH_Calibrate", dev)
        self.mode = mode
        self._send(self.settings)

    def _ensure_mode(self, mode: int) -> None:
        if self.mode != mode:
            self._initialize(mode)

    def _send(self, s: dict[str, Any]) -> None:
        lib, dev = self._require()
        cur = self.settings
        if "sync_divider" in s:
            lib("PH_SetSyncDiv", dev, ctypes.c_int(s["sync_divider"]))
            self._rate_ready_at = self.clock.monotonic() + 0.1
        if "sync_cfd_level_mV" in s or "sync_cfd_zero_cross_mV" in s:
            lib("PH_SetInputCFD", dev, ctypes.c_int(0), ctypes.c_int(cur["sync_cfd_level_mV"]),
                ctypes.c_int(cur["sync_cfd_zero_cross_mV"]))
        if "cfd_level_mV" in s or "cfd_zero_cross_mV" in s:
            lib("PH_SetInputCFD", dev, ctypes.c_int(1), ctypes.c_int(cur["cfd_level_mV"]),
                ctypes.c_int(cur["cfd_zero_cross_mV"]))
        if "binning" in s:
            lib("PH_SetBinning", dev, ctypes.c_int(s["binning"]))
        if "offset_ps" in s:
            lib("PH_SetOffset", dev, ctypes.c_int(s["offset_ps"]))
        if "sync_offset_ps" in s:
            lib("PH_SetSyncOffset", dev, ctypes.c_int(s["sync_offset_ps"]))
        self._rate_ready_at = max(self._rate_ready_at, self.clock.monotonic() + 0.1)

    def _apply_settings(self, settings: dict[str, Any]) -> None:
        self.settings.update(settings)
        if self.dev is not None and self.mode is not None:
            self._send(settings)

    # -- readbacks ---------------------------------------------------------------------------------
    @property
    def resolution_ps(self) -> float:
        lib, dev = self._require()
        res = ctypes.c_double()
        lib("PH_GetResolution", dev, ctypes.byref(res))
        return float(res.value)

    def count_rates(self) -> dict[str, float]:
        lib, dev = self._require()
        if self.mode is None:
            self._initialize(api.MODE_HIST)
        wait = self._rate_ready_at - self.clock.monotonic()
        if wait > 0:  # the rate meters need 100 ms after Initialize / SetSyncDiv
            self.clock.sleep(wait)
        out = {}
        for ch in (0, 1):
            r = ctypes.c_int()
            lib("PH_GetCountRate", dev, ctypes.c_int(ch), ctypes.byref(r))
            out[f"rate_ch{ch}"] = float(r.value)
        return out

    def warnings(self) -> list[str]:
        """The device's warnings (call after count_rates, as PicoQuant's demos do)."""
        lib, dev = self._require()
        w = ctypes.c_int()
        lib("PH_GetWarnings", dev, ctypes.byref(w))
        if not w.value:
            return []
        text = ctypes.create_string_buffer(16384)
        lib("PH_GetWarningsText", dev, text, w)
        return [line for line in text.value.decode(errors="replace").splitlines() if line.strip()]

    def flags(self) -> int:
        lib, dev = self._require()
        f = ctypes.c_int()
        lib("PH_GetFlags", dev, ctypes.byref(f))
        return int(f.value)

    def stop(self) -> None:
        if self.lib is not None and self.dev is not None and self.mode is not None:
            self.lib("PH_StopMeas", ctypes.c_int(self.dev))

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(model=self.model, serial=self.serial, library_version=self.library_version,
                 settings=dict(self.settings), histogram_source=self.options["histogram_source"])
        return d

    # -- measurements ------------------------------------------------------------------------------
    def _acq_ms(self, duration_s: float) -> int:
        ms = int(round(check_duration(duration_s) * 1e3))
        if not api.ACQT_MS[0] <= ms <= api.ACQT_MS[1]:
            raise OptionError("duration_s", duration_s, "must be between 1 ms and 100 h (PHLib limit)")
        return ms

    def _wait_done(self, lib: api.PHLib, dev: ctypes.c_int, reader: Any = None, *,
                   end_at: float | None = None) -> None:
        """Poll ``PH_CTCStatus`` until the measurement is done, every ``poll_s`` — or, given the lab time
        ``end_at`` at which it will be (a histogram, read only at the end), every ``POLL_S`` until just
        before it. Either way the cancellation token is polled at least every ``POLL_S``."""
        status = ctypes.c_int(0)
        poll = self.options["poll_s"]
        while True:
            if reader is not None:
                reader()
            lib("PH_CTCStatus", dev, ctypes.byref(status))
            if status.value:
                break
            step = poll
            if end_at is not None:
                step = min(max(poll, end_at - self.clock.monotonic()), max(poll, POLL_S))
            self.wait(step)   # polls the cancellation token; the caller's finally stops the measurement

    def _fifo(self, mode: int, duration_s: float) -> tuple[np.ndarray, float]:
        """Run a T2/T3 measurement and return all FIFO records and the elapsed time (s)."""
        tacq = self._acq_ms(duration_s)
        self._ensure_mode(mode)
        lib, dev = self._require()
        buf = (ctypes.c_uint * api.TTREADMAX)()
        nactual = ctypes.c_int()
        flags = ctypes.c_int()
        chunks: list[np.ndarray] = []

        def read() -> None:
            lib("PH_GetFlags", dev, ctypes.byref(flags))
            if flags.value & api.FLAG_FIFOFULL:
                lib("PH_StopMeas", dev)
                raise DriverError("PicoHarp FIFO overrun: the count rate is too high for the read-out; "
                                  "data were lost and the measurement was stopped")
            while True:
                lib("PH_ReadFiFo", dev, ctypes.byref(buf), ctypes.c_int(api.TTREADMAX), ctypes.byref(nactual))
                n = nactual.value
                if n:
                    chunks.append(np.ctypeslib.as_array(buf)[:n].astype(np.uint32).copy())
                if n < api.TTREADMAX:
                    break

        lib("PH_StartMeas", dev, ctypes.c_int(tacq))
        try:
            self._wait_done(lib, dev, reader=read)
            read()  # what arrived between the last read and the end
        finally:
            lib("PH_StopMeas", dev)
        elapsed = ctypes.c_double()
        lib("PH_GetElapsedMeasTime", dev, ctypes.byref(elapsed))
        recs = np.concatenate(chunks) if chunks else np.zeros(0, np.uint32)
        return recs, float(elapsed.value) / 1e3 or tacq / 1e3

    def stream(self, duration_s: float, *, mode: str = "t2") -> TagStream:
        """Raw tags: ``mode="t2"`` (all inputs, absolute 4 ps times) or ``"t3"`` (nsync + dtime)."""
        if mode not in ("t2", "t3"):
            raise OptionError("mode", mode, "must be 't2' or 't3'")
        if mode == "t3":
            return self._stream_t3(duration_s)
        recs, elapsed = self._fifo(api.MODE_T2, duration_s)
        ch, t_ps, novf = api.decode_t2(recs)
        return TagStream(time_ps=t_ps, channel=ch, duration_s=elapsed, mode="t2", time_unit_ps=4.0,
                         meta={"records": int(recs.size), "overflows": novf, "device": "PicoHarp 300",
                               "serial": self.serial})

    def _stream_t3(self, duration_s: float) -> TagStream:
        self._acq_ms(duration_s)
        self._ensure_mode(api.MODE_T3)
        rates = self.count_rates()
        res = self.resolution_ps
        recs, elapsed = self._fifo(api.MODE_T3, duration_s)
        ch, nsync, dtime, novf = api.decode_t3(recs)
        sync_rate = rates["rate_ch0"] / self.settings["sync_divider"]
        period = 1e12 / sync_rate if sync_rate > 0 else float("nan")
        if math.isfinite(period):
            t_ps = np.rint(nsync * period + dtime * res).astype(np.int64)
        else:
            t_ps = np.zeros(nsync.size, np.int64)
        return TagStream(time_ps=t_ps, channel=ch, duration_s=elapsed, mode="t3", nanotime=dtime,
                         nanotime_unit_ps=res, nanotime_bins=api.T3_DTIME_BINS, sync_period_ps=period,
                         time_unit_ps=1.0, meta={"records": int(recs.size), "overflows": novf,
                                                 "nsync": nsync, "device": "PicoHarp 300",
                                                 "serial": self.serial})

    def _binning_for(self, binwidth_ps: float | None) -> int | None:
        if binwidth_ps is None:
            return None
        b = math.log2(float(binwidth_ps) / api.BASE_RESOLUTION_PS) if binwidth_ps > 0 else -1
        if b < 0 or abs(b - round(b)) > 1e-9 or round(b) > 7:
            raise OptionError("binwidth_ps", binwidth_ps,
                              "must be 4 ps * 2**binning with binning 0..7 (4, 8, …, 512 ps) on a PicoHarp 300")
        return int(round(b))

    def histogram(self, duration_s: float, *, channel: int | None = None,
                  binwidth_ps: float | None = None, n_bins: int | None = None) -> DecayHistogram:
        source = self.options["histogram_source"]
        max_bins = api.HISTCHAN if source == "hist" else api.T3_DTIME_BINS
        if n_bins is not None and not 1 <= int(n_bins) <= max_bins:
            raise OptionError("n_bins", n_bins, f"must be between 1 and {max_bins} ({source} mode)")
        if channel is not None and channel not in (1, 2, 3, 4):
            raise OptionError("channel", channel, "must be a detector channel 1..4 (or None for all)")
        binning = self._binning_for(binwidth_ps)
        self._acq_ms(duration_s)
        if binning is not None and binning != self.settings["binning"]:
            self.configure(binning=binning)
        if source == "t3":
            return self._histogram_t3(duration_s, channel, n_bins)
        return self._histogram_hist(duration_s, channel, n_bins)

    def _measure_hist(self, lib: Any, dev: Any, tacq: int, **wait: Any) -> tuple[np.ndarray, int, float]:
        """One histogram-mode measurement of ``tacq`` ms (the caller cleared or kept the memory): start,
        wait (``_wait_done`` with ``wait``), stop, then read the whole histogram memory, the flags and
        the elapsed time. Returns ``(counts as int64, flags, elapsed seconds)``."""
        lib("PH_StartMeas", dev, ctypes.c_int(tacq))
        try:
            self._wait_done(lib, dev, **wait)
        finally:
            lib("PH_StopMeas", dev)
        counts = (ctypes.c_uint * api.HISTCHAN)()
        lib("PH_GetHistogram", dev, ctypes.byref(counts), ctypes.c_int(0))
        flags = self.flags()
        elapsed = ctypes.c_double()
        lib("PH_GetElapsedMeasTime", dev, ctypes.byref(elapsed))
        return np.ctypeslib.as_array(counts).astype(np.int64), flags, float(elapsed.value) / 1e3

    def _histogram_hist(self, duration_s: float, channel: int | None, n_bins: int | None) -> DecayHistogram:
        tacq = self._acq_ms(duration_s)
        self._ensure_mode(api.MODE_HIST)
        rates = self.count_rates()
        warnings = self.warnings()
        lib, dev = self._require()
        stop = bool(self.options["stop_on_overflow"])
        stop_count = int(self.options["stop_count"])
        lib("PH_SetStopOverflow", dev, ctypes.c_int(1 if stop else 0), ctypes.c_int(stop_count))
        lib("PH_ClearHistMem", dev, ctypes.c_int(0))
        full, flags, elapsed_s = self._measure_hist(lib, dev, tacq)
        res = self.resolution_ps
        n = n_bins or api.HISTCHAN
        h = full[:n]
        dur = elapsed_s or duration_s
        sync_rate = rates["rate_ch0"] / self.settings["sync_divider"]
        det_rate = float(full.sum()) / dur if dur > 0 else rates["rate_ch1"]
        return DecayHistogram(
            time_ps=self.settings["offset_ps"] + np.arange(n) * res, counts=h, binwidth_ps=res,
            duration_s=dur, channel=channel, counts_by_channel={1: h},
            sync_period_ps=1e12 / sync_rate if sync_rate > 0 else None,
            channel_counts={0: int(round(rates["rate_ch0"] * dur)), 1: int(h.sum())},
            flags=[name for bit, name in api.FLAG_NAMES.items() if flags & bit == bit],
            warnings=warnings, requested_s=tacq / 1e3, ceiling=HIST_CEILING,
            stop_count=stop_count if stop else None, overflow=bool(flags & api.FLAG_OVERFLOW),
            pileup=det_rate / sync_rate if sync_rate > 0 else None,
            dead_time_fraction=min(det_rate * DEAD_TIME_S, 1.0))

    def _histogram_t3(self, duration_s: float, channel: int | None, n_bins: int | None) -> DecayHistogram:
        ts = self._stream_t3(duration_s)
        n = n_bins or api.T3_DTIME_BINS
        by = {}
        assert ts.nanotime is not None
        for c in np.unique(ts.channel):
            d = ts.nanotime[ts.channel == c]
            by[int(c)] = np.bincount(d[d < n], minlength=n).astype(np.int64)
        if channel is None:
            counts = sum(by.values(), np.zeros(n, np.int64))
        else:
            counts = by.get(channel, np.zeros(n, np.int64))
        res = float(ts.nanotime_unit_ps or 0.0)
        chan_counts = {c: int((ts.channel == c).sum()) for c in by}
        if ts.sync_period_ps and math.isfinite(ts.sync_period_ps):
            chan_counts[0] = int(round(ts.duration_s * 1e12 / ts.sync_period_ps))
        det = sum(v for k, v in chan_counts.items() if k >= 1)
        det_rate = det / ts.duration_s if ts.duration_s > 0 else 0.0
        sync_rate = 1e12 / ts.sync_period_ps if ts.sync_period_ps and math.isfinite(ts.sync_period_ps) else 0.0
        return DecayHistogram(time_ps=self.settings["offset_ps"] + np.arange(n) * res, counts=counts,
                              binwidth_ps=res, duration_s=ts.duration_s, channel=channel,
                              counts_by_channel=by, sync_period_ps=ts.sync_period_ps,
                              channel_counts=chan_counts, requested_s=self._acq_ms(duration_s) / 1e3,
                              pileup=det_rate / sync_rate if sync_rate > 0 else None,
                              dead_time_fraction=min(det_rate * DEAD_TIME_S, 1.0))

    def hbt_correlation(self, duration_s: float, binwidth_ps: float = 100.0, n_bins: int = 1000) -> Correlation:
        """The HBT g2 of inputs 0 (start) and 1 (stop): start-stop histogram mode (``hbt_source="hist"``,
        the default) or all pairs of T2 tags (``"t2"``)."""
        if self.options["hbt_source"] == "t2":
            return self.correlation(duration_s, 0, 1, binwidth_ps=binwidth_ps, n_bins=n_bins)
        return self.start_stop_correlation(duration_s, binwidth_ps=binwidth_ps, n_bins=n_bins)

    def _start_stop_binning(self, binwidth_ps: float, n_bins: int) -> tuple[int, int]:
        """(binning, device bins per lag bin) for a start-stop g2 of ``n_bins`` lags of ``binwidth_ps``:
        the coarsest device resolution 4 ps·2^binning that divides the lag bin, and the lag range
        within the 65 536 histogram bins."""
        bw = float(binwidth_ps)
        if bw < api.BASE_RESOLUTION_PS or bw % api.BASE_RESOLUTION_PS:
            raise OptionError("binwidth_ps", binwidth_ps, "must be a positive multiple of the 4 ps PicoHarp resolution")
        binning = 0
        while binning < 7 and bw % (api.BASE_RESOLUTION_PS * 2 ** (binning + 1)) == 0:
            binning += 1
        per = int(round(bw / (api.BASE_RESOLUTION_PS * 2 ** binning)))
        if not 2 <= int(n_bins) or int(n_bins) * per > api.HISTCHAN:
            raise OptionError("n_bins", n_bins, f"must be between 2 and {api.HISTCHAN // per} for {bw:g} ps bins "
                                                "(the 65 536 bins of the histogram mode)")
        return binning, per

    def start_stop_correlation(self, duration_s: float, binwidth_ps: float = 8.0, n_bins: int = 500) -> Correlation:
        """HBT g2 as a start-stop histogram (histogram mode; input 0 = start detector, input 1 = stop).

        Lags as :meth:`correlation`: bin k covers τ = t1 − t0 in ``[(k − n_bins//2)·bw, …)``. The stop is
        delayed by ``(n_bins//2)·bw`` (the sync offset, minus the stop cable ``hbt_stop_cable_ps``), so
        histogram time h = τ + delay. Interruptible (the CTCStatus poll checks the cancellation token);
        the device settings (binning, offsets) are restored afterwards.
        """
        n_bins = int(n_bins)
        tacq = self._acq_ms(duration_s)
        if self.settings["sync_divider"] != 1:
            raise OptionError("sync_divider", self.settings["sync_divider"],
                              "must be 1 for a start-stop g2 (the divider drops starts)")
        binning, per = self._start_stop_binning(binwidth_ps, n_bins)
        bw = float(binwidth_ps)
        delay = (n_bins // 2) * bw
        sync_offset = int(self.options["hbt_stop_cable_ps"]) - int(round(delay))
        lo, hi = api.SYNC_OFFSET_PS
        if not lo <= sync_offset <= hi:
            raise OptionError("n_bins", n_bins,
                              f"needs {delay:g} ps of stop delay: the sync offset ({lo}..{hi} ps) plus the stop "
                              f"cable ({self.options['hbt_stop_cable_ps']} ps) cannot give it")
        self._ensure_mode(api.MODE_HIST)
        lib, dev = self._require()
        lib("PH_SetBinning", dev, ctypes.c_int(binning))
        lib("PH_SetOffset", dev, ctypes.c_int(0))
        lib("PH_SetSyncOffset", dev, ctypes.c_int(sync_offset))
        try:
            return self._start_stop(lib, dev, tacq, bw, n_bins, per)
        finally:
            self._send({k: self.settings[k] for k in ("binning", "offset_ps", "sync_offset_ps")})

    def _start_stop(self, lib: api.PHLib, dev: ctypes.c_int, tacq: int, bw: float, n_bins: int,
                    per: int) -> Correlation:
        rates = self.count_rates()
        warnings = self.warnings()
        stop = bool(self.options["stop_on_overflow"])
        stop_count = int(self.options["stop_count"])
        lib("PH_SetStopOverflow", dev, ctypes.c_int(1 if stop else 0), ctypes.c_int(stop_count))
        lib("PH_ClearHistMem", dev, ctypes.c_int(0))
        # n1, n2: the rate meters (100 ms gates) read along the acquisition, at most ~100 readings
        gate = max(0.1, tacq / 1e3 / 100)
        readings = [rates]
        next_read = [self.clock.monotonic() + gate]
        rate = ctypes.c_int()

        def read_rates() -> None:
            if self.clock.monotonic() < next_read[0]:
                return
            r = {}
            for ch in (0, 1):
                lib("PH_GetCountRate", dev, ctypes.c_int(ch), ctypes.byref(rate))
                r[f"rate_ch{ch}"] = float(rate.value)
            readings.append(r)
            next_read[0] = self.clock.monotonic() + gate

        full, flags, elapsed_s = self._measure_hist(lib, dev, tacq, reader=read_rates,
                                                    end_at=self.clock.monotonic() + tacq / 1e3)
        raw = full[:n_bins * per]
        dur = elapsed_s or tacq / 1e3
        r0 = float(np.mean([r["rate_ch0"] for r in readings]))
        r1 = float(np.mean([r["rate_ch1"] for r in readings]))
        if stop:
            clipped = max(int(np.sum(raw >= stop_count)) - 1, 0)
        else:
            clipped = int(np.sum(raw >= HIST_CEILING))
        lags = (np.arange(n_bins) - n_bins // 2 + 0.5) * bw
        n1 = int(round(r0 * dur))
        # the share of starts that saw a stop within the lag range: at most that share of the pairs at the
        # last lag is hidden behind an earlier stop (measured, so the bunched stops are in it)
        pileup = min(float(raw.sum()) / n1, 1.0) if n1 > 0 else None
        return Correlation(
            lag_ps=lags, counts=raw.reshape(n_bins, per).sum(axis=1), binwidth_ps=bw, duration_s=dur,
            ch1=0, ch2=1, n1=n1, n2=int(round(r1 * dur)), method="start-stop",
            flags=[name for bit, name in api.FLAG_NAMES.items() if flags & bit == bit], warnings=warnings,
            requested_s=tacq / 1e3, ceiling=HIST_CEILING, stop_count=stop_count if stop else None,
            overflow=bool(flags & api.FLAG_OVERFLOW), pileup=pileup,
            dead_time_fraction=min(max(r0, r1) * DEAD_TIME_S, 1.0), device_clipped_bins=clipped)

    def correlation(self, duration_s: float, ch1: int = 0, ch2: int = 1, binwidth_ps: float = 100.0,
                    n_bins: int = 1000) -> Correlation:
        """g2 from T2 tags. On a PicoHarp 300 the two HBT detectors are inputs 0 and 1."""
        for name, ch in (("ch1", ch1), ("ch2", ch2)):
            if ch not in (0, 1, 2, 3, 4):
                raise OptionError(name, ch, "must be a PicoHarp input 0..4 (0 = the sync input in T2 mode)")
        if binwidth_ps < api.BASE_RESOLUTION_PS or float(binwidth_ps) % api.BASE_RESOLUTION_PS:
            raise OptionError("binwidth_ps", binwidth_ps, "must be a positive multiple of the 4 ps T2 resolution")
        if not 2 <= int(n_bins) <= 10_000_000:
            raise OptionError("n_bins", n_bins, "must be between 2 and 10 000 000")
        if self.settings["sync_divider"] != 1:
            raise OptionError("sync_divider", self.settings["sync_divider"],
                              "must be 1 for correlations (the divider drops events on input 0)")
        ts = self.stream(duration_s)
        t1, t2 = ts.select(ch1), ts.select(ch2)
        lags, counts = correlate_tags(t1, t2, int(binwidth_ps), int(n_bins))
        r = max(t1.size, t2.size) / ts.duration_s if ts.duration_s > 0 else 0.0
        return Correlation(lag_ps=lags, counts=counts, binwidth_ps=float(binwidth_ps), duration_s=ts.duration_s,
                           ch1=ch1, ch2=ch2, n1=int(t1.size), n2=int(t2.size),
                           requested_s=self._acq_ms(duration_s) / 1e3, dead_time_fraction=min(r * DEAD_TIME_S, 1.0))
