import pytest

from acq.config import ConfigError, load_config, locate, parse_config, sim_config
from acq.lab import Lab

GOOD = """\
[lab]
name = "test setup"

[safety]
max_count_rate = 2e6

[cryostat]
backend = "fake"

[xray]
backend = "fake"
"""


def test_good_config_parses():
    cfg = parse_config(GOOD, "lab.toml")
    assert cfg.lab["name"] == "test setup" and cfg.safety["max_count_rate"] == 2e6
    assert cfg.safety["settle_s"] == 60.0  # default filled in
    assert set(cfg.roles) == {"cryostat", "xray"} and cfg.roles["xray"].line == 10
    snap = cfg.snapshot()
    assert snap["roles"]["cryostat"]["backend"] == "fake"


@pytest.mark.parametrize("text,expected", [
    (GOOD.replace("max_count_rate = 2e6", "max_count_rate = -5"),
     "lab.toml:5: safety.max_count_rate = -5.0 is below the minimum 1 1/s"),
    (GOOD.replace('[xray]\nbackend = "fake"', '[xray]\nbackend = "spelman"'),
     "lab.toml:11: xray.backend = 'spelman' is not a xray backend; allowed:"),
    (GOOD + "\n[laser]\nbackend = 'x'\n", "lab.toml:13: [laser] is not a known section"),
    (GOOD.replace("max_count_rate = 2e6", "max_countrate = 2e6"),
     "lab.toml:5: safety.max_countrate = 2000000.0 is not a known option"),
    (GOOD.replace('name = "test setup"', 'name = "a" "b"'), "lab.toml:2: not valid TOML"),
    (GOOD + '\n[tcspc]\nresource = "x"\n', "lab.toml:13: tcspc.backend = None is required"),
])
def test_errors_name_file_line_key_value_and_allowed(text, expected):
    with pytest.raises(ConfigError) as ei:
        parse_config(text, "lab.toml")
    assert any(e.startswith(expected) for e in ei.value.errors), ei.value.errors


def test_backend_option_limits_use_the_driver_schema(monkeypatch):
    from acq import fakes
    from drivers.base import Option

    monkeypatch.setattr(fakes.FakeXRay, "OPTIONS", {
        "max_kV": Option(float, 50.0, min=0, max=50.0, unit="kV",
                         max_reason="is above the generator's 50 kV rating")}, raising=False)
    text = GOOD + "max_kV = 80\n"
    with pytest.raises(ConfigError) as ei:
        parse_config(text, "lab.toml")
    assert ei.value.errors == ["lab.toml:12: xray.max_kV = 80.0 is above the generator's 50 kV rating"]


def test_all_errors_reported_together_and_nothing_contacted():
    bad = GOOD.replace("max_count_rate = 2e6", "max_count_rate = 0\npoll_s = 'often'") + "\n[foo]\n"
    with pytest.raises(ConfigError) as ei:
        parse_config(bad, "lab.toml")
    assert len(ei.value.errors) == 3


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such lab configuration"):
        load_config(tmp_path / "nope.toml")


def test_locate():
    text = "[a]\nx = 1\n[b]\nx = 2\n y = 3\n"
    assert locate(text, "b", "x") == 4 and locate(text, "b", "y") == 5 and locate(text, "a") == 1
    assert locate(text, "c") == 0


def test_sim_config_and_lab_from_config():
    from acq.clock import SimClock
    from acq.fakes import CommandLog, FakeWorld

    cfg = sim_config({"cryostat": {"backend": "fake", "resource": "mem"}})
    assert cfg.simulated and cfg.path == "<built-in simulated lab>"
    clock = SimClock()
    log, world = CommandLog(), FakeWorld(clock)
    lab = Lab.from_config(cfg, clock, inject={"cryostat": {"log": log, "world": world}})
    assert len(log) == 0  # instantiating does not talk to anything
    lab.connect()
    assert log.commands() == ["connect"]
    assert lab.cryostat.temperature == pytest.approx(295.0)
