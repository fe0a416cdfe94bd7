"""A writer killed with SIGKILL between two points leaves a file whose completed points are intact."""

import os
import signal
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from acq.store import open_run, repair

from .conftest import point_data


@pytest.mark.timeout(120)
def test_sigkill_mid_run_keeps_every_completed_point(tmp_path, streams):
    p = tmp_path / "killed.h5"
    code = textwrap.dedent(f"""
        import sys
        import numpy as np
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from conftest import point_data, streams
        from acq.store import RunWriter
        w = RunWriter({str(p)!r}, procedure="T", parameters={{}}, streams=streams.__wrapped__(),
                      readbacks={{"cryostat": {{"T_sample": "K"}}}})
        i = 0
        while True:
            w.append(point_data(i), {{"cryostat": {{"T_sample": 300.0 - i}}}})
            print(i, flush=True)
            i += 1
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    reported = -1
    for line in proc.stdout:
        reported = int(line)
        if reported >= 40:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # a plain (non-SWMR) open fails on such a file; the reader always uses SWMR
    with pytest.raises(OSError):
        h5py.File(p, "r")
    r = open_run(p)
    assert r.exit_status == "running"
    assert r.n_points >= reported + 1  # every point the writer reported complete is there
    for i in range(r.n_points):
        exp = point_data(i)
        assert np.array_equal(r.streams["spectrum"]["counts"][i], exp["spectrum"]["counts"])
        assert np.array_equal(r.streams["decay"]["counts"][i], exp["decay"]["counts"])
        assert np.array_equal(r.streams["g2"]["counts"][i], exp["g2"]["counts"])
        assert r.streams["spectrum"]["T"][i] == 300.0 - i
        assert r.readbacks["cryostat"]["T_sample"][i] == 300.0 - i
    assert list(r.point_id) == list(range(r.n_points))
    n = r.n_points
    repair(p)
    clean = open_run(p)
    assert clean.n_points == n and clean.exit_status == "interrupted"
    with h5py.File(p, "r") as f:
        assert f["entry/scan/completed"].shape == (n,)
