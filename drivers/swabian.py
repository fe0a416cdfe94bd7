"""Swabian Instruments Time Tagger backend of the ``TCSPC`` role, on the vendor Python API.

The backend only uses vendor API shapes (``createTimeTagger``, ``setTriggerLevel``,
``setInputDelay``, ``setDeadtime``, ``Countrate``, ``Histogram``, ``Correlation``,
``TimeTagStream``, ``startFor``/``waitUntilFinished``, int64 ps), so the same code runs on

* the vendor module (``from Swabian import TimeTagger`` since the PyPI wheels, or the installer's
  ``import TimeTagger``) at the setup, and
* an injected module with the same API (``tagger_module=``, e.g. the emulation from
  ``simulators.timetagger``) in simulation and tests::

    tcspc = SwabianTimeTagger("", clock=clock, tagger_module=emulated_module)
    tcspc = SwabianTimeTagger("1234000ABC", sync_channel=1, detector_channels=[2, 3])  # setup

Interface channels map to tagger inputs: 0 (sync) → ``sync_channel``, detector ``k`` →
``detector_channels[k-1]``.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import numpy as np

from .base import POLL_S, Clock, DriverError, Option, OptionError
from .tcspc import TCSPC, Correlation, DecayHistogram, TagStream, check_duration, validate_backend_options

log = logging.getLogger(__name__)

__all__ = ["SwabianTimeTagger", "import_vendor_module"]

PS = 1_000_000_000_000


def import_vendor_module() -> Any:
    """The vendor's TimeTagger module (new and old import paths)."""
    errors = []
    for name in ("Swabian.TimeTagger", "TimeTagger"):
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
    raise DriverError("Swabian Time Tagger library not installed (pip install Swabian-TimeTagger, or the "
                      "vendor installer): " + "; ".join(errors))


