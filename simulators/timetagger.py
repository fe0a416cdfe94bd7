"""An emulated Swabian Time Tagger module (the vendor Python API subset sflab uses).

The vendor wheel's virtual tagger needs a licence fetched from real hardware, so simulation and
tests use this module instead. ``make_module(feed_factory, clock=…)`` returns a module object with
the vendor names — ``createTimeTagger``, ``freeTimeTagger``, ``scanTimeTagger``, ``getVersion``,
``CHANNEL_UNUSED``, ``Resolution``, and the measurements ``Correlation``, ``Histogram``,
``TimeDifferences``, ``Countrate``, ``Counter``, ``TimeTagStream`` — with the vendor's shapes: int64 picoseconds,
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

Measurement semantics follow Swabian's documentation (api/measurements/time_histograms.html,
tcspc.md §1.3–1.4): ``Histogram(tagger, click_channel, start_channel, binwidth, n_bins)`` is "a simple
multiple start, multiple stop measurement": every start is paired with *all* subsequent clicks within
``n_bins·binwidth``; ``Correlation(tagger, channel_1, channel_2, binwidth, n_bins)`` histograms
``t(channel_2) − t(channel_1)`` of all pairs within ±``n_bins·binwidth/2``; ``TimeDifferences(tagger,
click_channel, start_channel, next_channel, sync_channel, binwidth, n_bins, n_histograms)`` is a stack of
``Histogram``s, the row stepped by ``next_channel`` and reset by ``sync_channel``.

**Statistical mode** (``module.STATISTICS = True``, the default; ``tagger.statistical`` per tagger). The
real library computes these measurements on the host from every tag; with a 76 MHz sync that means
listing 76 M tags per lab second. When the feed is the sample physics (a feed with ``.source``, a
``simulators.tags.TagSource``, and ``.world``) and every running measurement can be drawn from the
photon statistics, the tagger lists no tags: for each window of lab time a measurement adds its
*expected* counts per bin, from the TagSource's exact-statistics histograms at the window's conditions
(``tcspc_histogram`` folded to the multi-start histogram of a periodic sync, ``g2_histogram`` for the
all-pairs detector correlation; input delays shift them), and ``getData()`` draws the Poisson counts of
the expectation accumulated since the last read. Counts of disjoint windows being independent Poisson
variables, the result has the distribution of the listed tags' histogram (test:
``tests/simulators/test_timetagger_statistics.py``). The expectation is recomputed when the conditions
change (temperature by more than :data:`simulators.feeds.STAT_T_TOL_K`). Measurements or cablings the statistics do not
cover (``TimeTagStream``; auto-correlation of one input; ``TimeDifferences`` stepped by a channel; an input
dead time longer than the detector chain's, or than the sync period) make the tagger list tags for that
window, for every measurement, as before. Not statistical: count fluctuations of bunched light beyond
Poisson in ``Countrate`` and ``Counter`` (their means are exact for the sync and the TCSPC detector; the
HBT singles are estimated from a ≥ 20 000-count tag sample per condition).

Lab time in which no measurement runs is skipped, not listed.
"""

from __future__ import annotations

import enum
import logging
import threading
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from .feeds import light_key, same_conditions

log = logging.getLogger(__name__)

__all__ = ["make_module", "VERSION"]

VERSION = "2.22.6-sflab-emulation"
CHANNEL_UNUSED = -134217728
SYNC_INPUT = 1
N_INPUTS = 8
DEADTIME_STEP_PS = 2000
DEADTIME_MAX_PS = 2_147_000_000
#: statistical mode: the HBT singles rates are estimated from a tag sample of at least this many counts
STAT_SINGLES_COUNTS = 20_000
#: statistical mode: the per-period TCSPC density is computed on this grid (ps)
STAT_GRID_PS = 1.0


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


