"""Bluesky event-model documents of a run: every document passes event-model's own schema, the events match
the run file's points one for one (data and timestamps), live (from the bus) and from the file alike."""

import math

import numpy as np
import pytest

from acq.clock import SimClock
from acq.documents import READBACKS, documents_from_file, subscribe, validate_document
from acq.enginecheck import EngineCheck
from acq.events import EventBus
from acq.fakes import fake_lab_roles
from acq.lab import Lab
from acq.runner import Runner
from acq.store import open_run

event_model = pytest.importorskip("event_model")


def _demo_run(tmp_path, **params):
    """The engine-check demo run (`sflab demo --engine-check`) on in-memory fakes, AFAP clock."""
    clock = SimClock(math.inf)
    roles, _log, _world = fake_lab_roles(clock)
    lab = Lab(roles, clock=clock)
    bus = EventBus(clock)
    proc = EngineCheck(temperatures=[290.0, 120.0, 40.0, 20.0], n_pixels=64, hold=1.0, **params)
    runner = Runner(proc, lab, tmp_path / "run.h5", clock=clock, bus=bus,
                    sample={"name": "fake", "truth": {"model": "acq.fakes"}})
    docs = []
    stream = subscribe(bus, lambda name, doc: docs.append((name, doc)))
    res = runner.run()
    assert stream.flush(30)
    stream.close()
    assert not stream.errors
    return res, docs


def _check_against_file(docs, path):
    run = open_run(path)
    names = [n for n, _ in docs]
    assert names[0] == "start" and names[-1] == "stop" and names.count("start") == names.count("stop") == 1
    for name, doc in docs:
        validate_document(name, doc)          # event-model's JSON schema, document by document
    # event-model's sanitizer (what consumers use to make documents JSON-safe) accepts every document
    for _name, doc in docs:
        event_model.sanitize_doc(doc)
    start = docs[0][1]
    assert start["run_uid"] == run.run_uid and start["run_file"] == str(path)
    desc = {d["uid"]: d for n, d in docs if n == "descriptor"}
    by_name = {d["name"]: d for d in desc.values()}
    assert set(by_name) == set(run.streams) | {READBACKS}
    for d in desc.values():
        assert d["run_start"] == start["uid"]
    events = [d for n, d in docs if n == "event"]
    assert len(events) == run.n_points * len(by_name)
    per = {}
    for ev in events:
        per.setdefault(desc[ev["descriptor"]]["name"], []).append(ev)
    for sname, evs in per.items():
        assert [e["seq_num"] for e in evs] == list(range(1, run.n_points + 1))
        for i, ev in enumerate(evs):
            assert ev["time"] == run.timestamp[i]
            assert set(ev["timestamps"].values()) == {run.timestamp[i]}
            if sname == READBACKS:
                for role, vals in run.readbacks.items():
                    for k, v in vals.items():
                        np.testing.assert_array_equal(ev["data"][f"{role}_{k}"], v[i])
                continue
            fields = run.streams[sname]
            assert set(ev["data"]) == set(fields)
            for k, v in fields.items():
                got = np.asarray(ev["data"][k])
                assert got.dtype == v.dtype and got.shape == v[i].shape, (sname, k)
                np.testing.assert_array_equal(got, v[i])
                key = by_name[sname]["data_keys"][k]
                assert key["shape"] == list(v.shape[1:]) and key["units"] == run.units[sname][k]
        # static axes travel in the descriptor's configuration
        for ax, vals in run.static_axes[sname].items() if sname != READBACKS else ():
            np.testing.assert_array_equal(by_name[sname]["configuration"][sname]["data"][ax], vals)
    stop = docs[-1][1]
    assert stop["run_start"] == start["uid"]
    assert stop["num_events"] == {n: run.n_points for n in by_name}
    return run, start, stop


