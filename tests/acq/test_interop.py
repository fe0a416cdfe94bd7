"""Every kind of run file, made once (tests/acq/runkinds.py): nxcheck (nexusformat) reports 0 errors, every
numeric dataset has ASCII @units, its Bluesky documents validate, the PTU export reads back identically with
ptufile and tttrlib, the text export carries units, temperature and fluence."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from acq.documents import documents_from_file, validate_document
from acq.export import ExportError, export_photon_hdf5, export_ptu, export_text, read_sidecar_tags, sidecar_to_ptu
from acq.store import open_run

from .runkinds import make_all

pytestmark = pytest.mark.timeout(240)
NXCHECK = Path(sys.executable).with_name("nxcheck")
T3_FILE = Path("/work/shared/data/picoquant/hydraharp/v20_t3.ptu")


@pytest.fixture(scope="module")
def kinds(tmp_path_factory):
    return make_all(tmp_path_factory.mktemp("kinds"))


def test_nxcheck_reports_no_error_on_any_kind_of_run_file(kinds):
    if not NXCHECK.exists():
        pytest.skip("nxcheck (nexusformat) not installed")
    # nxcheck's own main() on each file, in one interpreter (one import of nexusformat for all files)
    code = ("import sys\nfrom nexusformat.scripts.nxcheck import main\n"
            "for f in sys.argv[1:]:\n"
            "    print('=== ' + f, flush=True)\n"
            "    sys.argv = ['nxcheck', '-e', f]\n"
            "    main()\n"
            "    sys.stdout.flush(); sys.stderr.flush()\n")
    paths = [str(p) for p in kinds.values()]
    r = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, text=True, timeout=180)
    text = re.sub(r"\x1b\[[0-9;]*m", "", r.stdout + r.stderr)
    assert r.returncode == 0, text[-3000:]
    assert text.count("Total number of errors: 0") == len(paths), text[-4000:]
    assert "Total number of errors: 1" not in text and "no NeXus base class" not in text, text[-4000:]
    # the HBT file's sidecar links resolve to a classed group
    with h5py.File(kinds["hbt"], "r") as f:
        raw = f["entry/g2/raw"]
        assert len(raw) == 1 and raw["point_000000"].attrs["NX_class"] == "NXcollection"


def test_units_on_every_numeric_dataset_ascii_with_the_pretty_form_in_long_name(kinds):
    for kind, path in kinds.items():
        missing, non_ascii = [], []

        def visit(name, obj, missing=missing, non_ascii=non_ascii):
            if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "biufc":
                u = obj.attrs.get("units")
                if u is None:
                    missing.append(name)
                elif not str(u).isascii():
                    non_ascii.append((name, u))

        with h5py.File(path, "r") as f:
            f.visititems(visit)
        assert not missing and not non_ascii, (kind, missing[:10], non_ascii[:10])
    with h5py.File(kinds["calibration"], "r") as f:
        d = f["entry/calibration/fluence_uJcm2"]
        assert d.attrs["units"] == "uJ/cm^2" and "µJ/cm²" in d.attrs["long_name"]
        assert f["entry/calibration/transmission"].attrs["units"] == ""
        assert f["entry/scan/timestamp"].attrs["units"] == "s"


def test_documents_of_every_kind_validate_one_event_per_point_and_stream(kinds):
    for kind, path in kinds.items():
        run = open_run(path)
        docs = list(documents_from_file(path))
        for name, doc in docs:
            validate_document(name, doc)
        n_desc = sum(1 for n, _ in docs if n == "descriptor")
        assert sum(1 for n, _ in docs if n == "event") == run.n_points * n_desc, kind
        assert docs[-1][0] == "stop"
        want = {"success": "success", "aborted": "abort", "interrupted": "abort", "failed": "fail"}[run.exit_status]
        assert docs[-1][1]["exit_status"] == want, kind


def _ptu_read(path):
    import ptufile
    import tttrlib

    with ptufile.PtuFile(path) as p:
        rec = p.decode_records()
        gres = float(p.global_resolution)
    ph = rec["channel"] >= 0
    a = {"time": rec["time"][ph].astype(np.int64), "channel": rec["channel"][ph].astype(np.int64),
         "dtime": rec["dtime"][ph].astype(np.int64) if "dtime" in rec.dtype.names else None, "gres": gres}
    t = tttrlib.TTTR(str(path), "PTU")
    b = {"time": np.asarray(t.macro_times, np.int64), "channel": np.asarray(t.routing_channels, np.int64),
         "dtime": np.asarray(t.micro_times, np.int64), "gres": float(t.header.macro_time_resolution)}
    return a, b


def test_ptu_t2_export_of_the_hbt_run_reads_back_identically_with_ptufile_and_tttrlib(kinds, tmp_path):
    files = export_ptu(kinds["hbt"], tmp_path)
    assert len(files) == 1
    run = open_run(kinds["hbt"])
    side = read_sidecar_tags(run.path.parent / run.sidecars["g2"][0])
    assert side["nanotimes"] is None and side["times_ps"].size > 100
    a, b = _ptu_read(files[0])
    for got in (a, b):
        np.testing.assert_array_equal(got["time"], side["times_ps"])            # 1 ps global resolution
        np.testing.assert_array_equal(got["channel"], side["detectors"])
        assert got["gres"] == pytest.approx(1e-12)
    # overflow records were needed (tags span many 2^25 ps wraps) and both readers agree on them
    assert side["times_ps"][-1] > 50 * 2**25


@pytest.mark.skipif(not T3_FILE.exists(), reason="HydraHarp T3 file not present")
def test_ptu_t3_export_of_a_tcspc_sidecar_reads_back_identically(tmp_path):
    from acq.clock import SimClock
    from acq.photon_hdf5 import write_sidecar
    from drivers.picoharp300 import PicoHarp300
    from simulators.replay import replay_phlib

    clock = SimClock()
    ph = PicoHarp300("", clock=clock, phlib=replay_phlib(T3_FILE, clock=clock), binning=4)
    ph.connect()
    ts = ph.stream(2.0, mode="t3")
    side = write_sidecar(tmp_path / "t3.h5", ts, description="replay of v20_t3.ptu")
    tags = read_sidecar_tags(side)
    out = sidecar_to_ptu(side, tmp_path / "t3.ptu")
    a, b = _ptu_read(out)
    period, unit_ps = tags["sync_period_ps"], tags["tcspc_unit_s"] * 1e12
    for got in (a, b):
        np.testing.assert_array_equal(got["dtime"], tags["nanotimes"])
        np.testing.assert_array_equal(got["channel"], tags["detectors"])
        # the photon times the sidecar holds, from the PTU's sync count and micro time
        np.testing.assert_array_equal(np.rint(got["time"] * period + got["dtime"] * unit_ps).astype(np.int64),
                                      tags["times_ps"])
        assert got["gres"] == pytest.approx(period * 1e-12, rel=1e-12)
        assert got["time"].size > 1000
    # and the recorded nsync of the replayed stream itself
    np.testing.assert_array_equal(a["time"], ts.meta["nsync"])


def test_photon_hdf5_and_text_exports(kinds, tmp_path):
    from acq.photon_hdf5 import validate_sidecar

    ph = export_photon_hdf5(kinds["hbt"], tmp_path / "ph")
    assert len(ph) == 1
    validate_sidecar(ph[0])
    with pytest.raises(ExportError, match="no raw time tags"):
        export_ptu(kinds["pl"], tmp_path)
    files = export_text(kinds["pl"], tmp_path / "txt")
    run = open_run(kinds["pl"])
    spec = next(p for p in files if p.name.endswith(".spectrum.txt"))
    text = spec.read_text(encoding="utf-8")
    head = [ln for ln in text.splitlines() if ln.startswith("#")]
    assert any("procedure: PLTemperatureSeries" in ln for ln in head)
    assert any("T (K) = 80" in ln or "T (K) = 79" in ln or "T (K) = 80." in ln for ln in head), head
    assert any("fluence (uJ/cm^2)" in ln for ln in head)
    cols = next(ln for ln in text.splitlines() if not ln.startswith("#")).split("\t")
    assert cols[0].startswith("wavelength (nm)") and len(cols) == 1 + run.n_points
    data = np.loadtxt(spec, comments="#", skiprows=len(head) + 1, delimiter="\t")
    np.testing.assert_allclose(data[:, 0], run.static_axes["spectrum"]["wavelength"], rtol=1e-8)
    np.testing.assert_allclose(data[:, 1:].T, run.streams["spectrum"]["counts"], rtol=1e-8)
    pts = next(p for p in files if p.name.endswith(".spectrum.points.txt"))
    assert "timestamp (s)" in pts.read_text(encoding="utf-8")


def test_analyze_on_a_dask_cluster_gives_the_serial_verdicts(kinds):
    """`sflab analyze --workers 2` and the default single-process path agree on every verdict (recomputed)."""
    import json

    from typer.testing import CliRunner

    from acq import cli

    files = [str(kinds[k]) for k in ("calibration", "hbt", "aborted")]   # three verdict kinds, fast fits
    runner = CliRunner()
    serial = runner.invoke(cli.app, ["analyze", *files, "--json", "--recompute"])
    assert serial.exit_code == 0, serial.output[-2000:]
    par = runner.invoke(cli.app, ["analyze", *files, "--json", "--recompute", "--workers", "2"])
    assert par.exit_code == 0, par.output[-2000:]
    a, b = json.loads(serial.stdout), json.loads(par.stdout)
    assert a["verdict"] == b["verdict"] and a["verdict"] is not None
    assert list(a["runs"]) == list(b["runs"]) == [Path(f).name for f in files]
    for name in a["runs"]:
        assert a["runs"][name].get("verdict") == b["runs"][name].get("verdict"), name
        assert a["runs"][name].get("headline") == b["runs"][name].get("headline"), name
    assert a["campaign"]["verdict"] == b["campaign"]["verdict"]
    assert a["campaign"].get("headline") == b["campaign"].get("headline")
    assert a["campaign"].get("checklist") == b["campaign"].get("checklist")


def test_analyze_cluster_arguments():
    from acq.cluster import distributed_summaries

    with pytest.raises(ValueError, match="either workers"):
        distributed_summaries(["x.h5"])
    with pytest.raises(ValueError, match="either workers"):
        distributed_summaries(["x.h5"], workers=2, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(ValueError, match="≥ 1"):
        distributed_summaries(["x.h5"], workers=0)


def test_export_command(kinds, tmp_path):
    from typer.testing import CliRunner

    from acq import cli

    r = CliRunner().invoke(cli.app, ["export", str(kinds["hbt"]), "--out", str(tmp_path / "all")])
    assert r.exit_code == 0, r.output
    assert "ptu: 1 file(s)" in r.output and "photon-hdf5: 1 file(s)" in r.output and "text:" in r.output
    assert len(list((tmp_path / "all").glob("*.ptu"))) == 1 and list((tmp_path / "all").glob("*.txt"))
    r = CliRunner().invoke(cli.app, ["export", str(kinds["pl"]), "--to", "ptu", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "skipped" in r.output and "no raw time tags" in r.output
    r = CliRunner().invoke(cli.app, ["export", str(kinds["pl"]), "--to", "xls"])
    assert r.exit_code == 2 and "unknown export format 'xls'" in r.output and "choose from ptu" in r.output
    r = CliRunner().invoke(cli.app, ["export", str(tmp_path / "missing.h5")])
    assert r.exit_code == 2 and "missing.h5: no such file" in r.output
