"""One test per injected fault: the driver's error, and no corrupted state afterwards."""

from __future__ import annotations

import pytest

from acq.clock import SimClock
from drivers.base import DriverError, SafetyError
from drivers.conex import ConexNDAttenuator
from drivers.lakeshore336 import LakeShore336Controller
from drivers.pm100d import PM100DPowerMeter
from drivers.spellman import SpellmanXRaySource
from tests.drivers.simlab import sim_lab

pytestmark = pytest.mark.timeout(60)
TMO = 0.5  # reply timeout of the drivers under test (wall s)


def cryo(servers, clock, **kw):
    c = LakeShore336Controller(servers["cryostat"].resource, clock=clock, timeout_s=TMO, **kw)
    c.connect()
    return c


# -- request faults ------------------------------------------------------------------------------

def test_garbage_reply_is_a_clear_error_and_next_reading_is_fine():
    clock = SimClock()
    with sim_lab("cryostat", clock=clock) as (world, servers):
        c = cryo(servers, clock)
        c.set_temperature(20.0)
        world.faults.trigger("garbage", role="cryostat")
        # one garbage reply: the link resynchronises and asks again (drivers/_link.py, retries = 3)
        assert c.temperature == pytest.approx(world.cryostat.T_sample, abs=0.02)
        world.faults.add("garbage", rate=1.0, role="cryostat")
        with pytest.raises(DriverError, match="KRDG\\? B .*after 4 attempt"):
            _ = c.temperature                      # garbage every time: a clear error, bounded
        world.faults.clear()
        assert c.temperature == pytest.approx(world.cryostat.T_sample, abs=0.02)
        assert c.setpoint == 20.0


def test_timeout_is_retried_after_reconnect_then_reported():
    clock = SimClock()
    with sim_lab("cryostat", clock=clock) as (world, servers):
        c = cryo(servers, clock)
        world.faults.trigger("timeout", role="cryostat")
        assert c.temperature > 0                   # one lost message: reconnected and retried
        assert c.link.reconnects == 1
        world.faults.add("timeout", rate=1.0, role="cryostat")
        with pytest.raises(DriverError, match="no valid reply to KRDG\\? B within 0.5 s after 4 attempt"):
            _ = c.temperature                      # bounded (1 + 3 retries of TMO each), never a hang
        world.faults.clear()
        assert c.temperature > 0                   # the link recovers by itself


def test_dropped_connection_reconnects_and_state_is_intact():
    clock = SimClock()
    with sim_lab("cryostat", clock=clock) as (world, servers):
        c = cryo(servers, clock)
        c.set_temperature(30.0, ramp_K_per_min=10)
        world.faults.trigger("drop", role="cryostat")
        assert c.setpoint > 0                      # dropped, reconnected, answered
        assert c.link.reconnects == 1
        assert world.cryostat.target[1] == 30.0 and world.cryostat.ramp_on[1]
        world.faults.trigger("drop", role="cryostat", count=2)
        assert c.temperature > 0                   # two drops in a row: two reconnections, still answered
        world.faults.add("drop", rate=1.0, role="cryostat")
        with pytest.raises(DriverError, match="connection lost"):
            _ = c.temperature
        world.faults.clear()


def test_lakeshore_instrument_error_invalid_reading():
    clock = SimClock()
    with sim_lab("cryostat", clock=clock) as (world, servers):
        c = cryo(servers, clock)
        c.set_temperature(20.0)
        world.faults.trigger("instrument_error", role="cryostat")
        with pytest.raises(DriverError, match="reading invalid"):
            _ = c.temperature
        clock.sleep(2.0)                           # the flaky sensor recovers after 1 s lab
        assert c.temperature > 0
        assert world.cryostat.target[1] == 20.0


