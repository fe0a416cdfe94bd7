"""HBT g2 on the simulated lab: wall time per lab-hour of g2, the T2 path against the histogram path, in
one run (``python -m benchmarks hbt``, ≈ 1 min on 2 cores).

Both are ``HBTCorrelation`` points (20 K, CW X-rays at 20 kV / 0.5 mA, 8 ps × 500 lags, the shipped
``plans/rl-hbt.toml`` settings) run by the engine on the AFAP clock with the real PicoHarp 300 backend
over the emulated PHLib, the X-ray keep-alive and the count-rate suspender running:

* **before** (baseline) — ``hbt_source = "t2"``: T2 FIFO records of both detectors, every photon listed
  by the emulated PHLib and correlated in software (what ``HBTCorrelation`` did before issue 15);
* **after** — ``hbt_source = "hist"`` (the default): the start–stop histogram accumulated by the
  emulated device in histogram mode (statistically exact, nothing listed).

Only the g2 acquisition (``tcspc.hbt_correlation``) is timed, in wall seconds per lab second, and scaled
to a lab-hour; the ratio is before / after. The T2 baseline gets a few lab seconds (it is the slow one).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

T2_LAB_S = 4.0
HIST_LAB_S = 600.0


def _timed_point(session: Any, folder: Path, source: str, g2_s: float) -> tuple[float, float, int]:
    """(wall s, lab s, coincidences) of one HBT g2 acquisition with ``hbt_source = source``."""
    from acq.runner import count_rate_above, interlock_open, temperature_band
    from procedures import HBTCorrelation

    tc = session.lab.tcspc
    tc.options["hbt_source"] = source
    marks: dict[str, Any] = {}
    inner = tc.hbt_correlation

    def timed(*args: Any, **kwargs: Any) -> Any:
        lab0, wall0 = session.clock.monotonic(), time.perf_counter()
        out = inner(*args, **kwargs)
        marks.update(wall=time.perf_counter() - wall0, lab=session.clock.monotonic() - lab0,
                     pairs=int(out.counts.sum()))
        return out

    tc.hbt_correlation = timed
    try:
        p = HBTCorrelation(temperatures=[20.0], g2_s=g2_s, tags_s=0.0, hold_s=5.0)
        r = session.make_runner(p, folder / f"hbt_{source}_{g2_s:g}.h5",
                                suspenders=[temperature_band(2.0, settle_s=10.0), interlock_open(settle_s=5.0),
                                            count_rate_above(5e6)])
        r.analyze = False
        res = r.run()
        if res.exit_status != "success":
            raise RuntimeError(f"HBT point ({source}) ended {res.exit_status}: {res.error}")
    finally:
        del tc.hbt_correlation
    return marks["wall"], marks["lab"], marks["pairs"]


def main() -> None:
    from acq.cli import open_lab

    with tempfile.TemporaryDirectory() as tmp:
        session = open_lab(None, sim=True, speed="max", data_dir=Path(tmp), tcspc_wiring="hbt")
        try:
            rows = {}
            for source, g2_s in (("hist", HIST_LAB_S), ("t2", T2_LAB_S)):
                rows[source] = _timed_point(session, Path(tmp), source, g2_s)
        finally:
            session.close()
    per_h = {k: w / lab * 3600.0 for k, (w, lab, _) in rows.items()}
    print(f"{'g2 path':44s} {'lab s':>7s} {'wall s':>8s} {'pairs':>9s} {'wall s / lab-h':>15s}")
    names = {"t2": "before: T2 tags, all pairs in software", "hist": "after: start-stop histogram mode"}
    for k in ("t2", "hist"):
        w, lab, pairs = rows[k]
        print(f"{names[k]:44s} {lab:7.1f} {w:8.2f} {pairs:9d} {per_h[k]:15.1f}")
    print(f"\nratio before / after: {per_h['t2'] / per_h['hist']:.0f}x; plans/rl-hbt.toml's 3 × 600 s of g2 "
          f"take ≈ {per_h['t2'] / 2:.0f} s of wall time on the T2 path, ≈ {per_h['hist'] / 2:.1f} s on the histogram "
          "path")


if __name__ == "__main__":
    main()
