"""The shipped plans on the simulated lab: wall time per lab-hour of ``sflab run PLAN`` (acquisition and
the analysis at the end), against an idle lab-hour measured in the same run
(``python -m benchmarks plans``; ≈ 5 min on 2 cores, most of it ``plans/overnight.toml``).

Each plan runs as a user runs it — ``sflab run PLAN --out <tmp> --quiet`` in a fresh interpreter, AFAP
clock, seed 0 — and is timed from the outside: wall seconds, and the CPU seconds of the child process.
Lab time is what the run files say (the earliest ``start_time`` to the latest ``end_time``, both on the
simulated clock; a plan's ``wait_s`` steps between run files count as lab time too).

**Baseline** (same run): a lab-hour of holding temperature — a fluence calibration, then one PL point
after ``hold_s = 3600`` at 10 K. It costs what the engine and the simulated lab cost while next to nothing
is measured (the interpreter start-up, the suspenders' polls, the cryostat's regulation, one spectrum and
decay, the analysis of one point). A plan's ratio is its wall per lab-hour over the baseline's.

The figures recorded before issue 15's changes are printed beside them (they were not measured in this
run, so no ratio is formed with them): ``rl-hbt.toml`` had taken 0 of its 3 HBT points after 15 min of
wall time (issue 15: the T2 path listed every photon); ``overnight.toml`` took 314 s for its campaign
(session 4, after the band-resolved decays, beside a pytest run).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLANS = ("plans/rl-hbt.toml", "plans/overnight.toml")
BEFORE = {"plans/rl-hbt.toml": "> 900 s wall and 0 of 3 HBT points (issue 15, before the histogram-mode g2)",
          "plans/overnight.toml": "314 s wall (session 4, loaded machine); 93 / 75 s wall, 73 / 61 s CPU at dd90aab "
                                  "(2026-12-04, interleaved with main's 58 / 54 s: before Nagle off, decision 0015 "
                                  "and the analytic decay gradient)"}
IDLE_PLAN = """sample = "milano-2d-sl"
title = "a lab-hour of holding temperature"

[[step]]
procedure = "FluenceCalibration"

[[step]]
procedure = "PLTemperatureSeries"
temperatures = [10]
fluences = [1.0]
hold_s = 3600
decay_s = 1.0
exposure_s = 0.1
"""


def _lab_seconds(folder: Path) -> float:
    """Lab seconds covered by the run files of a campaign folder (earliest start to latest end)."""
    import h5py

    starts, ends = [], []
    for f in sorted(folder.glob("*.h5")):
        with h5py.File(f, "r") as h:
            e = h.get("entry")   # the run files (a Photon-HDF5 sidecar has none)
            if e is not None and "start_time" in e and "end_time" in e:
                starts.append(datetime.fromisoformat(e["start_time"][()].decode().rstrip("Z")))
                ends.append(datetime.fromisoformat(e["end_time"][()].decode().rstrip("Z")))
    if not starts:
        return float("nan")
    return (max(ends) - min(starts)).total_seconds()


def _run(plan: Path, out: Path) -> tuple[float, float, int]:
    """(wall s, child CPU s, exit code) of ``sflab run plan``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "acq.cli", "run", str(plan), "--out", str(out), "--quiet"],
                       cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime), p.returncode


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        idle = tmpd / "idle.toml"
        idle.write_text(IDLE_PLAN)
        wall, cpu, rc = _run(idle, tmpd / "idle")
        lab_h = _lab_seconds(tmpd / "idle") / 3600.0
        idle_per_h = wall / lab_h
        print(f"baseline, a lab-hour of holding temperature: {lab_h:.2f} lab h, {wall:.1f} s wall, {cpu:.1f} s CPU "
              f"→ {idle_per_h:.2f} s wall per lab-hour, exit {rc}")
        print(f"{'plan':24s} {'lab h':>7s} {'wall s':>8s} {'CPU s':>7s} {'wall s/lab-h':>13s} "
              f"{'× idle':>7s}  exit  before")
        for rel in PLANS:
            out = tmpd / Path(rel).stem
            wall, cpu, rc = _run(ROOT / rel, out)
            lab_h = _lab_seconds(out) / 3600.0
            per_h = wall / lab_h if lab_h > 0 else float("nan")
            print(f"{rel:24s} {lab_h:7.2f} {wall:8.1f} {cpu:7.1f} {per_h:13.2f} {per_h / idle_per_h:7.1f}  "
                  f"{rc:4d}  {BEFORE[rel]}", flush=True)


if __name__ == "__main__":
    main()
