"""Run engine: backstop on every exit path, pause/resume, suspenders, resume after a crash,
validation before motion. All on in-memory fakes that record every command, on the AFAP clock."""

import math
import os
import signal
import threading

import numpy as np
import pytest
from pymeasure.experiment import IntegerParameter

from acq.clock import SimClock
from acq.enginecheck import EngineCheck
from acq.fakes import fake_lab_roles
from acq.lab import Lab
from acq.procedure import Procedure, validate_parameters
from acq.runner import (
    Runner,
    Suspender,
    ValidationError,
    count_rate_above,
    handle_signals,
    interlock_open,
    temperature_band,
)
from acq.store import Field, Stream, open_run

SAFE = [("xray", "shutter_close"), ("xray", "ramp_down"), ("xray", "hv_off"),
        ("attenuator", "max_attenuation"), ("cryostat", "heater_range"), ("spectrometer", "shutter_close"),
        ("tcspc", "stop")]


def make_lab(fail=None):
    clock = SimClock(math.inf)
    roles, log, world = fake_lab_roles(clock, fail=fail)
    return Lab(roles, clock=clock), log, world, clock


def tail(log, n):
    return [(r, c) for r, c, _ in log.entries if c not in ("keepalive",)][-n:]


class Series(Procedure):
    """X-ray on for every point; hooks let a test act at a given point."""

    ROLES = ("cryostat", "xray", "spectrometer", "tcspc", "attenuator")
    XRAY = True
    DEFAULT_STREAM = "spectrum"
    n = IntegerParameter("Points", minimum=1, maximum=1000, default=6)
    hooks: dict = {}

    def points(self):
        return [{"T": 100.0 - i} for i in range(self.n)]

    def streams(self):
        return [Stream("spectrum", (Field("counts", (64,), "f4"), Field("T", (), "f8", "K")), "counts",
                       ("T", "."))]

    def measure_point(self, index, point):
        hook = self.hooks.pop(index, None)  # once: a retaken point does not repeat the event
        if hook:
            hook(self)
        self.lab.xray.on(30.0, 0.5)
        self.lab.cryostat.set_temperature(point["T"])
        self.lab.cryostat.wait_stable(point["T"], band_K=0.5, hold_s=10.0)
        self.sleep(5.0)
        self.emit("spectrum", counts=np.full(64, index, "f4"), T=point["T"])
        self.lab.xray.off()


def run(tmp_path, hooks=None, fail=None, n=6, **kw):
    lab, log, world, clock = make_lab(fail)
    p = Series(n=n)
    p.hooks = hooks or {}
    r = Runner(p, lab, tmp_path / "run.h5", clock=clock, **kw)
    return r, r.run(), log, world, clock


def test_success_backstop_order_and_keepalive(tmp_path):
    r, res, log, world, clock = run(tmp_path)
    assert res.exit_status == "success" and res.n_points == 6
    assert tail(log, len(SAFE)) == SAFE
    assert res.backstop == {k: "ok" for k in ("xray", "attenuator", "cryostat", "spectrometer", "tcspc")}
    # keep-alive every lab second while the X-ray was connected
    n_ka = log.commands("xray").count("keepalive")
    assert abs(n_ka - clock.monotonic()) <= 2
    d = open_run(tmp_path / "run.h5")
    assert d.exit_status == "success" and d.n_points == 6 and d.backstop["xray"] == "ok"
    assert list(d.streams["spectrum"]["T"]) == [100, 99, 98, 97, 96, 95]


def test_exception_in_procedure_backstop_and_failed_status(tmp_path):
    def boom(p):
        raise RuntimeError("CCD fell over")

    r, res, log, world, _ = run(tmp_path, hooks={3: boom})
    assert res.exit_status == "failed" and "CCD fell over" in res.error
    assert tail(log, len(SAFE)) == SAFE
    d = open_run(tmp_path / "run.h5")
    assert d.exit_status == "failed" and d.n_points == 3
    assert any("CCD fell over" in e["message"] for e in d.events)
    assert not world.hv_on and not world.shutter_open


def test_exception_inside_backstop_other_roles_still_safe(tmp_path):
    r, res, log, world, _ = run(tmp_path, fail={"xray": {"ramp_down": "HV supply not answering"}})
    # the first point's xray.off() fails too (same fake), so the run fails; the backstop continues
    assert res.exit_status == "failed"
    assert res.backstop["xray"].startswith("failed") and "not answering" in res.backstop["xray"]
    for role in ("attenuator", "cryostat", "spectrometer", "tcspc"):
        assert res.backstop[role] == "ok"
    cmds = tail(log, 6)
    assert cmds == [("xray", "shutter_close"), ("xray", "ramp_down"), ("attenuator", "max_attenuation"),
                    ("cryostat", "heater_range"), ("spectrometer", "shutter_close"), ("tcspc", "stop")]
    d = open_run(tmp_path / "run.h5")
    assert d.backstop["xray"].startswith("failed")
    assert any("backstop FAILED" in e["message"] for e in d.events)


