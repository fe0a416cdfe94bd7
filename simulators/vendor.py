"""Emulated vendor layers for the SDK instruments, and what feeds them.

The spectrometer/CCD is emulated as an ICL WebSocket server (:mod:`simulators.icl_server`), the
PicoHarp 300 as a PHLib function table (:mod:`simulators.phlib`) and the Swabian Time Tagger as a
module with the vendor API subset (:mod:`simulators.timetagger`). The two time-tagger emulations
read their photons from a :class:`TagFeed`: either the sample physics (:class:`PhysicsFeed`, through
``simulators.tags.TagSource``) or a recorded file (:mod:`simulators.replay`).

Channel numbering inside a feed: ``0`` = sync (laser / X-ray pulse trigger), ``1, 2, …`` = detectors.
Times are int64 picoseconds on the feed's own axis, which starts at 0 with the recording (replay) or
with the first measurement (physics).

:func:`start_vendor_layers` is what ``simulators.start_lab`` calls.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["TagChunk", "TagFeed", "PhysicsFeed", "VendorLayers", "start_vendor_layers", "physics_available"]


@dataclass
class TagChunk:
    """Tags with ``t0 <= time_ps < t1`` of one read, time ordered.

    For T3-native feeds (replayed T3 files) ``nsync`` and ``dtime_ps`` are given per tag and no sync
    tags are listed; ``time_ps`` is then ``sync_time(nsync) + dtime_ps``.
    """

    channel: np.ndarray
    time_ps: np.ndarray
    nsync: np.ndarray | None = None
    dtime_ps: np.ndarray | None = None

    @classmethod
    def empty(cls, t3: bool = False) -> TagChunk:
        z64 = np.zeros(0, np.int64)
        return cls(np.zeros(0, np.int16), z64, z64.copy() if t3 else None, z64.copy() if t3 else None)

    def __len__(self) -> int:
        return int(self.time_ps.size)


class TagFeed:
    """Time-ordered source of tags, read in consecutive windows ``[t0, t1)`` of feed time.

    Subclasses implement :meth:`_read`. ``end_ps`` is the end of a recording (None = endless);
    ``loop`` replays a recording from its start when it runs out.
    """

    #: "t2" (sync listed as channel 0 tags) or "t3" (nsync/dtime per detector tag)
    kind: str = "t2"
    sync_period_ps: float | None = None
    end_ps: int | None = None
    n_detectors: int = 2
    description: str = ""
    loop: bool = False

    def read(self, t0_ps: int, t1_ps: int) -> TagChunk:
        if t1_ps <= t0_ps:
            return TagChunk.empty(self.kind == "t3")
        if self.end_ps is None or not self.loop:
            return self._read(int(t0_ps), int(t1_ps))
        # looping replay: unfold the window over repetitions of the recording
        period = int(self.end_ps)
        parts = []
        t = int(t0_ps)
        while t < t1_ps:
            k, off = divmod(t, period)
            stop = min(int(t1_ps) - k * period, period)
            c = self._read(off, stop)
            c.time_ps = c.time_ps + k * period
            parts.append(c)
            t = k * period + stop
        return _concat(parts, self.kind == "t3")

    def _read(self, t0_ps: int, t1_ps: int) -> TagChunk:  # pragma: no cover - abstract
        raise NotImplementedError

    def rates(self) -> dict[int, float]:
        """Mean count rate per channel (1/s), for count-rate meters."""
        return {}

    def exact_histogram(self, duration_s: float, binwidth_ps: float, n_bins: int) -> np.ndarray | None:
        """Statistically exact decay histogram (physics only); None when the feed cannot."""
        return None

    def exact_correlation(self, duration_s: float, binwidth_ps: float, n_bins: int) -> np.ndarray | None:
        return None

    def describe(self) -> dict[str, Any]:
        return {"feed": type(self).__name__, "kind": self.kind, "description": self.description,
                "sync_period_ps": self.sync_period_ps, "end_ps": self.end_ps}


def _concat(parts: list[TagChunk], t3: bool) -> TagChunk:
    if not parts:
        return TagChunk.empty(t3)
    if len(parts) == 1:
        return parts[0]
    return TagChunk(
        np.concatenate([p.channel for p in parts]),
        np.concatenate([p.time_ps for p in parts]),
        np.concatenate([p.nsync for p in parts]) if t3 else None,
        np.concatenate([p.dtime_ps for p in parts]) if t3 else None,
    )


def physics_available() -> str | None:
    """None when the detector chain (``simulators.tags``) is importable, else the reason why not."""
    try:
        importlib.import_module("simulators.tags")
    except ImportError as exc:
        return f"simulators.tags (detector chain) not available yet: {exc}"
    return None


def _make_tag_source(world: Any, seed: int = 0) -> Any:
    """The world's TagSource if it has one, else one built per decision 0002."""
    for name in ("tag_source", "tags"):
        src = getattr(world, name, None)
        if src is not None and hasattr(src, "tcspc_stream"):
            return src
    tags = importlib.import_module("simulators.tags")
    detectors = getattr(world, "detectors", None)
    if detectors is None:
        try:
            det_mod = importlib.import_module("simulators.detectors")
            factory = getattr(det_mod, "default_detectors", None) or getattr(det_mod, "Detectors", None)
            detectors = factory() if factory is not None else None
        except ImportError:
            detectors = None
    seed = int(getattr(world, "rng_seed", seed) or 0)
    try:
        return tags.TagSource(world.sample, detectors, seed)
    except TypeError:
        return tags.TagSource(world.sample, detectors=detectors, seed=seed)


