"""Single-photon detectors and the time tagger behind them.

A :class:`Detectors` object describes the light path after the collection optics as used by
:class:`simulators.tags.TagSource`:

* TCSPC: collection → band-pass (monochromator window, optional) → transmission → detector 1;
  the sync channel (0) ticks at the laser repetition rate.
* HBT: collection → band-pass (optional) → fibre → 50:50 fibre beamsplitter → detectors 1 and 2.

Each :class:`SPAD` has a photon-detection efficiency, an IRF (Gaussian core plus an exponential
tail), dark counts, a dead time (non-paralysable), afterpulsing (probability and exponential delay
after the dead time) and a cable delay. Breakdown-flash crosstalk between the two detectors of the
HBT arm (tcspc.md §6.4) is a property of the pair. The tagger adds its rms jitter (folded into each
channel's Gaussian core), its bin resolution and its own dead time.

Defaults follow the papers' setups (physics.md §2.7, tcspc.md §1.5, §6.4): :func:`picoharp_hybrid`
([000]: PMA Hybrid 07 pair on a PicoHarp 300, ~50 ps per detector, ~70 ps HBT), :func:`swabian_spad`
([001]: MPD SPADs on a Swabian Time Tagger) and :func:`streak_like` (an ideal < 10 ps detector that
stands in for the streak camera of [000] Fig. 2e,f).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

__all__ = ["SPAD", "Detectors", "default_detectors", "picoharp_hybrid", "swabian_spad", "streak_like"]

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


@dataclass(frozen=True)
class SPAD:
    """One single-photon detector (SPAD or hybrid PMT)."""

    name: str = "PMA Hybrid 07"
    efficiency: float = 0.3          # photon detection efficiency at ~520 nm
    irf_fwhm_ps: float = 50.0        # FWHM of the Gaussian core (detector + its share of electronics)
    irf_tail_fraction: float = 0.03  # fraction of clicks delayed by an exponential diffusion tail
    irf_tail_tau_ps: float = 120.0
    dark_cps: float = 50.0
    dead_time_ps: float = 1000.0     # detector dead time (the tagger's may be longer)
    afterpulse_prob: float = 0.002   # per click
    afterpulse_tau_ps: float = 50_000.0
    delay_ps: float = 0.0            # cable delay added to every click

    def __post_init__(self) -> None:
        if not 0 <= self.efficiency <= 1:
            raise ValueError(f"{self.name}: efficiency must be within [0, 1]")
        if not 0 <= self.irf_tail_fraction <= 1 or not 0 <= self.afterpulse_prob < 1:
            raise ValueError(f"{self.name}: fractions must be within [0, 1)")
        if self.irf_fwhm_ps < 0 or self.dead_time_ps < 0 or self.dark_cps < 0:
            raise ValueError(f"{self.name}: negative IRF width, dead time or dark rate")


@dataclass(frozen=True)
class Detectors:
    """The detector chain after the collection optics (both measurement geometries)."""

    spads: tuple[SPAD, SPAD] = field(default_factory=lambda: (SPAD(), SPAD(delay_ps=0.0)))
    split_to_1: float = 0.5               # fibre beamsplitter ratio (HBT)
    hbt_transmission: float = 0.05        # fibre coupling of the collected light + splitter losses (HBT)
    tcspc_transmission: float = 1e-4      # monochromator/ND throughput to detector 1 (TCSPC arm)
    filter_nm: tuple[float, float] | None = None  # band-pass window in front of the detectors
    crosstalk_prob: float = 1e-4          # breakdown flash: P(click in the other detector)
    crosstalk_delay_ps: float = 2500.0    # optical + electrical path of the flash
    tagger_name: str = "PicoHarp 300"
    tagger_resolution_ps: float = 4.0
    tagger_jitter_rms_ps: float = 8.0
    tagger_dead_time_ps: float = 95_000.0
    sync_offset_ps: float = -2000.0       # sync tag time minus pulse time (cable delay puts the rise inside)
    #: the TCSPC monochromator in front of detector 1 (TCSPC arm only): a callable returning its present
    #: ``simulators.optics.Passband`` (None = no monochromator, or zero order: all light). Read at every
    #: light-model evaluation, so moving the monochromator shows in the next histogram
    passband: Callable[[], Any] | None = field(default=None, compare=False, repr=False)
    #: scattered laser reaching detector 1 through a monochromator set on the laser line: detected photons
    #: per pulse per µJ/cm² at full passband transmission (what a measured IRF is recorded from)
    laser_scatter_per_uJcm2: float = 0.004

    def __post_init__(self) -> None:
        if len(self.spads) != 2:
            raise ValueError("Detectors needs exactly two SPADs (the HBT pair; TCSPC uses the first)")
        if not 0 < self.split_to_1 < 1:
            raise ValueError("split_to_1 must be within (0, 1)")
        if self.tagger_resolution_ps <= 0:
            raise ValueError("tagger_resolution_ps must be > 0")
        if self.filter_nm is not None and not self.filter_nm[0] < self.filter_nm[1]:
            raise ValueError("filter_nm must be (low, high) with low < high")

    # ---- derived numbers used by the generators -------------------------------------------------
    def sigma_ps(self, i: int) -> float:
        """Total Gaussian rms of channel ``i`` (1 or 2): detector core ⊕ tagger jitter."""
        s = self.spads[i - 1].irf_fwhm_ps / FWHM_PER_SIGMA
        return math.hypot(s, self.tagger_jitter_rms_ps)

    def dead_ps(self, i: int) -> float:
        return max(self.spads[i - 1].dead_time_ps, self.tagger_dead_time_ps)

    def hbt_irf_fwhm_ps(self) -> float:
        """FWHM of the Gaussian part of the two-detector timing response (σ₁ ⊕ σ₂)."""
        return math.hypot(self.sigma_ps(1), self.sigma_ps(2)) * FWHM_PER_SIGMA

    def with_filter(self, filter_nm: tuple[float, float] | None) -> Detectors:
        return replace(self, filter_nm=filter_nm)

    def with_passband(self, passband: Callable[[], Any] | None) -> Detectors:
        return replace(self, passband=passband)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "passband"}
        d["spads"] = [asdict(s) for s in self.spads]
        return d


def picoharp_hybrid(**changes: object) -> Detectors:
    """[000]: two PMA Hybrid 07 detectors on a PicoHarp 300 — ~50 ps each, ~70 ps HBT response."""
    spad = SPAD(name="PMA Hybrid 07", efficiency=0.3, irf_fwhm_ps=48.0, irf_tail_fraction=0.03,
                irf_tail_tau_ps=120.0, dark_cps=50.0, dead_time_ps=1000.0, afterpulse_prob=0.002)
    det = Detectors(spads=(spad, spad), tagger_name="PicoHarp 300", tagger_resolution_ps=4.0,
                    tagger_jitter_rms_ps=4.0, tagger_dead_time_ps=95_000.0)
    return replace(det, **changes) if changes else det  # type: ignore[arg-type]


def swabian_spad(**changes: object) -> Detectors:
    """[001]: two 100 µm MPD SPADs on a Swabian Time Tagger (1 ps bins, few-ns tagger dead time)."""
    spad = SPAD(name="MPD PDM 100um", efficiency=0.45, irf_fwhm_ps=50.0, irf_tail_fraction=0.10,
                irf_tail_tau_ps=150.0, dark_cps=100.0, dead_time_ps=77_000.0, afterpulse_prob=0.01,
                afterpulse_tau_ps=80_000.0)
    det = Detectors(spads=(spad, spad), tagger_name="Swabian Time Tagger Ultra", tagger_resolution_ps=1.0,
                    tagger_jitter_rms_ps=9.0, tagger_dead_time_ps=2100.0, crosstalk_prob=3e-4)
    return replace(det, **changes) if changes else det  # type: ignore[arg-type]


def streak_like(**changes: object) -> Detectors:
    """An ideal fast detector (6 ps FWHM, no tail, no dead time) standing in for a streak camera."""
    spad = SPAD(name="streak-like", efficiency=0.1, irf_fwhm_ps=6.0, irf_tail_fraction=0.0, dark_cps=0.0,
                dead_time_ps=0.0, afterpulse_prob=0.0)
    det = Detectors(spads=(spad, spad), tagger_name="streak", tagger_resolution_ps=0.5,
                    tagger_jitter_rms_ps=0.0, tagger_dead_time_ps=0.0, crosstalk_prob=0.0)
    return replace(det, **changes) if changes else det  # type: ignore[arg-type]


def default_detectors() -> Detectors:
    """The default chain of a simulated lab: the [000] PicoHarp + hybrid-PMT pair."""
    return picoharp_hybrid()
