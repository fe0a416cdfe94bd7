"""Per-point cost of writing a run file point (SWMR, flushed) vs naive h5py and pymeasure's CSV Results.

A point = a 1024-pixel spectrum (float32), a 4096-bin decay histogram (uint32), a 2000-lag g2 (float64)
and ten scalar readbacks. Measured after 10 and after 10 000 points already written (flatness).
Baselines on the same data in the same run:
  * naive h5py: open the file, append every dataset by one row, close — per point;
  * pymeasure ``Results`` + ``Recorder`` (what its Worker does per emit): can store only the scalars,
    so its cost is reported for the ten scalars.
"""

from __future__ import annotations

import logging
import queue
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from acq.store import Field, RunWriter, Stream

N_SCALARS = 10
SCALARS = [f"r{i}" for i in range(N_SCALARS)]


def _streams() -> list[Stream]:
    return [
        Stream("spectrum", (Field("counts", (1024,), "f4", "counts"),), "counts", (".", "wavelength"),
               {"wavelength": (np.linspace(480, 560, 1024), "nm")}),
        Stream("decay", (Field("counts", (4096,), "u4", "counts"),), "counts", (".", "t"),
               {"t": (np.arange(4096) * 16.0, "ps")}),
        Stream("g2", (Field("g2", (2000,), "f8", ""),), "g2", (".", "tau"),
               {"tau": (np.arange(2000) * 10.0 - 10000, "ps")}),
    ]


def _data(rng: np.random.Generator) -> tuple[dict, dict]:
    pts = {"spectrum": {"counts": rng.random(1024, dtype=np.float32)},
           "decay": {"counts": rng.integers(0, 1000, 4096, dtype=np.uint32)},
           "g2": {"g2": rng.random(2000)}}
    rb = {"lab": {k: float(v) for k, v in zip(SCALARS, rng.random(N_SCALARS), strict=True)}}
    return pts, rb


def bench_ours(path: Path, n_before: int, n_measure: int, pts: dict, rb: dict) -> list[float]:
    w = RunWriter(path, procedure="bench", parameters={}, streams=_streams(),
                  readbacks={"lab": {k: "" for k in SCALARS}})
    for _ in range(n_before):
        w.append(pts, rb)
    times = []
    for _ in range(n_measure):
        t0 = time.perf_counter()
        w.append(pts, rb)
        times.append(time.perf_counter() - t0)
    w.finish("success")
    w.close()
    return times


def _naive_append(path: Path, pts: dict, rb: dict) -> None:
    with h5py.File(path, "a") as f:
        for s, d in pts.items():
            for k, v in d.items():
                name = f"{s}/{k}"
                if name not in f:
                    f.create_dataset(name, (0, *v.shape), maxshape=(None, *v.shape), dtype=v.dtype,
                                     chunks=(1, *v.shape))
                ds = f[name]
                ds.resize(ds.shape[0] + 1, axis=0)
                ds[-1] = v
        for k, v in rb["lab"].items():
            name = f"lab/{k}"
            if name not in f:
                f.create_dataset(name, (0,), maxshape=(None,), dtype="f8", chunks=(256,))
            ds = f[name]
            ds.resize(ds.shape[0] + 1, axis=0)
            ds[-1] = v


def bench_naive(path: Path, n_before: int, n_measure: int, pts: dict, rb: dict) -> list[float]:
    for _ in range(n_before):
        _naive_append(path, pts, rb)
    times = []
    for _ in range(n_measure):
        t0 = time.perf_counter()
        _naive_append(path, pts, rb)
        times.append(time.perf_counter() - t0)
    return times


def bench_pymeasure_csv(path: Path, n_before: int, n_measure: int, rb: dict) -> list[float]:
    logging.getLogger("pymeasure").setLevel(logging.ERROR)
    from pymeasure.experiment import Procedure, Results
    from pymeasure.experiment.listeners import Recorder

    class P(Procedure):
        DATA_COLUMNS = SCALARS

    results = Results(P(), str(path))
    rec = Recorder(results, queue.Queue())
    row = dict(rb["lab"])
    for _ in range(n_before):
        rec.handle(row)
    times = []
    for _ in range(n_measure):
        t0 = time.perf_counter()
        rec.handle(row)  # what pymeasure's Worker does per emit('results', …): format, write, flush
        times.append(time.perf_counter() - t0)
    for h in rec.handlers:  # the Worker starts/stops the listener thread; we only used handle()
        h.close()
    return times


def _fmt(ts: list[float]) -> str:
    return f"{statistics.median(ts) * 1e3:7.3f} ms (p90 {np.percentile(ts, 90) * 1e3:.3f})"


def main(n_measure: int = 200) -> dict:
    rng = np.random.default_rng(0)
    pts, rb = _data(rng)
    out: dict = {}
    with tempfile.TemporaryDirectory() as td:
        td = Path(td)
        for n_before in (10, 10_000):
            ours = bench_ours(td / f"ours{n_before}.h5", n_before, n_measure, pts, rb)
            naive = bench_naive(td / f"naive{n_before}.h5", min(n_before, 2000), n_measure, pts, rb)
            csv = bench_pymeasure_csv(td / f"pm{n_before}.csv", n_before, n_measure, rb)
            out[n_before] = (ours, naive, csv)
    print("per-point write cost: 1024-px spectrum + 4096-bin histogram + 2000-lag g2 + 10 scalars")
    print(f"{'already written':>16} | {'sflab RunWriter (SWMR, flushed)':>34} | {'naive h5py open/append/close':>34}"
          f" | {'ratio':>6} | pymeasure Results CSV (10 scalars only)")
    for n_before, (ours, naive, csv) in out.items():
        nb = f"{n_before}" + (" (naive: 2000)" if n_before > 2000 else "")
        ratio = statistics.median(naive) / statistics.median(ours)
        print(f"{nb:>16} | {_fmt(ours):>34} | {_fmt(naive):>34} | {ratio:5.1f}x | {_fmt(csv)}")
    m10, m10k = statistics.median(out[10][0]), statistics.median(out[10_000][0])
    print(f"flatness: median at 10 000 / at 10 points = {m10k / m10:.2f}  (target ≈ 1; absolute "
          f"{m10 * 1e3:.3f} → {m10k * 1e3:.3f} ms)")
    print(f"targets: < 2 ms per point: {'met' if m10k < 2e-3 else 'NOT met'}; ≥ 5x naive h5py: "
          f"{'met' if statistics.median(out[10][1]) / m10 >= 5 else 'NOT met'}")
    return {"ours_ms": m10 * 1e3, "ours_10k_ms": m10k * 1e3}


if __name__ == "__main__":
    main()
