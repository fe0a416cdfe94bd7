"""`sflab serve`: a Tiled server over a data folder on a free loopback port with an API key; a Tiled client
lists the campaign, reads a finished run's spectrum and metadata, and sees a running run's points grow."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from acq.clock import SimClock
from acq.enginecheck import EngineCheck
from acq.fakes import fake_lab_roles
from acq.lab import Lab
from acq.runner import Runner
from acq.store import Field, RunWriter, Stream, open_run

pytest.importorskip("tiled.client")
pytestmark = pytest.mark.timeout(120)
KEY = "sflabtest0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(predicate, what, timeout=60.0):
    """Poll a state until it holds; the timeout only bounds a hung server (never a timing assertion)."""
    end = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def server(tmp_path):
    data = tmp_path / "data"
    camp = data / "20260101-000000_fake"
    camp.mkdir(parents=True)
    clock = SimClock(math.inf)
    roles, _log, _world = fake_lab_roles(clock)
    res = Runner(EngineCheck(temperatures=[290.0, 40.0], n_pixels=64, hold=1.0), Lab(roles, clock=clock),
                 camp / "000_EngineCheck.h5", clock=clock).run()
    assert res.exit_status == "success"
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    env.pop("SFLAB_SERVE_API_KEY", None)
    proc = subprocess.Popen([sys.executable, "-m", "acq.cli", "serve", str(data), "--port", str(port),
                             "--api-key", KEY], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()          # blocks until the server listens (or exits)
        assert line, proc.stderr.read()[-3000:]
        info = json.loads(line)
        assert info["url"] == f"http://127.0.0.1:{port}" and info["api_key"] == KEY
        yield info["url"], camp
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_tiled_client_reads_a_finished_run_and_follows_a_running_one(server):
    import httpx
    from tiled.client import from_uri
    from tiled.client.utils import ClientError

    url, camp = server
    with pytest.raises(ClientError, match="401"):      # API-key authentication is on
        from_uri(url, api_key="wrong0key")
    assert httpx.get(f"{url}/api/v1/metadata/").status_code == 401
    c = from_uri(url, api_key=KEY)
    assert list(c) == [camp.name]
    runs = c[camp.name]
    assert "000_EngineCheck" in list(runs)
    node = runs["000_EngineCheck"]
    ref = open_run(camp / "000_EngineCheck.h5")
    assert node.metadata["run_uid"] == ref.run_uid and node.metadata["exit_status"] == "success"
    assert node.metadata["procedure"] == "EngineCheck" and node.metadata["n_points"] == 2
    spec = node["spectrum"]
    np.testing.assert_array_equal(spec["counts"].read(), ref.streams["spectrum"]["counts"])
    np.testing.assert_array_equal(spec["wavelength"].read(), ref.static_axes["spectrum"]["wavelength"])
    assert spec["counts"].metadata["units"] == "counts" and spec["wavelength"].metadata["units"] == "nm"
    np.testing.assert_array_equal(node["scan"]["timestamp"].read(), ref.timestamp)

    # a run still being written (SWMR) by another writer: its points appear as they are completed
    w = RunWriter(camp / "001_Live.h5", procedure="Live", parameters={"n": 5},
                  streams=[Stream("spectrum", (Field("counts", (8,), "f4", "counts"), Field("T", (), "f8", "K")),
                                  "counts", ("T", "."))])
    try:
        def n_points():
            if "001_Live" not in list(c[camp.name]):
                return None
            return c[camp.name]["001_Live"].metadata["n_points"]

        assert _wait_for(lambda: n_points() is not None, "the new run to be listed") is not None
        assert n_points() == 0
        for i in range(2):
            w.append({"spectrum": {"counts": np.full(8, i, "f4"), "T": 300.0 - i}}, timestamp=1000.0 + i)
        _wait_for(lambda: n_points() == 2, "2 points")
        for i in range(2, 5):
            w.append({"spectrum": {"counts": np.full(8, i, "f4"), "T": 300.0 - i}}, timestamp=1000.0 + i)
        _wait_for(lambda: n_points() == 5, "5 points")
        live = c[camp.name]["001_Live"]
        assert live.metadata["exit_status"] == "running"
        np.testing.assert_array_equal(live["spectrum"]["counts"].read()[:, 0], [0, 1, 2, 3, 4])
        np.testing.assert_array_equal(live["spectrum"]["T"].read(), [300.0, 299.0, 298.0, 297.0, 296.0])
    finally:
        w.finish("success")
        w.close()
    assert c[camp.name]["001_Live"].metadata["exit_status"] == "success"


def test_serve_refuses_a_non_loopback_host_without_expose(tmp_path):
    from typer.testing import CliRunner

    from acq import cli

    r = CliRunner().invoke(cli.app, ["serve", str(tmp_path), "--host", "0.0.0.0", "--api-key", KEY])
    assert r.exit_code == 2 and "--expose" in r.output
    r = CliRunner().invoke(cli.app, ["serve", str(tmp_path / "missing"), "--api-key", KEY])
    assert r.exit_code == 2 and "no data folder" in r.output
