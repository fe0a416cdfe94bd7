"""Spectrophotometer exports (PerkinElmer Lambda 950, UV WinLab ASCII and CSV) read, converted to
absorbance and imported into a campaign, where the absorption at the lowest T reaches checklist item 9.

The fixtures in data/ follow the layout of real UV WinLab exports (see acq/absorption.py for the sources):
``sl_5K_absorbance.asc`` (ASCII, ordinate A, descending wavelength, ``T=5 K`` in the sample description),
``sl_5K_transmittance.csv`` (the same spectrum as %T, no temperature), ``miniband_5K_absorbance.csv``
(``Wavelength (nm),A``; a band at the SF energy)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from acq import cli
from acq.absorption import AbsorptionImportError, import_absorption, read_export, to_absorbance
from acq.campaign import Campaign
from acq.pipeline import analyze_paths
from acq.plans import load_plan

from .synthetic_runs import write_pl_run

DATA = Path(__file__).parent / "data"
ASC, CSV_T = DATA / "sl_5K_absorbance.asc", DATA / "sl_5K_transmittance.csv"
MINIBAND = DATA / "miniband_5K_absorbance.csv"
runner = CliRunner()


def test_ascii_export():
    ex = read_export(ASC)
    assert ex.format == "perkinelmer-asc" and ex.ordinate_unit == "A"
    assert ex.wavelength_nm.size == 76 and np.all(np.diff(ex.wavelength_nm) > 0)   # descending file → ascending
    assert ex.wavelength_nm[0] == 450.0 and ex.wavelength_nm[-1] == 600.0
    assert ex.T_K == 5.0 and ex.header["instrument"] == "Lambda 950"
    assert ex.absorbance[-1] == pytest.approx(0.02)   # 600 nm: the scattering baseline


def test_csv_percent_T_is_the_same_absorbance():
    a, t = read_export(ASC), read_export(CSV_T)
    assert t.format == "perkinelmer-csv" and t.ordinate_unit == "%T" and t.T_K is None
    assert np.array_equal(a.wavelength_nm, t.wavelength_nm)
    np.testing.assert_allclose(t.absorbance, a.absorbance, atol=2e-4)
    assert t.header["title"] == "Created as New Dataset"


def test_to_absorbance():
    np.testing.assert_allclose(to_absorbance(np.array([100.0, 10.0, 1.0]), "%T"), [0.0, 1.0, 2.0])
    np.testing.assert_allclose(to_absorbance(np.array([0.5]), "T"), [math.log10(2)])
    out = to_absorbance(np.array([-0.01, 0.0, 50.0]), "%T")
    assert np.isnan(out[:2]).all() and out[2] == pytest.approx(math.log10(2))


def test_european_csv_and_wavenumbers(tmp_path):
    f = tmp_path / "eu.csv"
    f.write_text("probe T=20 K\nnm;%T\n520,0;50,0\n510,0;10,0\n500,0;1,0\n")
    ex = read_export(f)
    assert ex.T_K == 20.0 and list(ex.wavelength_nm) == [500.0, 510.0, 520.0]
    np.testing.assert_allclose(ex.absorbance, [2.0, 1.0, math.log10(2)])
    g = tmp_path / "wn.csv"
    g.write_text("cm-1,A\n20000,0.1\n19000,0.2\n18000,0.3\n")
    assert list(read_export(g).wavelength_nm) == pytest.approx([1e7 / 20000, 1e7 / 19000, 1e7 / 18000])


def _asc(ordinate: str = "A", n_decl: int = 3, rows: str = "600\t0.1\n550\t0.2\n500\t0.3\n", data: bool = True) -> str:
    head = ["PE UV       SPECTRUM    ASCII       PEDS        1.60", "-1", "X.SP", "26/11/30", "10:00:00.00",
            "26/11/30", "10:01:00.00", "me", "film", "#HDR", "-1", "#GR", "nm", ordinate, "1.0", "0.0", "600.0",
            "-50.0", str(n_decl)]
    return "\n".join(head) + "\n" + ("#DATA\n" + rows if data else rows)


#: (id, file name, content, words of the one-line error)
BAD = [
    ("reflectance", "r.asc", _asc("%R"), ["r.asc:14: ordinate '%R' is not absorbance or transmittance",
                                         "allowed: A, %T, T"]),
    ("no #DATA", "d.asc", "PE UV SPECTRUM\n#HDR\n#GR\nnm\nA\n", ["lacks #DATA"]),
    ("truncated", "t.asc", _asc(n_decl=281), ["declares 281 points but #DATA holds 3", "truncated"]),
    ("garbage row", "g.asc", _asc(rows="600\t0.1\n550\toops\n500\t0.3\n"),
     ["g.asc:22: '550\\toops' is not a wavelength/value pair"]),
    ("too few", "f.asc", _asc(n_decl=2, rows="600\t0.1\n550\t0.2\n"), ["2 data point(s)", "at least 3"]),
    ("csv without header", "h.csv", "600,0.1\n550,0.2\n500,0.3\n", ["no column header", "'nm,A'"]),
    ("csv bad unit", "u.csv", "eV,A\n2.0,0.1\n", ["no column header"]),
    ("csv two spectra", "m.csv", "nm,A,A\n500,0.1,0.2\n", ["m.csv:1: 2 ordinate columns", "one spectrum per file"]),
    ("duplicate wavelength", "dup.csv", "nm,A\n500,0.1\n500,0.2\n510,0.3\n", ["a wavelength appears twice"]),
    ("all opaque", "o.csv", "nm,%T\n500,0\n510,-0.1\n520,0\n", ["no point has a finite absorbance"]),
    ("binary", "b.sp", b"PEPE\x00\x01\x02\x00binary", ["a binary file", "ASCII (.asc/.sp) and CSV"]),
    ("empty", "e.csv", "", ["empty file"]),
]


@pytest.mark.parametrize("name,fname,content,words", BAD, ids=[b[0] for b in BAD])
def test_bad_export(tmp_path, name, fname, content, words):
    f = tmp_path / fname
    f.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(AbsorptionImportError) as ei:
        read_export(f)
    msg = str(ei.value)
    assert "\n" not in msg and str(f) in msg
    for w in words:
        assert w in msg, (w, msg)


# ---------------------------------------------------------------------------------------------- import
@pytest.fixture
def campaign(tmp_path):
    """A campaign folder with one PL run (a two-band SL spectrum at 5 K and one at 295 K)."""
    plan = load_plan(Path("plan.toml"), text='sample = "synthetic-sl"\n[[step]]\nprocedure = "PLTemperatureSeries"\n'
                                             'temperatures = [295, 5]\nfluences = [1.0]\ncalibration = "config"\n')
    c = Campaign.create(tmp_path / "camp", plan, {"sim": True})
    it = c.queue.items[0]
    f = write_pl_run(c.folder / c.filename(it, 0), [(295, 0.0), (5, 0.46)], seed=7)
    c.queue.mark(it.id, "done", run_file=str(f))
    return c.folder


def _item9(folder: Path) -> dict:
    res = analyze_paths([folder])
    return next(i for i in res.campaign["checklist"] if i["number"] == 9)


def test_import_reaches_the_verdict(campaign):
    assert _item9(campaign)["status"] == "not measured"
    r = runner.invoke(cli.app, ["absorption", "import", str(CSV_T), "--campaign", str(campaign), "--T-K", "5"])
    assert r.exit_code == 0, r.output
    assert "ordinate %T" in r.output and "at 5 K" in r.output
    index = json.loads((campaign / "campaign.json").read_text())
    entry = index["runs"][-1]
    assert entry["procedure"] == "AbsorptionImport" and entry["status"] == "done"
    assert entry["run_file"] == "001_AbsorptionImport_synthetic-sl.h5" and (campaign / entry["run_file"]).exists()
    it9 = _item9(campaign)
    assert it9["status"] == "pass" and it9["numbers"]["T_K"] == 5.0, it9
    # the same export again is refused (nothing written)
    r = runner.invoke(cli.app, ["absorption", "import", str(CSV_T), "--campaign", str(campaign), "--T-K", "5"])
    assert r.exit_code == 2 and "already imported" in r.output
    assert len(json.loads((campaign / "campaign.json").read_text())["runs"]) == 2


def test_absorbing_at_E_SF_fails_item_9_in_a_plain_folder(tmp_path):
    write_pl_run(tmp_path / "001_PL.h5", [(295, 0.0), (5, 0.46)], seed=7)
    res = import_absorption(MINIBAND, tmp_path, T_K=5.0)
    assert not res.campaign and res.run_file.name == "absorption_5K_miniband_5K_absorbance.h5"
    it9 = _item9(tmp_path)
    assert it9["status"] == "fail" and "absorbs at E_SF" in it9["detail"]


@pytest.mark.parametrize("args,words", [
    (["--T-K", "0.5"], ["temperature 0.5 K is outside 1–400 K"]),
    ([], ["no measurement temperature", "--T-K (1–400 K)", "'T=20 K'"]),
])
def test_temperature_errors(campaign, args, words):
    r = runner.invoke(cli.app, ["absorption", "import", str(CSV_T), "--campaign", str(campaign), *args])
    assert r.exit_code == 2 and (r.exception is None or isinstance(r.exception, SystemExit)), r.output
    out = " ".join(r.output.split())
    for w in words:
        assert w in out, (w, out)
    assert "Traceback" not in r.output
    assert len(json.loads((campaign / "campaign.json").read_text())["runs"]) == 1   # nothing registered


def test_conflicting_temperatures(tmp_path):
    with pytest.raises(AbsorptionImportError, match="--T-K 20 K disagrees with the T = 5 K written in the export"):
        import_absorption(ASC, tmp_path, T_K=20.0)
    assert not list(tmp_path.iterdir())


def test_damaged_campaign_index(tmp_path):
    (tmp_path / "campaign.json").write_text("{")
    r = runner.invoke(cli.app, ["absorption", "import", str(ASC), "--campaign", str(tmp_path)])
    assert r.exit_code == 2 and "campaign.json: not a readable campaign index" in " ".join(r.output.split())
