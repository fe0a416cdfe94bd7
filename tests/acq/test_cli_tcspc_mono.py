"""``--tcspc-mono`` of ``sflab run``, ``demo`` and ``sim serve``: the allowed values in --help, a bad value
is one line naming them with exit code 2 before anything is created, a good one reaches the simulated world
and the ``tcspc_mono`` role's backend (through campaign.json and acq.composition)."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from acq import cli, workflows
from acq.composition import SIM_TCSPC_MONOS, LabOptions

from .serve_ports import any_free_port_args

PLAN = Path(__file__).resolve().parents[2] / "plans" / "pl-temperature-fluence.toml"
ALLOWED = "cornerstone, horiba, none"
runner = CliRunner()


def test_the_allowed_values_are_the_simulated_labs():
    import simulators

    assert SIM_TCSPC_MONOS == (*simulators.TCSPC_MONOS, "none")
    assert ", ".join(SIM_TCSPC_MONOS) == ALLOWED


@pytest.mark.parametrize("command", [["run", str(PLAN)], ["demo"], ["sim", "serve"]])
def test_help_lists_the_allowed_values(command):
    r = runner.invoke(cli.app, [*command, "--help"], env={"COLUMNS": "400"})
    assert r.exit_code == 0
    assert "--tcspc-mono" in r.output and ALLOWED in " ".join(r.output.split())


@pytest.mark.parametrize("command", [["run", str(PLAN)], ["demo"], ["sim", "serve"]])
def test_a_bad_value_is_one_line_with_the_allowed_values_and_exit_2(command, tmp_path):
    r = runner.invoke(cli.app, [*command, "--tcspc-mono", "monarch", "--out", str(tmp_path / "c")]
                      if command[0] != "sim" else [*command, "--tcspc-mono", "monarch"], env={"COLUMNS": "300"})
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].endswith(f"--tcspc-mono 'monarch': allowed {ALLOWED}"), r.stderr
    assert not (tmp_path / "c").exists()      # nothing was created, nothing started


def test_a_bad_tcspc_is_the_same_one_line_error(tmp_path):
    r = runner.invoke(cli.app, ["run", str(PLAN), "--tcspc", "th260", "--out", str(tmp_path / "c")])
    assert r.exit_code == 2 and r.stderr.strip() == "--tcspc 'th260': allowed picoharp300, swabian"
    assert not (tmp_path / "c").exists()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("command", [["run", str(PLAN)], ["demo"]])
def test_a_good_value_selects_the_world_monochromator_and_the_roles_backend(command, monkeypatch, tmp_path):
    """The command records the choice in campaign.json; the lab opened from it has that monochromator in
    the simulated beam and as the ``tcspc_mono`` role's backend (connected: the driver talks to it)."""
    seen = {}

    def fake_run_campaign(campaign, console, show=True):
        opts = LabOptions.from_dict(campaign.info["lab"])
        for mono in (opts.tcspc_mono, "none"):     # the recorded choice, and none for contrast
            s = workflows.open_session(LabOptions.from_dict({**campaign.info["lab"], "tcspc_mono": mono}),
                                       tmp_path / "runs")
            try:
                rc = s.config.roles.get("tcspc_mono")
                entry = {"world": s.sim.world.tcspc_mono, "backend": rc.backend if rc else None}
                if mono != "none":
                    s.lab.connect(["tcspc_mono"])
                    entry["driver"] = type(s.lab.roles["tcspc_mono"]).__name__
                    entry["nm"] = s.lab.roles["tcspc_mono"].wavelength_nm
                seen[mono] = entry
            finally:
                s.close()
        return workflows.EXIT_FAILED                 # stop here: no campaign is run, no analysis

    monkeypatch.setattr(workflows, "run_campaign", fake_run_campaign)
    r = runner.invoke(cli.app, [*command, "--tcspc-mono", "horiba", "--out", str(tmp_path / "c"), "--quiet"])
    assert r.exit_code == 1, r.output
    (index,) = (tmp_path / "c").rglob("campaign.json")
    assert json.loads(index.read_text())["lab"]["tcspc_mono"] == "horiba"
    assert seen["horiba"]["world"] == "horiba" and seen["horiba"]["backend"] == "horiba"
    assert seen["horiba"]["driver"] == "HoribaMonochromator" and seen["horiba"]["nm"] >= 0
    assert seen["none"] == {"world": None, "backend": None}


@pytest.mark.timeout(60)
def test_sim_serve_puts_the_chosen_monochromator_in_the_lab_toml_tables():
    ports = any_free_port_args()
    p = subprocess.Popen([sys.executable, "-m", "acq.cli", "sim", "serve", "--tcspc-mono", "horiba", *ports],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = json.loads(p.stdout.readline())
        mono = line["lab_toml"]["tcspc_mono"]
        assert mono["backend"] == "horiba" and mono["mono_index"] == 1
        assert mono["resource"] == line["roles"]["spectrometer"]["resource"]    # the ICL's second device
        p.send_signal(signal.SIGTERM)
        assert p.wait(30) == 0
    finally:
        if p.poll() is None:
            p.kill()
