"""acq.queue: the persisted queue and the worker, on in-memory fake instruments."""

import json
import threading

import pytest

from acq.clock import SimClock
from acq.config import parse_config
from acq.events import EventBus
from acq.fakes import fake_lab_roles
from acq.lab import Lab
from acq.queue import QueueWorker, RunQueue
from acq.session import LabSession
from acq.store import open_run

FAST = {"temperatures": [80.0, 40.0, 20.0], "hold": 1.0, "decay_time": 0.1, "g2_time": 0.1, "exposure": 0.1}


@pytest.fixture
def session(tmp_path):
    clock = SimClock()
    roles, _log, _world = fake_lab_roles(clock)
    cfg = parse_config('[lab]\nname = "fake"\n', "<fake>")
    s = LabSession(Lab(roles, clock=clock, config=cfg), clock, cfg, EventBus(clock), tmp_path)
    yield s
    s.close()


def test_queue_persists_and_edits(tmp_path):
    q = RunQueue(tmp_path / "q.json")
    a = q.add("EngineCheck", FAST, "a")
    b = q.add("EngineCheck", FAST, "b")
    c = q.add("wait", {"seconds": 5}, "pause")
    assert a.estimate_s and a.estimate_s > 0 and c.estimate_s == 5
    q.move(c.id, 0)
    assert [i.title for i in RunQueue(tmp_path / "q.json").items] == ["pause", "a", "b"]
    q.mark(a.id, "running", "x.h5")
    q2 = RunQueue(tmp_path / "q.json")
    assert q2.next_queued().id == a.id  # a run found running after a crash comes first
    with pytest.raises(ValueError):
        q2.remove(a.id)
    q2.mark(a.id, "done")
    q2.remove(b.id)
    assert q2.clear_done() == 1 and [i.id for i in q2.items] == [c.id]
    with pytest.raises(ValueError):
        q2.mark(c.id, "bogus")
    d = json.loads((tmp_path / "q.json").read_text())
    assert d["items"][0]["status"] == "queued" and not list(tmp_path.glob(".q.json.*"))


def test_worker_runs_items_and_publishes(session, tmp_path):
    q = RunQueue(tmp_path / "q.json")
    q.add("EngineCheck", FAST, "first")
    q.add("wait", {"seconds": 30}, "pause")
    q.add("EngineCheck", {**FAST, "kV": 999}, "bad parameters")   # fails validation, the queue goes on
    q.add("EngineCheck", FAST, "second")
    sub = session.bus.subscribe("queue.*", maxsize=1000)
    w = QueueWorker(session, q, out_dir=tmp_path)
    w.start()
    assert w.join(60)
    assert [i.status for i in q.items] == ["done", "done", "failed", "done"]
    assert "kV" in q.items[2].error
    for it in (q.items[0], q.items[3]):
        d = open_run(it.run_file)
        assert d.exit_status == "success" and d.n_points == 3
    topics = {e.topic for e in sub.drain()}
    assert {"queue.item", "queue.state"} <= topics and w.state == "finished"


def test_worker_abort_and_interrupt_then_resume(session, tmp_path):
    q = RunQueue(tmp_path / "q.json")
    it = q.add("EngineCheck", {**FAST, "temperatures": [80.0, 70.0, 60.0, 50.0, 40.0, 30.0]}, "long")
    q.add("EngineCheck", FAST, "next")
    w = QueueWorker(session, q, out_dir=tmp_path)
    sub = session.bus.subscribe("point", maxsize=1000)
    stop = threading.Event()

    def interrupt_after_two():
        n = 0
        while not stop.is_set():
            ev = sub.get(timeout=0.2)
            if ev is not None:
                n += 1
                if n == 2:
                    w.interrupt("test")
                    return

    th = threading.Thread(target=interrupt_after_two)
    th.start()
    w.run_here()
    stop.set()
    th.join()
    assert q.get(it.id).status == "interrupted" and q.items[1].status == "queued"
    first = open_run(q.get(it.id).run_file)
    assert 2 <= first.n_points < 6
    w2 = QueueWorker(session, q, out_dir=tmp_path)
    w2.run_here()
    assert [i.status for i in q.items] == ["done", "done"]
    d = open_run(q.get(it.id).run_file)
    assert d.n_points == 6 and list(d.point_id) == list(range(6)) and d.resumed_at == [first.n_points]


def test_two_runs_in_the_same_second_get_two_files(session, monkeypatch):
    """LabSession.make_runner names a run file that does not exist yet: two runs of one procedure within a
    second (the fast simulated lab does that) got the same name, and the second was refused before it started
    ("exists; sflab never overwrites a run file")."""
    import acq.names
    from acq.procedure import Procedure

    class Nothing(Procedure):
        ROLES = ()

        def points(self):
            return []

    monkeypatch.setattr(acq.names.time, "localtime", lambda *_: acq.names.time.gmtime(0))   # the same second
    a = session.make_runner(Nothing())
    a.path.touch()                      # the first run has written its file
    b = session.make_runner(Nothing())
    b.path.touch()
    c = session.make_runner(Nothing())
    assert a.path.name == "19700101-000000_Nothing.h5"
    assert b.path.name == "19700101-000000_Nothing-2.h5"
    assert c.path.name == "19700101-000000_Nothing-3.h5"
