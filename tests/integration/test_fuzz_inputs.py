"""Fuzz of bad input: ≥ 60 realistic bad plan, lab and Python-plan files. Every one makes
``sflab check`` (and, for plans, ``sflab run``) exit 2 with one ``file:line:`` message per problem,
before any instrument exists, and never with a traceback.

The cases are the kinds a new user writes (issue 13): NaN and infinity, a string / list / boolean
where a number goes, a non-integer for an integer, typos in every table, min above max, a TCP port
99999, a missing sample or calibration file, a PL series without a calibration run, a 10⁶-run
loop, a Python plan that loops forever or calls ``sys.exit``, a directory, binary garbage, text
that is not UTF-8. The Python plans' time bound is lowered to 0.3 s here so that the endless loop
costs little; the bound itself is what is tested (the plan reports it), not a wall-clock figure.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import simulators
from acq import cli, plans
from acq.lab import Lab

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

PL = """\
sample = "milano-2d-sl"
[defaults]
hold_s = 30
[[step]]
procedure = "FluenceCalibration"
[[step]]
procedure = "PLTemperatureSeries"
temperatures = [295, 80, 20]
fluences = [0.5, 2.0]
exposure_s = 0.5
[[step]]
procedure = "RLTemperatureSeries"
temperatures = [180, 20]
kV = 20
mA = 0.5
"""
LAB = (ROOT / "lab.example.toml").read_text()


def _r(old: str, new: str, text: str = PL) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def _lab(old: str, new: str) -> str:
    assert old in LAB, old
    return LAB.replace(old, new, 1)


#: (id, file name, content) — TOML plans
BAD_PLANS: list[tuple[str, str, str | bytes]] = [
    ("kV nan", "p.toml", _r("kV = 20", "kV = nan")),
    ("kV inf", "p.toml", _r("kV = 20", "kV = inf")),
    ("kV -inf", "p.toml", _r("kV = 20", "kV = -inf")),
    ("mA nan", "p.toml", _r("mA = 0.5", "mA = nan")),
    ("T nan in a list", "p.toml", _r("[295, 80, 20]", "[295, nan, 20]")),
    ("T inf in a list", "p.toml", _r("[295, 80, 20]", "[295, inf, 20]")),
    ("T as a string with unit", "p.toml", _r("[180, 20]", '"20 K"')),
    ("T list of strings", "p.toml", _r("[180, 20]", '["180 K", "20 K"]')),
    ("exposure as a string", "p.toml", _r("exposure_s = 0.5", 'exposure_s = "0.5"')),
    ("exposure as a list", "p.toml", _r("exposure_s = 0.5", "exposure_s = [0.5, 1.0]")),
    ("exposure as a boolean", "p.toml", _r("exposure_s = 0.5", "exposure_s = true")),
    ("kV as a boolean", "p.toml", _r("kV = 20", "kV = true")),
    ("kV as a table", "p.toml", _r("kV = 20", "kV = {value = 20}")),
    ("kV as a date", "p.toml", _r("kV = 20", "kV = 2024-01-01")),
    ("integer as float", "p.toml", _r("exposure_s = 0.5", "exposure_s = 0.5\ndecay_bins = 1600.5")),
    ("integer as string", "p.toml", _r("exposure_s = 0.5", 'exposure_s = 0.5\ndecay_bins = "1600"')),
    ("integer as boolean", "p.toml", _r("exposure_s = 0.5", "exposure_s = 0.5\ndecay_bins = false")),
    ("boolean as number", "p.toml", _r("exposure_s = 0.5", "exposure_s = 0.5\nauto_exposure = 1")),
    ("boolean as string", "p.toml", _r("exposure_s = 0.5", 'exposure_s = 0.5\nauto_exposure = "yes"')),
    ("hold nan in defaults", "p.toml", _r("hold_s = 30", "hold_s = nan")),
    ("typo in defaults", "p.toml", _r("hold_s = 30", "hold_s = 30\nhodl_s = 30")),
    ("typo in a step", "p.toml", _r("exposure_s = 0.5", "exposur_s = 0.5")),
    ("typo in a plan key", "p.toml", "smaple = 'x'\n" + PL),
    ("unknown procedure", "p.toml", _r('"RLTemperatureSeries"', '"RLTemperatureSerie"')),
    ("procedure is a number", "p.toml", _r('"RLTemperatureSeries"', "42")),
    ("step is not a table", "p.toml", 'sample = "s"\nstep = [1, 2]\n'),
    ("no steps", "p.toml", 'sample = "milano-2d-sl"\n'),
    ("sample is a number", "p.toml", _r('sample = "milano-2d-sl"', "sample = 12")),
    ("sample file missing", "p.toml", _r('sample = "milano-2d-sl"', 'sample = "samples/nowhere.toml"')),
    ("calibration file missing", "p.toml", _r("exposure_s = 0.5", 'exposure_s = 0.5\ncalibration = "runs/nope.h5"')),
    ("PL without a calibration run", "p.toml", _r('[[step]]\nprocedure = "FluenceCalibration"\n', "")),
    ("T above max_K", "p.toml", _r("[180, 20]", "[390, 20]")),
    ("T below min_K", "p.toml", _r("[295, 80, 20]", "[295, 80, 2]")),
    ("T negative", "p.toml", _r("[295, 80, 20]", "[295, -80, 20]")),
    ("kV above the rating", "p.toml", _r("kV = 20", "kV = 60")),
    ("mA above the rating", "p.toml", _r("mA = 0.5", "mA = 1")),
    ("kV negative", "p.toml", _r("kV = 20", "kV = -20")),
    ("fluence above the laser", "p.toml", _r("[0.5, 2.0]", "[0.5, 2.0, 5000.0]")),
    ("empty fluence list", "p.toml", _r("[0.5, 2.0]", "[]")),
    ("bad range keys", "p.toml", _r("[180, 20]", "{start = 180, stop = 20}")),
    ("range num zero", "p.toml", _r("[180, 20]", "{start = 180, stop = 20, num = 0}")),
    ("range num float", "p.toml", _r("[180, 20]", "{start = 180, stop = 20, num = 2.5}")),
    ("range step wrong way", "p.toml", _r("[180, 20]", "{start = 180, stop = 20, step = 10}")),
    ("loop of 10^6 runs", "p.toml", _r("kV = 20", "kV = 20\nloop = {mA = {start = 0.1, stop = 0.5, num = 1000}, "
                                               "hold_s = {start = 1, stop = 100, num = 1000}}")),
    ("loop over a typo", "p.toml", _r("kV = 20", "kV = 20\nloop = {kv = [10, 20]}")),
    ("loop not a table", "p.toml", _r("kV = 20", "kV = 20\nloop = [10, 20]")),
    ("wait nan", "p.toml", PL + "[[step]]\nwait_s = nan\n"),
    ("wait negative", "p.toml", PL + "[[step]]\nwait_s = -5\n"),
    ("wait a string", "p.toml", PL + '[[step]]\nwait_s = "10 min"\n'),
    ("wait with a parameter", "p.toml", PL + "[[step]]\nwait_s = 10\nkV = 20\n"),
    ("not TOML", "p.toml", PL + "[[step]\nprocedure = 'x'\n"),
    ("duplicate key", "p.toml", _r("kV = 20", "kV = 20\nkV = 30")),
    ("binary garbage", "p.toml", bytes(range(256)) * 4),
    ("not UTF-8", "p.toml", PL.encode() + b"title = '\xff\xfe'\n"),
    ("empty file", "p.toml", ""),
]

#: Python plan scripts
BAD_SCRIPTS: list[tuple[str, str, str]] = [
    ("script sys.exit(0)", "p.py", "import sys\n\ndef plan(p):\n    p.sample('milano-2d-sl')\n    sys.exit(0)\n"),
    ("script sys.exit at import", "p.py", "import sys\nsys.exit(3)\n"),
    ("script endless loop", "p.py", "def plan(p):\n    while True:\n        pass\n"),
    ("script endless loop at import", "p.py", "x = 0\nwhile True:\n    x += 1\n"),
    ("script too many runs", "p.py", "def plan(p):\n    for i in range(10**6):\n        p.wait(1)\n"),
    ("script raises", "p.py", "def plan(p):\n    p.sample('s')\n    raise RuntimeError('boom')\n"),
    ("script syntax error", "p.py", "def plan(p)\n    pass\n"),
    ("script no plan()", "p.py", "x = 1\n"),
    ("script queues nothing", "p.py", "def plan(p):\n    p.sample('s')\n"),
    ("script kV nan", "p.py", "def plan(p):\n    p.sample('milano-2d-sl')\n    p.run('RLTemperatureSeries', "
                              "temperatures=[20], kV=float('nan'))\n"),
    ("script T 390 K", "p.py", "def plan(p):\n    p.sample('milano-2d-sl')\n    p.run('RLTemperatureSeries', "
                               "temperatures=[390], kV=20)\n"),
    ("script bool kV", "p.py", "def plan(p):\n    p.sample('milano-2d-sl')\n    p.run('RLTemperatureSeries', "
                               "temperatures=[20], kV=True)\n"),
    ("script unknown parameter", "p.py", "def plan(p):\n    p.sample('milano-2d-sl')\n    p.run('RLTemperatureSeries', "
                                         "temperatures=[20], kv=20)\n"),
    ("script KeyboardInterrupt", "p.py", "def plan(p):\n    raise KeyboardInterrupt\n"),
    ("script binary", "p.py", "\x00\x01\x02garbage"),
]

#: lab configurations
BAD_LABS: list[tuple[str, str, str]] = [
    ("lab max_kV nan", "lab.toml", _lab("max_kV = 50.0", "max_kV = nan")),
    ("lab max_kV inf", "lab.toml", _lab("max_kV = 50.0", "max_kV = inf")),
    ("lab max_K nan", "lab.toml", _lab("max_K = 325.0", "max_K = nan")),
    ("lab min_K above max_K", "lab.toml", _lab("min_K = 4.0", "min_K = 330.0")),
    ("lab max_kV above rating", "lab.toml", _lab("max_kV = 50.0", "max_kV = 80.0")),
    ("lab max_kV a string", "lab.toml", _lab("max_kV = 50.0", 'max_kV = "50 kV"')),
    ("lab max_kV a list", "lab.toml", _lab("max_kV = 50.0", "max_kV = [50.0]")),
    ("lab max_kV a boolean", "lab.toml", _lab("max_kV = 50.0", "max_kV = true")),
    ("lab port 99999", "lab.toml", _lab("::7777::SOCKET", "::99999::SOCKET")),
    ("lab unknown option", "lab.toml", _lab("max_kV = 50.0", "max_kV = 50.0\nmax_kv = 40.0")),
    ("lab unknown section", "lab.toml", LAB + "\n[cryostatt]\nbackend = 'lakeshore336'\n"),
    ("lab unknown backend", "lab.toml", _lab('backend = "lakeshore336"', 'backend = "lakeshore335"')),
    ("lab safety nan", "lab.toml", _lab("[safety]", "[safety]\nsettle_s = nan")),
    ("lab safety typo", "lab.toml", _lab("[safety]", "[safety]\nsetle_s = 30.0")),
    ("lab retries not int", "lab.toml", _lab("max_kV = 50.0", "max_kV = 50.0\nretries = 2.5")),
]

ALL = BAD_PLANS + BAD_SCRIPTS + BAD_LABS


def test_at_least_sixty_cases():
    assert len(ALL) >= 60, len(ALL)


@pytest.fixture
def no_instruments(monkeypatch):
    """Fail the test if anything tries to start the simulated lab or build a Lab from a configuration."""
    calls: list = []

    def forbidden(*a, **k):
        calls.append((a, k))
        raise AssertionError("an instrument was about to be contacted")

    monkeypatch.setattr(simulators, "start_lab", forbidden)
    monkeypatch.setattr(Lab, "from_config", classmethod(lambda cls, *a, **k: forbidden(*a, **k)))
    monkeypatch.setattr(plans, "SCRIPT_TIMEOUT_S", 0.3)
    return calls


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    p = tmp_path / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content)
    return p


def _assert_clean_refusal(r, path: Path) -> None:
    out = r.output
    assert r.exit_code == 2, out
    assert "Traceback" not in out and r.exception is None or isinstance(r.exception, SystemExit), out
    assert re.search(re.escape(str(path)) + r":\d+: ", out.replace("\n", " ")), out


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name,fname,content", ALL, ids=[c[0] for c in ALL])
def test_check_refuses_cleanly(tmp_path, no_instruments, name, fname, content):
    p = _write(tmp_path, fname, content)
    r = runner.invoke(cli.app, ["check", str(p)], env={"COLUMNS": "400"})
    _assert_clean_refusal(r, p)
    assert not no_instruments


PLAN_CASES = [c for c in BAD_PLANS + BAD_SCRIPTS if c[0] not in ("binary garbage", "not UTF-8")][::3]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name,fname,content", PLAN_CASES, ids=[c[0] for c in PLAN_CASES])
def test_run_refuses_before_any_instrument(tmp_path, no_instruments, name, fname, content):
    p = _write(tmp_path, fname, content)
    r = runner.invoke(cli.app, ["run", str(p), "--sim", "--out", str(tmp_path / "camp"), "--quiet"],
                      env={"COLUMNS": "400"})
    _assert_clean_refusal(r, p)
    assert not (tmp_path / "camp").exists() and not no_instruments


@pytest.mark.parametrize("kind", ["directory", "unreadable"])
def test_directory_and_unreadable(tmp_path, no_instruments, kind):
    if kind == "directory":
        p = tmp_path / "plan.toml"
        p.mkdir()
    else:
        p = _write(tmp_path, "plan.toml", PL)
        p.chmod(0)
        if os.access(p, os.R_OK):
            pytest.skip("running as a user who reads anything (root): unreadable cannot be made")
    for cmd in (["check", str(p)], ["run", str(p), "--sim", "--out", str(tmp_path / "camp"), "--quiet"]):
        r = runner.invoke(cli.app, cmd, env={"COLUMNS": "400"})
        _assert_clean_refusal(r, p)
        assert len([ln for ln in r.output.splitlines() if ln.strip()]) <= 2, r.output
