"""The GUI's safety surface (issue 13), state- and signal-driven, offscreen:

* MAKE SAFE (its application-wide shortcut) mid-exposure → the run is ``aborted`` by MAKE SAFE,
  HV off, shutter closed; the X-ray banner said HV ON while it was on;
* closing the window during a temperature wait → ``interrupted`` (no dialog under SIGTERM), then
  ``sflab resume`` completes the run with every point;
* the queue refuses T = 390 K on add (and on start) with the message ``sflab check`` prints;
* manual commands are in the event log; a failed item's reason is in the queue table.
"""

from __future__ import annotations

import math
import threading

import pytest
from qtpy import QtCore, QtGui
from typer.testing import CliRunner

from acq import cli
from acq.cli import open_lab, sim_check_config
from acq.clock import SimClock
from acq.config import sim_config
from acq.events import EventBus
from acq.fakes import fake_lab_roles
from acq.lab import ROLES, Lab
from acq.session import LabSession
from acq.store import open_run

#: ms: every wait is on state and fails only on a real hang, never on a loaded machine
LONG = 120_000


def _slow_fake_session(tmp_path, speed: float = 20.0):
    """Fakes on a finite-speed clock, so that a long exposure is still running when the test acts."""
    clock = SimClock(speed)
    roles, log, world = fake_lab_roles(clock)
    cfg = sim_config({r: {"backend": "fake", "resource": "fake"} for r in ROLES}, name="fake lab")
    lab = Lab(roles, clock=clock, config=cfg)
    session = LabSession(lab, clock, cfg, EventBus(clock), tmp_path / "runs", sample={"name": "fake"})
    return session, log, world


def _window(qtbot, session, tmp_path, **kw):
    from gui.app import MainWindow

    win = MainWindow(session, tmp_path / "queue.json", poll_s=0.1, fit_bands=False, **kw)
    win.ask_close = lambda: True      # pytest-qt closes windows at teardown: never a modal dialog
    qtbot.addWidget(win)
    win.show()
    return win


@pytest.mark.timeout(300)
def test_make_safe_shortcut_mid_exposure_aborts_hv_off(qtbot, tmp_path):
    from gui.app import MAKE_SAFE_KEY
    from tests.gui.procs import all_procedures

    session, log, world = _slow_fake_session(tmp_path)
    win = _window(qtbot, session, tmp_path, procedures=all_procedures)
    try:
        qtbot.waitUntil(lambda: session.lab.connected == set(session.lab.roles), timeout=LONG)
        qp = win.queue_panel
        qp.select_procedure("tests.gui.procs:XRayTemperatureSeries")
        qp.form.set_values({"temperatures": [295.0], "exposure": 60.0, "hold": 0.0, "band": 10.0})
        item = qp.add_current()
        assert item is not None, qp.last_refusal
        qp.start()
        # mid-exposure: the X-ray is on and the CCD acquisition has begun (60 lab s = 3 s wall here)
        qtbot.waitUntil(lambda: any(r == "spectrometer" and c == "acquire" for r, c, _ in log.entries)
                        and world.hv_on, timeout=LONG)
        win.on_xray_readback({"xray": session.lab.xray.readback()}, session.clock.now())
        assert "X-RAY HV ON" in win.xray_banner.text() and "shutter OPEN" in win.xray_banner.text()
        win.tabs.setCurrentWidget(win.browser)          # from any tab
        sc = win.safe_shortcut
        assert sc.key() == QtGui.QKeySequence(MAKE_SAFE_KEY) and sc.context() == QtCore.Qt.ApplicationShortcut
        sc.activated.emit()
        qtbot.waitUntil(lambda: win.queue.get(item.id).status == "aborted", timeout=LONG)
        assert not world.hv_on and not world.shutter_open
        d = open_run(win.queue.get(item.id).run_file)
        assert d.exit_status == "aborted"
        ev = [e for e in d.events if e["kind"] == "aborted"]
        assert ev and ev[-1]["by"] == "MAKE SAFE" and "MAKE SAFE" in ev[-1]["message"]
        qtbot.waitUntil(lambda: "aborted" in win.state_label.text(), timeout=LONG)
        assert "MAKE SAFE" in win.detail_label.text()
        # the queue table is redrawn on the pump's queue events, not with the state label: wait for it too
        qtbot.waitUntil(lambda: "aborted: MAKE SAFE" in win.queue_panel.table.item(0, 0).text(), timeout=LONG)
    finally:
        win.close()
        session.close()


