"""A short beam day in AFAP time with every backend against the servers: the lab ends up where the
drivers said it is."""

from __future__ import annotations

import pytest

from acq.clock import SimClock
from drivers.conex import ConexNDAttenuator
from drivers.lakeshore336 import LakeShore336Controller
from drivers.pm100d import PM100DPowerMeter
from drivers.spellman import SpellmanXRaySource
from tests.drivers.simlab import sim_lab

pytestmark = pytest.mark.timeout(90)


def test_beam_day_in_afap_time():
    clock = SimClock()
    with sim_lab("cryostat", "xray", "shutter", "attenuator", "powermeter", clock=clock) as (world, s):
        cryo = LakeShore336Controller(s["cryostat"].resource, clock=clock)
        xray = SpellmanXRaySource(s["xray"].resource, clock=clock, shutter_resource=s["shutter"].resource)
        att = ConexNDAttenuator(s["attenuator"].resource, clock=clock)
        pm = PM100DPowerMeter(s["powermeter"].resource, clock=clock)
        for dev in (cryo, xray, att, pm):
            dev.connect()
            assert dev.describe()["backend"] == type(dev).__name__

        # calibrate the ND wheel with the power meter, then set a fluence
        table = att.calibrate(pm, [float(a) for a in range(0, 271, 15)], full_power_W=world.laser.power_W)
        assert len(table) == 19
        att.set_fluence(0.5)
        assert world.conditions_dict()["fluence_uJcm2"] == pytest.approx(0.5, rel=0.03)

        # temperature series with ramps, X-rays on at each point
        for T in (20.0, 80.0, 40.0):
            cryo.set_temperature(T, ramp_K_per_min=10)
            cryo.wait_stable(T, band_K=0.1, hold_s=60, timeout_s=7200)
            xray.on(20, 0.5)
            xray.start_keepalive()
            clock.sleep(300)                       # a 5-minute exposure; keep-alives every lab second
            cond = world.conditions_dict()
            assert cond["T_K"] == pytest.approx(T, abs=0.1)
            assert cond["xray_kV"] == pytest.approx(20.0, abs=0.02)       # 12-bit DAC steps
            assert cond["xray_mA"] == pytest.approx(0.5, abs=5e-4)
            rb = xray.readback()
            assert rb["hv_on"] == 1.0 and rb["shutter_open"] == 1.0
            xray.stop_keepalive()
            xray.off()
            assert world.conditions_dict()["xray_kV"] == 0.0

        for dev in (xray, att, cryo, pm):
            dev.make_safe()
        world.advance()
        assert not world.tube.hv_on and world.cryostat.range[1] == 0
        assert world.laser.transmission() < 2e-4
        assert clock.monotonic() > 1800            # well over half an hour of lab time, AFAP
