"""`sflab analyze` on a folder of 100 run files: single process vs ``--workers 2`` (dask.distributed), in one run.

The files are copies of a few small real runs of the simulated lab (a PL temperature point each, with a
decay), 100 in all, analysed with ``--recompute`` (every run's summary computed, as after a change to the
analysis; without it the per-run summaries are read from the files and only the campaign verdict is
computed). Each mode runs twice, interleaved, and the best of two counts (the machine may be shared). Both
are the real command (``python -m acq.cli analyze``), wall time from start to exit, so the Dask figure
includes starting the local cluster. The verdicts of the two modes are compared too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_FILES = 100


def make_folder(folder: Path, n_files: int = N_FILES) -> list[Path]:
    from acq.cli import open_lab
    from procedures import FluenceCalibration, PLTemperatureSeries

    base: list[Path] = []
    session = open_lab(sim=True, sample="milano-2d-sl", speed="max", data_dir=folder / "base", seed=0)
    try:
        r = session.make_runner(FluenceCalibration(n_steps=4, readings=1)).run()
        assert r.exit_status == "success", r.error
        for T in (80.0, 40.0, 20.0, 10.0):
            r = session.make_runner(PLTemperatureSeries(temperatures=[T], fluences=[1.0], hold_s=5.0,
                                                        decay_s=0.2)).run()
            assert r.exit_status == "success", r.error
            base.append(Path(r.path))
    finally:
        session.close()
    runs = folder / "campaign"
    runs.mkdir()
    out = []
    for i in range(n_files):
        src = base[i % len(base)]
        dst = runs / f"{i:03d}_{src.name}"
        shutil.copy2(src, dst)
        out.append(dst)
    return out


def _analyze(folder: Path, *extra: str) -> tuple[float, dict]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "acq.cli", "analyze", str(folder), "--json", "--recompute", *extra],
                       capture_output=True, text=True, env=env, timeout=3600)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    return wall, json.loads(r.stdout)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="sflab-bench-analyze-") as tmp:
        t0 = time.perf_counter()
        files = make_folder(Path(tmp))
        print(f"{len(files)} run files made in {time.perf_counter() - t0:.1f} s", flush=True)
        folder = files[0].parent
        # interleaved, twice each (S P S P), best of two: the machine is shared, so a load spike during one
        # run must not decide the ratio; all four times are printed
        t_s, t_p = [], []
        for _ in range(2):
            t, a = _analyze(folder)
            t_s.append(t)
            t, b = _analyze(folder, "--workers", "2")
            t_p.append(t)
        t_serial, t_dask = min(t_s), min(t_p)
        same = (a["verdict"] == b["verdict"] and
                all(a["runs"][k].get("verdict") == b["runs"][k].get("verdict") for k in a["runs"]) and
                a["campaign"].get("checklist") == b["campaign"].get("checklist"))
        rows = [
            (f"sflab analyze --recompute, {len(files)} files, one process", f"{t_serial:.1f} s",
             f"baseline (runs: {', '.join(f'{t:.1f}' for t in t_s)} s)"),
            (f"sflab analyze --recompute, {len(files)} files, --workers 2", f"{t_dask:.1f} s",
             f"{t_serial / t_dask:.2f}x the single process (runs: {', '.join(f'{t:.1f}' for t in t_p)} s, "
             "cluster start included)"),
            ("campaign verdict (both)", f"{a['verdict']} / {b['verdict']}", f"identical={same}"),
            ("CPU cores on this machine", str(os.cpu_count()), f"load average at the end {os.getloadavg()[0]:.1f}"),
        ]
        w = max(len(r[0]) for r in rows)
        for r in rows:
            print(f"{r[0]:<{w}}  {r[1]:>14}  {r[2]}")


if __name__ == "__main__":
    main()
