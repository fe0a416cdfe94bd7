"""Role interface: TCSPC / time tagger (``TCSPC``).

Backends: ``drivers.picoharp300`` (PHLib via ctypes), ``drivers.swabian`` (Time Tagger API).
Safe state: stop any measurement. ``count_rates()`` feeds the count-rate suspender.

Channel numbering at this interface (all backends): ``0`` is the sync / start input (laser or X-ray
pulse trigger), ``1, 2, …`` are the detector inputs. Times are integer picoseconds.

What the engine and procedures use:

* ``configure(**settings)`` — CFD levels, sync divider, offsets, binning, dead time. Every value is
  checked against the backend's ``SETTINGS`` schema *before* anything is sent; a bad value raises
  :class:`drivers.base.OptionError` naming the setting and the allowed range.
* ``count_rates()`` → ``{"rate_ch0": cps, "rate_ch1": cps, …}``.
* ``histogram(duration_s, …)`` → :class:`DecayHistogram` (decay versus sync, axis in ps).
* ``correlation(duration_s, ch1, ch2, binwidth_ps, n_bins)`` → :class:`Correlation` (g2 with negative
  and positive delays, axis in ps, with the normalisation inputs N1, N2 and the duration).
* ``hbt_correlation(duration_s, binwidth_ps, n_bins)`` → :class:`Correlation` of the backend's two HBT
  inputs, acquired the way the backend does it best (PicoHarp 300: a start–stop histogram in the
  device's histogram mode; default: ``correlation()`` with the backend's default inputs).
* ``stream(duration_s)`` → :class:`TagStream` (raw tags, for the Photon-HDF5 sidecar).
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .base import Option, OptionError, Role

log = logging.getLogger(__name__)

__all__ = ["TCSPC", "DecayHistogram", "Correlation", "TagStream", "correlate_tags"]


class _Quality:
    """The data-quality figures shared by histogram-mode results (:class:`DecayHistogram`,
    :class:`Correlation`); the dataclasses below carry the fields."""

    counts: np.ndarray
    duration_s: float
    requested_s: float | None
    ceiling: int | None
    stop_count: int | None
    overflow: bool
    pileup: float | None
    dead_time_fraction: float | None
    lost_records: int

    @property
    def stopped_early(self) -> bool:
        """The acquisition ended before the requested time (stop on overflow)."""
        return self.requested_s is not None and self.duration_s < self.requested_s * (1 - 1e-9)

    @property
    def clipped_bins(self) -> int:
        """Bins whose count is not the number of photons: at the ceiling without a stop (saturated),
        or beyond the first bin at the stop count (a stop lets exactly one bin reach it)."""
        if self.ceiling is None and self.stop_count is None:
            return 0
        c = np.asarray(self.counts)
        if self.stop_count is not None:
            return max(int(np.sum(c >= self.stop_count)) - 1, 0)
        return int(np.sum(c >= int(self.ceiling or 0)))

    def quality(self) -> dict[str, Any]:
        """The data-quality figures a procedure records with the histogram."""
        return {"elapsed_s": float(self.duration_s),
                "requested_s": float(self.requested_s) if self.requested_s is not None else float(self.duration_s),
                "overflow": bool(self.overflow), "stopped_early": self.stopped_early,
                "stop_count": int(self.stop_count) if self.stop_count is not None else 0,
                "clipped_bins": self.clipped_bins,
                "pileup": float(self.pileup) if self.pileup is not None else float("nan"),
                "dead_time_fraction": (float(self.dead_time_fraction) if self.dead_time_fraction is not None
                                       else float("nan")),
                "lost_records": int(self.lost_records)}


@dataclass
class DecayHistogram(_Quality):
    """Start-stop histogram (decay versus sync). ``time_ps`` are the left bin edges in ps."""

    time_ps: np.ndarray
    counts: np.ndarray
    binwidth_ps: float
    duration_s: float
    #: detector channel(s) summed into ``counts`` (None = all detector channels)
    channel: int | None = None
    #: per detector channel histograms (same axis)
    counts_by_channel: dict[int, np.ndarray] = field(default_factory=dict)
    #: sync period after the divider (ps), if known
    sync_period_ps: float | None = None
    #: counts per input channel during the acquisition (normalisation inputs)
    channel_counts: dict[int, int] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: acquisition time asked for (``duration_s`` is the real, elapsed one: shorter after a stop)
    requested_s: float | None = None
    #: largest count a bin can hold (16-bit PicoHarp 300 histogram memory: 65535); None = no ceiling
    ceiling: int | None = None
    #: stop-on-overflow count in force (the device stops when the first bin reaches it), None = off
    stop_count: int | None = None
    #: the device reported an overflow (``FLAG_OVERFLOW``)
    overflow: bool = False
    #: detector count rate / (divided) sync rate during the acquisition (pile-up above a few %)
    pileup: float | None = None
    #: fraction of the time the detector input was dead (count rate × TDC dead time)
    dead_time_fraction: float | None = None
    #: FIFO records lost (T2/T3 read-out overrun); 0 in histogram mode
    lost_records: int = 0

    @property
    def total(self) -> int:
        return int(np.sum(self.counts))


@dataclass
class Correlation(_Quality):
    """Cross-correlation histogram of ``ch2`` stops relative to ``ch1`` starts.

    ``lag_ps`` are the bin *centres* (τ = t2 − t1), symmetric around zero; ``counts`` the raw pair
    counts; ``n1``, ``n2`` the events on each channel and ``duration_s`` the capture time, so that
    ``g2 = counts · T / (binwidth · N1 · N2)`` (the Swabian/snAPI normalisation; no overlap correction).

    ``method`` says how the pairs were counted: ``"all-pairs"`` (every ch2 event within the window of
    every ch1 event, from time tags) or ``"start-stop"`` (a histogram-mode device: the *first* ch2
    event after each ch1 start, the delayed stop putting negative τ on the histogram; the counts are
    then the all-pairs ones less the pairs behind an earlier stop: an accidental stop is hidden by any
    earlier stop, a start's own bunched stop (one per event) only by an earlier accidental, so the
    accidental floor after the peak drops; ``pileup`` bounds the loss). The remaining fields are the
    data-quality figures of :class:`DecayHistogram` (``quality()``); n1, n2 of a start–stop histogram
    come from the device's count-rate meters.
    """

    lag_ps: np.ndarray
    counts: np.ndarray
    binwidth_ps: float
    duration_s: float
    ch1: int
    ch2: int
    n1: int
    n2: int
    method: str = "all-pairs"
    flags: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: acquisition time asked for (``duration_s`` is the elapsed one: shorter after a stop on overflow)
    requested_s: float | None = None
    #: largest count a device bin can hold (PicoHarp 300: 65535); None = no ceiling (software histogram)
    ceiling: int | None = None
    #: stop-on-overflow count in force, None = off
    stop_count: int | None = None
    overflow: bool = False
    #: start–stop: the share of starts with a stop within the lag range (counts / N1), an upper bound
    #: of the share of pairs an earlier stop hides (largest at the last lag); None for all-pairs
    pileup: float | None = None
    #: fraction of the time the busier input was dead (count rate × TDC dead time)
    dead_time_fraction: float | None = None
    lost_records: int = 0
    #: device bins at the ceiling / beyond the stop count when ``counts`` sums several device bins
    device_clipped_bins: int | None = None

    @property
    def clipped_bins(self) -> int:
        if self.device_clipped_bins is not None:
            return int(self.device_clipped_bins)
        return super().clipped_bins

    @property
    def g2(self) -> np.ndarray:
        denom = self.binwidth_ps * 1e-12 * self.n1 * self.n2
        if denom <= 0:
            return np.full(self.counts.shape, np.nan)
        return self.counts * self.duration_s / denom


@dataclass
class TagStream:
    """Raw time tags of one acquisition, time ordered.

    ``time_ps`` absolute (int64 ps since the start of the acquisition), ``channel`` in the interface
    numbering (0 = sync, 1.. = detectors). In T3-like acquisitions ``nanotime`` holds the start-stop
    time in units of ``nanotime_unit_ps`` and ``sync_period_ps`` the (divided) sync period; sync tags
    are then not listed separately.
    """

    time_ps: np.ndarray
    channel: np.ndarray
    duration_s: float
    mode: str = "t2"
    nanotime: np.ndarray | None = None
    nanotime_unit_ps: float | None = None
    nanotime_bins: int | None = None
    sync_period_ps: float | None = None
    time_unit_ps: float = 1.0
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.time_ps.size)

    def select(self, channel: int) -> np.ndarray:
        return self.time_ps[self.channel == channel]


def correlate_tags(t1: np.ndarray, t2: np.ndarray, binwidth_ps: int, n_bins: int,
                   *, max_pairs_per_chunk: int = 20_000_000) -> tuple[np.ndarray, np.ndarray]:
    """All-pairs histogram of ``t2 − t1`` in ``n_bins`` bins of ``binwidth_ps`` centred on zero.

    Bin ``k`` covers ``[(k − n_bins/2)·bw, (k − n_bins/2 + 1)·bw)`` (edge-aligned so that for even
    ``n_bins`` zero delay starts bin ``n_bins/2``). Both inputs sorted int64 ps. Returns
    (lag centres in ps, counts int64).
    """
    bw = int(binwidth_ps)
    if bw <= 0 or n_bins <= 0:
        raise OptionError("binwidth_ps/n_bins", (binwidth_ps, n_bins), "must both be positive")
    t1 = np.asarray(t1, dtype=np.int64)
    t2 = np.asarray(t2, dtype=np.int64)
    lo = -(n_bins // 2) * bw
    hi = lo + n_bins * bw
    counts = np.zeros(n_bins, dtype=np.int64)
    if t1.size and t2.size:
        start = np.searchsorted(t2, t1 + lo, side="left")
        stop = np.searchsorted(t2, t1 + hi, side="left")
        npairs = stop - start
        cum = np.cumsum(npairs)
        i0 = 0
        while i0 < t1.size:
            base = cum[i0 - 1] if i0 else 0
            i1 = int(np.searchsorted(cum, base + max_pairs_per_chunk, side="right"))
            i1 = max(i1, i0 + 1)
            n = npairs[i0:i1]
            tot = int(n.sum())
            if tot:
                owner = np.repeat(np.arange(i0, i1), n)
                offs = np.arange(tot) - np.repeat(np.cumsum(n) - n, n)
                j = start[owner] + offs
                d = t2[j] - t1[owner]
                counts += np.bincount((d - lo) // bw, minlength=n_bins)[:n_bins]
            i0 = i1
    lags = lo + (np.arange(n_bins) + 0.5) * bw
    return lags, counts


class TCSPC(Role):
    ROLE = "tcspc"
    READBACKS = {"rate_ch0": "1/s", "rate_ch1": "1/s"}
    #: settings accepted by :meth:`configure` (name -> Option); backends extend this
    SETTINGS: ClassVar[dict[str, Option]] = {}

    def check_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Validate ``settings`` against ``SETTINGS``; raise :class:`OptionError` on the first bad one.

        Only the given keys are returned (no defaults filled in): configure changes what it is told.
        """
        schema = self.SETTINGS
        out: dict[str, Any] = {}
        for key, value in settings.items():
            if key not in schema:
                known = ", ".join(sorted(schema)) or "none"
                raise OptionError(key, value, f"is not a setting of {type(self).__name__} (known: {known})")
            out[key] = schema[key].check(key, value)
        return out

    def configure(self, **settings: Any) -> dict[str, Any]:
        """Check every setting first, then apply them. Returns the applied (coerced) settings."""
        checked = self.check_settings(settings)
        self._apply_settings(checked)
        return checked

    @abstractmethod
    def _apply_settings(self, settings: dict[str, Any]) -> None:
        """Send already validated settings to the device."""

    @abstractmethod
    def count_rates(self) -> dict[str, float]:
        """Measure counts per second per channel (keys as in READBACKS)."""

    @abstractmethod
    def histogram(self, duration_s: float, *, channel: int | None = None,
                  binwidth_ps: float | None = None, n_bins: int | None = None) -> DecayHistogram:
        """Decay histogram versus sync accumulated for ``duration_s`` of lab time."""

    @abstractmethod
    def correlation(self, duration_s: float, ch1: int = 1, ch2: int = 2, binwidth_ps: float = 100.0,
                    n_bins: int = 1000) -> Correlation:
        """g2 histogram (negative and positive delays) accumulated for ``duration_s``."""

    def hbt_correlation(self, duration_s: float, binwidth_ps: float = 100.0, n_bins: int = 1000) -> Correlation:
        """g2 of the two HBT detectors, acquired the way this backend does it best: lags centred on zero
        (bin k covers ``[(k − n_bins//2)·bw, …)``), τ = t(second detector) − t(first). Default: the
        all-pairs :meth:`correlation` of the backend's default HBT inputs."""
        return self.correlation(duration_s, binwidth_ps=binwidth_ps, n_bins=n_bins)

    @abstractmethod
    def stream(self, duration_s: float) -> TagStream:
        """Raw time tags for ``duration_s``."""

    def stop(self) -> None:
        """Stop any running measurement (default: nothing to stop)."""

    def make_safe(self) -> None:
        self.stop()

    def readback(self) -> dict[str, float]:
        rates = self.count_rates()
        return {k: float(rates.get(k, float("nan"))) for k in self.READBACKS}


def check_duration(duration_s: float, *, min_s: float = 1e-3, max_s: float = 360_000.0) -> float:
    """Acquisition time check shared by the backends (PicoHarp limit 1 ms … 100 h)."""
    return Option(float, min=min_s, max=max_s, unit="s").check("duration_s", duration_s)


def validate_backend_options(cls: type[Role], options: Mapping[str, Any]) -> dict[str, Any]:
    """Fill in defaults and raise the first :class:`OptionError` for a backend's ``OPTIONS``."""
    return cls.checked_options(options)
