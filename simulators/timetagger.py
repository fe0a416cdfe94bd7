"""An emulated Swabian Time Tagger module (the vendor Python API subset sflab uses).

The vendor wheel's virtual tagger needs a licence fetched from real hardware, so simulation and
tests use this module instead. ``make_module(feed_factory, clock=…)`` returns a module object with
the vendor names — ``createTimeTagger``, ``freeTimeTagger``, ``scanTimeTagger``, ``getVersion``,
``CHANNEL_UNUSED``, ``Resolution``, and the measurements ``Correlation``, ``Histogram``,
``Countrate``, ``Counter``, ``TimeTagStream`` — with the vendor's shapes: int64 picoseconds,
measurements that start on construction, ``startFor(ps)`` / ``waitUntilFinished()`` /
``getData()`` / ``getIndex()`` / ``getCaptureDuration()``, context managers.

Tags come from a :class:`simulators.feeds.TagFeed` (physics or a recording). Wiring: feed channel
0 (sync) is tagger input 1, detector ``k`` is input ``k + 1`` (``SYNC_INPUT``/``DETECTOR_INPUTS``).
Tagger time is lab time since ``createTimeTagger`` (``clock.monotonic()``); measurements see the
tags of the lab time that has passed, and ``waitUntilFinished`` sleeps the remaining capture time
on the lab clock (instant in "as fast as possible" mode).

Emulated per input: trigger level (stored), input delay (added to the tags), dead time (tags closer
than the dead time after an accepted tag on the same input are dropped; rounded to the 2 ns clock of
a Time Tagger Ultra), test signal (stored only). Not emulated: falling edges, virtual channels,
overflow intervals, ``FileWriter``/``FileReader``.

``Correlation.getIndex()`` returns the bin centres ``(k − n/2 + ½)·binwidth`` (integer ps); the
vendor's exact alignment is unverified (tcspc.md §1.4).
"""

from __future__ import annotations

import enum
import logging
import threading
import types
from collections.abc import Callable
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["make_module", "VERSION"]

VERSION = "2.22.6-sflab-emulation"
CHANNEL_UNUSED = -134217728
SYNC_INPUT = 1
N_INPUTS = 8
DEADTIME_STEP_PS = 2000
DEADTIME_MAX_PS = 2_147_000_000


class Resolution(enum.IntEnum):
    Standard = 0
    HighResA = 1
    HighResB = 2
    HighResC = 3