def test_spellman_instrument_error_and_garbage_leave_hv_state_alone():
    clock = SimClock()
    with sim_lab("xray", clock=clock) as (world, servers):
        x = SpellmanXRaySource(servers["xray"].resource, clock=clock, timeout_s=TMO)
        x.connect()
        world.faults.trigger("instrument_error", role="xray")
        with pytest.raises(DriverError, match="error 4 \\(packet overrun\\)"):
            x.on(20, 0.5)                          # the status poll is refused: nothing switched on
        assert not world.tube.hv_on and world.tube.kV_set == 0.0
        world.faults.trigger("garbage", role="xray")
        assert x.hv_on is False                    # one garbage status reply: asked again
        world.faults.add("garbage", rate=1.0, role="xray")
        with pytest.raises(DriverError, match="garbage"):
            _ = x.hv_on
        world.faults.clear()
        x.on(20, 0.5)
        assert world.tube.hv_on and world.tube.kV == pytest.approx(20.0)
        x.off()
        assert not world.tube.hv_on


def test_spellman_timeout_on_hv_on_is_not_retried_and_reported():
    clock = SimClock()
    with sim_lab("xray", clock=clock) as (world, servers):
        x = SpellmanXRaySource(servers["xray"].resource, clock=clock, timeout_s=TMO, ramp_kV_per_s=50,
                               ramp_mA_per_s=1)
        x.connect()
        world.faults.add("timeout", rate=1.0, role="xray", count=1)
        # the status poll eats the fault and is retried; the sequence completes
        x.on(20, 0.5)
        assert world.tube.hv_on
        x.off()


def test_conex_instrument_error_code():
    clock = SimClock()
    with sim_lab("attenuator", clock=clock) as (world, servers):
        a = ConexNDAttenuator(servers["attenuator"].resource, clock=clock, timeout_s=TMO)
        a.connect()
        a.move_to(90)
        world.faults.trigger("instrument_error", role="attenuator")
        with pytest.raises(DriverError, match="CONEX error V"):
            a.move_to(120)
        assert a.angle == pytest.approx(90.0)     # it did not move
        a.move_to(120)
        assert world.laser.angle == pytest.approx(120.0)


def test_pm100d_instrument_error_and_garbage():
    clock = SimClock()
    with sim_lab("powermeter", clock=clock) as (world, servers):
        p = PM100DPowerMeter(servers["powermeter"].resource, clock=clock, timeout_s=TMO)
        p.connect()
        world.faults.trigger("instrument_error", role="powermeter")
        with pytest.raises(DriverError, match="over range"):
            _ = p.power
        world.faults.trigger("garbage", role="powermeter")
        assert p.power == pytest.approx(world.laser.transmitted_power(), rel=0.05)   # asked again
        world.faults.add("garbage", rate=1.0, role="powermeter")
        with pytest.raises(DriverError, match="garbage"):
            _ = p.power
        world.faults.clear()
        assert p.power == pytest.approx(world.laser.transmitted_power(), rel=0.05)
        assert p.wavelength == 405.0


# -- state faults ----------------------------------------------------------------------------------

def test_arc_trips_hv_and_is_reported_by_keepalive():
    clock = SimClock()
    with sim_lab("xray", "shutter", clock=clock) as (world, servers):
        x = SpellmanXRaySource(servers["xray"].resource, clock=clock, timeout_s=TMO,
                               shutter_resource=servers["shutter"].resource)
        x.connect()
        x.on(20, 0.5)
        assert world.conditions_dict()["xray_kV"] == pytest.approx(20.0)
        world.faults.add("arc", at=clock.monotonic() + 1.0)
        clock.sleep(2.0)
        with pytest.raises(SafetyError, match="ANODE_ARC"):
            x.keepalive()
        assert world.conditions_dict()["xray_kV"] == 0.0
        with pytest.raises(SafetyError, match="fault register"):
            x.on(20, 0.5)                          # refused until the faults are reset
        x.reset_faults()
        x.on(20, 0.5)
        assert world.tube.arc_count == 1 and world.tube.hv_on
        x.make_safe()


def test_interlock_opening_drops_hv_closes_shutter_and_blocks_on():
    clock = SimClock()
    with sim_lab("xray", "shutter", clock=clock) as (world, servers):
        x = SpellmanXRaySource(servers["xray"].resource, clock=clock, timeout_s=TMO,
                               shutter_resource=servers["shutter"].resource)
        x.connect()
        x.on(20, 0.5)
        assert x.shutter_open
        world.faults.add("interlock_open", at=clock.monotonic() + 0.5, duration_s=10)
        clock.sleep(1.0)
        with pytest.raises(SafetyError, match="interlock opened"):
            x.keepalive()
        assert not x.shutter_open and not x.hv_on and not x.interlock_closed
        with pytest.raises(SafetyError, match="interlock"):
            x.on(20, 0.5)
        clock.sleep(10)
        x.on(20, 0.5)                              # closed again: allowed
        assert x.hv_on and x.shutter_open
        x.off()


