"""Plan estimates start where the cryostat will be: the previous run's last temperature in a plan
(``Plan.end_K`` → ``Procedure.start_K``), the simulated lab's start temperature for its first run, room
temperature (``acq.procedure.ROOM_K``) when nothing is known. No instrument anywhere."""

from pathlib import Path

import pytest

from acq.composition import sim_check_config
from acq.plans import load_plan
from acq.procedure import ROOM_K
from procedures._common import COOL_S_PER_K, WARM_S_PER_K
from procedures.pl import FluenceSeries, PLTemperatureSeries
from simulators.cryostat import CryostatModel

REVERSIBILITY = """\
[[step]]
procedure = "PLTemperatureSeries"
temperatures = [295, 150, 90, 20, 5]
fluences = [1.0]
calibration = "config"
hold_s = 30
reversibility = {repeat = [20, 5], warm_K = 295}
[[step]]
procedure = "FluenceSeries"
temperature = 5
fluences = [0.1, 1.0, 6.0]
calibration = "config"
hold_s = 30
"""


def _wait(p, dT: float) -> float:
    """What an estimate waits for one temperature change of dT (K; < 0 cooling), the procedures' own rule."""
    return min(p.timeout_s, p.hold_s + (COOL_S_PER_K if dT < 0 else WARM_S_PER_K) * abs(dT) + 30.0)


def test_the_estimate_starts_at_start_K_or_room_temperature():
    p = PLTemperatureSeries(temperatures=[295.0, 150.0, 5.0], fluences=[1.0], hold_s=30.0)
    assert p.start_K is None
    at_room = p.estimate()["lab_seconds"]
    p.start_K = ROOM_K
    assert p.estimate()["lab_seconds"] == at_room
    p.start_K = 5.0    # a cold cryostat (the simulated one at base, a repeat after a cool-down)
    assert p.estimate()["lab_seconds"] == pytest.approx(at_room + _wait(p, 290.0) - _wait(p, 0.0))
    f = FluenceSeries(temperature=5.0, fluences=[0.1, 1.0, 6.0], hold_s=30.0)
    far = f.estimate()["lab_seconds"]
    f.start_K = 5.0
    assert f.estimate()["lab_seconds"] == pytest.approx(far - _wait(f, -290.0) + _wait(f, 0.0))


def test_each_run_of_a_plan_starts_where_the_previous_one_ended():
    plan = load_plan(Path("rev.toml"), text=REVERSIBILITY)
    assert plan.ok, plan.errors
    first, repeat, fluence = plan.runs
    assert repeat.parameters["temperatures"] == [295, 20, 5]
    alone = PLTemperatureSeries(**{**repeat.parameters, "calibration": "config"})
    # the repeat starts cold (the first pass ended at 5 K): warming to 295 K is in its estimate
    assert repeat.estimate_s - alone.estimate()["lab_seconds"] == pytest.approx(_wait(alone, 290.0) - _wait(alone, 0.0))
    assert repeat.estimate_s - alone.estimate()["lab_seconds"] == pytest.approx(WARM_S_PER_K * 290.0)
    # the fluence series at 5 K follows a run that ended at 5 K: no cool-down in its estimate
    f = FluenceSeries(**fluence.parameters)
    f.start_K = 5.0
    assert fluence.estimate_s == pytest.approx(f.estimate()["lab_seconds"])
    # nothing known about the lab: the first run starts at room temperature
    assert first.estimate_s == pytest.approx(PLTemperatureSeries(**first.parameters).estimate()["lab_seconds"])


def test_on_the_simulated_lab_the_first_run_starts_at_its_cryostats_base():
    cfg = sim_check_config()
    base = CryostatModel().base_temperature()
    assert cfg.start_K == pytest.approx(base) and cfg.start_K < 10.0
    plan = load_plan(Path("rev.toml"), cfg, text=REVERSIBILITY)
    assert plan.ok, plan.errors
    p = PLTemperatureSeries(**plan.runs[0].parameters)
    p.start_K = base
    assert plan.runs[0].estimate_s == pytest.approx(p.estimate()["lab_seconds"])
    from_room = PLTemperatureSeries(**plan.runs[0].parameters).estimate()["lab_seconds"]
    assert plan.runs[0].estimate_s > from_room + WARM_S_PER_K * 280     # it warms ≈ 290 K first
