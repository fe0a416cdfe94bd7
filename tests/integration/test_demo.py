"""`sflab demo`: a full simulated campaign whose verdict matches the virtual sample's truth, whose run files
`sflab analyze` re-reads with the same verdict; on isolated nanocrystals the verdict is "not SF"."""

import json
import subprocess
import sys

import pytest


def _demo(tmp_path, *extra):
    r = subprocess.run([sys.executable, "-m", "acq.cli", "demo", "--out", str(tmp_path), "--quiet", *extra],
                       capture_output=True, text=True, timeout=280, env={"COLUMNS": "200", **_env()})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    folders = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(folders) == 1
    return r.stdout, folders[0]


def _env():
    import os

    return {k: v for k, v in os.environ.items() if k != "COLUMNS"}


@pytest.mark.timeout(300)
def test_demo_verdict_matches_truth_and_analyze_rereads_it(tmp_path):
    out, folder = _demo(tmp_path)
    summary = json.loads((folder / "report" / "campaign-summary.json").read_text())["campaign"]
    truth = summary["truth"]
    assert truth["preset"] == "milano-2d-sl" and truth["sf_enabled"] is True
    assert summary["verdict"] == "SF"
    assert "campaign: 4 run files — verdict SF" in out
    for f in ("report.html", "report.md", "summary.json"):
        assert (folder / "report" / f).exists()
    assert list((folder / "report").glob("*.png"))
    idx = json.loads((folder / "campaign.json").read_text())
    assert [r["status"] for r in idx["runs"]] == ["done"] * 4
    r = subprocess.run([sys.executable, "-m", "acq.cli", "analyze", str(folder), "--json"], capture_output=True,
                       text=True, timeout=200)
    assert r.returncode == 0, r.stderr[-3000:]
    again = json.loads(r.stdout)
    assert again["verdict"] == "SF" and len(again["files"]) == 4


@pytest.mark.timeout(300)
def test_demo_on_isolated_nanocrystals_is_not_sf(tmp_path):
    out, folder = _demo(tmp_path, "--sample", "isolated-ncs")
    summary = json.loads((folder / "report" / "campaign-summary.json").read_text())["campaign"]
    assert summary["truth"]["sf_enabled"] is False
    assert summary["verdict"] == "not SF", summary.get("headline")
    assert "verdict not SF" in out
