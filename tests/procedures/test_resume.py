"""A PL series aborted half-way and resumed: every planned point once, at its temperature and fluence."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from acq.store import open_run
from procedures import FluenceCalibration, PLTemperatureSeries

from .conftest import run, sim_lab, suspenders

pytestmark = pytest.mark.timeout(150)


class AbortingPL(PLTemperatureSeries):
    abort_at: int | None = 2

    def measure_point(self, index: int, point: dict[str, Any]) -> None:
        super().measure_point(index, point)
        if self.abort_at is not None and index == self.abort_at:
            self.runner.abort("test: stop after this point")


def test_resume_continues_at_the_first_incomplete_point(tmp_path):
    temps, fl = [5.0, 60.0, 120.0], [0.5, 4.0]
    kw = dict(temperatures=temps, fluences=fl, hold_s=10.0, decay_s=0.2)
    with sim_lab(tmp_path) as s:
        run(s, FluenceCalibration(n_steps=14, readings=1))
        path = tmp_path / "pl.h5"
        first = s.make_runner(AbortingPL(**kw), path, suspenders=suspenders()).run()
        assert first.exit_status == "aborted" and first.n_points == 3
        p = AbortingPL(**kw)
        p.abort_at = None
        second = s.make_runner(p, path, resume=True, suspenders=suspenders()).run()
        assert second.exit_status == "success", second.error
    data = open_run(path)
    assert data.n_points == 6 and data.resumed_at == [3]
    sp = data.stream("spectrum")
    np.testing.assert_allclose(sp["T_K"], np.repeat(temps, 2), atol=1.0)
    np.testing.assert_allclose(sp["fluence_measured"], np.tile(fl, 3), rtol=0.05)
    assert list(data.point_id) == list(range(6))
