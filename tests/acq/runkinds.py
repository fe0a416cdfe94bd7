"""Every kind of run file sflab writes, small and fast (simulated lab on the AFAP clock, in-memory fakes):
FluenceCalibration, PL temperature series, fluence series, RL temperature series, HBT g2 with Photon-HDF5
sidecars, time-resolved RL, the engine check, an aborted run and a repaired (writer killed) file. The
post-run analysis (the /entry/analysis group) is written for the calibration, PL, HBT and engine-check files."""

from __future__ import annotations

import math
from pathlib import Path

from acq.clock import SimClock
from acq.enginecheck import EngineCheck
from acq.fakes import fake_lab_roles
from acq.lab import Lab
from acq.runner import Runner
from acq.store import RunWriter, repair, streams_of


def make_all(folder: Path) -> dict[str, Path]:
    from procedures import (
        FluenceCalibration,
        FluenceSeries,
        HBTCorrelation,
        PLTemperatureSeries,
        RLTemperatureSeries,
        TimeResolvedRL,
    )
    from tests.procedures.conftest import run, sim_lab, suspenders

    def bare(session, procedure):
        """A run without the post-run analysis (the file kind is the same; keeps the fixture fast)."""
        r = session.make_runner(procedure, suspenders=suspenders())
        r.analyze = False
        res = r.run()
        assert res.exit_status == "success", res.error
        return res

    out: dict[str, Path] = {}
    with sim_lab(folder / "pl") as s:
        out["calibration"] = run(s, FluenceCalibration(n_steps=4, readings=1)).path
        out["pl"] = run(s, PLTemperatureSeries(temperatures=[80.0, 20.0], fluences=[1.0], hold_s=5.0,
                                               decay_s=0.2)).path
        out["fluence"] = bare(s, FluenceSeries(temperature=20.0, fluences=[0.2, 0.6, 2.0], min_decades=0.5,
                                               hold_s=5.0, decay_s=0.2)).path
    with sim_lab(folder / "rl") as s:
        out["rl"] = bare(s, RLTemperatureSeries(temperatures=[100.0, 20.0], kV=20.0, mA=0.5, hold_s=5.0)).path
    with sim_lab(folder / "hbt", hbt=True) as s:
        out["hbt"] = run(s, HBTCorrelation(temperatures=[20.0], g2_s=0.5, tags_s=0.02, hold_s=5.0)).path
        out["trrl"] = bare(s, TimeResolvedRL(temperatures=[20.0], g2_s=0.5, tags_s=0.0, hold_s=5.0)).path
    # engine check on in-memory fakes, one finished and one aborted
    for name, abort_at in (("engine", None), ("aborted", 1)):
        clock = SimClock(math.inf)
        roles, _log, _world = fake_lab_roles(clock)
        p = EngineCheck(temperatures=[290.0, 40.0, 20.0], n_pixels=64, hold=1.0)
        r = Runner(p, Lab(roles, clock=clock), folder / f"{name}.h5", clock=clock)
        if abort_at is not None:
            orig = p.measure_point

            def measure(index, point, orig=orig, r=r, abort_at=abort_at):
                if index == abort_at:
                    r.abort("stopped by the test")
                orig(index, point)

            p.measure_point = measure  # type: ignore[method-assign]
        r.run()
        out[name] = folder / f"{name}.h5"
    # a file whose writer never closed (as after kill -9), repaired into a clean one
    streams, rb, default = streams_of(out["engine"])
    w = RunWriter(folder / "killed.h5", procedure="EngineCheck", parameters={}, streams=streams, readbacks=rb)
    from acq.store import open_run

    src = open_run(out["engine"])
    for i in range(2):
        w.append({s.name: {k: v[i] for k, v in src.streams[s.name].items()} for s in streams},
                 timestamp=float(src.timestamp[i]))
    w._f.flush()
    w._f.id.close()          # drop the handle without closing the file properly (SWMR flag stays set)
    out["repaired"] = repair(folder / "killed.h5")
    return out
