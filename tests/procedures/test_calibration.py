"""FluenceCalibration against the simulated ND wheel and power meter."""

from __future__ import annotations

import math

import numpy as np
import pytest

from acq.store import open_run
from procedures import FluenceCalibration
from procedures._common import apply_calibration, find_latest_calibration, load_calibration

from .conftest import run, sim_lab

pytestmark = pytest.mark.timeout(120)


def test_calibration_table_matches_the_simulated_wheel(tmp_path):
    with sim_lab(tmp_path) as s:
        res = run(s, FluenceCalibration(n_steps=10, readings=2))
        laser = s.sim.world.laser
        data = open_run(res.path)
        c = data.stream("calibration")
        assert data.n_points == 10 and data.exit_status == "success"
        angles = np.asarray(c["angle"])
        T_true = np.array([laser.transmission(a) for a in angles])
        # transmission table within 3 % of the wheel's (ripple included) over 3.9 decades
        np.testing.assert_allclose(c["transmission"], T_true, rtol=0.03)
        assert T_true.max() / T_true.min() > 5e3
        # fluence map: P / f_rep / area of the simulated laser
        F_true = laser.power_W * T_true / laser.rep_rate_Hz / laser.spot_area_cm2 * 1e6
        np.testing.assert_allclose(c["fluence_uJcm2"], F_true, rtol=0.03)
        a = res.analysis
        assert a["verdict"] == "calibrated" and a["monotonic"]
        assert a["full_power_W"] == pytest.approx(laser.power_W, rel=0.02)
        assert data.analysis["verdict"] == "calibrated"  # stored in /entry/analysis

        # later runs: load it, install it in the wheel driver, set a fluence
        assert find_latest_calibration(tmp_path) == res.path
        cal = load_calibration(res.path)
        assert apply_calibration(s.lab.attenuator, cal)
        for f in (0.05, 1.0, 5.0):
            s.lab.attenuator.set_transmission(cal.transmission_for(f))
            assert laser.fluence_uJcm2() == pytest.approx(f, rel=0.03)
        lo, hi = cal.fluence_range
        assert hi == pytest.approx(laser.power_W * 10 ** -0.04 / 76e6 / laser.spot_area_cm2 * 1e6, rel=0.02)
        with pytest.raises(ValueError, match="outside"):
            cal.transmission_for(2 * hi)
        assert math.isfinite(lo)
