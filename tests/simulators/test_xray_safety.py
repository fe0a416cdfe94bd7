"""X-ray safety: the generator's watchdog (also across a SIGKILL of the host), interlock refusal by both
driver and server."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from acq.clock import SimClock
from drivers.base import SafetyError
from drivers.spellman import SpellmanXRaySource
from tests.drivers.simlab import sim_lab

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(60)
def test_watchdog_in_afap_time_with_and_without_keepalive():
    clock = SimClock()
    with sim_lab("xray", clock=clock, xray_watchdog_s=5.0) as (world, servers):
        x = SpellmanXRaySource(servers["xray"].resource, clock=clock, timeout_s=0.5)
        x.connect()
        assert x.watchdog_s == 5.0
        x.on(20, 0.5)
        x.start_keepalive()                     # every 1 s of lab time, fired inside sleeps
        clock.sleep(600)
        world.advance()
        assert world.tube.hv_on
        x.stop_keepalive()
        t_last = world.tube.last_contact
        clock.sleep(30)
        world.advance()                         # models are advanced lazily (no tick in AFAP)
        assert not world.tube.hv_on
        t_off, what = world.tube.history[-1]
        assert what.startswith("off: watchdog")
        assert t_off == pytest.approx(t_last + 5.0)
        assert "WATCH_DOG_FAULT" in world.tube.faults


CHILD = textwrap.dedent("""
    import sys, time
    from drivers.base import WallClock
    from drivers.spellman import SpellmanXRaySource
    x = SpellmanXRaySource(sys.argv[1], clock=WallClock(), keepalive_s=0.1, ramp_kV_per_s=50,
                           ramp_mA_per_s=1, ramp_step_s=0.02, timeout_s=2)
    x.connect()
    x.on(20, 0.5)
    x.start_keepalive()
    print("ON", flush=True)
    time.sleep(120)
""")


@pytest.mark.timeout(60)
def test_sigkill_of_the_host_leaves_hv_on_no_longer_than_the_watchdog():
    watchdog = 2.0                              # the child's keep-alives come every 0.1 s: 20x slack for load
    clock = SimClock(speed=1.0)                 # a real process dies in real time
    with sim_lab("xray", clock=clock, xray_watchdog_s=watchdog, tick_s=0.02) as (world, servers):
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = subprocess.Popen([sys.executable, "-c", CHILD, servers["xray"].resource], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            ready, _, _ = select.select([proc.stdout], [], [], 30)
            assert ready and proc.stdout.readline().strip() == "ON", proc.stderr.read() if proc.poll() else ""
            time.sleep(1.5 * watchdog)          # keep-alives hold HV on past the watchdog period
            assert world.snapshot()["xray"]["hv_on"]
            os.kill(proc.pid, signal.SIGKILL)
            t_kill = clock.monotonic()
            proc.wait(5)
            deadline = time.monotonic() + 30    # waits on state; the deadline only catches a hang
            while world.snapshot()["xray"]["hv_on"] and time.monotonic() < deadline:
                time.sleep(0.02)
            assert not world.tube.hv_on
            t_off, what = world.tube.history[-1]
            assert what.startswith("off: watchdog")  # it was the watchdog, not something else
            # the model drops HV at exactly last contact + watchdog (lab time), so these hold on any load:
            assert world.tube.last_contact <= t_kill
            assert t_off == pytest.approx(world.tube.last_contact + watchdog)
            assert t_off - t_kill <= watchdog + 1e-6   # never longer than the watchdog after the kill
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)


@pytest.mark.timeout(60)
def test_hv_on_with_interlock_open_refused_by_driver_and_server():
    import pyvisa

    clock = SimClock()
    with sim_lab("xray", "shutter", clock=clock) as (world, servers):
        world.tube.open_interlock(clock.monotonic())          # door open, until closed
        x = SpellmanXRaySource(servers["xray"].resource, clock=clock, timeout_s=0.5,
                               shutter_resource=servers["shutter"].resource)
        x.connect()
        sent_before = servers["xray"].messages
        with pytest.raises(SafetyError, match="interlock is open"):
            x.on(20, 0.5)
        assert servers["xray"].messages - sent_before == 1    # only the status poll: no HV command sent
        # the server refuses on its own too (a client that skips the check)
        rm = pyvisa.ResourceManager("@py")
        r = rm.open_resource(servers["xray"].resource, read_termination="\x03", write_termination="\x03",
                             timeout=500)
        try:
            r.write("\x0298,1,")
            assert r.read() == "\x0298,E#2,"
            # the SC10 refuses to open the shutter while its interlock input is tripped
            assert not world.tube.hv_on and not world.tube.shutter_open
            assert not any(what == "on" for _, what in world.tube.history)
        finally:
            r.close()
        world.tube.close_interlock()
        x.on(20, 0.5)
        assert world.tube.hv_on and world.tube.shutter_open
        x.make_safe()
        assert not world.tube.hv_on and not world.tube.shutter_open
