"""Stop means stop: every kind of long wait × every control (abort, pause, MAKE SAFE, GUI close,
SIGTERM, suspender) takes effect within one poll, and the run records the true exit status.

The control is fired by a lab-clock callback at lab time ``T0`` in the middle of a wait that would
otherwise last an hour; the latency is the lab time from the control to the run leaving the wait
(the procedure's ``shutdown``), to the run being paused, or to the suspension starting. Everything
runs on the AFAP simulated clock, so the lab-time figures are exact and the assertions are on lab
time, never on wall time. These are the figures of the table in docs/engine.md (which also gives
wall-clock latencies, from ``benchmarks/stop_latency.py``).
"""

from __future__ import annotations

import math
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from acq.clock import SimClock
from acq.events import EventBus
from acq.fakes import fake_lab_roles
from acq.lab import Lab
from acq.procedure import Procedure
from acq.queue import QueueWorker, RunQueue
from acq.runner import Runner, RunState, Suspender, handle_signals, interlock_open
from acq.store import Field, Stream, open_run
from drivers.base import POLL_S

T0 = 100.0          # lab s into the wait when the control fires
LONG = 3600.0       # the wait would last this long if nothing stopped it

WAITS: dict[str, Callable[[Any], None]] = {
    "temperature stability": lambda p: (p.lab.cryostat.set_temperature(200.0),
                                        p.lab.cryostat.wait_stable(200.0, band_K=1e-6, hold_s=LONG,
                                                                   timeout_s=10 * LONG)),
    "CCD exposure": lambda p: p.lab.spectrometer.acquire(LONG),
    "TCSPC acquisition": lambda p: p.lab.tcspc.histogram(LONG),
    "g2 acquisition": lambda p: p.lab.tcspc.correlation(LONG),
    "procedure sleep": lambda p: p.sleep(LONG),
}


class OneWait(Procedure):
    """One point whose measurement is one long wait of the chosen kind (X-ray on throughout)."""

    ROLES = ("cryostat", "xray", "spectrometer", "tcspc", "attenuator")
    XRAY = True
    DEFAULT_STREAM = "s"
    kind: str = "procedure sleep"
    pre: Callable[[Any], None] | None = None

    def points(self):
        return [{}]

    def streams(self):
        return [Stream("s", (Field("x", (), "f8"),), "x", ("x",))]

    def measure_point(self, index, point):
        self.lab.xray.on(30.0, 0.5)
        if self.pre is not None:
            self.pre(self)
        WAITS[self.kind](self)
        self.emit("s", x=1.0)


def _setup(tmp_path, kind: str, suspenders=()):
    clock = SimClock(math.inf)
    roles, log, world = fake_lab_roles(clock)
    lab = Lab(roles, clock=clock)
    p = OneWait()
    p.kind = kind
    r = Runner(p, lab, tmp_path / "run.h5", clock=clock, suspenders=list(suspenders), analyze=False)
    marks: dict[str, float] = {}

    def shutdown() -> None:
        marks.setdefault("stopped", clock.monotonic())

    p.shutdown = shutdown  # type: ignore[method-assign]
    return clock, lab, world, p, r, marks


def _at(clock, t: float, fn: Callable[[], None], marks: dict[str, float]) -> None:
    """Call ``fn`` once at lab time ``t`` (from now) — inside whatever wait is running then."""
    def once() -> None:
        if "fired" not in marks:
            marks["fired"] = clock.monotonic()
            h.cancel()
            fn()

    h = clock.call_every(t, once, name="control")


def _run_with_control(tmp_path, kind: str, control: str):
    susp = [interlock_open(settle_s=30.0, poll_s=1.0)] if control == "suspender" else []
    clock, lab, world, p, r, marks = _setup(tmp_path, kind, susp)
    expect = {"abort": "aborted", "MAKE SAFE": "aborted", "close": "interrupted", "SIGTERM": "interrupted",
              "pause": "aborted", "suspender": "aborted"}[control]

    def watch(state: RunState, key: str) -> None:
        while r.state != state and r.state != RunState.FINISHED:
            threading.Event().wait(0.001)
        marks[key] = clock.monotonic()
        r.abort("test over", by="test")

    if control == "abort":
        fn = lambda: r.abort("aborted by the user", by="operator")  # noqa: E731
    elif control == "MAKE SAFE":
        def fn() -> None:
            r.abort("MAKE SAFE pressed in the GUI", by="MAKE SAFE")
            marks["backstop_now"] = float(all(v == "ok" for v in lab.make_safe_all().values()))
    elif control == "close":
        fn = lambda: r.abort("the GUI was closed", status="interrupted", by="GUI close")  # noqa: E731
    elif control == "SIGTERM":
        fn = lambda: os.kill(os.getpid(), signal.SIGTERM)  # noqa: E731
    elif control == "pause":
        threading.Thread(target=watch, args=(RunState.PAUSED, "effect"), daemon=True).start()
        fn = r.pause
    elif control == "suspender":
        # the suspension's start is read from the run file, and the test's own abort comes on the lab
        # clock 5 lab s into the suspension (its settle is 30 s): a thread watching the state would see
        # it late in lab time on a loaded machine, the AFAP clock running on meanwhile
        over: dict[str, float] = {}
        _at(clock, T0 + 5.0, lambda: r.abort("test over", by="test"), over)
        marks["over"] = over  # type: ignore[assignment]
        marks["posix_offset"] = clock.now() - clock.monotonic()

        def fn() -> None:
            world.interlock_closed = False
    else:  # pragma: no cover
        raise AssertionError(control)
    _at(clock, T0, fn, marks)
    if control == "SIGTERM":
        with handle_signals(r):
            res = r.run()
    else:
        res = r.run()
    return res, marks, world, expect


