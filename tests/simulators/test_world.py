"""World: options, conditions, laser/ND/fluence, determinism."""

from __future__ import annotations

import math

import pytest

from acq.clock import SimClock
from simulators.laser import LaserModel
from simulators.world import World

pytestmark = pytest.mark.timeout(60)


def test_options_are_strict_and_named():
    with pytest.raises(ValueError, match="xray_watchdog_s"):
        World(SimClock(), xray_watchdgo_s=3)
    w = World(SimClock(), cryostat="ln2", xray_watchdog_s=2.5, laser_rep_rate_Hz=15e3, spot_diameter_um=50,
              tick_s=0)
    assert w.tube.watchdog_s == 2.5 and w.laser.rep_rate_Hz == 15e3
    assert w.cryostat.T_stage == pytest.approx(80.0, abs=0.5)
    assert w.laser.spot_area_cm2 == pytest.approx(math.pi * 0.0025 ** 2)


def test_conditions_follow_the_lab():
    clock = SimClock()
    w = World(clock)
    c = w.conditions_dict()
    assert c["T_K"] == pytest.approx(5.0, abs=0.1)
    assert c["photon_eV"] == 3.06 and c["rep_rate_Hz"] == 76e6
    assert c["xray_kV"] == 0.0 and c["xray_mA"] == 0.0
    # fluence = P / f_rep / area
    assert c["fluence_uJcm2"] == pytest.approx(w.laser.transmitted_power() / 76e6 / w.laser.spot_area_cm2 * 1e6)
    w.tube.set_kV(20)
    w.tube.set_mA(0.5)
    assert w.tube.request_hv(True, clock.monotonic()) is None
    clock.sleep(3)
    assert w.conditions_dict()["xray_kV"] == 0.0       # shutter closed: no X-rays on the sample
    w.tube.shutter_enabled = True
    w.tube.touch(clock.monotonic())
    assert w.conditions_dict()["xray_kV"] == pytest.approx(20.0)
    w.laser.blocked = True
    assert w.conditions_dict()["fluence_uJcm2"] == 0.0


def test_conditions_object_from_sample_module():
    w = World(SimClock(), tick_s=0)
    cond = w.conditions()
    assert cond.T_K == pytest.approx(5.0, abs=0.1)


def test_nd_wheel_is_log_linear_with_ripple():
    las = LaserModel()
    od0, od270 = las.optical_density(0), las.optical_density(270)
    assert od0 == pytest.approx(0.04) and od270 == pytest.approx(4.0, abs=1e-9)
    assert las.optical_density(135) == pytest.approx(2.02, abs=0.04)
    assert las.optical_density(300) == pytest.approx(4.0, abs=1e-9)     # beyond the coated arc
    assert las.transmission(90) == pytest.approx(10 ** -las.optical_density(90))


def test_power_meter_noise_averaging_and_wavelength():
    las = LaserModel(seed=1)
    readings = [las.pm_reading() for _ in range(400)]
    mean = sum(readings) / len(readings)
    sd = (sum((r - mean) ** 2 for r in readings) / len(readings)) ** 0.5
    assert mean == pytest.approx(las.transmitted_power(), rel=0.002)
    assert sd / mean == pytest.approx(0.005, rel=0.2)
    las.pm_averaging = 100
    r2 = [las.pm_reading() for _ in range(400)]
    m2 = sum(r2) / len(r2)
    assert (sum((r - m2) ** 2 for r in r2) / len(r2)) ** 0.5 < sd / 5
    las.pm_wavelength_nm = 810.0                          # wrong correction wavelength: wrong reading
    assert las.pm_reading() == pytest.approx(mean * 405 / 810, rel=0.02)
    las.power_W = 1.0
    las.pm_wavelength_nm = 405.0
    assert las.pm_reading() == 9.9e37                     # over range


def test_same_seed_same_lab():
    def run(seed: int) -> list:
        clock = SimClock(start=0.0)
        w = World(clock, seed=seed, faults="arc=0.01/s,interlock_open=0.002/s")
        w.cryostat.target[1] = w.cryostat.setpoint[1] = 30.0
        w.cryostat.range[1] = 2
        out = []
        for _ in range(20):
            clock.sleep(50)
            out.append((round(w.cryostat.reading("B"), 9), w.laser.pm_reading()))
        return out + [tuple(w.faults.log)]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_tick_lets_the_watchdog_act_while_nobody_talks():
    clock = SimClock()
    w = World(clock, xray_watchdog_s=2.0, tick_s=0.5)
    w.tube.request_hv(True, clock.monotonic())
    clock.sleep(10)                                        # nobody calls advance(): the tick does
    assert not w.tube.hv_on and w.tube.t >= 2.0
    w.stop()
