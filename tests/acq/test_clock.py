import math
import threading
import time

import pytest

from acq.clock import RealClock, SimClock, make_clock


def test_afap_sleep_advances_lab_time_without_wall_time(monkeypatch):
    c = SimClock(math.inf)
    walls = []
    monkeypatch.setattr(time, "sleep", walls.append)     # AFAP never waits in wall time (no bound on load)
    c.sleep(12 * 3600)
    assert c.monotonic() == pytest.approx(12 * 3600)
    assert walls == []
    assert c.now() - c._start == pytest.approx(12 * 3600)


def test_afap_periodic_callbacks_fire_in_lab_time_order_inside_sleep():
    c = SimClock(math.inf)
    seen = []
    c.call_every(1.0, lambda: seen.append(("a", c.monotonic())))
    c.call_every(2.5, lambda: seen.append(("b", c.monotonic())))
    c.sleep(5.0)
    assert [s[0] for s in seen] == ["a", "a", "b", "a", "a", "b", "a"]
    assert [s[1] for s in seen] == pytest.approx([1, 2, 2.5, 3, 4, 5, 5])
    assert c.monotonic() == pytest.approx(5.0)


def test_cancelled_periodic_stops_and_failing_callback_does_not_break_clock():
    c = SimClock(math.inf)
    n = []
    h = c.call_every(1.0, lambda: n.append(1))

    def bad():
        raise RuntimeError("link down")

    hb = c.call_every(1.0, bad)
    c.sleep(3)
    h.cancel()
    c.sleep(3)
    assert len(n) == 3
    assert hb.errors == 6


def test_finite_speed_clock_runs_fast_and_threaded_callbacks_fire():
    c = SimClock(1000.0)
    hits = threading.Event()
    c.call_every(10.0, hits.set)
    t0 = time.monotonic()
    c.sleep(50.0)  # 50 lab s = 50 ms wall
    wall = time.monotonic() - t0
    assert wall > 0.04          # it paces in wall time (a lower bound: load only makes it longer)
    assert c.monotonic() >= 50.0
    assert hits.wait(60.0)      # the threaded scheduler fires (the timeout only catches a hang)
    c.close()


def test_monotonic_never_decreases_and_bad_values_rejected():
    c = SimClock(math.inf)
    vals = []
    for _ in range(100):
        c.sleep(0.01)
        vals.append(c.monotonic())
    assert all(b >= a for a, b in zip(vals, vals[1:], strict=False))
    with pytest.raises(ValueError):
        SimClock(0)
    with pytest.raises(ValueError):
        c.call_every(0, lambda: None)


def test_make_clock():
    assert isinstance(make_clock("real"), RealClock)
    assert make_clock("max").afap
    assert make_clock("100").speed == 100
    with pytest.raises(ValueError, match="not a number"):
        make_clock("fast")
