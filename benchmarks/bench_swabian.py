"""The emulated Swabian Time Tagger: wall time per lab second of a measurement, every tag listed (the
real library's way, and the emulation's before issue 15) against the statistical mode (the counts drawn
from the photon statistics), in one run (``python -m benchmarks swabian``, ≈ 30 s on 2 cores).

Both run the real backend (``drivers.swabian.SwabianTimeTagger``) on the emulated module, fed by the
``technion-3d-sl`` sample physics at fixed conditions:

* **decay** — ``histogram()`` (``Histogram`` of detector 1 against the 76 MHz laser sync, 8 ps × 1600
  bins, plus the ``Countrate`` beside it) at 80 K, 1.2 µJ/cm²: listing means 76 M sync tags per lab s;
* **g2** — ``correlation()`` (``Correlation`` of the two HBT detectors, 100 ps × 1000 lags) at 80 K
  under CW X-rays (50 kV / 0.6 mA, the [001] Cu tube).

The baseline gets a few lab seconds (it is the slow one), the statistical mode a lab-hour-sized
acquisition; both are reported as wall seconds per lab second and per lab-hour, the ratio listed / drawn.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

LISTED_LAB_S = {"decay": 0.5, "g2": 5.0}
DRAWN_LAB_S = {"decay": 600.0, "g2": 3600.0}


def _tagger(mode: str, cond: Any, statistical: bool) -> Any:
    from acq.clock import SimClock
    from drivers.swabian import SwabianTimeTagger
    from simulators.sample import Sample
    from simulators.tags import TagSource
    from simulators.timetagger import make_module
    from simulators.vendor import PhysicsFeed

    clock = SimClock()
    source = TagSource(Sample.preset("technion-3d-sl", seed=0), None, 0)
    feed = PhysicsFeed(SimpleNamespace(conditions=lambda: cond), mode=mode, source=source)
    module = make_module(lambda: feed, clock=clock)
    module.STATISTICS = statistical
    tt = SwabianTimeTagger("", clock=clock, tagger_module=module)
    tt.connect()
    return tt


def _measure(kind: str, statistical: bool, lab_s: float) -> tuple[float, int]:
    from simulators.sample import Conditions

    if kind == "decay":
        tt = _tagger("tcspc", Conditions(T_K=80.0, fluence_uJcm2=1.2), statistical)
        t0 = time.perf_counter()
        counts = int(tt.histogram(lab_s, binwidth_ps=8, n_bins=1600).counts.sum())
    else:
        tt = _tagger("hbt", Conditions(T_K=80.0, xray_kV=50.0, xray_mA=0.6), statistical)
        t0 = time.perf_counter()
        counts = int(tt.correlation(lab_s, binwidth_ps=100, n_bins=1000).counts.sum())
    wall = time.perf_counter() - t0
    tt.close()
    return wall, counts


def main() -> None:
    _measure("decay", True, 0.01)   # warm-up: numba kernels, the expectation caches' first fill
    _measure("g2", False, 0.01)
    print(f"{'measurement':<10} {'mode':<12} {'lab s':>8} {'wall s':>8} {'wall s / lab h':>15} {'counts':>10}")
    for kind in ("decay", "g2"):
        per_lab_s = {}
        for statistical, lab_s in ((False, LISTED_LAB_S[kind]), (True, DRAWN_LAB_S[kind])):
            wall, counts = _measure(kind, statistical, lab_s)
            per_lab_s[statistical] = wall / lab_s
            mode = "drawn" if statistical else "tags listed"
            print(f"{kind:<10} {mode:<12} {lab_s:>8g} {wall:>8.2f} {3600 * wall / lab_s:>15.1f} {counts:>10d}")
        print(f"{kind:<10} speed-up (listed / drawn, per lab second): {per_lab_s[False] / per_lab_s[True]:.0f}×")


if __name__ == "__main__":
    main()
