"""Conditions watched continuously: the interlock opening in the middle of a point is noticed within
one keep-alive period, written to the file as an event, the point is flagged (not kept as good, not
re-taken under dose) and the run suspended; a suspension that never ends fails the run with its reason."""

from __future__ import annotations

import math

import numpy as np
import pytest

from acq.clock import SimClock
from acq.fakes import fake_lab_roles
from acq.lab import Lab
from acq.runner import Runner, Suspender, interlock_open
from acq.store import open_run

from .test_runner import Series

pytestmark = pytest.mark.timeout(120)


def _lab():
    clock = SimClock(math.inf)
    roles, log, world = fake_lab_roles(clock)
    return Lab(roles, clock=clock), world, clock


def test_interlock_opening_mid_point_event_flag_and_suspension(tmp_path):
    lab, world, clock = _lab()
    opened: dict[str, float] = {}

    def open_door(proc):   # point 2: a door is opened while the X-ray is on, closed 20 s later
        def at_xray_on():
            if world.hv_on and "t" not in opened:
                opened["t"], opened["now"] = clock.monotonic(), clock.now()
                world.interlock_closed = False
                world.hv_on, world.kV, world.mA, world.shutter_open = False, 0.0, 0.0, False   # the generator drops HV
            elif "t" in opened and clock.monotonic() - opened["t"] >= 20.0:
                world.interlock_closed = True
        proc._door = clock.call_every(0.25, at_xray_on, name="door")

    p = Series(n=4)
    p.hooks = {2: open_door}
    r = Runner(p, lab, tmp_path / "run.h5", clock=clock, suspenders=[interlock_open(settle_s=5.0, poll_s=1.0)])
    res = r.run()
    assert res.exit_status == "success", res.error
    d = open_run(tmp_path / "run.h5")
    assert d.n_points == 4
    np.testing.assert_array_equal(d.flags, [0, 0, 1, 0])         # the point is marked, not kept as good
    conds = [e for e in d.events if e["kind"] == "condition"]
    names = {e["condition"] for e in conds}
    assert names == {"hv_drop"}                                   # the keep-alive's status poll saw it
    assert all(e["point"] == 2 for e in conds) and "interlock opened" in conds[0]["message"]
    first = min(e["t"] for e in conds)
    assert first - opened["now"] <= lab.xray.KEEPALIVE_S + 1e-6   # noticed within one keep-alive period
    flag = [e for e in d.events if e["kind"] == "flag"]
    assert len(flag) == 1 and flag[0]["point"] == 2 and "not re-taken" in flag[0]["message"]
    assert len(d.suspensions) == 1
    s = d.suspensions[0]
    # the suspension acts within the point (decision 0009: every wait polls), which is kept, not retaken
    assert s["before_point"] == 2 and "interlock" in s["reason"] and s["duration_s"] >= 5.0
    assert not s["timed_out"]


def test_a_suspension_that_never_ends_fails_the_run_with_its_reason(tmp_path):
    lab, world, clock = _lab()
    broken = Suspender("temperature_band", lambda _lab: "check failed: input B reading invalid",
                       settle_s=60.0, poll_s=1.0)
    r = Runner(Series(n=3), lab, tmp_path / "run.h5", clock=clock, suspenders=[broken], max_suspension_s=600.0)
    res = r.run()
    assert res.exit_status == "failed"
    assert "SuspensionTimeout" in res.error and "more than 600 s" in res.error and "input B" in res.error
    d = open_run(tmp_path / "run.h5")
    assert d.exit_status == "failed" and d.suspensions[-1]["timed_out"]
    assert 600.0 <= d.suspensions[-1]["duration_s"] <= 602.0
    assert all(v == "ok" for v in res.backstop.values())


def test_count_rate_overload_mid_point_is_flagged_and_suspends(tmp_path):
    lab, world, clock = _lab()
    from acq.runner import count_rate_above

    def flash(proc):   # point 1: the detector sees a flash for 8 s while the point is measured
        t0 = clock.monotonic()

        def step():
            dt = clock.monotonic() - t0
            world.count_rate = 5e7 if 3.0 <= dt < 11.0 else 2e4
        proc._flash = clock.call_every(0.25, step, name="flash")

    p = Series(n=3)
    p.hooks = {1: flash}
    res = Runner(p, lab, tmp_path / "run.h5", clock=clock,
                 suspenders=[count_rate_above(5e6, settle_s=2.0, poll_s=1.0)]).run()
    assert res.exit_status == "success", res.error
    d = open_run(tmp_path / "run.h5")
    np.testing.assert_array_equal(d.flags, [0, 1, 0])
    (cond,) = [e for e in d.events if e["kind"] == "condition"]
    assert cond["condition"] == "count_rate_above" and cond["point"] == 1 and "rate_ch1" in cond["message"]
    # suspended within the point (decision 0009), which is kept and flagged, not retaken
    assert len(d.suspensions) == 1 and d.suspensions[0]["before_point"] == 1