class SwabianTimeTagger(TCSPC):
    """Time Tagger 20 / Ultra / X. ``tagger_module=`` injects an API-compatible module."""

    READBACKS = {"rate_ch0": "1/s", "rate_ch1": "1/s", "rate_ch2": "1/s"}
    OPTIONS = {
        "sync_channel": Option(int, default=1, min=1, max=18, doc="tagger input of the sync / start signal"),
        "detector_channels": Option(list, default=[2, 3], doc="tagger inputs of detectors 1, 2, …"),
        "trigger_level_V": Option(float, default=0.5, min=-2.5, max=2.5, unit="V",
                                  doc="detector inputs (≈ -0.4 V for NIM, +0.5…1 V for TTL)"),
        "sync_trigger_level_V": Option(float, default=0.5, min=-2.5, max=2.5, unit="V"),
        "dead_time_ps": Option(int, default=2000, min=1500, max=2_147_000_000, unit="ps"),
        "rate_gate_s": Option(float, default=0.1, min=0.001, max=10.0, unit="s",
                              doc="gate of count_rates()"),
        "max_stream_events": Option(int, default=50_000_000, min=1000, max=2_000_000_000),
    }
    SETTINGS = {
        "trigger_level_V": OPTIONS["trigger_level_V"],
        "sync_trigger_level_V": OPTIONS["sync_trigger_level_V"],
        "dead_time_ps": OPTIONS["dead_time_ps"],
        "sync_offset_ps": Option(int, default=0, min=-2_000_000, max=2_000_000, unit="ps",
                                 doc="input delay of the sync input (hardware delay ≤ 2 µs)"),
        "channel_offset_ps": Option(int, default=0, min=-2_000_000, max=2_000_000, unit="ps",
                                    doc="input delay of every detector input"),
    }

    def __init__(self, resource: str = "", *, clock: Clock | None = None, tagger_module: Any = None, **options: Any):
        values = validate_backend_options(type(self), options)
        det = values["detector_channels"]
        if not det or not all(isinstance(c, int) and not isinstance(c, bool) and 1 <= c <= 18 for c in det):
            raise OptionError("detector_channels", det, "must be a non-empty list of inputs 1..18")
        if values["sync_channel"] in det or len(set(det)) != len(det):
            raise OptionError("detector_channels", det, "must be distinct and not include the sync channel")
        super().__init__(resource, clock=clock, **values)
        self._module = tagger_module
        self.TT: Any = None
        self.tagger: Any = None
        self.settings: dict[str, Any] = {"trigger_level_V": values["trigger_level_V"],
                                         "sync_trigger_level_V": values["sync_trigger_level_V"],
                                         "dead_time_ps": values["dead_time_ps"],
                                         "sync_offset_ps": 0, "channel_offset_ps": 0}
        self._active: list[Any] = []

    # -- channels ------------------------------------------------------------------------------------
    def input_of(self, channel: int) -> int:
        """Tagger input of interface channel ``channel`` (0 = sync)."""
        if channel == 0:
            return self.options["sync_channel"]
        det = self.options["detector_channels"]
        if not 1 <= channel <= len(det):
            raise OptionError("channel", channel, f"must be 0 (sync) or a detector 1..{len(det)}")
        return det[channel - 1]

    @property
    def channels(self) -> list[int]:
        return [0, *range(1, len(self.options["detector_channels"]) + 1)]

    # -- connection ----------------------------------------------------------------------------------
    def connect(self) -> None:
        self.TT = self._module if self._module is not None else import_vendor_module()
        try:
            serial = "" if self.resource.strip().lower() in ("", "sim", "emulated", "any", "first") else self.resource
            self.tagger = self.TT.createTimeTagger(serial)
        except Exception as exc:
            raise DriverError(f"Time Tagger {self.resource or '(first found)'} could not be opened: {exc}") from exc
        self._send(self.settings)
        log.info("Time Tagger %s (%s), API %s", self.tagger.getSerial(), self.tagger.getModel(),
                 getattr(self.TT, "getVersion", lambda: "?")())

    def close(self) -> None:
        self.stop()
        if self.tagger is not None and self.TT is not None:
            try:
                self.TT.freeTimeTagger(self.tagger)
            except Exception as exc:  # noqa: BLE001 - close must not raise
                log.warning("freeTimeTagger: %s", exc)
        self.tagger = None

    def _require(self) -> Any:
        if self.tagger is None:
            raise DriverError("SwabianTimeTagger is not connected (call connect() first)")
        return self.tagger

    def _send(self, s: dict[str, Any]) -> None:
        tg = self._require()
        sync = self.options["sync_channel"]
        dets = self.options["detector_channels"]
        if "sync_trigger_level_V" in s:
            tg.setTriggerLevel(sync, s["sync_trigger_level_V"])
        if "trigger_level_V" in s:
            for c in dets:
                tg.setTriggerLevel(c, s["trigger_level_V"])
        if "dead_time_ps" in s:
            for c in [sync, *dets]:
                got = tg.setDeadtime(c, int(s["dead_time_ps"]))
                if got is not None and int(got) != int(s["dead_time_ps"]):
                    log.info("dead time of input %d rounded to %d ps", c, got)
        if "sync_offset_ps" in s:
            tg.setInputDelay(sync, int(s["sync_offset_ps"]))
        if "channel_offset_ps" in s:
            for c in dets:
                tg.setInputDelay(c, int(s["channel_offset_ps"]))

    def _apply_settings(self, settings: dict[str, Any]) -> None:
        self.settings.update(settings)
        if self.tagger is not None:
            self._send(settings)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        if self.tagger is not None:
            try:
                d.update(serial=self.tagger.getSerial(), model=self.tagger.getModel(),
                         configuration=self.tagger.getConfiguration())
            except Exception as exc:  # noqa: BLE001 - provenance is best effort
                d["configuration_error"] = str(exc)
        d.update(settings=dict(self.settings), sync_channel=self.options["sync_channel"],
                 detector_channels=list(self.options["detector_channels"]))
        return d

    # -- measurements --------------------------------------------------------------------------------
    def _run(self, *measurements: Any, duration_ps: int) -> None:
        self._active = list(measurements)
        try:
            for m in measurements:
                m.startFor(int(duration_ps))
            for m in measurements:
                # wait in slices so the cancellation token is polled (a stop ends it within one poll)
                while not m.waitUntilFinished(int(POLL_S * 1000)):
                    self.cancel.poll()
        except BaseException:
            for m in measurements:
                try:
                    m.stop()
                except Exception as exc:  # noqa: BLE001
                    log.warning("stopping %s: %s", m, exc)
            raise
        finally:
            self._active = []

    def stop(self) -> None:
        for m in list(self._active):
            try:
                m.stop()
            except Exception as exc:  # noqa: BLE001
                log.warning("stopping %s: %s", m, exc)
        self._active = []

    def count_rates(self) -> dict[str, float]:
        tg = self._require()
        chans = self.channels
        m = self.TT.Countrate(tg, [self.input_of(c) for c in chans])
        self._run(m, duration_ps=int(self.options["rate_gate_s"] * PS))
        data = np.asarray(m.getData(), float)
        return {f"rate_ch{c}": float(v) for c, v in zip(chans, data, strict=True)}

    def histogram(self, duration_s: float, *, channel: int | None = 1, binwidth_ps: float | None = None,
                  n_bins: int | None = None) -> DecayHistogram:
        duration_s = check_duration(duration_s)
        bw = 10 if binwidth_ps is None else binwidth_ps
        n = 5000 if n_bins is None else n_bins
        if not (isinstance(bw, int | float) and bw >= 1 and float(bw) == int(bw)):
            raise OptionError("binwidth_ps", binwidth_ps, "must be a whole number of ps ≥ 1")
        if not 1 <= int(n) <= 100_000_000:
            raise OptionError("n_bins", n_bins, "must be between 1 and 100 000 000")
        dets = [channel] if channel is not None else self.channels[1:]
        for c in dets:
            self.input_of(c)
        tg = self._require()
        hists = {c: self.TT.Histogram(tg, self.input_of(c), self.input_of(0), int(bw), int(n)) for c in dets}
        rate = self.TT.Countrate(tg, [self.input_of(c) for c in self.channels])
        self._run(*hists.values(), rate, duration_ps=int(round(duration_s * PS)))
        by = {c: np.asarray(h.getData(), np.int64) for c, h in hists.items()}
        idx = np.asarray(next(iter(hists.values())).getIndex(), np.int64)
        totals = np.asarray(rate.getCountsTotal(), np.int64)
        dur = rate.getCaptureDuration() / PS or duration_s
        n_sync = int(totals[0])
        period = dur * 1e12 / n_sync if n_sync else None
        flags = []
        if period is not None and int(n) * float(bw) > period:
            # Histogram is multi-start multi-stop (Swabian docs): a click also pairs with the syncs before the
            # preceding one, so the range past one period repeats the same clicks. The role's histogram is
            # versus the preceding sync (start–stop, as the PicoHarp's): those bins are cleared, and flagged.
            first = int(np.ceil(period / float(bw) - 1e-9))
            for arr in by.values():
                arr[first:] = 0
            flags.append("RANGE_BEYOND_SYNC_PERIOD")
            log.info("histogram range %.4g ns > sync period %.4g ns: bins from %d on cleared (the same clicks "
                     "against earlier syncs)", int(n) * float(bw) / 1e3, period / 1e3, first)
        counts = by[channel] if channel is not None else sum(by.values(), np.zeros(int(n), np.int64))
        return DecayHistogram(time_ps=idx, counts=counts, binwidth_ps=float(bw), duration_s=dur, channel=channel,
                              counts_by_channel=by, sync_period_ps=period, flags=flags,
                              channel_counts={c: int(v) for c, v in zip(self.channels, totals, strict=True)})

    def correlation(self, duration_s: float, ch1: int = 1, ch2: int = 2, binwidth_ps: float = 100.0,
                    n_bins: int = 1000) -> Correlation:
        duration_s = check_duration(duration_s)
        i1, i2 = self.input_of(ch1), self.input_of(ch2)
        if not (binwidth_ps >= 1 and float(binwidth_ps) == int(binwidth_ps)):
            raise OptionError("binwidth_ps", binwidth_ps, "must be a whole number of ps ≥ 1")
        if not 2 <= int(n_bins) <= 100_000_000:
            raise OptionError("n_bins", n_bins, "must be between 2 and 100 000 000")
        tg = self._require()
        corr = self.TT.Correlation(tg, i1, i2, int(binwidth_ps), int(n_bins))
        rate = self.TT.Countrate(tg, [i1, i2])
        self._run(corr, rate, duration_ps=int(round(duration_s * PS)))
        n1, n2 = (int(v) for v in np.asarray(rate.getCountsTotal(), np.int64))
        dur = corr.getCaptureDuration() / PS or duration_s
        return Correlation(lag_ps=np.asarray(corr.getIndex(), float), counts=np.asarray(corr.getData(), np.int64),
                           binwidth_ps=float(binwidth_ps), duration_s=dur, ch1=ch1, ch2=ch2, n1=n1, n2=n2)

    def stream(self, duration_s: float) -> TagStream:
        duration_s = check_duration(duration_s)
        tg = self._require()
        inputs = {self.input_of(c): c for c in self.channels}
        s = self.TT.TimeTagStream(tg, int(self.options["max_stream_events"]), list(inputs))
        self._run(s, duration_ps=int(round(duration_s * PS)))
        buf = s.getData()
        t = np.asarray(buf.getTimestamps(), np.int64)
        ch_in = np.asarray(buf.getChannels(), np.int64)
        lut = np.full(max(inputs) + 1, -1, np.int16)
        for inp, c in inputs.items():
            lut[inp] = c
        ch = lut[ch_in]
        t0 = int(getattr(buf, "tStart", t[0] if t.size else 0))
        overflow = bool(getattr(buf, "hasOverflows", False))
        if overflow:
            log.warning("Time Tagger stream had overflows: tags were lost")
        if t.size >= self.options["max_stream_events"]:
            log.warning("stream hit max_stream_events=%d; later tags were dropped", self.options["max_stream_events"])
        return TagStream(time_ps=t - t0, channel=ch, duration_s=s.getCaptureDuration() / PS or duration_s,
                         mode="t2", time_unit_ps=1.0,
                         meta={"device": "Swabian Time Tagger", "serial": tg.getSerial(), "overflows": overflow})