class PhysicsFeed(TagFeed):
    """Tags from the sample physics: ``TagSource.tcspc_stream`` (kind "tcspc": sync + detector) or
    ``hbt_stream`` (kind "hbt": two detectors, no sync). Conditions are read from the world at every
    window, so temperature, fluence or X-ray changes show up in the next read."""

    def __init__(self, world: Any, *, mode: str = "tcspc", source: Any = None, seed: int = 0):
        if mode not in ("tcspc", "hbt"):
            raise ValueError(f"PhysicsFeed mode must be 'tcspc' or 'hbt', not {mode!r}")
        self.world = world
        self.mode = mode
        self.source = source if source is not None else _make_tag_source(world, seed)
        self.kind = "t2"
        self.description = f"sample physics ({mode})"

    @property
    def sync_period_ps(self) -> float | None:  # type: ignore[override]
        if self.mode == "hbt":
            return None
        rep = float(getattr(self.world.conditions(), "rep_rate_Hz", 0.0) or 0.0)
        return 1e12 / rep if rep > 0 else None

    def _stream(self, duration_s: float, syncs: str = "all") -> tuple[np.ndarray, np.ndarray]:
        cond = self.world.conditions()
        if self.mode == "hbt":
            ch, t = self.source.hbt_stream(cond, duration_s)
        elif syncs == "all":
            ch, t = self.source.tcspc_stream(cond, duration_s)
        else:
            ch, t = self.source.tcspc_stream(cond, duration_s, syncs=syncs)
        return np.asarray(ch, np.int16), np.asarray(t, np.int64)

    def read_t3(self, t0_ps: int, t1_ps: int) -> TagChunk:
        """Only the sync before each photon (the T3 view), with nsync/dtime per tag."""
        period = self.sync_period_ps
        if self.mode == "hbt" or not period:
            return self.read(t0_ps, t1_ps)
        ch, t = self._stream((t1_ps - t0_ps) * 1e-12, syncs="conditional")
        keep = t < (t1_ps - t0_ps)
        ch, t = ch[keep], t[keep] + t0_ps
        order = np.argsort(t, kind="stable")
        ch, t = ch[order], t[order]
        is_sync = ch == 0
        sync_t = t[is_sync]
        k = np.searchsorted(sync_t, t, side="right") - 1
        has = k >= 0
        ch, t, k = ch[has], t[has], k[has]
        base = sync_t[k]
        nsync = np.rint(base / period).astype(np.int64)
        return TagChunk(ch, t, nsync, t - base)

    def _read(self, t0_ps: int, t1_ps: int) -> TagChunk:
        ch, t = self._stream((t1_ps - t0_ps) * 1e-12)
        keep = t < (t1_ps - t0_ps)
        ch, t = ch[keep], t[keep] + t0_ps
        order = np.argsort(t, kind="stable")
        return TagChunk(ch[order], t[order])

    def rates(self) -> dict[int, float]:
        """Count rates from 10 ms of tags (cached while lab time stands still)."""
        now = float(self.world.clock.monotonic()) if hasattr(self.world, "clock") else None
        cached = getattr(self, "_rates_cache", None)
        if now is not None and cached is not None and cached[0] == now:
            return dict(cached[1])
        dur = 0.01
        ch, _ = self._stream(dur)
        values, counts = np.unique(ch, return_counts=True)
        out = {int(v): float(c) / dur for v, c in zip(values, counts, strict=True)}
        if self.mode == "tcspc" and 0 not in out and self.sync_period_ps:
            out[0] = 1e12 / self.sync_period_ps
        if now is not None:
            self._rates_cache = (now, dict(out))
        return out

    def exact_histogram(self, duration_s: float, binwidth_ps: float, n_bins: int) -> np.ndarray | None:
        fn = getattr(self.source, "tcspc_histogram", None)
        if fn is None or self.mode != "tcspc":
            return None
        return np.asarray(fn(self.world.conditions(), duration_s, binwidth_ps, n_bins))

    def exact_correlation(self, duration_s: float, binwidth_ps: float, n_bins: int) -> np.ndarray | None:
        fn = getattr(self.source, "g2_histogram", None)
        if fn is None:
            return None
        return np.asarray(fn(self.world.conditions(), duration_s, binwidth_ps, n_bins))


