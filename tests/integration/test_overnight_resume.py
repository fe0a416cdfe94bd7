"""An overnight plan (> 10 h of lab time) on the simulated lab, killed with SIGKILL halfway (a real
subprocess), then `sflab resume`: every point exactly once, the resume recorded in the file."""

import json
import os
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


def _sflab(*args):
    return [sys.executable, "-m", "acq.cli", *args]


@pytest.mark.timeout(240)
def test_overnight_plan_sigkill_and_resume(tmp_path):
    plan = tmp_path / "overnight.toml"
    plan.write_text(PLAN)
    out = tmp_path / "campaign"
    t0 = time.monotonic()
    proc = subprocess.Popen(_sflab("run", str(plan), "--out", str(out), "--quiet", "--no-analyze"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pl = out / "001_PLTemperatureSeries_milano-2d-sl.h5"
    killed_at = 0
    try:
        while time.monotonic() - t0 < 150:
            if proc.poll() is not None:
                pytest.fail("the run ended before it could be killed:\n" + proc.stdout.read())
            if pl.exists():
                try:
                    killed_at = open_run(pl).n_points
                except (OSError, ValueError):
                    killed_at = 0
                if killed_at >= N_POINTS // 2:
                    break
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    before = open_run(pl)
    assert N_POINTS // 2 <= before.n_points < N_POINTS and before.exit_status == "running"
    q = json.loads((out / "queue.json").read_text())
    assert [i["status"] for i in q["items"]] == ["done", "running"]
    est = json.loads((out / "campaign.json").read_text())["estimate"]
    assert est["lab_seconds"] >= 10 * 3600 and est["points"] == 8 + N_POINTS
    lab_h_first = (before.timestamp[-1] - before.timestamp[0]) / 3600

    r = subprocess.run(_sflab("resume", str(out), "--quiet"), capture_output=True, text=True, timeout=180)
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
          f"kill at point {before.n_points}/{N_POINTS}; kill + resume total {wall:.1f} s wall")
    assert wall < 240
