import json
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from acq.store import RunWriter, open_run, post_run_update, repair

from .conftest import point_data


def write(path, streams, n, status="success"):
    w = RunWriter(path, procedure="T", parameters={"temperatures": [1, 2]}, streams=streams,
                  readbacks={"cryostat": {"T_sample": "K", "heater": "%"}}, default_stream="spectrum",
                  sample={"name": "s", "truth": {"tau_ps": 100.0}}, config={"x": 1})
    for i in range(n):
        w.append(point_data(i), {"cryostat": {"T_sample": 300.0 - i, "heater": 5.0}},
                 sidecars={"decay": f"raw/p{i}.h5"})
    if status:
        w.finish(status, backstop={"xray": "ok"})
    w.close()
    return w


def test_roundtrip_and_metadata(tmp_path, streams):
    p = tmp_path / "run.h5"
    write(p, streams, 7)
    r = open_run(p)
    assert r.n_points == 7 and r.exit_status == "success" and r.procedure == "T"
    assert r.parameters == {"temperatures": [1, 2]}
    assert np.array_equal(r.streams["spectrum"]["T"], 300.0 - np.arange(7))
    assert r.streams["decay"]["counts"].shape == (7, 4096)
    assert r.readbacks["cryostat"]["T_sample"][3] == 297.0
    assert r.truth == {"tau_ps": 100.0}
    assert r.backstop == {"xray": "ok"}
    assert r.sidecars["decay"][2] == "raw/p2.h5"
    assert r.units["spectrum"]["wavelength"] == "nm"
    assert r.end_time.startswith("20")
    assert r.software["h5py"] == h5py.__version__


def test_nexus_default_signal_axes(tmp_path, streams):
    p = tmp_path / "run.h5"
    write(p, streams, 3)
    with h5py.File(p, "r") as f:
        assert f.attrs["default"] == "entry"
        e = f["entry"]
        assert e.attrs["NX_class"] == "NXentry" and e.attrs["default"] == "spectrum"
        g = e["spectrum"]
        assert g.attrs["NX_class"] == "NXdata" and g.attrs["signal"] == "counts"
        assert list(g.attrs["axes"]) == ["T", "wavelength"]
        assert g.attrs["T_indices"] == 0 and g.attrs["wavelength_indices"] == 1
        assert g["counts"].chunks == (1, 1024)
        for name in ("counts", "T", "wavelength"):
            assert g[name].attrs["units"]
    from nexusformat.nexus import nxload

    root = nxload(str(p))
    plot = root.plottable_data
    assert plot.nxsignal.nxname == "counts" and plot.nxsignal.shape == (3, 1024)
    assert [a.nxname for a in plot.nxaxes] == ["T", "wavelength"]
    root.nxfile.close()


def test_silx_opens_run_file(tmp_path, streams):
    silx_io = pytest.importorskip("silx.io")
    from silx.io import nxdata

    p = tmp_path / "run.h5"
    write(p, streams, 3)
    with silx_io.open(str(p)) as f:
        default = nxdata.get_default(f)
        assert default is not None and default.is_valid
        assert default.signal.shape == (3, 1024)
        assert [a.name.split("/")[-1] for a in default.axes] == ["T", "wavelength"]


@pytest.mark.timeout(120)
def test_silx_viewer_opens_the_default_plot(tmp_path, streams, monkeypatch):
    """What `silx view run.h5` shows first: the NXdata that @default points to, as a plot."""
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    pytest.importorskip("qtawesome")
    import silx.io
    from silx.gui import qt
    from silx.gui.data.DataViewerFrame import DataViewerFrame

    p = tmp_path / "run.h5"
    write(p, streams, 3)
    app = qt.QApplication.instance() or qt.QApplication([])
    with silx.io.open(str(p)) as h:
        frame = DataViewerFrame()
        frame.setData(h)
        app.processEvents()
        view = frame.displayedView()
        assert "NXdata" in type(view).__name__, type(view).__name__
        frame.close()
        frame.deleteLater()
        app.processEvents()


def test_unfinished_rows_not_returned(tmp_path, streams):
    p = tmp_path / "run.h5"
    w = RunWriter(p, procedure="T", parameters={}, streams=streams)
    for i in range(3):
        w.append(point_data(i))
    # simulate a point whose data rows were written but whose completed flag was not
    e = w._f["entry"]
    for name in ("counts", "T"):
        d = e["spectrum"][name]
        d.resize(4, axis=0)
    w._f.flush()
    r = open_run(p)
    assert r.n_points == 3 and r.exit_status == "running"
    assert r.streams["spectrum"]["counts"].shape == (3, 1024)
    w.close()


def test_bad_input_rejected(tmp_path, streams):
    p = tmp_path / "run.h5"
    w = RunWriter(p, procedure="T", parameters={}, streams=streams)
    with pytest.raises(KeyError, match="not declared"):
        w.append({"nope": {}})
    with pytest.raises(ValueError, match="shape"):
        w.append({"spectrum": {"counts": np.zeros(10)}})
    with pytest.raises(ValueError, match="exit_status"):
        w.finish("great")
    w.close()
    with pytest.raises(FileExistsError):
        RunWriter(p, procedure="T", parameters={}, streams=streams)


def test_reader_in_another_process_sees_points_while_writing(tmp_path, streams):
    p = tmp_path / "live.h5"
    w = RunWriter(p, procedure="T", parameters={}, streams=streams)
    for i in range(5):
        w.append(point_data(i))
    code = textwrap.dedent(f"""
        import json
        from acq.store import open_run
        r = open_run({str(p)!r})
        print(json.dumps([r.n_points, r.exit_status, float(r.streams['spectrum']['counts'][-1][0])]))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [5, "running", 4.0]
    w.append(point_data(5))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert json.loads(out.stdout)[0] == 6
    w.finish("success")
    w.close()


def test_post_run_update_adds_analysis_and_external_links(tmp_path, streams):
    p = tmp_path / "run.h5"
    (tmp_path / "raw").mkdir()
    for i in range(2):
        with h5py.File(tmp_path / "raw" / f"p{i}.h5", "w") as f:
            f["photon_data/timestamps"] = np.arange(10) + i
    write(p, streams, 2)
    post_run_update(p, analysis={"verdict": "SF", "sf_fraction": 0.4})
    r = open_run(p)
    assert r.analysis == {"verdict": "SF", "sf_fraction": 0.4}
    with h5py.File(p, "r") as f:
        assert f["entry/analysis/sf_fraction"][()] == 0.4
        link = f["entry/decay/raw"].get("point_000001", getlink=True)
        assert isinstance(link, h5py.ExternalLink) and link.filename == "raw/p1.h5"
    with h5py.File(p, "r") as f:  # resolves relative to the run file's folder
        assert f["entry/decay/raw/point_000001/photon_data/timestamps"][0] == 1


def test_repair_keeps_original_and_completed_points(tmp_path, streams):
    p = tmp_path / "run.h5"
    write(p, streams, 4, status=None)  # closed without a final status (like a crash)
    out = repair(p)
    assert out == p and (tmp_path / "run.interrupted.h5").exists()
    r = open_run(p)
    assert r.n_points == 4 and r.exit_status == "interrupted"
    assert any(e["kind"] == "repair" for e in r.events)
    with h5py.File(p, "r") as f:  # a clean file: opens without SWMR
        assert f["entry/scan/completed"].shape == (4,)
