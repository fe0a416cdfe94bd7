"""Damaged, foreign and partial files through every command that reads a run file: exit code 2, the
file named, what is wrong said, no traceback, no hang (a generous timeout; the time each command takes
is printed, not asserted)."""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from acq import cli
from acq.clock import SimClock
from acq.enginecheck import EngineCheck
from acq.fakes import fake_lab_roles
from acq.lab import Lab
from acq.runner import Runner
from acq.store import RunFileError, open_run

pytestmark = pytest.mark.timeout(300)
runner = CliRunner()
COMMANDS = ("analyze", "inspect", "replay", "repair", "resume")


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("good")
    clock = SimClock(math.inf)
    roles, _log, _world = fake_lab_roles(clock)
    p = d / "good.h5"
    res = Runner(EngineCheck(temperatures=[80.0, 40.0, 20.0], hold=1.0, decay_time=0.1, g2_time=0.1),
                 Lab(roles, clock=clock), p, clock=clock).run()
    assert res.exit_status == "success"
    return p


def _damaged(good: Path, folder: Path) -> dict[str, Path]:
    data = good.read_bytes()
    out: dict[str, Path] = {}
    for label, cut in (("cut-4KiB", 4096), ("cut-50pc", len(data) // 2), ("cut-90pc", len(data) * 9 // 10),
                       ("cut-last-100B", len(data) - 100)):
        p = folder / f"{label}.h5"
        p.write_bytes(data[:cut])
        out[label] = p
    p = folder / "zero-bytes.h5"
    p.write_bytes(b"")
    out["zero bytes"] = p
    p = folder / "text.h5"
    p.write_text("this is not HDF5\n")
    out["not HDF5"] = p
    p = folder / "a-directory.h5"
    p.mkdir()
    out["directory"] = p
    p = folder / "foreign.h5"
    with h5py.File(p, "w") as f:
        f["data"] = np.arange(10)
        f.create_group("entry")["x"] = 1.0
    out["foreign HDF5"] = p
    p = folder / "only-completed.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("entry/scan/completed", data=np.ones(3, "u1"))
    out["only /entry/scan/completed"] = p
    p = folder / "no-point-id.h5"
    shutil.copy(good, p)
    with h5py.File(p, "a") as f:
        del f["entry/scan/point_id"]
    out["missing dataset"] = p
    p = folder / "bad-json.h5"
    shutil.copy(good, p)
    with h5py.File(p, "a") as f:
        del f["entry/parameters"]
        f["entry"].create_dataset("parameters", data="{temperatures: [80, 40", dtype=h5py.string_dtype())
    out["bad JSON parameters"] = p
    p = folder / "short-stream.h5"
    shutil.copy(good, p)
    with h5py.File(p, "a") as f:
        f["entry/spectrum/counts"].resize(1, axis=0)
    out["stream shorter than its points"] = p
    return out


def test_open_run_names_the_file_and_the_problem(good, tmp_path):
    for label, p in _damaged(good, tmp_path).items():
        t0 = time.perf_counter()
        with pytest.raises(RunFileError) as ei:
            open_run(p)
        dt = time.perf_counter() - t0
        assert str(p) in str(ei.value), label
        print(f"open_run {label}: {dt * 1000:.1f} ms — {ei.value.problem}")
    assert "not valid JSON" in str(pytest.raises(RunFileError, open_run, tmp_path / "bad-json.h5").value)
    assert "truncated" in str(pytest.raises(RunFileError, open_run, tmp_path / "cut-50pc.h5").value)


def test_every_command_exits_2_naming_the_file(good, tmp_path):
    files = _damaged(good, tmp_path)
    worst = 0.0
    for label, p in files.items():
        for cmd in COMMANDS:
            args = [cmd, str(p)] + (["--out", str(tmp_path / "replay-out")] if cmd == "replay" else [])
            t0 = time.perf_counter()
            r = runner.invoke(cli.app, args)
            dt = time.perf_counter() - t0
            worst = max(worst, dt)
            out = r.output
            assert r.exit_code == 2, f"{cmd} {label}: exit {r.exit_code}\n{out}\n{r.exception!r}"
            assert "Traceback" not in out, f"{cmd} {label}:\n{out}"
            assert p.name in out.replace("\n", ""), f"{cmd} {label} does not name the file:\n{out}"
            print(f"{cmd:8s} {label:32s} {dt * 1000:7.1f} ms  {out.strip().splitlines()[0][:100]}")
    # a damaged file is never moved or replaced by the commands that refuse it
    assert all(p.exists() for p in files.values())
    print(f"slowest: {worst * 1000:.0f} ms over {len(files)} files x {len(COMMANDS)} commands")
