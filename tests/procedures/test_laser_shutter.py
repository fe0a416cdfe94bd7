"""The laser shutter (a second Thorlabs SC10 in front of the laser, issue 15): the attenuator role opens
it once the wheel is at a transmission, closes it for maximum attenuation and as its safe state; a paused
or suspended run blocks the laser and opens it again on resume; the backstop confirms it closed. All on
the simulated lab (real drivers over loopback, AFAP clock); waits are on run state and lab time."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from acq.backstop import confirm_safe
from acq.clock import SimClock
from acq.procedure import Procedure
from acq.runner import RunState
from acq.store import Field, Stream, open_run
from drivers.conex import ConexNDAttenuator
from tests.drivers.simlab import sim_lab

from .conftest import sim_lab as session_lab

pytestmark = pytest.mark.timeout(120)


def test_attenuator_drives_the_laser_shutter():
    clock = SimClock()
    with sim_lab("attenuator", "laser_shutter", clock=clock) as (world, servers):
        laser = world.laser
        assert laser.shutter_installed and not laser.shutter_enabled     # the SC10 powers up closed
        att = ConexNDAttenuator(servers["attenuator"].resource, clock=clock,
                                shutter_resource=servers["laser_shutter"].resource)
        att.connect()
        try:
            assert att.laser_blocked() is True and laser.fluence_uJcm2() == 0.0
            att.set_transmission(0.1)
            assert att.laser_blocked() is False and laser.fluence_uJcm2() > 0.0
            assert confirm_safe("attenuator", att, att.readback()) == "laser shutter still open"
            att.set_max_attenuation()               # RL: no laser through the darkest wheel position
            assert att.laser_blocked() is True and laser.fluence_uJcm2() == 0.0
            att.set_transmission(0.5)
            att.make_safe()
            assert laser.fluence_uJcm2() == 0.0 and confirm_safe("attenuator", att, att.readback()) is None
        finally:
            att.close()


def test_without_a_shutter_the_darkest_position_still_leaks():
    """What the shutter is for: the wheel alone is OD 4, not dark."""
    clock = SimClock()
    with sim_lab("attenuator", clock=clock) as (world, servers):
        att = ConexNDAttenuator(servers["attenuator"].resource, clock=clock)
        att.connect()
        try:
            assert att.laser_blocked() is None
            att.make_safe()
            assert world.laser.fluence_uJcm2() > 0.0
        finally:
            att.close()


class LaserPoint(Procedure):
    """One point under the laser: the wheel to T = 0.1 (shutter opens), then a 300 lab s measurement."""

    ROLES = ("attenuator",)
    DEFAULT_STREAM = "s"

    def points(self) -> list[dict[str, Any]]:
        return [{}]

    def streams(self) -> list[Stream]:
        return [Stream("s", (Field("fluence", (), "f8", "uJ/cm^2"),), "fluence", ("fluence",))]

    def measure_point(self, index: int, point: dict[str, Any]) -> None:
        self.lab.attenuator.set_transmission(0.1)
        self.sleep(300.0)
        self.emit("s", fluence=float(self.world.laser.fluence_uJcm2()))


def test_pause_blocks_the_laser_and_resume_opens_it(tmp_path):
    with session_lab(tmp_path) as s:
        world = s.sim.world
        p = LaserPoint()
        p.world = world
        r = s.make_runner(p, suspenders=[])
        r.analyze = False
        seen: dict[str, Any] = {}

        def pause_then_resume() -> None:
            while not world.laser.shutter_enabled:           # the point's measurement has begun
                threading.Event().wait(0.001)
            r.pause()
            while r.state != RunState.PAUSED:
                threading.Event().wait(0.001)
            seen["open_while_paused"] = world.laser.shutter_enabled
            seen["fluence_while_paused"] = world.laser.fluence_uJcm2()
            r.resume()

        threading.Thread(target=pause_then_resume, daemon=True).start()
        res = r.run()
        assert res.exit_status == "success", res.error
        assert seen == {"open_while_paused": False, "fluence_while_paused": 0.0}
        d = open_run(res.path)
        kinds = [(e["kind"], e.get("message", "")) for e in d.events]
        assert any(k == "pause" and "laser blocked" in m for k, m in kinds), kinds
        assert any(k == "laser" and "opened again" in m for k, m in kinds), kinds
        assert d.stream("s")["fluence"][0] > 0.0       # the retaken point was measured under the laser
        assert not world.laser.shutter_enabled          # and the backstop closed it at the end
        assert d.backstop.get("attenuator") == "ok"