def test_live_documents_validate_and_match_the_run_file_point_for_point(tmp_path):
    res, docs = _demo_run(tmp_path)
    assert res.exit_status == "success" and res.n_points == 4
    run, start, stop = _check_against_file(docs, tmp_path / "run.h5")
    assert stop["exit_status"] == "success" and stop["sflab_exit_status"] == "success"
    # the document stream rebuilt from the file is the same stream
    again = list(documents_from_file(tmp_path / "run.h5"))
    _check_against_file(again, tmp_path / "run.h5")
    assert [n for n, _ in again] == [n for n, _ in docs]
    assert again[0][1]["uid"] == start["uid"]


def test_aborted_run_stops_with_abort_and_the_reason(tmp_path):
    from acq import enginecheck

    calls = []

    class Stopping(enginecheck.EngineCheck):
        def measure_point(self, index, point):
            calls.append(index)
            if index == 2:
                self.runner.abort("user pressed stop")
            super().measure_point(index, point)

    clock = SimClock(math.inf)
    roles, _log, _world = fake_lab_roles(clock)
    lab = Lab(roles, clock=clock)
    bus = EventBus(clock)
    docs = []
    stream = subscribe(bus, lambda n, d: docs.append((n, d)))
    res = Runner(Stopping(temperatures=[290.0, 120.0, 40.0, 20.0], n_pixels=64, hold=1.0), lab,
                 tmp_path / "run.h5", clock=clock, bus=bus).run()
    stream.close()
    assert res.exit_status == "aborted"
    run, _start, stop = _check_against_file(docs, tmp_path / "run.h5")
    assert stop["exit_status"] == "abort" and "user pressed stop" in stop["reason"]
    assert run.n_points == res.n_points


def test_a_failing_consumer_does_not_stop_the_others(tmp_path):
    bus = EventBus()
    good = []

    def bad(name, doc):
        raise RuntimeError("consumer bug")

    stream = subscribe(bus, bad, lambda n, d: good.append(n))
    from acq.store import Field, RunWriter, Stream

    w = RunWriter(tmp_path / "r.h5", procedure="X", parameters={}, streams=[
        Stream("s", (Field("y", (), "f8", "K"),), "y")])
    bus.publish("run.start", {"path": str(tmp_path / "r.h5"), "procedure": "X"}, run_uid=w.run_uid)
    w.append({"s": {"y": 1.5}}, timestamp=10.0)
    bus.publish("point", {"index": 0, "streams": {"s": {"y": 1.5}}, "timestamp": 10.0}, run_uid=w.run_uid)
    w.finish("success")
    w.close()
    bus.publish("run.stop", {"exit_status": "success", "n_points": 1}, run_uid=w.run_uid)
    stream.close()
    assert good == ["start", "descriptor", "event", "stop"] and len(stream.errors) == 4


def test_points_the_bus_dropped_are_read_back_from_the_file(tmp_path):
    """A consumer so slow that its inbox overflowed still gets every point (from the run file)."""
    from acq.store import Field, RunWriter, Stream

    bus = EventBus()
    docs = []
    stream = subscribe(bus, lambda n, d: docs.append((n, d)))
    w = RunWriter(tmp_path / "r.h5", procedure="X", parameters={}, streams=[
        Stream("s", (Field("y", (), "f8", "K"),), "y")])
    bus.publish("run.start", {"path": str(tmp_path / "r.h5"), "procedure": "X"}, run_uid=w.run_uid)
    for i in range(5):
        w.append({"s": {"y": float(i)}}, timestamp=100.0 + i)
    # only the last point reaches the bus subscriber (as if the others had been dropped)
    bus.publish("point", {"index": 4, "streams": {"s": {"y": 4.0}}, "timestamp": 104.0}, run_uid=w.run_uid)
    w.finish("success")
    w.close()
    bus.publish("run.stop", {"exit_status": "success", "n_points": 5}, run_uid=w.run_uid)
    stream.close()
    evs = [d for n, d in docs if n == "event"]
    assert [e["data"]["y"] for e in evs] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert [e["time"] for e in evs] == [100.0, 101.0, 102.0, 103.0, 104.0]
