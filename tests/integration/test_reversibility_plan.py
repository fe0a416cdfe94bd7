"""The shipped reversibility plan (plans/reversibility.toml) is valid as a whole before anything moves and
queues the thermal cycle as its own run: warm to room temperature, cool again through the repeated points.
(Run on the simulated lab it ends with ``reversible`` filled; docs/procedures.md gives the wall time.)"""

from pathlib import Path

from typer.testing import CliRunner

from acq import cli
from acq.composition import sim_check_config
from acq.plans import load_plan

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_plan_queues_the_cycle():
    p = load_plan(ROOT / "plans" / "reversibility.toml", sim_check_config())
    assert p.ok, p.errors
    temps = [r.parameters.get("temperatures") for r in p.runs if r.procedure == "PLTemperatureSeries"]
    assert temps[1][0] >= 250 and set(temps[1][1:]) <= set(temps[0]) and len(temps[1]) < len(temps[0]) + 1
    assert p.runs[-1].title.endswith("reversibility: warm to 295 K, repeat 90, 20, 5 K")
    r = CliRunner().invoke(cli.app, ["check", str(ROOT / "plans" / "reversibility.toml")])
    out = " ".join(r.output.split())
    assert r.exit_code == 0 and "valid plan: 3 runs, 16 points" in out and "reversibility" in out, r.output
