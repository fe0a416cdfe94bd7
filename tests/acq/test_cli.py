import subprocess
import sys

import pytest
from typer.testing import CliRunner

from acq.cli import app
from acq.store import open_run

runner = CliRunner()


def test_help_lists_commands():
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0
    for cmd in ("check", "demo", "inspect", "repair", "run", "resume", "analyze", "replay", "gui", "sim"):
        assert cmd in r.output


def test_check_good_and_bad_config(tmp_path):
    good = tmp_path / "lab.toml"
    good.write_text('[lab]\nname = "x"\n[cryostat]\nbackend = "fake"\n')
    r = runner.invoke(app, ["check", str(good)], env={"COLUMNS": "300"})
    assert r.exit_code == 0 and "valid lab configuration" in r.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[lab]\nname = "x"\n[safety]\nsettle_s = 99999\n')
    r = runner.invoke(app, ["check", str(bad)])
    assert r.exit_code == 2
    assert f"{bad}:4: safety.settle_s = 99999.0 is above the maximum 3600 s" in r.output.replace("\n", "")
    r = runner.invoke(app, ["check", str(tmp_path / "missing.toml")])
    assert r.exit_code == 2


@pytest.mark.timeout(120)
def test_demo_engine_check_writes_readable_run_file(tmp_path):
    out = subprocess.run([sys.executable, "-m", "acq.cli", "demo", "--engine-check", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    files = sorted(tmp_path.glob("*.h5"))
    assert len(files) == 1
    d = open_run(files[0])
    assert d.exit_status == "success" and d.n_points == 6 and d.analysis["red_shift_nm"] > 5
    assert "exit status success" in out.stdout
    r = runner.invoke(app, ["inspect", str(files[0]), "--json"])
    assert r.exit_code == 0 and '"completed_points": 6' in r.output