@pytest.mark.timeout(300)
def test_close_during_temperature_wait_interrupted_then_resume_completes(qtbot, tmp_path):
    session = open_lab(sim=True, speed="50", data_dir=tmp_path / "runs")
    cryo = session.lab.cryostat
    in_wait = threading.Event()
    orig = cryo.wait_stable

    def wait_stable(*a, **k):
        in_wait.set()
        return orig(*a, **k)

    cryo.wait_stable = wait_stable
    win = _window(qtbot, session, tmp_path)
    try:
        qp = win.queue_panel
        qp.select_procedure("RLTemperatureSeries")
        qp.form.set_values({"temperatures": [10.0, 8.0], "hold_s": 60.0, "kV": 20.0, "exposure_s": 0.5})
        item = qp.add_current()
        assert item is not None, qp.last_refusal
        qp.start()
        qtbot.waitUntil(in_wait.is_set, timeout=LONG)
        win.close_by_signal = True                  # as SIGTERM does: no dialog may be opened
        win.ask_close = lambda: pytest.fail("a dialog was opened on SIGTERM")
        win.close()
        assert win._closed and not win.run_active()
        it = win.queue.get(item.id)
        assert it.status == "interrupted", (it.status, it.error)
        assert not session.sim.world.tube.hv_on
        run_file = it.run_file
        d = open_run(run_file)
        assert d.exit_status == "interrupted"
    finally:
        if not win._closed:
            win.close()
        session.close()
    r = CliRunner().invoke(cli.app, ["resume", run_file, "--speed", "max", "--quiet"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    d = open_run(run_file)
    assert d.exit_status == "success" and d.n_points == 2 and list(d.point_id) == [0, 1]


@pytest.mark.timeout(300)
def test_queue_refuses_390_K_like_sflab_check(qtbot, fake_session, tmp_path):
    session, log, world = fake_session
    session.config = sim_check_config()         # the simulated lab's limits, as `sflab check` uses
    win = _window(qtbot, session, tmp_path)
    try:
        qp = win.queue_panel
        qp.select_procedure("RLTemperatureSeries")
        qp.form.set_values({"temperatures": [390.0], "kV": 20.0})
        assert qp.add_current() is None and len(win.queue) == 0
        gui_msg = qp.last_refusal[0]
        plan = tmp_path / "p.toml"
        plan.write_text('sample = "milano-2d-sl"\n[[step]]\nprocedure = "RLTemperatureSeries"\n'
                        'temperatures = [390]\nkV = 20\n')
        r = CliRunner().invoke(cli.app, ["check", str(plan)], env={"COLUMNS": "400"})
        assert r.exit_code == 2
        cli_msgs = [ln.split(": ", 1)[1] for ln in r.output.splitlines() if ln.startswith(f"{plan}:")]
        assert gui_msg in cli_msgs, (gui_msg, cli_msgs)
        assert "390 K is above the cryostat's max_K = 325 K" in gui_msg
        assert f"not added: {gui_msg}" in win.log_view.toPlainText()
        # on start too: an item queued behind the form's back (queue.json edited) is refused
        win.queue.add("RLTemperatureSeries", {"temperatures": [390.0], "kV": 20.0})
        qp.start()
        assert qp.last_refusal[0] == gui_msg and not win.run_active()
    finally:
        win.close()


@pytest.mark.timeout(300)
def test_manual_commands_are_in_the_event_log(qtbot, fake_session, tmp_path):
    session, log, world = fake_session
    win = _window(qtbot, session, tmp_path)
    try:
        qtbot.waitUntil(lambda: session.lab.connected == set(session.lab.roles), timeout=LONG)
        panel = win.instruments.panels["cryostat"]
        panel.run("setpoint 77 K", lambda: session.lab.cryostat.set_temperature(77.0))
        qtbot.waitUntil(lambda: "manual command: cryostat: setpoint 77 K: done" in win.log_view.toPlainText(),
                        timeout=LONG)
        win.resize(1366, 768)
        assert win.minimumSizeHint().width() <= 1366 and win.minimumSizeHint().height() <= 768
    finally:
        win.close()


def test_banner_unknown_and_off(qtbot, fake_session, tmp_path):
    session, log, world = fake_session
    win = _window(qtbot, session, tmp_path)
    try:
        qtbot.waitUntil(lambda: "xray" in session.lab.connected, timeout=LONG)
        win.on_xray_readback({"xray": {"hv_on": math.nan, "kV": math.nan, "mA": math.nan,
                                       "shutter_open": math.nan}}, session.clock.now())
        assert "UNKNOWN" in win.xray_banner.text()
        win.on_xray_readback({"xray": {"hv_on": 0.0, "kV": 0.0, "mA": 0.0, "shutter_open": 0.0}},
                             session.clock.now())
        assert "HV off" in win.xray_banner.text() and "readback" in win.xray_banner.text()
    finally:
        win.close()