def _pairs_after_starts(starts: np.ndarray, clicks: np.ndarray, bw: int, n: int) -> np.ndarray:
    """Multi-start multi-stop: histogram of ``click − start ∈ [0, n·bw)`` over all pairs (both sorted).
    Iterates over the clicks (a few starts each), not over the starts (76 M per second at a laser sync)."""
    counts = np.zeros(n, np.int64)
    if not starts.size or not clicks.size:
        return counts
    span = n * bw
    lo = np.searchsorted(starts, clicks - span, side="right")
    hi = np.searchsorted(starts, clicks, side="right")
    k = hi - lo
    tot = int(k.sum())
    if not tot:
        return counts
    owner = np.repeat(np.arange(clicks.size), k)
    offs = np.arange(tot) - np.repeat(np.cumsum(k) - k, k)
    d = clicks[owner] - starts[lo[owner] + offs]
    return np.bincount(d // bw, minlength=n)[:n].astype(np.int64)


def _cumulative(edges: np.ndarray, mass: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Expected pairs with a difference below x: linear within the cells of ``edges`` (exact on them)."""
    cum = np.concatenate([[0.0], np.cumsum(mass)])

    def C(x: np.ndarray) -> np.ndarray:
        return np.interp(x, edges, cum, left=0.0, right=float(cum[-1]))

    return C


class _Stats:
    """The statistical engine of one tagger on a physics feed: expected counts per lab second of a
    measurement's bins, from the feed's :class:`simulators.tags.TagSource` at the present conditions."""

    def __init__(self, feed: Any, rng: np.random.Generator):
        self.feed = feed
        self.source = feed.source
        self.world = feed.world
        self.mode = str(getattr(feed, "mode", "tcspc"))
        self.rng = rng
        self._cache: dict[Any, tuple[Any, Any]] = {}

    @staticmethod
    def usable(feed: Any) -> bool:
        src = getattr(feed, "source", None)
        return (getattr(feed, "world", None) is not None and src is not None
                and all(hasattr(src, m) for m in ("tcspc_histogram", "g2_histogram", "hbt_stream")))

    # -- conditions --------------------------------------------------------------------------------
    def conditions(self) -> Any:
        return self.world.conditions()

    def _light_key(self) -> Any:
        """:func:`simulators.feeds.light_key` (the monochromator's passband unless an explicit filter is set,
        the sample in the beam): part of every cache key (the decays at the SF and uncoupled wavelengths
        after the IRF on the laser line had reused the IRF's expectation while the conditions stood still)."""
        return light_key(self.source, passband=self.filter_nm is None)

    def cached(self, key: Any, cond: Any, compute: Callable[[Any], Any]) -> Any:
        key = (key, self._light_key())
        hit = self._cache.get(key)
        if hit is not None and same_conditions(hit[0], cond):
            return hit[1]
        value = compute(cond)
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = (cond, value)
        return value

    @property
    def filter_nm(self) -> Any:
        return getattr(self.feed, "filter_nm", None)

    # -- what the feed has on each input -----------------------------------------------------------
    def feed_channel(self, inp: int) -> int | None:
        """Feed channel on tagger input ``inp`` (None: nothing is cabled there)."""
        c = int(inp) - SYNC_INPUT
        have = (0, 1) if self.mode == "tcspc" else (1, 2)
        return c if c in have else None

    def period_ps(self, cond: Any) -> float | None:
        rep = float(cond.rep_rate_Hz)
        return 1e12 / rep if self.mode == "tcspc" and rep > 0 else None

    # -- expectations (per lab second) -------------------------------------------------------------
    def _tcspc_period(self, cond: Any) -> tuple[np.ndarray, np.ndarray, float]:
        """Detector-1 clicks per second after the preceding sync on a fine grid: (edges, mass, period)."""
        P = 1e12 / float(cond.rep_rate_Hz)
        g = max(STAT_GRID_PS, float(np.ceil(P / 200_000)))
        n = int(np.ceil(P / g - 1e-9))
        mass = np.asarray(self.source.tcspc_histogram(cond, 1.0, g, n, filter_nm=self.filter_nm, expected=True),
                          float)
        edges = np.minimum(np.arange(n + 1) * g, P)
        return edges, mass, P

    def sync_detector(self, cond: Any, edges: np.ndarray, delta_ps: float, sign: int) -> np.ndarray:
        """All (sync, detector-1 click) pairs per second with ``sign·(t_click − t_sync) + delta`` in the
        bins ``edges``: the periodic extension of the per-period histogram (every sync pairs with every
        click, before and after it)."""
        e, m, P = self.cached(("tcspc-period",), cond, self._tcspc_period)
        C = _cumulative(e, m)
        tot = float(m.sum())

        def G(x: np.ndarray) -> np.ndarray:
            k = np.floor(x / P)
            return k * tot + C(x - k * P)

        x = np.asarray(edges, float) - delta_ps
        return np.maximum(np.diff(G(x)) if sign > 0 else -np.diff(G(-x)), 0.0)

    def _g2(self, cond: Any, half_bins: int, bw: int) -> np.ndarray:
        return np.asarray(self.source.g2_histogram(cond, 1.0, float(bw), 2 * half_bins, filter_nm=self.filter_nm,
                                                   expected=True), float)

    def detector_pairs(self, cond: Any, edges: np.ndarray, delta_ps: float, sign: int) -> np.ndarray:
        """All (detector 1, detector 2) pairs per second with ``sign·(t₂ − t₁) + delta`` in the bins
        ``edges`` (``g2_histogram``: accidentals, bunching, laser comb, crosstalk)."""
        edges = np.asarray(edges, float)
        bw = int(round(edges[1] - edges[0]))
        reach = float(np.max(np.abs(edges - delta_ps)))
        half = int(np.ceil(reach / bw - 1e-9)) + 1
        m = self.cached(("g2", bw, half), cond, lambda c: self._g2(c, half, bw))
        grid = (np.arange(2 * half + 1) - half) * float(bw)
        C = _cumulative(grid, m)
        x = edges - delta_ps
        if sign > 0:
            return np.maximum(np.diff(C(x)), 0.0)
        # τ' = −τ: pairs with −τ in [a, b) ⇔ τ in (−b, −a]
        return np.maximum(-np.diff(C(-x)), 0.0)

    def pairs(self, cond: Any, first: int, second: int, edges: np.ndarray, delta_ps: float) -> np.ndarray | None:
        """Pairs per second of the inputs ``first``, ``second`` with ``t_second − t_first`` (+ the inputs'
        delay difference ``delta_ps``) in the bins ``edges``; None when the statistics do not give it."""
        fa, fb = self.feed_channel(first), self.feed_channel(second)
        if fa is None or fb is None:
            return np.zeros(len(edges) - 1)   # an input with nothing cabled: no pairs
        if fa == fb:
            return None   # auto-correlation of one input: not in TagSource's statistics
        if {fa, fb} == {0, 1}:
            if self.period_ps(cond) is None:
                return np.zeros(len(edges) - 1)  # no laser: no syncs
            return self.sync_detector(cond, edges, delta_ps, 1 if fa == 0 else -1)
        return self.detector_pairs(cond, edges, delta_ps, 1 if fa == 1 else -1)

    def deadtime_ok(self, tagger: Any, inputs: list[int], cond: Any) -> bool:
        """The tagger's input dead time changes nothing the statistics ignore: shorter than the sync period
        on the sync, not longer than the detector chain's own dead time on a detector."""
        det = getattr(self.source, "detectors", None)
        for inp in inputs:
            c = self.feed_channel(inp)
            if c is None:
                continue
            dead = tagger._deadtime.get(int(inp), DEADTIME_STEP_PS)
            if c == 0:
                P = self.period_ps(cond)
                if P is not None and dead >= P:
                    return False
            elif det is None or dead > float(det.dead_ps(c)):
                return False
        return True

    def singles(self, cond: Any) -> dict[int, float]:
        """Accepted clicks per second per feed channel (sync: the repetition rate)."""
        return dict(self.cached(("singles",), cond, self._singles))

    def _singles(self, cond: Any) -> dict[int, float]:
        if self.mode == "tcspc":
            P = self.period_ps(cond)
            out = {0: 1e12 / P if P else 0.0}
            if P:
                # the total over one period does not depend on the binning: a 10 ps grid (≈ 4× cheaper than
                # the histograms' 1 ps one; this runs in the keep-alive thread for the count-rate suspender)
                n = int(np.ceil(P / 10.0 - 1e-9))
                out[1] = float(np.sum(self.source.tcspc_histogram(cond, 1.0, 10.0, n, filter_nm=self.filter_nm,
                                                                  expected=True)))
                return out
            ch, _ = self.source.tcspc_stream(cond, 0.1, syncs="conditional", timing=False)
            out[1] = float(np.count_nonzero(np.asarray(ch) == 1)) / 0.1
            return out
        # HBT: no closed-form singles among TagSource's public methods — a tag sample of ≥ N counts
        dur = 0.01
        while True:
            ch, _ = self.source.hbt_stream(cond, dur, timing=False)
            ch = np.asarray(ch)
            n = int(ch.size)
            if n >= STAT_SINGLES_COUNTS or dur >= 10.0:
                return {1: float(np.count_nonzero(ch == 1)) / dur, 2: float(np.count_nonzero(ch == 2)) / dur}
            dur = min(10.0, dur * max(2.0, 1.2 * STAT_SINGLES_COUNTS / max(n, 1)))

    def rates(self, cond: Any, inputs: list[int]) -> np.ndarray:
        s = self.singles(cond)
        return np.array([s.get(c, 0.0) if (c := self.feed_channel(i)) is not None else 0.0 for i in inputs])


class _Tagger:
    """The object ``createTimeTagger()`` returns."""

    def __init__(self, module: types.ModuleType, feed: Any, clock: Any, serial: str, n_created: int = 0):
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
        #: draw the measurements from the photon statistics when the feed allows it (module docstring)
        self.statistical = bool(getattr(module, "STATISTICS", True))
        self._stats: _Stats | None = None
        if _Stats.usable(feed):
            seed = int(getattr(feed.source, "seed", 0) or 0)
            self._stats = _Stats(feed, np.random.default_rng(np.random.SeedSequence([seed, 0x7A66, int(n_created)])))

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
        """Feed the tags of the lab time passed since the last call to the running measurements, or —
        statistical mode — their expected counts; lab time in which nothing runs is skipped.

        Statistical mode computes the expectations of a new condition *before* taking the tagger's lock, so
        another thread's reading (the engine's keep-alive thread reads the count rates for the count-rate
        suspender) never waits for a physics computation — only for the accumulation, which is quick."""
        stats = self._stats
        if stats is not None and self.statistical and self._processed_ps < self.now_ps():
            running = [m for m in list(self._measurements) if m._running]
            if running:
                cond = stats.conditions()
                for m in running:
                    try:
                        m._stat_ok(stats, cond)   # fills the expectation cache
                    except Exception:  # noqa: BLE001 - raised again below, under the lock, where it belongs
                        break
        with self._lock:
            target = self.now_ps()
            if self._processed_ps >= target:
                return
            running = [m for m in self._measurements if m._running]
            if not running:
                self._processed_ps = target
                return
            if self._stats is not None and self.statistical:
                cond = self._stats.conditions()
                if all(m._stat_ok(self._stats, cond) for m in running):
                    t0 = self._processed_ps
                    for m in running:
                        m._process_stat(self._stats, cond, t0, target)
                    self._processed_ps = target
                    return
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


def _pair_rate(tagger: Any, stats: _Stats, cond: Any, a: int, b: int, edges: np.ndarray) -> np.ndarray | None:
    """Expected pairs per second of channel ``b`` at delays ``edges`` after channel ``a`` (their input
    delays applied), cached per condition: what Histogram, TimeDifferences and Correlation accumulate."""
    delta = _delay(tagger, b) - _delay(tagger, a)
    key = ("pairs", a, b, float(edges[0]), float(edges[1] - edges[0]), edges.size, delta)
    return stats.cached(key, cond, lambda c: stats.pairs(c, a, b, edges, delta))


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
    def _window(self, t0: int, t1: int) -> tuple[int, int] | None:
        """The part ``[lo, hi)`` of the lab-time window ``[t0, t1)`` this measurement records (counted
        into the capture duration); ends a ``startFor`` capture that the window completes."""
        if not self._running:
            return None
        lo, hi = max(t0, self._begin_ps), t1
        if self._stop_at is not None:
            hi = min(hi, self._stop_at)
            if t1 >= self._stop_at:
                self._running = False
        if hi <= lo:
            return None
        self._capture_ps += hi - lo
        return lo, hi

    def _process(self, ch: np.ndarray, t: np.ndarray, t0: int, t1: int) -> None:
        w = self._window(t0, t1)
        if w is not None:
            i0, i1 = np.searchsorted(t, list(w), side="left")
            self._on_tags(ch[i0:i1], t[i0:i1], w[0], w[1])

    def _process_stat(self, stats: _Stats, cond: Any, t0: int, t1: int) -> None:
        w = self._window(t0, t1)
        if w is not None:
            self._on_stat(stats, cond, w[0], w[1])

    def _stat_ok(self, stats: _Stats, cond: Any) -> bool:
        """True when this measurement can be drawn from the photon statistics (no tags needed)."""
        return False

    def _on_stat(self, stats: _Stats, cond: Any, t0: int, t1: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _draw(self, pending: np.ndarray) -> np.ndarray:
        """Poisson counts of an accumulated expectation (and the expectation reset)."""
        stats = self._tagger._stats
        with self._tagger._lock:   # one generator per tagger; readers may be on several threads
            if stats is None or not pending.any():
                return np.zeros(pending.shape, np.int64)
            out = stats.rng.poisson(np.maximum(pending, 0.0)).astype(np.int64)
            pending[...] = 0.0
            return out

    def _clear(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _on_tags(self, ch: np.ndarray, t: np.ndarray, t0: int, t1: int) -> None:  # pragma: no cover
        raise NotImplementedError


def _delay(tagger: _Tagger, inp: int) -> int:
    return int(tagger._delay.get(int(inp), 0))


class Countrate(_Measurement):
    def __init__(self, tagger: _Tagger, channels: list[int]):
        self._channels = [tagger._check(c) for c in channels]
        super().__init__(tagger)

    def _clear(self) -> None:
        self._counts = np.zeros(len(self._channels), np.int64)
        self._pending = np.zeros(len(self._channels))
        self._sync_carry = np.zeros(len(self._channels))

    def _on_tags(self, ch: np.ndarray, t: np.ndarray, t0: int, t1: int) -> None:
        for i, c in enumerate(self._channels):
            self._counts[i] += int(np.count_nonzero(ch == c))

    def _stat_ok(self, stats: _Stats, cond: Any) -> bool:
        return stats.deadtime_ok(self._tagger, self._channels, cond)

    def _on_stat(self, stats: _Stats, cond: Any, t0: int, t1: int) -> None:
        dur = (t1 - t0) * 1e-12
        rate = stats.rates(cond, self._channels)
        sync = np.array([stats.feed_channel(c) == 0 for c in self._channels])
        # the sync is periodic: its count is the number of periods, not a Poisson variable
        exact = self._sync_carry + np.where(sync, rate * dur, 0.0)
        whole = np.floor(exact)
        self._sync_carry = exact - whole
        self._counts += whole.astype(np.int64)
        self._pending += np.where(sync, 0.0, rate * dur)

    def _flush(self) -> None:
        self._counts += self._draw(self._pending)

    def getData(self) -> np.ndarray:
        self._tagger._advance()
        self._flush()
        dur = self._capture_ps * 1e-12
        return self._counts / dur if dur > 0 else np.zeros(len(self._channels))

    def getCountsTotal(self) -> np.ndarray:
        self._tagger._advance()
        self._flush()
        return self._counts.copy()


class Counter(_Measurement):
    def __init__(self, tagger: _Tagger, channels: list[int], binwidth: int = 1_000_000_000, n_values: int = 1):
        self._channels = [tagger._check(c) for c in channels]
        self._bw = int(binwidth)
        self._n = int(n_values)
        if self._bw <= 0 or self._n <= 0:
            raise ValueError("binwidth and n_values must be positive")
        super().__init__(tagger)

    def _clear(self) -> None:
        self._bins: dict[int, np.ndarray] = {}

    def _bin(self, b: int) -> np.ndarray:
        return self._bins.setdefault(int(b), np.zeros(len(self._channels), np.int64))

    def _on_tags(self, ch: np.ndarray, t: np.ndarray, t0: int, t1: int) -> None:
        for i, c in enumerate(self._channels):
            idx = (t[ch == c] - self._begin_ps) // self._bw
            for b, k in zip(*np.unique(idx, return_counts=True), strict=True):
                self._bin(int(b))[i] += int(k)

    def _stat_ok(self, stats: _Stats, cond: Any) -> bool:
        return stats.deadtime_ok(self._tagger, self._channels, cond)

    def _on_stat(self, stats: _Stats, cond: Any, t0: int, t1: int) -> None:
        rate = stats.rates(cond, self._channels)
        b0 = (t0 - self._begin_ps) // self._bw
        b1 = (t1 - 1 - self._begin_ps) // self._bw
        b0 = max(b0, b1 - self._n)   # only the last n_values bins can still be read
        for b in range(int(b0), int(b1) + 1):
            lo = max(t0, self._begin_ps + b * self._bw)
            hi = min(t1, self._begin_ps + (b + 1) * self._bw)
            if hi > lo:
                self._bin(b)[:] += stats.rng.poisson(rate * (hi - lo) * 1e-12)
        for old in [k for k in self._bins if k < b1 - self._n]:
            del self._bins[old]

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
    """Multiple start, multiple stop: every start against every later click within n_bins·binwidth."""

    def __init__(self, tagger: _Tagger, click_channel: int, start_channel: int = CHANNEL_UNUSED,
                 binwidth: int = 1000, n_bins: int = 1000):
        self._click = tagger._check(click_channel)
        if start_channel == CHANNEL_UNUSED:
            raise ValueError("Histogram needs a start_channel in this emulation")
        self._start = tagger._check(start_channel)
        self._bw, self._n = int(binwidth), int(n_bins)
        if self._bw <= 0 or self._n <= 0:
            raise ValueError("binwidth and n_bins must be positive")
        super().__init__(tagger)

    def _clear(self) -> None:
        self._data = np.zeros(self._n, np.int64)
        self._pending = np.zeros(self._n)
        self._tail = np.zeros(0, np.int64)

    def _on_tags(self, ch: np.ndarray, t: np.ndarray, t0: int, t1: int) -> None:
        starts = np.concatenate([self._tail, t[ch == self._start]])
        self._data += _pairs_after_starts(starts, t[ch == self._click], self._bw, self._n)
        self._tail = starts[starts >= t1 - self._n * self._bw]

    def _rate(self, stats: _Stats, cond: Any) -> np.ndarray | None:
        return _pair_rate(self._tagger, stats, cond, self._start, self._click,
                          np.arange(self._n + 1, dtype=float) * self._bw)

    def _stat_ok(self, stats: _Stats, cond: Any) -> bool:
        return (stats.deadtime_ok(self._tagger, [self._start, self._click], cond)
                and self._rate(stats, cond) is not None)

    def _on_stat(self, stats: _Stats, cond: Any, t0: int, t1: int) -> None:
        rate = self._rate(stats, cond)
        if rate is not None:
            self._pending += rate * ((t1 - t0) * 1e-12)

    def getData(self) -> np.ndarray:
        self._tagger._advance()
        self._data += self._draw(self._pending)
        return self._data.astype(np.int32)

    def getIndex(self) -> np.ndarray:
        return np.arange(self._n, dtype=np.int64) * self._bw


class TimeDifferences(_Measurement):
    """A stack of ``n_histograms`` multi-start multi-stop histograms: ``next_channel`` steps the histogram
    index (rolling over after the last), ``sync_channel`` resets it to 0; a pair is filed under the index
    in force at its start. Statistical only while no stepping channel carries tags."""

    def __init__(self, tagger: _Tagger, click_channel: int, start_channel: int = CHANNEL_UNUSED,
                 next_channel: int = CHANNEL_UNUSED, sync_channel: int = CHANNEL_UNUSED,
                 binwidth: int = 1000, n_bins: int = 1000, n_histograms: int = 1):
        self._click = tagger._check(click_channel)
        if start_channel == CHANNEL_UNUSED:
            raise ValueError("TimeDifferences needs a start_channel in this emulation")
        self._start = tagger._check(start_channel)
        self._next = None if next_channel == CHANNEL_UNUSED else tagger._check(next_channel)
        self._sync = None if sync_channel == CHANNEL_UNUSED else tagger._check(sync_channel)
        self._bw, self._n, self._nh = int(binwidth), int(n_bins), int(n_histograms)
        if self._bw <= 0 or self._n <= 0 or self._nh <= 0:
            raise ValueError("binwidth, n_bins and n_histograms must be positive")
        self._max_counts = 0
        super().__init__(tagger)

    def _clear(self) -> None:
        self._data = np.zeros((self._nh, self._n), np.int64)
        self._pending = np.zeros(self._n)
        self._tail = np.zeros(0, np.int64)
        self._tail_row = np.zeros(0, np.int64)
        self._index = 0          # running histogram index (next steps since the last sync or rollover)
        self._rollovers = 0

    def setMaxCounts(self, max_counts: int) -> None:
        """Stop accumulating after this many rollovers (0 = never)."""
        self._max_counts = int(max_counts)

    def getCounts(self) -> int:
        """Rollovers so far (emulation: each pass through all histograms)."""
        self._tagger._advance()
        return int(self._rollovers)

    def ready(self) -> bool:
        self._tagger._advance()
        return self._rollovers >= max(1, self._max_counts) if self._nh > 1 else self._capture_ps > 0

    def _rows(self, ch: np.ndarray, t: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Histogram index at each start time (and the running index carried to the next window)."""
        nxt = t[ch == self._next] if self._next is not None else np.zeros(0, np.int64)
        syn = t[ch == self._sync] if self._sync is not None else np.zeros(0, np.int64)
        if not nxt.size and not syn.size:
            return np.full(starts.size, self._index % self._nh, np.int64)
        events = np.concatenate([nxt, syn])
        kind = np.concatenate([np.ones(nxt.size, np.int8), np.zeros(syn.size, np.int8)])
        order = np.argsort(events, kind="stable")
        events, kind = events[order], kind[order]
        idx = np.empty(events.size, np.int64)
        cur, roll = self._index, self._rollovers
        for i, k in enumerate(kind):   # few stepping events per window: a plain loop
            if k == 0:
                cur = 0
            else:
                cur += 1
                if cur >= self._nh:
                    cur, roll = 0, roll + 1
            idx[i] = cur
        pos = np.searchsorted(events, starts, side="right") - 1
        rows = np.where(pos >= 0, idx[np.maximum(pos, 0)], self._index)
        self._index, self._rollovers = cur, roll
        return rows.astype(np.int64)

    def _on_tags(self, ch: np.ndarray, t: np.ndarray, t0: int, t1: int) -> None:
        if self._max_counts and self._rollovers >= self._max_counts:
            return
        new = t[ch == self._start]
        rows_new = self._rows(ch, t, new)
        starts = np.concatenate([self._tail, new])
        rows = np.concatenate([self._tail_row, rows_new])
        clicks = t[ch == self._click]
        if starts.size and clicks.size:
            span = self._n * self._bw
            lo = np.searchsorted(starts, clicks - span, side="right")
            hi = np.searchsorted(starts, clicks, side="right")
            k = hi - lo
            tot = int(k.sum())
            if tot:
                owner = np.repeat(np.arange(clicks.size), k)
                offs = np.arange(tot) - np.repeat(np.cumsum(k) - k, k)
                j = lo[owner] + offs
                b = (clicks[owner] - starts[j]) // self._bw
                flat = rows[j] * self._n + b
                self._data += np.bincount(flat, minlength=self._nh * self._n)[: self._nh * self._n].reshape(
                    self._nh, self._n)
        keep = starts >= t1 - self._n * self._bw
        self._tail, self._tail_row = starts[keep], rows[keep]

    def _rate(self, stats: _Stats, cond: Any) -> np.ndarray | None:
        return _pair_rate(self._tagger, stats, cond, self._start, self._click,
                          np.arange(self._n + 1, dtype=float) * self._bw)

    def _stat_ok(self, stats: _Stats, cond: Any) -> bool:
        stepping = [c for c in (self._next, self._sync) if c is not None and stats.feed_channel(c) is not None]
        return (not stepping and stats.deadtime_ok(self._tagger, [self._start, self._click], cond)
                and self._rate(stats, cond) is not None)

    def _on_stat(self, stats: _Stats, cond: Any, t0: int, t1: int) -> None:
        rate = self._rate(stats, cond)
        if rate is not None:
            self._pending += rate * ((t1 - t0) * 1e-12)

    def getData(self) -> np.ndarray:
        self._tagger._advance()
        self._data[self._index % self._nh] += self._draw(self._pending)
        return self._data.astype(np.int32)

    def getIndex(self) -> np.ndarray:
        return np.arange(self._n, dtype=np.int64) * self._bw

    def getHistogramIndex(self) -> int:
        self._tagger._advance()
        return int(self._index % self._nh)


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
        self._pending = np.zeros(self._n)
        self._pending_n = np.zeros(2)
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

    def _rate(self, stats: _Stats, cond: Any) -> np.ndarray | None:
        return _pair_rate(self._tagger, stats, cond, self._c1, self._c2,
                          self._lo + np.arange(self._n + 1, dtype=float) * self._bw)

    def _stat_ok(self, stats: _Stats, cond: Any) -> bool:
        return (stats.deadtime_ok(self._tagger, [self._c1, self._c2], cond)
                and self._rate(stats, cond) is not None)

    def _on_stat(self, stats: _Stats, cond: Any, t0: int, t1: int) -> None:
        rate = self._rate(stats, cond)
        dur = (t1 - t0) * 1e-12
        if rate is not None:
            self._pending += rate * dur
        self._pending_n += stats.rates(cond, [self._c1, self._c2]) * dur

    def _flush(self) -> None:
        self._data += self._draw(self._pending)
        n = self._draw(self._pending_n)
        self._n1 += int(n[0])
        self._n2 += int(n[1])

    def getData(self) -> np.ndarray:
        self._tagger._advance()
        self._flush()
        return self._data.astype(np.int32)

    def getIndex(self) -> np.ndarray:
        return (self._lo + (np.arange(self._n) + 0.5) * self._bw).astype(np.int64)

    def getDataNormalized(self) -> np.ndarray:
        self._tagger._advance()
        self._flush()
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
    ``module.STATISTICS = False`` makes new taggers list every tag even on a physics feed (the module
    docstring: statistical mode).
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
        return _Tagger(mod, feed_fn(), clock, sn, counter["n"])

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
    mod.STATISTICS = True
    for cls in (Countrate, Counter, Histogram, TimeDifferences, Correlation, TimeTagStream, TimeTagStreamBuffer):
        setattr(mod, cls.__name__, cls)
    mod.__sflab_emulation__ = True
    return mod
