"""The queue clears a latched X-ray watchdog trip between runs — only that fault, only with the tube off —
and says so in the queue (Spellman semantics: a watchdog timeout latches WATCH_DOG_FAULT, HV-on is refused
until command 31 resets the faults). Real Spellman driver against the simulated generator, on the AFAP clock."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from acq.clock import SimClock
from acq.events import EventBus
from acq.lab import Lab
from acq.queue import QueueWorker, RunQueue, clear_watchdog_trip
from drivers.base import SafetyError
from drivers.spellman import SpellmanXRaySource
from tests.drivers.simlab import sim_lab

pytestmark = pytest.mark.timeout(60)


def _tripped(clock, world, servers):
    x = SpellmanXRaySource(servers["xray"].resource, clock=clock, timeout_s=0.5,
                           shutter_resource=servers["shutter"].resource)
    lab = Lab({"xray": x}, clock=clock)
    lab.connect(["xray"])
    x.on(20, 0.5)
    clock.sleep(30)                        # no keep-alive: the generator's 5 s watchdog drops HV
    world.advance()
    assert not world.tube.hv_on and "WATCH_DOG_FAULT" in world.tube.faults
    x.make_safe()                          # what the backstop does at the end of the run
    with pytest.raises(SafetyError, match="fault register"):
        x.on(20, 0.5)
    return x, lab


def test_watchdog_trip_alone_is_cleared_with_the_tube_off_and_noted_in_the_queue(tmp_path):
    clock = SimClock()
    with sim_lab("xray", "shutter", clock=clock, xray_watchdog_s=5.0) as (world, servers):
        x, lab = _tripped(clock, world, servers)
        queue = RunQueue(tmp_path / "queue.json")
        it = queue.add("RLTemperatureSeries", {"temperatures": [20.0]}, title="next X-ray run")
        bus = EventBus(clock)
        sub = bus.subscribe("queue.note")
        worker = QueueWorker(SimpleNamespace(lab=lab, clock=clock, bus=bus, data_dir=tmp_path), queue)
        worker._clear_watchdog_trip(it)
        assert not world.tube.faults and not x.faults()
        assert "watchdog trip" in it.notes[0] and "HV off" in it.notes[0]
        assert "watchdog trip" in RunQueue(tmp_path / "queue.json").get(it.id).notes[0]   # persisted
        seen = sub.drain()
        assert len(seen) == 1 and seen[0].data["id"] == it.id
        assert clear_watchdog_trip(lab) is None          # nothing latched any more
        x.on(20, 0.5)                                    # HV is allowed again (and came on only on request)
        assert world.tube.hv_on
        x.off()


def test_other_faults_and_a_tube_not_confirmed_off_stay_latched(monkeypatch):
    clock = SimClock()
    with sim_lab("xray", "shutter", clock=clock, xray_watchdog_s=5.0) as (world, servers):
        x, lab = _tripped(clock, world, servers)
        world.tube.faults.add("ANODE_ARC")               # an arc as well: for the operator
        assert clear_watchdog_trip(lab) is None
        assert world.tube.faults == {"WATCH_DOG_FAULT", "ANODE_ARC"}
        world.tube.faults.discard("ANODE_ARC")
        # the monitors say the output is still live: not confirmed off, nothing reset
        monkeypatch.setattr(SpellmanXRaySource, "kV_mA", property(lambda self: (20.0, 0.5)))
        assert clear_watchdog_trip(lab) is None
        assert world.tube.faults == {"WATCH_DOG_FAULT"}
