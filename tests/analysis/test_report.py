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


@pytest.mark.timeout(120)
def test_spectra_and_g2_have_residual_panels() -> None:
    import numpy as np

    from analysis.report import figures

    v = assess(Evidence.from_dict(scenario("sf", seed=3)))
    figs = figures(v)
    sp = figs["spectra"]
    n = len(sp.axes) // 2
    assert n >= 1 and len(sp.axes) == 2 * n  # a residual row under the spectra
    fits = sorted(v.fits["spectra"], key=lambda s: s["T_K"])
    # each residual panel shows the fit's own residuals, whose squares are the statistic it minimised
    f0 = fits[0]["fit"]
    r = sp.axes[n].lines[0].get_ydata()
    assert np.allclose(r, f0.residuals)
    assert float(np.sum(f0.residuals**2)) == pytest.approx(f0.deviance, rel=1e-6)
    g2 = figs["g2"]
    assert len(g2.axes) == 2
    f = v.fits["g2"][0]
    pulls = g2.axes[1].lines[0].get_ydata()
    ok = f.g2_err > 0
    assert np.allclose(pulls[ok], ((f.g2 - f.exp_model) / f.g2_err)[ok])
