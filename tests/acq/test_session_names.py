"""LabSession.make_runner names a run file that does not exist yet: two runs of the same procedure within one
second (the fast simulated lab does that) got the same name, and the second was refused before it started
("exists; sflab never overwrites a run file")."""

import math

from acq.clock import SimClock
from acq.config import sim_config
from acq.events import EventBus
from acq.fakes import fake_lab_roles
from acq.lab import ROLES, Lab
from acq.procedure import Procedure
from acq.session import LabSession


def make_fake_session(tmp_path):
    clock = SimClock(math.inf)
    roles, log, world = fake_lab_roles(clock)
    cfg = sim_config({r: {"backend": "fake", "resource": "fake"} for r in ROLES}, name="fake lab")
    session = LabSession(Lab(roles, clock=clock, config=cfg), clock, cfg, EventBus(clock), tmp_path / "runs",
                         sample={"name": "fake-sample"})
    return session, log, world


class Nothing(Procedure):
    ROLES = ()

    def points(self):
        return []


def test_two_runs_in_the_same_second_get_two_files(tmp_path, monkeypatch):
    import acq.names

    monkeypatch.setattr(acq.names.time, "localtime", lambda *_: acq.names.time.gmtime(0))   # the same second
    session, _, _ = make_fake_session(tmp_path)
    try:
        a = session.make_runner(Nothing())
        a.path.parent.mkdir(parents=True, exist_ok=True)
        a.path.touch()                      # the first run has written its file
        b = session.make_runner(Nothing())
        b.path.touch()
        c = session.make_runner(Nothing())
    finally:
        session.close()
    assert a.path.name == "19700101-000000_Nothing_fake-sample.h5"
    assert b.path.name == "19700101-000000_Nothing_fake-sample-2.h5"
    assert c.path.name == "19700101-000000_Nothing_fake-sample-3.h5"
