"""Cryostat thermal model: base temperatures, heater ranges, PID + ramp, sensor-sample lag, AFAP cost."""

from __future__ import annotations

import pytest

from simulators.cryostat import RANGE_POWER_W, CryostatModel, c_copper

pytestmark = pytest.mark.timeout(60)


def test_copper_heat_capacity_against_tabulated_values():
    # tabulated c_p of Cu, J/(g K): 10 K 0.00086, 50 K 0.0992, 100 K 0.254, 300 K 0.385
    for T, c in ((10, 0.00086), (50, 0.0992), (100, 0.254), (300, 0.385)):
        assert c_copper(T) == pytest.approx(c, rel=0.35)


@pytest.mark.parametrize("kind, base", [("he", 5.0), ("ln2", 80.0)])
def test_base_temperature(kind, base):
    m = CryostatModel(kind)
    assert m.base_temperature() == pytest.approx(base, abs=0.5)
    m.advance_to(3600.0)
    assert m.T_stage == pytest.approx(m.base_temperature(), abs=0.01)


def test_unknown_kind_names_the_allowed():
    with pytest.raises(ValueError, match="he, ln2"):
        CryostatModel("dilution")


def drive(m: CryostatModel, t: float, dt: float = 5.0) -> list[tuple[float, float, float]]:
    out = []
    while m.t < t - 1e-9:
        m.advance_to(m.t + dt)
        out.append((m.t, m.T_stage, m.T_sample))
    return out


def test_heater_range_too_small_cannot_hold_setpoint():
    m = CryostatModel("he")
    m.target[1] = m.setpoint[1] = 80.0
    m.range[1] = 1                                  # 1 W: far too little for 80 K
    drive(m, 1800)
    assert m.T_stage < 30 and m.output_pct == 100.0
    m.range[1] = 3
    drive(m, 3600)
    assert m.T_stage == pytest.approx(80.0, abs=0.05)
    assert 5 < m.heater_power() < RANGE_POWER_W[3]


def test_pid_settles_without_large_overshoot_and_sample_lags():
    m = CryostatModel("he")
    m.target[1] = m.setpoint[1] = 20.0
    m.range[1] = 2
    trace = drive(m, 900, dt=1.0)
    peak = max(T for _, T, _ in trace)
    assert peak < 20.5                              # a tuned loop: no big overshoot
    assert trace[-1][1] == pytest.approx(20.0, abs=0.01)
    lag = [Ts - Tsa for _, Ts, Tsa in trace[:30]]
    assert max(lag) > 0.1                           # sample behind the sensor while heating


def test_ramp_executed_in_the_controller():
    m = CryostatModel("he", T0=20.0)
    m.target[1] = m.setpoint[1] = 20.0
    m.range[1] = 3
    drive(m, 600)
    m.ramp_on[1], m.ramp_rate[1] = True, 6.0        # 6 K/min
    m.target[1] = 80.0
    drive(m, 900)                                   # 5 min later: setpoint at 50 K
    assert m.setpoint[1] == pytest.approx(50.0, abs=0.2) and m.ramping(1)
    assert m.T_stage == pytest.approx(50.0, abs=1.0)
    assert m.T_sample < m.T_stage                   # lag while ramping up
    drive(m, 1800)
    assert not m.ramping(1) and m.T_stage == pytest.approx(80.0, abs=0.1)


def test_open_loop_and_off_modes():
    m = CryostatModel("he")
    m.range[1] = 2
    m.outmode[1] = (3, 1, 0)
    m.mout[1] = 50.0
    drive(m, 2400)
    assert m.output_pct == 50.0 and m.T_stage > 15
    m.outmode[1] = (0, 1, 0)
    drive(m, 4800)
    assert m.output_pct == 0.0 and m.T_stage < 6


def test_heat_pulse_excursion():
    m = CryostatModel("he", T0=20.0)
    m.target[1] = m.setpoint[1] = 20.0
    m.range[1] = 2
    drive(m, 600)
    m.heat_pulse(m.t, 30.0, 5.0)
    drive(m, m.t + 20)
    assert m.T_stage > 20.5
    drive(m, m.t + 900)
    assert m.T_stage == pytest.approx(20.0, abs=0.02)


def test_twelve_lab_hours_cost_little_wall_time():
    m = CryostatModel("he")
    m.target[1] = m.setpoint[1] = 50.0
    m.range[1] = 3
    m.advance_to(12 * 3600.0)                       # settled loops are fast-forwarded (cost: make bench)
    assert m.T_stage == pytest.approx(50.0, abs=0.01)
