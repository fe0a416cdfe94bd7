"""acq.plans: TOML and Python plans, ranges, loops, file:line errors, estimates (no instrument anywhere)."""

from pathlib import Path

import pytest

from acq.plans import check_plan, expand_range, load_plan

ROOT = Path(__file__).resolve().parents[2]


def test_expand_range():
    assert expand_range({"start": 300, "stop": 10, "num": 3}) == [300.0, 155.0, 10.0]
    assert expand_range({"start": 180, "stop": 20, "step": -40}) == [180.0, 140.0, 100.0, 60.0, 20.0]
    lg = expand_range({"start": 0.1, "stop": 10, "num": 3, "log": True})
    assert lg == pytest.approx([0.1, 1.0, 10.0])
    for bad in ({"start": 1}, {"start": 1, "stop": 2, "num": 0}, {"start": 1, "stop": 2, "step": -1},
                {"start": 1, "stop": 2, "num": 2, "bogus": 1}):
        with pytest.raises(ValueError):
            expand_range(bad)


def test_loops_defaults_waits_and_estimate(tmp_path):
    p = tmp_path / "p.toml"
    text = ('sample = "s"\n[defaults]\nhold = 5\n'
            '[[step]]\nprocedure = "EngineCheck"\nloop = {kV = [20, 30], exposure = [1, 2]}\n'
            'temperatures = {start = 100, stop = 20, num = 3}\n'
            '[[step]]\nwait_s = 600\nnote = "pause"\n')
    p.write_text(text.replace("hold = 5\n", "hold = 5\nhodl = 1\n"))
    # a [defaults] key no procedure of the plan has is a typo, not silently ignored
    assert [e.split(": ", 1)[1] for e in load_plan(p).errors] == [
        "defaults.hodl = 1 is not a parameter of any procedure in this plan — did you mean 'hold'?"]
    p.write_text(text)
    plan = load_plan(p)
    assert plan.errors == []
    runs = [r for r in plan.runs if not r.is_wait]
    assert len(runs) == 4 and [r.parameters["kV"] for r in runs] == [20, 20, 30, 30]
    assert runs[0].parameters["temperatures"] == [100.0, 60.0, 20.0] and runs[0].parameters["hold"] == 5
    assert runs[1].title == "EngineCheck (kV=20, exposure=2)"
    assert plan.runs[-1].is_wait and plan.runs[-1].estimate_s == 600
    assert plan.lab_seconds > 600 and plan.bytes > 0 and plan.n_points == 12


def test_errors_name_file_line_key_value_and_allowed(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('sampel = "x"\n'                       # 1 unknown plan key
                 '[[step]]\n'                            # 2
                 'procedure = "EngineCheck"\n'           # 3
                 'temperatures = [300, 2]\n'             # 4 below the parameter's minimum
                 'exposre = 1\n'                         # 5 unknown parameter (did you mean)
                 '[[step]]\n'                            # 6
                 'procedure = "EngineChek"\n')           # 7 typo in the procedure name
    runs, errors = check_plan(p)
    text = "\n".join(errors)
    assert f"{p}:1: sampel = 'x' is not a plan key" in text and "did you mean 'sample'" in text
    assert f"{p}:4: temperatures = [300, 2]" in text and "between 3 and 350 K" in text
    assert f"{p}:5: exposre = 1 is not a parameter of EngineCheck" in text and "did you mean 'exposure'" in text
    assert f"{p}:7:" in text and "did you mean 'EngineCheck'" in text


def test_python_plan(tmp_path):
    p = tmp_path / "plan.py"
    p.write_text("def plan(p):\n    p.sample('milano-2d-sl')\n"
                 "    for kv in (10, 20):\n        p.run('EngineCheck', kV=kv, temperatures=p.range(50, 20, 2))\n"
                 "    p.wait(60)\n")
    plan = load_plan(p)
    assert plan.errors == [] and plan.sample == "milano-2d-sl" and len(plan.runs) == 3
    bad = tmp_path / "bad.py"
    bad.write_text("def plan(p):\n    p.run('EngineCheck', kV=999)\n")
    _, errors = check_plan(bad)
    assert errors and errors[0].startswith(f"{bad}:2: kV = 999")
    boom = tmp_path / "boom.py"
    boom.write_text("def plan(p):\n    x = 1\n    raise RuntimeError('nope')\n")
    _, errors = check_plan(boom)
    assert errors == [f"{boom}:3: the plan script raised RuntimeError: nope"]


def test_example_plans_are_valid():
    from acq.cli import sim_check_config

    cfg = sim_check_config()
    for f in sorted((ROOT / "plans").iterdir()):
        if f.suffix in (".toml", ".py"):
            runs, errors = check_plan(f, cfg)
            assert errors == [], f
            assert runs
    overnight = load_plan(ROOT / "plans" / "overnight.toml", cfg)
    assert overnight.lab_seconds >= 10 * 3600 and overnight.n_points >= 150