CONTROLS = ["abort", "pause", "MAKE SAFE", "close", "SIGTERM", "suspender"]


@pytest.mark.parametrize("control", CONTROLS)
@pytest.mark.parametrize("kind", list(WAITS))
def test_every_wait_stops_within_one_poll(tmp_path, kind, control):
    res, marks, world, expect = _run_with_control(tmp_path, kind, control)
    assert marks["fired"] == pytest.approx(T0, abs=POLL_S), marks
    d = open_run(res.path)
    if control == "suspender":
        # the suspension began within the suspender's own poll_s (1 lab s) of the interlock opening, and the
        # run ended within one poll of the abort that came during it
        started = d.suspensions[0]["start"] - marks["posix_offset"]   # the runner stamps POSIX lab time
        latency = started - marks["fired"]
        assert 0.0 <= latency <= 1.0 + 1e-9, (kind, control, latency)
        assert 0.0 <= marks["stopped"] - marks["over"]["fired"] <= POLL_S + 1e-9
    else:
        effect = marks.get("effect", marks["stopped"])
        latency = effect - marks["fired"]
        assert 0.0 <= latency <= POLL_S + 1e-9, (kind, control, latency)
        assert marks["stopped"] - marks["fired"] <= POLL_S + 1e-9   # and the run ended at once after that
    assert res.exit_status == expect, (res.exit_status, res.error)
    assert not world.hv_on and not world.shutter_open
    assert d.exit_status == expect and d.n_points == 0
    if control in ("abort", "MAKE SAFE", "close"):
        ev = [e for e in d.events if e["kind"] == expect]
        assert ev and ev[-1].get("by") in ("operator", "MAKE SAFE", "GUI close"), d.events


@pytest.mark.parametrize("phase,t_abort", [("condition holds", 50.0), ("settle", 200.0)])
def test_suspender_settle_is_cancellable(tmp_path, phase, t_abort):
    """An abort during a suspender's settle time (and while its condition holds) acts within one poll."""
    clock, lab, world, p, r, marks = _setup(tmp_path, "procedure sleep",
                                            [Suspender("interlock_open", interlock_open().check, 3600.0, 1.0)])
    _at(clock, 10.0, lambda: setattr(world, "interlock_closed", False), marks)
    clock.call_every(100.0, lambda: setattr(world, "interlock_closed", True))
    ab: dict[str, float] = {}
    _at(clock, t_abort, lambda: r.abort("aborted by the user"), ab)
    res = r.run()
    assert res.exit_status == "aborted"
    assert 0 <= marks["stopped"] - ab["fired"] <= POLL_S + 1e-9, (phase, marks, ab)
    d = open_run(res.path)
    assert d.suspensions and d.suspensions[0]["aborted"]


def test_plan_wait_stops_within_one_poll(tmp_path):
    """A queue's wait step (lab-clock wait, no run file) ends within one poll of an abort."""
    clock = SimClock(math.inf)
    roles, log, world = fake_lab_roles(clock)

    class Session:
        def __init__(self) -> None:
            self.clock = clock
            self.lab = Lab(roles, clock=clock)
            self.bus = EventBus(clock)

    q = RunQueue(tmp_path / "queue.json")
    it = q.add("wait", {"seconds": 7200.0})
    w = QueueWorker(Session(), q, out_dir=tmp_path)
    marks: dict[str, float] = {}
    _at(clock, T0, lambda: w.abort("aborted by the user"), marks)
    w.run_here()
    assert q.get(it.id).status == "aborted"
    assert 0 <= clock.monotonic() - marks["fired"] <= POLL_S + 1e-9


def test_pause_mid_exposure_retakes_the_point(tmp_path):
    """Paused mid-exposure: X-ray made safe, the half exposure discarded, the point measured again
    after the resume (one point in the file, a 'retake' event)."""
    clock, lab, world, p, r, marks = _setup(tmp_path, "CCD exposure")
    p.kind = "CCD exposure"
    WAITS_SHORT = {"CCD exposure": lambda q: q.lab.spectrometer.acquire(300.0)}
    p.measure_point = lambda i, pt: (p.lab.xray.on(30.0, 0.5), WAITS_SHORT["CCD exposure"](p),  # type: ignore
                                     p.emit("s", x=float(np.float64(1.0))))
    seen: dict[str, Any] = {}

    def resumer() -> None:
        while r.state != RunState.PAUSED:
            threading.Event().wait(0.001)
        seen["hv_while_paused"] = world.hv_on
        r.resume()

    threading.Thread(target=resumer, daemon=True).start()
    _at(clock, T0, r.pause, marks)
    res = r.run()
    assert res.exit_status == "success" and res.n_points == 1 and r.retakes == 1
    assert seen["hv_while_paused"] is False
    d = open_run(res.path)
    assert [e["kind"] for e in d.events].count("retake") == 1