def test_abort_at_checkpoint(tmp_path):
    r, res, log, world, _ = run(tmp_path, hooks={2: lambda p: p.runner.abort("user pressed abort")})
    assert res.exit_status == "aborted" and res.n_points == 2
    assert tail(log, len(SAFE)) == SAFE
    assert open_run(tmp_path / "run.h5").exit_status == "aborted"


def test_keyboard_interrupt(tmp_path):
    def ctrl_c(p):
        raise KeyboardInterrupt

    r, res, log, world, _ = run(tmp_path, hooks={4: ctrl_c})
    assert res.exit_status == "interrupted" and res.n_points == 4
    assert tail(log, len(SAFE)) == SAFE


def test_sigterm_interrupts_and_backstop_runs(tmp_path):
    def term(p):
        os.kill(os.getpid(), signal.SIGTERM)

    lab, log, world, clock = make_lab()
    p = Series(n=5)
    p.hooks = {1: term}
    r = Runner(p, lab, tmp_path / "run.h5", clock=clock)
    with handle_signals(r):
        res = r.run()
    assert res.exit_status == "interrupted" and "SIGTERM" in res.error
    assert tail(log, len(SAFE)) == SAFE
    assert open_run(tmp_path / "run.h5").exit_status == "interrupted"


def test_pause_makes_xray_safe_and_resume_restores(tmp_path):
    states = []

    def do_pause(p):
        p.lab.xray.on(30.0, 0.5)  # beam on when the pause is requested
        p.runner.pause()

        def resumer():
            while p.runner.state != "paused":
                threading.Event().wait(0.001)
            states.append((p.runner.state, p.lab.world_hv if hasattr(p.lab, "world_hv") else None))
            p.runner.resume()

        threading.Thread(target=resumer, daemon=True).start()
        p.checkpoint()

    r, res, log, world, _ = run(tmp_path, hooks={2: do_pause})
    assert res.exit_status == "success" and res.n_points == 6
    assert states and states[0][0] == "paused"
    d = open_run(tmp_path / "run.h5")
    kinds = [e["kind"] for e in d.events]
    assert "pause" in kinds and "resume" in kinds and "xray" in kinds
    cmds = [c for r_, c, _ in log.entries if r_ == "xray" and c != "keepalive"]
    # on (hook) → safe (pause) → restored (resume) → the point's own on/off
    i = cmds.index("shutter_open", cmds.index("hv_on", 8))
    assert "hv_off" in cmds[i:] and cmds.count("hv_on") == 6 + 2


def test_suspender_fires_and_clears(tmp_path):
    def excursion(p):
        p.lab.xray.on(30.0, 0.5)
        w = p.lab.cryostat.world
        _ = w.T
        w._T += 8.0  # a temperature excursion (e.g. a He pressure burp)
        p.sleep(2.0)  # suspenders are polled at most once per poll_s of lab time
        p.checkpoint()

    r, res, log, world, clock = run(tmp_path, hooks={3: excursion},
                                    suspenders=[temperature_band(2.0, settle_s=60.0, poll_s=1.0)])
    assert res.exit_status == "success" and res.n_points == 6
    assert r.suspension_count == 1
    d = open_run(tmp_path / "run.h5")
    assert len(d.suspensions) == 1
    s = d.suspensions[0]
    # T relaxes back with tau=120 s: 8 K -> 2 K takes 120*ln(4) = 166 s, plus 60 s settle
    assert 160 < s["duration_s"] < 260 and s["before_point"] == 3 and "temperature_band" in s["reason"]
    kinds = [e["kind"] for e in d.events]
    assert "suspend" in kinds and "unsuspend" in kinds
    # the X-ray was made safe during the suspension and restored afterwards
    assert any("X-ray restored" in e["message"] for e in d.events)


