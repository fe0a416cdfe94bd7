"""Fault campaign: runs on the simulated lab with each injected fault of simulators/faults.py end with the
X-ray HV off, the shutter closed and every completed point readable."""

import numpy as np
import pytest

from acq.campaign import Campaign
from acq.composition import open_lab, prepare_tcspc, sim_check_config
from acq.plans import load_plan
from acq.queue import QueueWorker
from acq.store import open_run

PLAN = """\
sample = "milano-2d-sl"
[[step]]
procedure = "RLTemperatureSeries"
temperatures = [60, 40, 20]
hold_s = 20
exposure_s = 1.0
kV = 20
"""

FAULTS = [
    "xray.garbage=0.05",                       # garbage replies from the generator
    "interlock_open=0.004/s",                  # the enclosure interlock opens (10 s each)
    "temperature_excursion=0.003/s",           # heat pulses on the cold finger
    "cryostat.drop#2",                         # two dropped connections to the Lake Shore
    "xray.timeout#1",                          # a swallowed message (a 2 s wall timeout)
    "arc=0.002/s",                             # HV trips on an arc
    "count_rate_overload=0.003/s",             # the detectors see too much light
    "xray.instrument_error=0.02",              # the generator reports its own errors
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("faults", FAULTS)
def test_fault_campaign_ends_safe_and_readable(tmp_path, faults):
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text(PLAN)
    plan = load_plan(plan_file, sim_check_config())
    assert plan.errors == []
    opts = {"sim": True, "sample": "milano-2d-sl", "speed": "max", "faults": faults, "seed": 3}
    campaign = Campaign.create(tmp_path / "c", plan, opts)
    session = open_lab(None, sim=True, sample="milano-2d-sl", faults=faults, seed=3, data_dir=campaign.folder)
    try:
        w = QueueWorker(session, campaign.queue, out_dir=campaign.folder, filename=campaign.filename,
                        before_item=lambda it: prepare_tcspc(session, it.procedure, it.parameters))
        w.run_here()
        tube = session.sim.world.tube
        assert not tube.hv_on, f"HV left on after {faults}"
        assert not tube.shutter_open, f"shutter left open after {faults}"
        it = campaign.queue.items[0]
        assert it.status in ("done", "failed", "aborted"), it
        d = open_run(it.run_file)
        assert d.exit_status in ("success", "failed", "aborted")
        assert d.backstop.get("xray") in ("ok", None) or not tube.hv_on
        assert d.n_points == len(d.point_id) and list(d.point_id) == list(range(d.n_points))
        for k, v in d.streams.get("spectrum", {}).items():
            assert v.shape[0] == d.n_points, k
            if v.dtype.kind == "f" and k == "counts":
                assert np.isfinite(v).all()
    finally:
        session.close()