def _pair_counts(t1: np.ndarray, t2: np.ndarray, lo: int, bw: int, n: int) -> np.ndarray:
    """Histogram of t2 - t1 over [lo, lo + n*bw) (both sorted int64)."""
    counts = np.zeros(n, np.int64)
    if not t1.size or not t2.size:
        return counts
    hi = lo + n * bw
    start = np.searchsorted(t2, t1 + lo, side="left")
    stop = np.searchsorted(t2, t1 + hi, side="left")
    k = stop - start
    tot = int(k.sum())
    if not tot:
        return counts
    owner = np.repeat(np.arange(t1.size), k)
    offs = np.arange(tot) - np.repeat(np.cumsum(k) - k, k)
    d = t2[start[owner] + offs] - t1[owner]
    return np.bincount((d - lo) // bw, minlength=n)[:n].astype(np.int64)


class _Tagger:
    """The object ``createTimeTagger()`` returns."""

    def __init__(self, module: types.ModuleType, feed: Any, clock: Any, serial: str):
        self._module = module
        self._feed = feed
        self._clock = clock
        self._serial = serial
        self._t0 = float(clock.monotonic())
        self._processed_ps = 0
        self._lock = threading.RLock()
        self._measurements: list[_Measurement] = []
        self._trigger = {ch: 0.5 for ch in range(1, N_INPUTS + 1)}
        self._delay = {ch: 0 for ch in range(1, N_INPUTS + 1)}
        self._deadtime = {ch: DEADTIME_STEP_PS for ch in range(1, N_INPUTS + 1)}
        self._last_tag = {ch: -(1 << 62) for ch in range(1, N_INPUTS + 1)}
        self._test_signal: set[int] = set()
        self._freed = False

    # -- configuration ---------------------------------------------------------------------------
    def _check(self, ch: int) -> int:
        ch = int(ch)
        if not 1 <= abs(ch) <= N_INPUTS:
            raise ValueError(f"Channel {ch} is not a valid input (1..{N_INPUTS}, negative = falling edge)")
        if ch < 0:
            raise ValueError("falling edges are not emulated")
        return ch

    def setTriggerLevel(self, channel: int, voltage: float) -> None:
        if not -2.5 <= float(voltage) <= 2.5:
            raise ValueError(f"trigger level {voltage} V outside -2.5..2.5 V")
        self._trigger[self._check(channel)] = float(voltage)

    def getTriggerLevel(self, channel: int) -> float:
        return self._trigger[self._check(channel)]

    def setInputDelay(self, channel: int, delay: int) -> None:
        self._delay[self._check(channel)] = int(delay)

    def getInputDelay(self, channel: int) -> int:
        return self._delay[self._check(channel)]

    def setDeadtime(self, channel: int, deadtime: int) -> int:
        v = int(round(int(deadtime) / DEADTIME_STEP_PS)) * DEADTIME_STEP_PS
        v = min(max(v, DEADTIME_STEP_PS), DEADTIME_MAX_PS)
        self._deadtime[self._check(channel)] = v
        return v

    def getDeadtime(self, channel: int) -> int:
        return self._deadtime[self._check(channel)]

    def setTestSignal(self, channels: Any, state: bool) -> None:
        chs = [channels] if isinstance(channels, int) else list(channels)
        for ch in chs:
            (self._test_signal.add if state else self._test_signal.discard)(self._check(ch))

    def getSerial(self) -> str:
        return self._serial

    def getModel(self) -> str:
        return "Time Tagger Ultra (sflab emulation)"

    def getChannelList(self, type: Any = None) -> list[int]:  # noqa: A002 - vendor name
        return list(range(1, N_INPUTS + 1))

    def getOverflows(self) -> int:
        return 0

    def clearOverflows(self) -> None:
        return None

    def getOverflowsAndClear(self) -> int:
        return 0

    def sync(self, timeout: int = -1) -> bool:
        self._advance()
        return True

    def reset(self) -> None:
        for ch in self._delay:
            self._delay[ch] = 0
            self._deadtime[ch] = DEADTIME_STEP_PS
            self._trigger[ch] = 0.5

    def getConfiguration(self) -> dict[str, Any]:
        return {"serial": self._serial, "model": self.getModel(), "version": VERSION,
                "feed": self._feed.describe() if hasattr(self._feed, "describe") else repr(self._feed),
                "channels": [{"channel": ch, "trigger level": self._trigger[ch], "delay": self._delay[ch],
                              "deadtime": self._deadtime[ch], "test signal": ch in self._test_signal}
                             for ch in range(1, N_INPUTS + 1)]}

    # -- the stream engine ------------------------------------------------------------------------
    def now_ps(self) -> int:
        return int(round((float(self._clock.monotonic()) - self._t0) * 1e12))

    def _advance(self) -> None:
        """Feed the tags of the lab time passed since the last call to the running measurements."""
        with self._lock:
            target = self.now_ps()
            step = 50_000_000_000  # 50 ms windows
            while self._processed_ps < target:
                t0 = self._processed_ps
                t1 = min(target, t0 + step)
                chunk = self._feed.read(t0, t1)
                ch = chunk.channel.astype(np.int64) + SYNC_INPUT
                t = chunk.time_ps.astype(np.int64)
                if t.size:
                    t, ch = self._condition(t, ch)
                for m in list(self._measurements):
                    m._process(ch, t, t0, t1)
                self._processed_ps = t1

    def _condition(self, t: np.ndarray, ch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        delays = np.zeros(N_INPUTS + 2, np.int64)
        for c, d in self._delay.items():
            delays[c] = d
        if delays.any():
            t = t + delays[np.clip(ch, 0, N_INPUTS + 1)]
            order = np.argsort(t, kind="stable")
            t, ch = t[order], ch[order]
        keep = np.ones(t.size, bool)
        for c in np.unique(ch):
            idx = np.flatnonzero(ch == c)
            dead = self._deadtime.get(int(c), DEADTIME_STEP_PS)
            tc = t[idx]
            last = self._last_tag.get(int(c), -(1 << 62))
            # a tag is kept if it is at least `dead` after the previous *kept* tag on the input
            if tc.size and (np.diff(tc, prepend=last) >= dead).all():
                self._last_tag[int(c)] = int(tc[-1])
                continue
            ok = np.zeros(tc.size, bool)
            for i, v in enumerate(tc):
                if v - last >= dead:
                    ok[i] = True
                    last = int(v)
            keep[idx] = ok
            self._last_tag[int(c)] = last
        return t[keep], ch[keep]


class _Measurement:
    """IteratorBase: lifecycle shared by every measurement."""

    def __init__(self, tagger: _Tagger):
        if not isinstance(tagger, _Tagger):
            raise TypeError("first argument must be a tagger from createTimeTagger()")
        if tagger._freed:
            raise RuntimeError("the Time Tagger has been freed")
        self._tagger = tagger
        self._running = False
        self._stop_at: int | None = None
        self._capture_ps = 0
        self._begin_ps = 0
        tagger._advance()
        tagger._measurements.append(self)
        self.clear()
        self.start()

    # lifecycle
    def start(self) -> None:
        self._tagger._advance()
        self._running = True
        self._stop_at = None
        self._begin_ps = self._tagger._processed_ps

    def startFor(self, capture_duration: int, clear: bool = True) -> None:
        if int(capture_duration) <= 0:
            raise ValueError("capture_duration must be > 0 ps")
        self._tagger._advance()
        if clear:
            self.clear()
        self._running = True
        self._begin_ps = self._tagger._processed_ps
        self._stop_at = self._begin_ps + int(capture_duration)

    def stop(self) -> None:
        self._tagger._advance()
        self._running = False

    def isRunning(self) -> bool:
        self._tagger._advance()
        return self._running

    def waitUntilFinished(self, timeout: int = -1) -> bool:
        """Sleep on the lab clock until a ``startFor`` capture has finished (``timeout`` in ms)."""
        if self._stop_at is None:
            return not self._running
        remaining_s = (self._stop_at - self._tagger.now_ps()) * 1e-12
        if timeout is not None and timeout >= 0:
            remaining_s = min(remaining_s, timeout / 1e3)
        if remaining_s > 0:
            self._tagger._clock.sleep(remaining_s)
        self._tagger._advance()
        return not self._running

    def clear(self) -> None:
        self._capture_ps = 0
        self._clear()

    def getCaptureDuration(self) -> int:
        self._tagger._advance()
        return int(self._capture_ps)

    def getConfiguration(self) -> dict[str, Any]:
        return {"type": type(self).__name__}

    def __enter__(self) -> _Measurement:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # processing
    def _process(self, ch: np.ndarray, t: np.ndarray, t0: int, t1: int) -> None:
        if not self._running:
            return
        lo, hi = max(t0, self._begin_ps), t1
        if self._stop_at is not None:
            hi = min(hi, self._stop_at)
        if hi > lo:
            i0, i1 = np.searchsorted(t, [lo, hi], side="left")
            self._capture_ps += hi - lo
            self._on_tags(ch[i0:i1], t[i0:i1], lo, hi)
        if self._stop_at is not None and t1 >= self._stop_at:
            self._running = False

    def _clear(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _on_tags(self, ch: np.ndarray, t: np.ndarray, t0: int, t1: int) -> None:  # pragma: no cover
        raise NotImplementedError


class Countrate(_Measurement):
    def __init__(self, tagger: _Tagger, channels: list[int]):
        self._channels = [tagger._check(c) for c in channels]
        super().__init__(tagger)

    def _clear(self) -> None:
        self._counts = np.zeros(len(self._channels), np.int64)

    def _on_tags(self, ch: np.ndarray, t: np.ndarray, t0: int, t1: int) -> None:
        for i, c in enumerate(self._channels):
            self._counts[i] += int(np.count_nonzero(ch == c))

    def getData(self) -> np.ndarray:
        self._tagger._advance()
        dur = self._capture_ps * 1e-12
        return self._counts / dur if dur > 0 else np.zeros(len(self._channels))

    def getCountsTotal(self) -> np.ndarray:
        self._tagger._advance()
        return self._counts.copy()


class Counter(_Measurement):
    def __init__(self, tagger: _Tagger, channels: list[int], binwidth: int = 1_000_000_000, n_values: int = 1):
        self._channels = [tagger._check(c) for c in channels]
        self._bw = int(binwidth)
        self._n = int(n_values)
        super().__init__(tagger)

    def _clear(self) -> None:
        self._bins: dict[int, np.ndarray] = {}

    def _on_tags(self, ch: np.ndarray, t: np.ndarray, t0: int, t1: int) -> None:
        for i, c in enumerate(self._channels):
            idx = (t[ch == c] - self._begin_ps) // self._bw
            for b, k in zip(*np.unique(idx, return_counts=True), strict=True):
                arr = self._bins.setdefault(int(b), np.zeros(len(self._channels), np.int64))
                arr[i] += int(k)

    def getData(self, rolling: bool = True) -> np.ndarray:
        self._tagger._advance()
        last = int((self._capture_ps) // self._bw)
        out = np.zeros((len(self._channels), self._n), np.int32)
        for j, b in enumerate(range(last - self._n, last)):
            if b in self._bins:
                out[:, j] = self._bins[b]
        return out

    def getIndex(self) -> np.ndarray:
        return np.arange(self._n, dtype=np.int64) * self._bw


class Histogram(_Measurement):
    """Start-stop histogram: each click against the most recent start (multi-stop)."""

    def __init__(self, tagger: _Tagger, click_channel: int, start_channel: int = CHANNEL_UNUSED,
                 binwidth: int = 1000, n_bins: int = 1000):
        self._click = tagger._check(click_channel)
        if start_channel == CHANNEL_UNUSED:
            raise ValueError("Histogram needs a start_channel in this emulation")
        self._start = tagger._check(start_channel)
        self._bw, self._n = int(binwidth), int(n_bins)
        if self._bw <= 0 or self._n <= 0:
            raise ValueError("binwidth and n_bins must be positive")
        self._last_start: int | None = None
        super().__init__(tagger)

    def _clear(self) -> None:
        self._data = np.zeros(self._n, np.int64)

    def _on_tags(self, ch: np.ndarray, t: np.ndarray, t0: int, t1: int) -> None:
        st = t[ch == self._start]
        ck = t[ch == self._click]
        if ck.size:
            k = np.searchsorted(st, ck, side="right") - 1
            prev = np.where(k >= 0, st[np.maximum(k, 0)], self._last_start if self._last_start is not None else 0)
            valid = (k >= 0) | (self._last_start is not None)
            d = (ck - prev)[valid]
            b = d // self._bw
            b = b[(b >= 0) & (b < self._n)]
            self._data += np.bincount(b, minlength=self._n)[: self._n]
        if st.size:
            self._last_start = int(st[-1])

    def getData(self) -> np.ndarray:
        self._tagger._advance()
        return self._data.astype(np.int32)

    def getIndex(self) -> np.ndarray:
        return np.arange(self._n, dtype=np.int64) * self._bw


class Correlation(_Measurement):
    """All pairs (both channels start and stop) within ±n_bins·binwidth/2."""

    def __init__(self, tagger: _Tagger, channel_1: int, channel_2: int = CHANNEL_UNUSED,
                 binwidth: int = 1000, n_bins: int = 1000):
        self._c1 = tagger._check(channel_1)
        self._c2 = self._c1 if channel_2 == CHANNEL_UNUSED else tagger._check(channel_2)
        self._bw, self._n = int(binwidth), int(n_bins)
        if self._bw <= 0 or self._n <= 0:
            raise ValueError("binwidth and n_bins must be positive")
        self._lo = -(self._n * self._bw) // 2
        self._span = self._n * self._bw
        super().__init__(tagger)

    def _clear(self) -> None:
        self._data = np.zeros(self._n, np.int64)
        self._tail1 = np.zeros(0, np.int64)
        self._tail2 = np.zeros(0, np.int64)
        self._n1 = 0
        self._n2 = 0

    def _on_tags(self, ch: np.ndarray, t: np.ndarray, t0: int, t1: int) -> None:
        a = t[ch == self._c1]
        b = t[ch == self._c2]
        self._n1 += a.size
        self._n2 += b.size
        all1 = np.concatenate([self._tail1, a])
        self._data += _pair_counts(all1, b, self._lo, self._bw, self._n)
        self._data += _pair_counts(a, self._tail2, self._lo, self._bw, self._n)
        keep_from = t1 - self._span
        all2 = np.concatenate([self._tail2, b])
        self._tail1 = all1[all1 >= keep_from]
        self._tail2 = all2[all2 >= keep_from]

    def getData(self) -> np.ndarray:
        self._tagger._advance()
        return self._data.astype(np.int32)

    def getIndex(self) -> np.ndarray:
        return (self._lo + (np.arange(self._n) + 0.5) * self._bw).astype(np.int64)

    def getDataNormalized(self) -> np.ndarray:
        self._tagger._advance()
        denom = self._bw * 1e-12 * self._n1 * self._n2
        if denom <= 0:
            return np.zeros(self._n)
        return self._data * (self._capture_ps * 1e-12) / denom


class TimeTagStreamBuffer:
    def __init__(self, t: np.ndarray, ch: np.ndarray, t_start: int, t_get: int):
        self._t, self._ch = t, ch
        self.size = int(t.size)
        self.hasOverflows = False
        self.tStart = t_start
        self.tGetData = t_get

    def getTimestamps(self) -> np.ndarray:
        return self._t

    def getChannels(self) -> np.ndarray:
        return self._ch.astype(np.int32)

    def getEventTypes(self) -> np.ndarray:
        return np.zeros(self.size, np.uint8)

    def getMissedEvents(self) -> np.ndarray:
        return np.zeros(self.size, np.uint16)


class TimeTagStream(_Measurement):
    def __init__(self, tagger: _Tagger, n_max_events: int, channels: list[int]):
        self._max = int(n_max_events)
        self._channels = np.array([tagger._check(c) for c in channels], np.int64)
        super().__init__(tagger)

    def _clear(self) -> None:
        self._buf_t: list[np.ndarray] = []
        self._buf_c: list[np.ndarray] = []
        self._count = 0
        self._t_start = self._tagger._processed_ps if hasattr(self, "_tagger") else 0

    def _on_tags(self, ch: np.ndarray, t: np.ndarray, t0: int, t1: int) -> None:
        sel = np.isin(ch, self._channels)
        room = self._max - self._count
        if room <= 0:
            return
        tt, cc = t[sel][:room], ch[sel][:room]
        self._buf_t.append(tt)
        self._buf_c.append(cc)
        self._count += tt.size

    def getData(self) -> TimeTagStreamBuffer:
        self._tagger._advance()
        t = np.concatenate(self._buf_t) if self._buf_t else np.zeros(0, np.int64)
        c = np.concatenate(self._buf_c) if self._buf_c else np.zeros(0, np.int64)
        out = TimeTagStreamBuffer(t, c, self._t_start, self._tagger._processed_ps)
        self._buf_t, self._buf_c, self._count = [], [], 0
        self._t_start = self._tagger._processed_ps
        return out


def make_module(feed_factory: Callable[[], Any], *, clock: Any = None, hbt_feed: Callable[[], Any] | None = None,
                name: str = "TimeTagger", open_recording: Callable[[str], Any] | None = None) -> types.ModuleType:
    """A module object with the TimeTagger API subset, whose taggers read ``feed_factory()``.

    ``module.WIRING = "hbt"`` makes new taggers read ``hbt_feed()`` instead (two detectors, no sync).
    ``open_recording(filename)`` → a feed: what ``createTimeTaggerVirtual(filename)`` plays (passed in by
    the caller, :func:`simulators.replay.open_recording`, so that this module imports no replay code).
    """
    if clock is None:
        from .phlib import _Wall
        clock = _Wall()
    mod = types.ModuleType(name, "sflab emulation of the Swabian Time Tagger API subset")
    counter = {"n": 0}

    def createTimeTagger(serial: str = "", resolution: Resolution = Resolution.Standard) -> _Tagger:
        feed_fn = hbt_feed if (mod.WIRING == "hbt" and hbt_feed is not None) else feed_factory
        counter["n"] += 1
        sn = serial or f"SIM-TT-{counter['n']:04d}"
        log.info("emulated Time Tagger %s created", sn)
        return _Tagger(mod, feed_fn(), clock, sn)

    def freeTimeTagger(tagger: _Tagger) -> bool:
        tagger._freed = True
        tagger._measurements.clear()
        return True

    def createTimeTaggerVirtual(filename: str = "", begin: int = 0, duration: int = -1) -> _Tagger:
        if not filename:
            return createTimeTagger()
        if open_recording is None:
            raise ValueError("this emulated Time Tagger module cannot open recordings (no open_recording given)")
        feed = open_recording(filename)
        return _Tagger(mod, feed, clock, "SIM-VIRTUAL")

    mod.createTimeTagger = createTimeTagger
    mod.freeTimeTagger = freeTimeTagger
    mod.createTimeTaggerVirtual = createTimeTaggerVirtual
    mod.scanTimeTagger = lambda: ["SIM-TT-0001"]
    mod.getVersion = lambda: VERSION
    mod.CHANNEL_UNUSED = CHANNEL_UNUSED
    mod.Resolution = Resolution
    mod.WIRING = "tcspc"
    for cls in (Countrate, Counter, Histogram, Correlation, TimeTagStream, TimeTagStreamBuffer):
        setattr(mod, cls.__name__, cls)
    mod.__sflab_emulation__ = True
    return mod
