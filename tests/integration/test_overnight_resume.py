"""An overnight plan (> 10 h of lab time) on the simulated lab, killed with SIGKILL halfway (a real
subprocess), then `sflab resume`: every point exactly once, the resume recorded in the file."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from acq.store import open_run

PLAN = """\
sample = "milano-2d-sl"
title = "overnight test plan"

[[step]]
procedure = "FluenceCalibration"
n_steps = 8

[[step]]
procedure = "PLTemperatureSeries"
title = "overnight PL"
temperatures = {start = 300, stop = 10, num = 12}
fluences = {start = 0.3, stop = 5.0, num = 3, log = true}
hold_s = 3000
exposure_s = 2.0
decay_s = 60.0
"""
N_POINTS = 36


KILL_AT = N_POINTS // 2

# The run process kills itself with SIGKILL right after writing point KILL_AT of the PL run: the same
# abrupt death as an external kill, at a known point, with no poll racing the AFAP run.
CHILD = f"""
import os, signal, sys
import acq.store as store
_append = store.RunWriter.append
def append(self, *a, **k):
    i = _append(self, *a, **k)
    if "PLTemperatureSeries" in self.path.name and i + 1 >= {KILL_AT}:
        os.kill(os.getpid(), signal.SIGKILL)
    return i
store.RunWriter.append = append
from acq.cli import main
sys.argv = ["sflab", *sys.argv[1:]]
main()
"""


def _sflab(*args):
    return [sys.executable, "-m", "acq.cli", *args]


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_overnight_plan_sigkill_and_resume(tmp_path):
    plan = tmp_path / "overnight.toml"
    plan.write_text(PLAN)
    out = tmp_path / "campaign"
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", CHILD, "run", str(plan), "--out", str(out), "--quiet",
                           "--no-analyze"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    pl = out / "001_PLTemperatureSeries_milano-2d-sl.h5"
    assert proc.returncode == -signal.SIGKILL, proc.stdout
    before = open_run(pl)
    assert before.n_points == KILL_AT and before.exit_status == "running"
    q = json.loads((out / "queue.json").read_text())
    assert [i["status"] for i in q["items"]] == ["done", "running"]
    est = json.loads((out / "campaign.json").read_text())["estimate"]
    assert est["lab_seconds"] >= 10 * 3600 and est["points"] == 8 + N_POINTS
    lab_h_first = (before.timestamp[-1] - before.timestamp[0]) / 3600

    r = subprocess.run(_sflab("resume", str(out), "--quiet"), capture_output=True, text=True, timeout=300)
    wall = time.monotonic() - t0
    assert r.returncode == 0, r.stdout + r.stderr
    d = open_run(pl)
    assert d.exit_status == "success" and d.n_points == N_POINTS
    np.testing.assert_array_equal(d.point_id, np.arange(N_POINTS))          # none lost, none duplicated
    assert d.resumed_at == [before.n_points]
    for i in range(before.n_points):                                        # copied, not re-taken
        np.testing.assert_array_equal(d.streams["spectrum"]["counts"][i], before.streams["spectrum"]["counts"][i])
    T = d.streams["spectrum"]["T_set"]
    F = d.streams["spectrum"]["fluence"]
    assert len({(round(a, 3), round(b, 4)) for a, b in zip(T, F, strict=True)}) == N_POINTS
    assert any(e.get("kind") == "resume" for e in d.events)
    q = json.loads((out / "queue.json").read_text())
    assert [i["status"] for i in q["items"]] == ["done", "done"]
    idx = json.loads((out / "campaign.json").read_text())
    assert [x["run_file"] for x in idx["runs"]] == ["000_FluenceCalibration_milano-2d-sl.h5", pl.name]
    print(f"overnight plan: {est['lab_seconds'] / 3600:.1f} h lab estimated, {lab_h_first:.1f} h lab before the "
          f"kill at point {before.n_points}/{N_POINTS}; run + resume took {wall:.1f} s wall (a figure, not a bound)")
