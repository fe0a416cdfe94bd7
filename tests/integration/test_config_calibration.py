"""``calibration = "config"`` on the simulated lab: ``sflab check`` accepts it and ``sflab run`` runs it.

Both see the same attenuator options (the simulated laser's ``full_power_W``, ``rep_rate_Hz``,
``spot_area_cm2``: ``simulators.laser.LaserModel.lab_toml``, as a lab.toml records them at the setup); the
fluence is then set through the CONEX driver's nominal OD table (docs/procedures.md: 'config' = the
attenuator's own table and full_power_W), so it lands within the simulated wheel's OD ripple."""

import math

import pytest
from typer.testing import CliRunner

from acq import cli
from acq.composition import open_lab, sim_check_config
from acq.store import open_run
from simulators.laser import LaserModel

PLAN = """\
sample = "milano-2d-sl"
[[step]]
procedure = "FluenceSeries"
temperature = 5
fluences = [0.05, 0.5, 5.0]
calibration = "config"
hold_s = 5
exposure_s = 0.2
record_decay = false
"""
runner = CliRunner()


def test_check_and_the_running_simulated_lab_have_the_same_laser_options(tmp_path):
    keys = ("full_power_W", "rep_rate_Hz", "spot_area_cm2")
    checked = sim_check_config().roles["attenuator"].options
    s = open_lab(sim=True, data_dir=tmp_path)
    try:
        running = s.config.roles["attenuator"].options
        assert {k: running[k] for k in keys} == {k: checked[k] for k in keys}
        assert running["full_power_W"] == s.sim.world.laser.power_W > 0
    finally:
        s.close()


@pytest.mark.timeout(180)
def test_a_config_calibration_plan_checks_and_runs_on_the_simulated_lab(tmp_path):
    plan = tmp_path / "config-cal.toml"
    plan.write_text(PLAN)
    r = runner.invoke(cli.app, ["check", str(plan)], env={"COLUMNS": "300"})
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli.app, ["run", str(plan), "--out", str(tmp_path / "c"), "--quiet", "--no-analyze"],
                      env={"COLUMNS": "300"})
    assert r.exit_code == 0, r.output
    (f,) = (tmp_path / "c").glob("*.h5")
    d = open_run(f)
    assert d.exit_status == "success" and d.parameters["calibration"] == "config"
    sp = d.stream("spectrum")
    laser = LaserModel()
    # the driver's nominal OD line against the simulated wheel: off by at most its ripple, plus the power
    # meter's noise (3σ) — both from the simulator's laser model
    tol = 10 ** laser.od_ripple * (1 + 3 * laser.pm_rel_noise) - 1
    for f_asked, P in zip(sp["fluence"], sp["power"], strict=True):
        f_at_sample = P / laser.rep_rate_Hz / laser.spot_area_cm2 * 1e6
        assert math.isclose(f_at_sample, f_asked, rel_tol=tol), (f_asked, f_at_sample, tol)