def test_each_suspender_is_polled_at_its_own_period(tmp_path):
    """decision 0015: the temperature band every temperature_poll_s (5 lab s), the count rate every poll_s (1 s)
    — in the waits of a point, not only between points."""
    calls: dict[str, list[float]] = {"slow": [], "fast": []}
    clock_box: list = []

    def counter(name):
        def check(lab):
            calls[name].append(clock_box[0].monotonic())
            return None
        return check

    def long_wait(p):
        p.sleep(40.0)

    lab, log, world, clock = make_lab()
    clock_box.append(clock)
    p = Series(n=6)
    p.hooks = {2: long_wait}
    Runner(p, lab, tmp_path / "run.h5", clock=clock,
           suspenders=[Suspender("slow", counter("slow"), poll_s=5.0),
                       Suspender("fast", counter("fast"), poll_s=1.0)]).run()

    def gaps(ts):
        return np.diff(ts)

    assert len(calls["fast"]) > 3 * len(calls["slow"]) >= 3 * 8   # 40 s of waiting: ≥ 8 slow polls
    assert gaps(calls["slow"]).min() >= 5.0 - 1e-9 and gaps(calls["fast"]).min() >= 1.0 - 1e-9
    assert gaps(calls["slow"]).max() <= 5.0 + 0.25 + 1e-9        # due at the first wait slice after 5 s


def test_interlock_and_count_rate_suspenders(tmp_path):
    lab, log, world, clock = make_lab()
    sus = interlock_open()
    world.interlock_closed = False
    assert sus.check(lab) is None  # a role that is not connected is not polled
    world.interlock_closed = True
    lab.connect()
    assert sus.check(lab) is None
    world.interlock_closed = False
    assert "interlock" in sus.check(lab)
    cr = count_rate_above(1e6)
    assert cr.check(lab) is None
    world.count_rate = 5e6
    assert "rate_ch1=5e+06" in cr.check(lab) and "rate_ch0" not in cr.check(lab)


def test_resume_after_crash_continues_at_first_incomplete_point(tmp_path):
    def crash(p):
        raise SystemError("host crashed")

    r, res, log, world, _ = run(tmp_path, hooks={4: crash}, n=8)
    assert res.exit_status == "failed" and res.n_points == 4
    lab, log2, world2, clock = make_lab()
    p = Series(n=8)
    res2 = Runner(p, lab, tmp_path / "run.h5", clock=clock, resume=True).run()
    assert res2.exit_status == "success" and res2.n_points == 8
    d = open_run(tmp_path / "run.h5")
    assert d.n_points == 8 and list(d.point_id) == list(range(8))
    assert list(d.streams["spectrum"]["counts"][:, 0]) == list(range(8))
    assert d.resumed_at == [4]
    msg = next(e["message"] for e in d.events if e["kind"] == "resume")
    assert "first incomplete point 4" in msg and "not re-taken" in msg
    # only points 4..7 were measured in the resumed run (xray.on once per point)
    assert log2.commands("xray").count("hv_on") == 4
    assert (tmp_path / "run.interrupted.h5").exists()
    assert d.run_uid == res.run_uid


def test_bad_parameter_rejected_before_any_command(tmp_path):
    vals, errs = validate_parameters(EngineCheck, {"temperatures": [300, 1.0], "kV": 80, "expsure": 1},
                                     where=lambda k: f"plan.toml:{ {'temperatures': 3, 'kV': 4}.get(k, 9)}")
    text = "\n".join(map(str, errs))
    assert "plan.toml:3: temperatures = [300, 1.0]" in text and "between 3 and 350 K" in text
    assert "plan.toml:4: kV = 80" in text and "between 0 and 60 kV" in text
    assert "expsure" in text and "is not a parameter" in text
    lab, log, world, clock = make_lab()
    assert len(log) == 0


def test_missing_role_or_existing_file_rejected_before_any_command(tmp_path):
    clock = SimClock(math.inf)
    roles, log, world = fake_lab_roles(clock, roles=("cryostat", "spectrometer"))
    lab = Lab(roles, clock=clock)
    with pytest.raises(ValidationError, match="needs xray, tcspc, attenuator"):
        Runner(Series(), lab, tmp_path / "a.h5").run()
    (tmp_path / "b.h5").write_bytes(b"precious")
    lab2, log2, _, _ = make_lab()
    with pytest.raises(ValidationError, match="never overwrites"):
        Runner(Series(), lab2, tmp_path / "b.h5").run()
    assert len(log) == 0 and len(log2) == 0
    assert (tmp_path / "b.h5").read_bytes() == b"precious"


def test_engine_check_end_to_end(tmp_path):
    lab, log, world, clock = make_lab()
    res = Runner(EngineCheck(), lab, tmp_path / "e.h5", clock=clock).run()
    assert res.exit_status == "success" and res.n_points == 6
    d = open_run(tmp_path / "e.h5")
    assert d.analysis["red_shift_nm"] > 5  # the fake red band appears below ~100 K
    assert d.streams["decay"]["counts"].shape == (6, 4096)