@dataclass
class VendorLayers:
    """What :func:`start_vendor_layers` returns, by role (see ``as_dict``)."""

    icl: Any
    phlib: Any
    timetagger: Any

    def stop(self) -> None:
        if self.icl is not None:
            self.icl.stop()


def start_vendor_layers(world: Any, *, host: str = "127.0.0.1", ports: dict | None = None,
                        tcspc_mode: str = "tcspc", start_icl: bool = True) -> dict[str, Any]:
    """Start the emulated vendor layers of one simulated lab.

    Returns ``{"spectrometer": IclServer (running; .port, .url, .stop()),
    "tcspc": {"phlib": EmulatedPHLib, "tagger_module": emulated TimeTagger module,
    "replay_phlib": callable(path) -> EmulatedPHLib, "replay_tagger_module": callable(path) -> module}}``.

    ``ports`` may give ``{"spectrometer": 25010}`` (0 = any free port). ``tcspc_mode`` is the wiring of
    the time taggers: ``"tcspc"`` (sync + detector, pulsed laser) or ``"hbt"`` (two detectors, no
    sync; on the PicoHarp they are inputs 0 and 1). The time taggers are fed by
    ``world.sample`` through ``simulators.tags.TagSource`` (imported lazily: if the detector chain is
    not there the tagger objects still exist and raise a clear error when a measurement starts).
    """
    from . import icl_server, phlib, replay, timetagger

    ports = dict(ports or {})
    clock = getattr(world, "clock", None)
    out: dict[str, Any] = {}
    if start_icl:
        port = int(ports.get("spectrometer", icl_server.DEFAULT_PORT))
        server = icl_server.IclServer(world, host=host, port=port)
        server.start()
        out["spectrometer"] = server

    def feed_factory(mode: str = tcspc_mode) -> TagFeed:
        return PhysicsFeed(world, mode=mode)

    lib = phlib.EmulatedPHLib(feed_factory, clock=clock, world=world, wiring=tcspc_mode,
                              seed=int(getattr(world, "seed", 0) or 0))
    module = timetagger.make_module(lambda: PhysicsFeed(world, mode="tcspc"), clock=clock,
                                    hbt_feed=lambda: PhysicsFeed(world, mode="hbt"))
    module.WIRING = tcspc_mode
    out["tcspc"] = {
        "phlib": lib,
        "tagger_module": module,
        "replay_phlib": lambda path, **kw: replay.replay_phlib(path, clock=clock, **kw),
        "replay_tagger_module": lambda path, **kw: replay.replay_tagger_module(path, clock=clock, **kw),
    }
    return out
