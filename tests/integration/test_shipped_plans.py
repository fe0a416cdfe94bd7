"""The shipped plans as a user runs them (`sflab run PLAN`, simulated lab, seed 0), verdict as the run prints
it: `plans/overnight.toml` on the true-SF sample is SF and on isolated nanocrystals not SF (issue 14),
`plans/technion-swabian.toml` with the Swabian backend is SF (issue 15). Slow (≈ 1–4 min each on 2 cores):
`make test-all` runs them, `make test` does not; `make bench` (bench_plans) times them."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def _verdict(tmp_path: Path, plan: str, *extra: str) -> str:
    r = subprocess.run([sys.executable, "-m", "acq.cli", "run", str(ROOT / plan), "--out", str(tmp_path / "c"),
                        "--quiet", *extra], capture_output=True, text=True, timeout=1100, cwd=ROOT,
                       env={**os.environ, "COLUMNS": "200"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    m = re.search(r"^campaign: \d+ run files — verdict (SF|not SF|inconclusive)\b", r.stdout, re.M)
    assert m, r.stdout[-3000:]
    return m.group(1)


def test_overnight_plan_on_the_true_sf_sample_is_sf(tmp_path):
    assert _verdict(tmp_path, "plans/overnight.toml") == "SF"


def test_overnight_plan_on_isolated_nanocrystals_is_not_sf(tmp_path):
    assert _verdict(tmp_path, "plans/overnight.toml", "--sample", "isolated-ncs") == "not SF"


def test_technion_plan_with_the_swabian_backend_is_sf(tmp_path):
    assert _verdict(tmp_path, "plans/technion-swabian.toml", "--tcspc", "swabian") == "SF"
