"""Reversibility over a thermal cycle (physics.md P1 step 7): the plan step is checked before anything
moves and expands to a repeat run; the summary compares the repeated points with the first pass and
fills ``Evidence.reversible`` (checklist item 2 fails on an irreversible change)."""

from __future__ import annotations

from pathlib import Path

import pytest

from acq.plans import load_plan
from acq.store import open_run
from acq.summary import analyze_campaign, summarize

from .synthetic_runs import onset_weight, write_pl_run

PLAN = """\
sample = "milano-2d-sl"
[[step]]
procedure = "PLTemperatureSeries"
title = "cool-down"
temperatures = [295, 150, 90, 20, 5]
fluences = [1.0]
calibration = "config"
reversibility = {repeat = [20, 90, 5], warm_K = 295}
"""


def _plan(text: str, name: str = "plan.toml"):
    return load_plan(Path(name), text=text)


def test_step_expands_to_a_repeat_run():
    p = _plan(PLAN)
    assert p.ok, p.errors
    assert [r.procedure for r in p.runs] == ["PLTemperatureSeries"] * 2
    first, again = p.runs
    assert first.parameters["temperatures"] == [295, 150, 90, 20, 5]
    assert again.parameters["temperatures"] == [295, 90, 20, 5]   # warm, then cooling through the repeats
    assert again.parameters["fluences"] == first.parameters["fluences"]
    assert "reversibility: warm to 295 K, repeat 90, 20, 5 K" in again.title
    assert again.line == first.line and again.n_points == 4


def test_warm_K_defaults_to_room_temperature():
    p = _plan(PLAN.replace(", warm_K = 295", ""))
    assert p.ok, p.errors
    assert p.runs[1].parameters["temperatures"][0] == 295


#: (id, replacement of the reversibility line, words the error must hold)
BAD = [
    ("not a subset", "reversibility = {repeat = [30]}", ["30 K is not one of the step's temperatures",
                                                         "295, 150, 90, 20, 5 K"]),
    ("warm below RT", "reversibility = {repeat = [20], warm_K = 200}", ["warm_K = 200 K is below room temperature",
                                                                        "≥ 250 K"]),
    ("typo", "reversibility = {repeat = [20], warmK = 295}", ["reversibility.warmK is not a key",
                                                              "did you mean 'warm_K'"]),
    ("no repeat", "reversibility = {warm_K = 295}", ["reversibility needs repeat = [T, …]"]),
    ("empty repeat", "reversibility = {repeat = []}", ["must be a non-empty list of temperatures"]),
    ("string", 'reversibility = {repeat = ["cold"]}', ["must be a non-empty list of temperatures"]),
    ("not a table", "reversibility = [20, 5]", ["must be a table", "repeat = [T, …]"]),
    ("repeat at RT", "reversibility = {repeat = [295]}", ["295 K is at or above room temperature"]),
]


@pytest.mark.parametrize("name,line,words", BAD, ids=[b[0] for b in BAD])
def test_bad_step_is_refused_with_its_line(name, line, words):
    text = PLAN.replace("reversibility = {repeat = [20, 90, 5], warm_K = 295}", line)
    p = _plan(text)
    assert not p.ok and not p.runs[1:], p.errors
    msg = " ".join(p.errors)
    assert "plan.toml:8: " in msg, msg
    for w in words:
        assert w in msg, (w, msg)


def test_needs_a_temperature_series():
    text = """\
sample = "milano-2d-sl"
[[step]]
procedure = "FluenceSeries"
temperature = 5
fluences = [0.1, 1.0, 6.0]
calibration = "config"
reversibility = {repeat = [5]}
"""
    p = _plan(text)
    assert any("plan.toml:7: reversibility needs a temperature series" in e for e in p.errors), p.errors


def test_warm_K_above_the_cryostat_is_refused():
    from acq.composition import sim_check_config

    p = load_plan(Path("plan.toml"), sim_check_config(), text=PLAN.replace("warm_K = 295", "warm_K = 390"))
    msg = " ".join(p.errors)
    assert "plan.toml:8: " in msg and "390 K is above the cryostat's max_K" in msg, msg


def test_python_plan_script(tmp_path):
    f = tmp_path / "cycle.py"
    f.write_text("def plan(p):\n    p.sample('milano-2d-sl')\n"
                 "    p.run('PLTemperatureSeries', temperatures=[295, 20, 5], fluences=[1.0], calibration='config',\n"
                 "          reversibility={'repeat': [5]})\n")
    p = load_plan(f)
    assert p.ok, p.errors
    assert [r.parameters["temperatures"] for r in p.runs] == [[295, 20, 5], [295, 5]]


# ---------------------------------------------------------------------------------------------- summary
TEMPS = [295, 150, 90, 60, 40, 20, 5]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("cycle")
    first = write_pl_run(d / "001.h5", [(T, onset_weight(T)) for T in TEMPS], seed=1)
    same = write_pl_run(d / "002.h5", [(T, onset_weight(T)) for T in (295, 20, 5)], seed=2)
    degraded = write_pl_run(d / "003.h5", [(T, 0.5 * onset_weight(T)) for T in (295, 20, 5)], seed=3)
    no_warm = write_pl_run(d / "004.h5", [(T, onset_weight(T)) for T in (20, 5)], seed=4)
    return {k: open_run(v) for k, v in dict(first=first, same=same, degraded=degraded, no_warm=no_warm).items()}


def _item(summary, n):
    return next(i for i in summary["checklist"] if i["number"] == n)


def test_repeats_agree_reversible(runs):
    s = analyze_campaign([runs["first"], runs["same"]]).summary
    assert s["reversible"] is True, s["reversibility"]
    rev = s["reversibility"]
    assert rev["cycles"] == 1 and sorted(round(p["T_K"]) for p in rev["pairs"]) == [5, 20]
    assert all(p["first"]["red"] and p["repeat"]["red"] and p["agree"] for p in rev["pairs"])
    assert "physics.md" in rev["criterion"] and "3σ" in rev["criterion"]
    assert _item(s, 2)["status"] == "pass" and _item(s, 2)["numbers"]["reversible"] is True


def test_lost_sf_weight_is_irreversible(runs):
    s = analyze_campaign([runs["first"], runs["degraded"]]).summary
    assert s["reversible"] is False
    assert "SF weight" in s["reversibility_detail"] and "σ" in s["reversibility_detail"]
    assert _item(s, 2)["status"] == "fail" and "degradation" in _item(s, 2)["detail"]


def test_no_warm_up_is_no_cycle(runs):
    s = analyze_campaign([runs["first"], runs["no_warm"]]).summary
    assert s["reversible"] is None and s["reversibility"]["cycles"] == 0
    assert "no repeated point" in s["reversibility_detail"]


def test_one_run_file_with_its_own_cycle(tmp_path):
    pts = [(T, onset_weight(T)) for T in (295, 20, 5)] + [(295, 0.0), (5, onset_weight(5))]
    s = summarize(open_run(write_pl_run(tmp_path / "cycle.h5", pts, seed=5)))
    assert s["reversible"] is True and len(s["reversibility"]["pairs"]) == 1
