"""Report rendering from a verdict: PNGs, JSON summary, markdown and HTML with the verdict first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.report import render
from analysis.sf import Evidence, assess

from .gen import scenario


@pytest.mark.timeout(120)
def test_render_two_runs(tmp_path: Path) -> None:
    runs = {
        "SL sample": assess(Evidence.from_dict(scenario("sf", seed=3))),
        "film": assess(Evidence.from_dict(scenario("ase", seed=3))),
    }
    files = render(runs, tmp_path, title="cooldown 42")
    names = {p.name for p in files.figures}
    for fig in ("spectra", "decays", "g2", "exponent", "vs_T"):
        assert f"analysis_SL_sample_{fig}.png" in names
    for p in files.figures:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000
    md = files.markdown.read_text()
    first = md.splitlines()[2]
    assert "SL sample" in first and "SF" in first  # verdict first
    assert "likely ASE" in md
    summary = json.loads(files.json.read_text())
    assert summary["runs"]["SL sample"]["verdict"] == "SF"
    assert summary["runs"]["film"]["confuser"] == "ASE"
    assert len(summary["runs"]["SL sample"]["items"]) == 10
    html = files.html.read_text()
    assert html.index("SL sample") < html.index("<table>") and "<img" in html


def test_render_without_data(tmp_path: Path) -> None:
    v = assess(Evidence())
    files = render(v, tmp_path)
    assert files.figures == ()
    assert "inconclusive" in files.markdown.read_text().splitlines()[2]
    assert json.loads(files.json.read_text())["runs"]["run"]["verdict"] == "inconclusive"
