"""What the emulated time taggers read: :class:`TagFeed` (a time-ordered source of tags, read in windows)
and :class:`TagChunk` (the tags of one window). The sample physics (:class:`simulators.vendor.PhysicsFeed`)
and recordings (:mod:`simulators.replay`) are feeds. This module imports no other simulator module, so the
feeds, the replay and the vendor layers import it without a cycle.

Channel numbering inside a feed: ``0`` = sync (laser / X-ray pulse trigger), ``1, 2, …`` = detectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["STAT_T_TOL_K", "TagChunk", "TagFeed", "light_key", "same_conditions"]

#: statistical mode (the emulated taggers' measurements, the rate meters' means): an expectation is recomputed
#: when the sample temperature moved by more than this since it was computed (any other change of the
#: conditions recomputes it). 0.02 K moves a rate or a decay by < 1e-3 of itself in every preset.
STAT_T_TOL_K = 0.02
_COND_FIELDS = ("fluence_uJcm2", "rep_rate_Hz", "photon_eV", "xray_kV", "xray_mA")


def same_conditions(a: Any, b: Any) -> bool:
    """Whether two ``simulators.sample.Conditions`` give the same expectation (temperature within
    :data:`STAT_T_TOL_K`, everything else equal)."""
    if a is b:
        return True
    if abs(float(a.T_K) - float(b.T_K)) > STAT_T_TOL_K:
        return False
    return all(getattr(a, k) == getattr(b, k) for k in _COND_FIELDS)


def light_key(source: Any, *, passband: bool = True) -> tuple[Any, int]:
    """What besides the sample conditions decides the light a tag source's detectors see: the key of the
    TCSPC monochromator's passband (None without one, or with ``passband=False``) and the sample in the beam
    (the stage). Part of every cached expectation: a moved monochromator or stage changes the light while
    the conditions stand still."""
    det = getattr(source, "detectors", None)
    pb = det.passband() if passband and det is not None and getattr(det, "passband", None) is not None else None
    return (None if pb is None else pb.key, id(getattr(source, "sample", None)))


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

    def exact_histogram(self, duration_s: float, binwidth_ps: float, n_bins: int, *,
                        start_delay_ps: float = 0.0, sync_div: int = 1) -> np.ndarray | None:
        """Statistically exact histogram-mode histogram (physics only): decay versus sync, or for a
        feed of two HBT detectors the start–stop histogram (``start_delay_ps``: the start's delay,
        ``sync_div``: the start input's divider); None when the feed cannot."""
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
