"""Repair and resume keep the provenance of the original: start_time, title, every attribute of ``/``
and ``/entry``, point ids and timestamps; a resumed simulated run's timestamps never go back, even when
its lab clock restarts earlier than the recorded points."""

from __future__ import annotations

import math
import os

import h5py
import numpy as np
import pytest

from acq import crashpoints
from acq.clock import SimClock
from acq.fakes import fake_lab_roles
from acq.lab import Lab
from acq.runner import Runner
from acq.store import open_run, repair

from .test_runner import Series

pytestmark = pytest.mark.timeout(120)
T0 = 1.8e9   # the simulated lab's start (POSIX s)
EXTRA = {"/": {"file_name": "run.h5", "facility": "cryo lab B", "NX_class": "NXroot"},
         "/entry": {"experiment_identifier": "SF-2026-11", "custom_list": np.array([1, 2, 3])}}


def _killed_run(path, n_before_kill: int, n: int = 5) -> None:
    """A run whose writer dies (os._exit, like kill -9) right after point ``n_before_kill - 1``."""
    pid = os.fork()
    if pid == 0:
        try:
            os.environ[crashpoints.ENV] = f"run:point:{n_before_kill - 1}"
            clock = SimClock(math.inf, start=T0)
            roles, _log, _world = fake_lab_roles(clock)
            Runner(Series(n=n), Lab(roles, clock=clock), path, clock=clock, title="provenance test run").run()
        finally:
            os._exit(1)
    _, st = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(st) == 137


def _attrs(path):
    with h5py.File(path, "r") as f:
        return {k: dict(f[k].attrs) for k in ("/", "/entry")}


def _add_extra_attrs(path):
    """Attributes another writer version (or a person) put on the file; a copy must keep them."""
    with h5py.File(path, "r+", libver="latest") as f:
        for where, at in EXTRA.items():
            for k, v in at.items():
                f[where].attrs[k] = v


def _same_attrs(a, b):
    assert set(a) == set(b)
    for where in a:
        assert set(a[where]) == set(b[where]), where
        for k in a[where]:
            np.testing.assert_array_equal(a[where][k], b[where][k], err_msg=f"{where}@{k}")


def test_repair_keeps_start_time_title_attributes_and_timestamps(tmp_path):
    p = tmp_path / "run.h5"
    _killed_run(p, 3)
    before = open_run(p)
    assert before.swmr_flagged and before.n_points == 3
    # the killed file keeps the SWMR flag: add the extra attributes to a repaired copy first, then
    # kill-and-repair again from that state
    repair(p)
    _add_extra_attrs(p)
    ref = open_run(p)
    ref_attrs = _attrs(p)
    repair(p)                                    # a second repair of an already clean file
    after = open_run(p)
    assert after.start_time == before.start_time == ref.start_time
    assert after.title == before.title == "provenance test run"
    _same_attrs(ref_attrs, _attrs(p))
    np.testing.assert_array_equal(after.timestamp, before.timestamp)
    np.testing.assert_array_equal(after.point_id, before.point_id)
    assert after.run_uid == before.run_uid and after.parameters == before.parameters


def test_resume_keeps_attributes_and_timestamps_stay_monotonic(tmp_path):
    p = tmp_path / "run.h5"
    _killed_run(p, 2, n=5)
    repair(p)
    _add_extra_attrs(p)
    ref_attrs = _attrs(p)
    before = open_run(p)
    lab_end = before.timestamp[-1]
    assert lab_end > T0 + 60                     # the first run spent lab time
    clock = SimClock(math.inf, start=T0)         # a new process: the simulated clock restarts at T0
    roles, _log, _world = fake_lab_roles(clock)
    res = Runner(Series(n=5), Lab(roles, clock=clock), p, clock=clock, resume=True, title="ignored").run()
    assert res.exit_status == "success", res.error
    d = open_run(p)
    assert d.n_points == 5 and list(d.point_id) == [0, 1, 2, 3, 4] and d.resumed_at == [2]
    assert d.start_time == before.start_time and d.title == "provenance test run"
    _same_attrs(ref_attrs, _attrs(p))
    np.testing.assert_array_equal(d.timestamp[:2], before.timestamp)
    assert np.all(np.diff(d.timestamp) > 0), d.timestamp - T0
    t_events = [e["t"] for e in d.events]
    assert all(b >= a for a, b in zip(t_events, t_events[1:], strict=False)), "event times go back"
    ev = [e for e in d.events if e["kind"] == "resume"][-1]
    assert ev["t_shift_s"] > 0 and "never goes back" in ev["message"]
