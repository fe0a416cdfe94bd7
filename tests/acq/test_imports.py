"""Every sflab process (the CLI, `sim serve`, the GUI, a test's subprocess) starts without the heavy modules it
never uses: pint's optional dask probe and pymeasure's IPython probe are skipped (acq/procedure.py), and
scipy.optimize / scipy.stats are imported where they are used, not at start-up. Importing them later still
works."""

import json
import subprocess
import sys

SCRIPT = r"""
import json, sys
import acq.cli
before = sorted(m for m in ("dask", "dask.array", "IPython", "scipy.optimize", "scipy.stats") if m in sys.modules)
import dask.array, IPython, pint
from pymeasure.experiment import FloatParameter
q = pint.UnitRegistry()("3 m").to("cm").magnitude
x = float(dask.array.ones(4, chunks=2).sum().compute())
print(json.dumps({"before": before, "cm": q, "dask_sum": x, "param": FloatParameter("T", units="K", default=5).value}))
"""


def test_cli_start_skips_unused_heavy_imports_which_still_work_later():
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["before"] == []
    assert out["cm"] == 300.0 and out["dask_sum"] == 4.0 and out["param"] == 5
    assert "IPython could not be imported" not in r.stderr
