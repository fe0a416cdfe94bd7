"""Start-up of an sflab process (the CLI, ``sim serve``, a test's subprocess, a Dask worker), < 60 s.

Each figure is the median CPU time of a fresh interpreter over 3 runs, next to its baseline measured in the
same run: ``pymeasure.experiment`` as it imports itself (pint's optional dask probe, IPython) against the
way sflab imports it (acq/procedure.py skips both), ``import acq.cli`` (everything the CLI needs), and the
simulator's tag source with scipy.signal (the baseline) and with numpy's FFT (what simulators/tags.py uses).
The machine's load is printed beside them: on a loaded machine both columns grow together.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASES = [
    ("pymeasure.experiment, as it imports itself", "import pymeasure.experiment"),
    ("pymeasure.experiment, as sflab imports it", "import acq.procedure"),
    ("import acq.cli (the whole CLI)", "import acq.cli"),
    ("tag source + scipy.signal (baseline)", "import scipy.signal, simulators.tags"),
    ("tag source as it imports (numpy FFT)", "import simulators.tags"),
]

PROBE = ("import resource, sys, time\n{code}\n"
         "r = resource.getrusage(resource.RUSAGE_SELF)\n"
         "print(r.ru_utime + r.ru_stime, len(sys.modules))\n")


def _cpu(code: str) -> tuple[float, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", PROBE.format(code=code)], capture_output=True, text=True,
                             env=env, cwd=ROOT, timeout=120, check=True).stdout.split()
        runs.append((float(out[0]), int(out[1])))
    return statistics.median(r[0] for r in runs), runs[-1][1]


def main() -> None:
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    res = {label: _cpu(code) for label, code in CASES}
    for label, (cpu, n) in res.items():
        print(f"{label:45s} {cpu:6.2f} s CPU  {n:5d} modules")
    a, b = res[CASES[0][0]][0], res[CASES[1][0]][0]
    c, d = res[CASES[3][0]][0], res[CASES[4][0]][0]
    print(f"pymeasure.experiment: {b / a:.2f} × its own import ({b:.2f} vs {a:.2f} s); "
          f"tag source: {d / c:.2f} × the scipy.signal import ({d:.2f} vs {c:.2f} s)")


if __name__ == "__main__":
    main()
