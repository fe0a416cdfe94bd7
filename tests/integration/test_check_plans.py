"""`sflab check` (and `sflab run`) reject bad plans with file:line errors and exit code 2 before any
simulated instrument exists — let alone receives a command."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

import simulators
from acq import cli
from acq.lab import Lab

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

GOOD = """\
sample = "milano-2d-sl"
[[step]]
procedure = "PLTemperatureSeries"
temperatures = [295, 80, 20]
fluences = [0.5, 2.0]
calibration = "config"
[[step]]
procedure = "RLTemperatureSeries"
temperatures = [180, 20]
kV = 20
"""

#: (name, plan text, the line the error must name, words the message must contain)
MISTAKES = [
    ("unknown key", GOOD.replace("fluences = [0.5, 2.0]", "fluences = [0.5, 2.0]\nexposur_s = 1"), 6,
     ["exposur_s = 1", "is not a parameter of PLTemperatureSeries", "did you mean 'exposure_s'"]),
    ("T below the cryostat's base", GOOD.replace("[295, 80, 20]", "[295, 80, 2]"), 4,
     ["PLTemperatureSeries", "2 K is below the cryostat's min_K = 4 K"]),
    ("fluence above the laser's maximum", GOOD.replace("[0.5, 2.0]", "[0.5, 2.0, 50.0]"), 5,
     ["fluence 50", "above the maximum"]),
    ("kV above the tube rating", GOOD.replace("kV = 20", "kV = 65"), 10, ["65 kV", "max_kV = 50"]),
    ("typo in a procedure name", GOOD.replace('"RLTemperatureSeries"', '"RLTemperatureSerie"'), 8,
     ["unknown procedure 'RLTemperatureSerie'", "did you mean 'RLTemperatureSeries'"]),
    ("unknown plan key", "smaple = 'x'\n" + GOOD, 1, ["smaple", "is not a plan key", "did you mean 'sample'"]),
    ("bad range", GOOD.replace("[295, 80, 20]", "{start = 295, stop = 20}"), 4, ["a range needs num or step"]),
]


@pytest.fixture
def no_instruments(monkeypatch):
    """Fail the test if anything tries to start the simulated lab or build a Lab from a configuration."""
    calls = []

    def forbidden(*a, **k):
        calls.append((a, k))
        raise AssertionError("an instrument was about to be contacted")

    monkeypatch.setattr(simulators, "start_lab", forbidden)
    monkeypatch.setattr(Lab, "from_config", classmethod(lambda cls, *a, **k: forbidden(*a, **k)))
    return calls


def test_good_plan_passes_with_estimate(tmp_path, no_instruments):
    p = tmp_path / "good.toml"
    p.write_text(GOOD)
    r = runner.invoke(cli.app, ["check", str(p)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "valid plan: 2 runs, 8 points; estimated lab time" in r.output and "disk" in r.output
    assert not no_instruments


@pytest.mark.parametrize("name,text,line,words", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_check_rejects_mistake(tmp_path, no_instruments, name, text, line, words):
    p = tmp_path / "plan.toml"
    p.write_text(text)
    r = runner.invoke(cli.app, ["check", str(p)], env={"COLUMNS": "300"})
    assert r.exit_code == 2, r.output
    out = r.output.replace("\n", " ")
    assert f"{p}:{line}: " in out, out
    for w in words:
        assert w in out, (w, out)
    # `sflab run` refuses the same plan before opening any lab
    r = runner.invoke(cli.app, ["run", str(p), "--out", str(tmp_path / "camp"), "--quiet"])
    assert r.exit_code == 2 and not (tmp_path / "camp").exists()
    assert not no_instruments


def test_lab_config_limits_apply(tmp_path, no_instruments):
    lab = tmp_path / "lab.toml"
    lab.write_text((ROOT / "lab.example.toml").read_text().replace("min_K = 4.0", "min_K = 30.0"))
    p = tmp_path / "plan.toml"
    p.write_text(GOOD)
    r = runner.invoke(cli.app, ["check", str(p), "--lab", str(lab)], env={"COLUMNS": "300"})
    assert r.exit_code == 2 and "below the cryostat's min_K = 30 K" in r.output.replace("\n", " ")


def test_lab_example_is_valid(no_instruments):
    r = runner.invoke(cli.app, ["check", str(ROOT / "lab.example.toml")], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "valid lab configuration" in r.output
    for backend in ("lakeshore336", "spellman", "conex", "pm100d", "horiba", "picoharp300"):
        assert backend in r.output


def test_example_plans_check(no_instruments):
    for f in sorted((ROOT / "plans").glob("*")):
        r = runner.invoke(cli.app, ["check", str(f)], env={"COLUMNS": "200"})
        assert r.exit_code == 0, (f, r.output)
