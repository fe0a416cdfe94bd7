"""`sflab inspect`: a human summary (status, points, streams, last error, writer alive or needs repair),
the full record with --json, and piped output that never splits a path."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from acq import cli

from .test_provenance import _killed_run

runner = CliRunner()


def test_inspect_summary_of_a_killed_run_and_json(tmp_path):
    deep = tmp_path / ("a-rather-long-folder-name-for-a-campaign-" * 2) / "another-level"
    deep.mkdir(parents=True)
    p = deep / "20261121-153800_001_RLTemperatureSeries_milano-2d-sl.h5"
    _killed_run(p, 2)
    r = runner.invoke(cli.app, ["inspect", str(p)])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == str(p)                                   # the path on one line, unwrapped
    assert len(str(p)) > 120
    text = r.output
    assert "status: running" in text and "points: 2 completed" in text
    assert "streams: spectrum (T, counts)" in text
    assert "its writer died" in text and f"sflab repair {p}" in text
    assert len(lines) < 20                                      # a summary, not a dump
    j = runner.invoke(cli.app, ["inspect", "--json", str(p)])
    assert j.exit_code == 0
    info = json.loads(j.output)
    assert info["writer"]["state"] == "dead" and info["completed_points"] == 2
    assert info["attrs"]["/entry"]["NX_class"] == "NXentry" and len(info["events"] if isinstance(info["events"], list)
                                                                    else [0] * info["events"]) > 0
    rep = runner.invoke(cli.app, ["repair", str(p)])
    assert rep.exit_code == 0 and "original is kept as" in rep.output
    r2 = runner.invoke(cli.app, ["inspect", str(p)])
    assert "status: interrupted" in r2.output and "sflab resume" in r2.output
    assert "earlier versions kept:" in r2.output