def test_temperature_excursion_and_recovery():
    clock = SimClock()
    with sim_lab("cryostat", clock=clock) as (world, servers):
        c = cryo(servers, clock)
        c.set_temperature(20.0)
        c.wait_stable(20.0, band_K=0.05, hold_s=30, timeout_s=3600)
        world.faults.add("temperature_excursion", at=clock.monotonic() + 1, duration_s=20, power_W=5.0)
        clock.sleep(15)
        assert c.temperature > 20.5                # the stage warmed
        waited = c.wait_stable(20.0, band_K=0.05, hold_s=30, timeout_s=3600)
        assert waited > 30 and c.setpoint == 20.0


def test_count_rate_overload_flag():
    clock = SimClock()
    with sim_lab(clock=clock) as (world, _):
        assert not world.count_rate_overload()
        world.faults.add("count_rate_overload", at=5.0, duration_s=3.0)
        clock.sleep(6)
        assert world.count_rate_overload()
        clock.sleep(3)
        assert not world.count_rate_overload()


def test_shutter_controller_error_keeps_the_shutter_closed():
    clock = SimClock()
    with sim_lab("xray", "shutter", clock=clock) as (world, servers):
        x = SpellmanXRaySource(servers["xray"].resource, clock=clock, timeout_s=TMO,
                               shutter_resource=servers["shutter"].resource)
        x.connect()
        world.faults.trigger("instrument_error", role="shutter")
        with pytest.raises(DriverError, match="CMD_NOT_DEFINED"):
            x.shutter.open()
        assert not world.tube.shutter_open and x.shutter.is_closed
        x.shutter.open()
        assert world.tube.shutter_open
        x.shutter.close()


def test_instrument_gone_is_a_bounded_clear_error():
    clock = SimClock()
    with sim_lab("cryostat", clock=clock) as (world, servers):
        c = cryo(servers, clock)
        servers["cryostat"].stop()
        with pytest.raises(DriverError, match="Lake Shore 336 at TCPIP::127.0.0.1::"):
            _ = c.temperature                      # a clear error, not a hang (pytest-timeout catches one)


def test_lost_acknowledgement_of_hv_on_makes_safe():
    clock = SimClock()
    with sim_lab("xray", clock=clock) as (world, servers):
        x = SpellmanXRaySource(servers["xray"].resource, clock=clock, timeout_s=TMO, retries=0)
        x.connect()
        # status, faults and the two zero setpoints pass; the HV-on frame is swallowed (no reply)
        world.faults.add("timeout", rate=1.0, role="xray", count=1, skip=4)
        n0 = servers["xray"].messages
        with pytest.raises(DriverError, match="98,1"):
            x.on(20, 0.5)
        world.advance()
        assert not world.tube.hv_on and world.tube.history == []
        assert world.faults.log[-1][1] == "timeout"
        # then: reconnect (the driver re-reads the scaling, 28) and make_safe (two zero setpoints, HV off)
        assert servers["xray"].messages - n0 == 5 + 1 + 3


def test_lost_acknowledgement_of_hv_on_is_survived_after_hv_off_is_verified():
    """A transient loss of the HV-on acknowledgement: made safe (HV off, verified), then switched on again."""
    clock = SimClock()
    with sim_lab("xray", clock=clock) as (world, servers):
        x = SpellmanXRaySource(servers["xray"].resource, clock=clock, timeout_s=TMO)
        x.connect()
        world.faults.add("timeout", rate=1.0, role="xray", count=1, skip=4)
        x.on(20, 0.5)
        world.advance()
        assert world.tube.hv_on and world.faults.log[-1][1] == "timeout"
        kinds = [what.split(":")[0] for _, what in world.tube.history]
        assert kinds in (["on"], ["on", "off", "on"]), kinds   # if the lost exchange switched HV on, it was off again
        x.off()
        assert not world.tube.hv_on
