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

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from .feeds import TagChunk, TagFeed, light_key, same_conditions

log = logging.getLogger(__name__)

__all__ = ["TagChunk", "TagFeed", "PhysicsFeed", "VendorLayers", "start_vendor_layers"]


def _make_tag_source(world: Any, seed: int = 0) -> Any:
    """The world's TagSource if it has one, else one built per decision 0002."""
    from .tags import TagSource

    for name in ("tag_source", "tags"):
        src = getattr(world, name, None)
        if src is not None and hasattr(src, "tcspc_stream"):
            return src
    detectors = getattr(world, "detectors", None)   # None: TagSource's default detector chain
    # the sample at the sample stage's position (a World without a stage: its sample)
    sample = getattr(world, "sample_in_beam", None) or world.sample
    return TagSource(sample, detectors, int(getattr(world, "rng_seed", seed) or 0))


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

    def _stream(self, duration_s: float, syncs: str = "all", *, timing: bool = True
                ) -> tuple[np.ndarray, np.ndarray]:
        cond = self.world.conditions()
        if self.mode == "hbt":
            ch, t = self.source.hbt_stream(cond, duration_s, timing=timing)
        elif syncs == "all":
            ch, t = self.source.tcspc_stream(cond, duration_s, timing=timing)
        else:
            ch, t = self.source.tcspc_stream(cond, duration_s, syncs=syncs, timing=timing)
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
        period = self.sync_period_ps if self.mode == "tcspc" else None
        if period and hasattr(self.source, "tcspc_histogram"):
            # TCSPC: detector 1's clicks per second in closed form (the exact-statistics histogram summed over
            # one period: pile-up, dark counts, X-ray background, afterpulses and the dead-time loss), the
            # reading a Poisson draw over the 10 ms it used to list — listing them was ~40 % of a PL
            # series' acquisition CPU (one reading per suspender poll); equal in distribution
            # (tests/simulators/test_rates.py)
            # the mean is remembered while the conditions hold (temperature within STAT_T_TOL_K; the
            # monochromator, filter and sample in the beam unchanged): recomputing it at every suspender poll
            # of a histogram acquisition was a third of a PL series' wall time
            cond = self.world.conditions()
            key = self._rate_key()
            hit = getattr(self, "_rate_mean", None)
            if hit is not None and hit[0] == key and same_conditions(hit[1], cond):
                mean = hit[2]
            else:
                mean = float(np.sum(self.source.tcspc_histogram(cond, 1.0, period / 64.0, 64, expected=True,
                                                                timing=False)))
                self._rate_mean = (key, cond, mean)
            rng = getattr(self, "_rates_rng", None)
            if rng is None:
                rng = self._rates_rng = np.random.default_rng(int(getattr(self.source, "seed", 0)) + 7919)
            out = {0: 1e12 / period, 1: float(rng.poisson(mean * dur)) / dur}
            if now is not None:
                self._rates_cache = (now, dict(out))
            return out
        # the detector channels from 10 ms of tags; the sync channel from its period (a 76 MHz laser
        # gives 760 000 sync tags in 10 ms: listing them cost ~40 ms per rate reading and counted
        # nothing the period does not say); photon numbers exact, emission profile prompt (TagSource.light)
        ch, _ = self._stream(dur, syncs="conditional" if self.mode == "tcspc" else "all", timing=False)
        values, counts = np.unique(ch[ch != 0] if self.mode == "tcspc" else ch, return_counts=True)
        out = {int(v): float(c) / dur for v, c in zip(values, counts, strict=True)}
        if self.mode == "tcspc" and self.sync_period_ps:
            out[0] = 1e12 / self.sync_period_ps
        if now is not None:
            self._rates_cache = (now, dict(out))
        return out

    def _rate_key(self) -> tuple[Any, ...]:
        """What besides the sample conditions decides detector 1's rate: the TCSPC monochromator's passband,
        the band-pass filter and the sample in the beam (the stage)."""
        return (*light_key(self.source), getattr(getattr(self.source, "detectors", None), "filter_nm", None))

    def exact_histogram(self, duration_s: float, binwidth_ps: float, n_bins: int, *,
                        start_delay_ps: float = 0.0, sync_div: int = 1) -> np.ndarray | None:
        """The device's histogram-mode histogram in closed form: decay versus sync (``tcspc``:
        ``TagSource.tcspc_histogram``) or, cabled for HBT, the start–stop histogram of detector 2
        after detector 1 (``TagSource.start_stop_histogram``; ``start_delay_ps`` the start's cable /
        sync offset, ``sync_div`` the divider on the start input)."""
        cond = self.world.conditions()
        if self.mode == "hbt":
            fn = getattr(self.source, "start_stop_histogram", None)
            if fn is None:
                return None
            return np.asarray(fn(cond, duration_s, binwidth_ps, n_bins, start_delay_ps=start_delay_ps,
                                 sync_div=sync_div))
        fn = getattr(self.source, "tcspc_histogram", None)
        if fn is None:
            return None
        return np.asarray(fn(cond, duration_s, binwidth_ps, n_bins))

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
                                    hbt_feed=lambda: PhysicsFeed(world, mode="hbt"),
                                    open_recording=replay.open_recording)
    module.WIRING = tcspc_mode
    out["tcspc"] = {
        "phlib": lib,
        "tagger_module": module,
        "replay_phlib": lambda path, **kw: replay.replay_phlib(path, clock=clock, **kw),
        "replay_tagger_module": lambda path, **kw: replay.replay_tagger_module(path, clock=clock, **kw),
    }
    return out
