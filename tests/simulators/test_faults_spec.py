"""Fault plan: parsing, rates, schedules, determinism."""

from __future__ import annotations

import pytest

from simulators.faults import Faults

pytestmark = pytest.mark.timeout(30)


def test_parse_text_form():
    items = Faults.parse("timeout=0.01, xray.garbage=0.05, arc=0.001/s, interlock_open@120+30, cryostat.drop#1")
    assert items[0] == {"name": "timeout", "role": None, "rate": 0.01}
    assert items[1]["role"] == "xray" and items[1]["name"] == "garbage"
    assert items[2]["rate"] == 0.001
    assert items[3]["at"] == [120.0] and items[3]["duration_s"] == 30.0
    assert items[4] == {"name": "drop", "role": "cryostat", "count": 1, "rate": 1.0}


@pytest.mark.parametrize("bad, msg", [("nonsense=1", "unknown fault"), ("arc=0.1", "per lab second"),
                                      ("timeout", "needs a rate"), ("timeout=2", "probability"),
                                      ("time out=1", "not understood")])
def test_parse_errors_are_clear(bad, msg):
    with pytest.raises(ValueError, match=msg):
        Faults(bad)


def test_request_fault_rate_role_and_count():
    f = Faults(seed=1)
    f.add("garbage", rate=0.1, role="xray")
    hits = sum(f.request_fault("xray") == "garbage" for _ in range(5000))
    assert hits == pytest.approx(500, rel=0.15)
    assert f.request_fault("cryostat") is None
    f.clear()
    f.trigger("drop", role="cryostat", count=2)
    assert [f.request_fault("cryostat") for _ in range(3)] == ["drop", "drop", None]


def test_state_fault_poisson_times_do_not_depend_on_chunking():
    def times(step: float) -> list[float]:
        f = Faults("arc=0.05/s", seed=7)
        out, t = [], 0.0
        while t < 1000:
            out += [e.t for e in f.events_between(t, t + step)]
            t += step
        return out

    a, b = times(1.0), times(37.0)
    assert a == pytest.approx(b) and 30 < len(a) < 75


def test_scheduled_fault_with_duration_is_active():
    f = Faults("interlock_open@10+5")
    assert f.events_between(0, 9) == []
    ev = f.events_between(9, 11)
    assert [e.name for e in ev] == ["interlock_open"] and ev[0].t == 10
    assert f.active("interlock_open", 12) and not f.active("interlock_open", 16)


def test_dict_spec():
    f = Faults({"xray.timeout": 0.5, "arc": {"rate": 0.1}})
    d = f.describe()
    assert d[0]["role"] == "xray" and d[0]["rate"] == 0.5 and d[1]["name"] == "arc"
