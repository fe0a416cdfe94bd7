"""The main window on in-memory fakes (acq.fakes, AFAP clock): forms, queue persistence and plans,
instrument panels (readbacks, X-ray interlock, refusals), MAKE SAFE, closing during a run, SF summary."""

import pytest
from qtpy import QtCore

from tests.gui.procs import all_procedures

XR = "tests.gui.procs:XRayTemperatureSeries"
FAST = "tests.gui.procs:FastStream"
LONG = 60_000     # ms: every wait is on state or a signal and fails only on a real hang, never on load


@pytest.fixture
def win_fake(qtbot, fake_session, tmp_path):
    from gui.app import MainWindow

    session, log, world = fake_session
    win = MainWindow(session, tmp_path / "queue.json", procedures=all_procedures, poll_s=0.1, fit_bands=False)
    win.ask_close = lambda: True      # pytest-qt closes the window before fixture teardown: never a modal dialog
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: session.lab.connected == set(session.lab.roles), timeout=LONG)
    yield win, session, log, world
    if not win._closed:
        win.ask_close = lambda: True
        win.close()


@pytest.mark.timeout(180)
def test_parameter_form_validates_inline_like_the_cli(qtbot):
    from acq.procedure import validate_parameters
    from gui.forms import ParameterForm
    from tests.gui.procs import XRayTemperatureSeries

    form = ParameterForm(XRayTemperatureSeries)
    qtbot.addWidget(form)
    assert form.errors() == {}
    form.editors["temperatures"].setText("290, 500")
    form.editors["kV"].setText("80")
    bad = form.errors()
    assert set(bad) == {"temperatures", "kV"}
    assert "500" in bad["temperatures"] and "350" in bad["temperatures"]
    assert not form.messages["kV"].isHidden() and "50" in form.messages["kV"].text()
    _v, errs = validate_parameters(XRayTemperatureSeries, form.raw_values())
    assert {e.key for e in errs} == set(bad)                 # the same check as `sflab check`
    with pytest.raises(ValueError):
        form.values()
    form.editors["temperatures"].setText("290; 100, 20")
    form.editors["kV"].setText("40")
    assert form.errors() == {} and form.messages["kV"].isHidden()
    assert form.values()["temperatures"] == [290.0, 100.0, 20.0]
    assert form.values()["kV"] == 40.0


@pytest.mark.timeout(180)
def test_queue_survives_restart_reorder_and_plan_round_trip(qtbot, fake_session, tmp_path):
    from gui.app import MainWindow

    session, _log, _world = fake_session
    qpath = tmp_path / "queue.json"
    win = MainWindow(session, qpath, procedures=all_procedures, poll_s=0.2, auto_connect=False)
    qtbot.addWidget(win)
    qp = win.queue_panel
    qp.select_procedure(XR)
    ids = []
    for temps in ("290, 280", "200", "100, 50, 20"):
        qp.form.set_values({"temperatures": temps})
        ids.append(qp.add_current().id)
    qp.form.editors["kV"].setText("99")                     # refused inline: not queued
    assert not qp.add_btn.isEnabled() and qp.add_current() is None
    assert [it.id for it in win.queue.items] == ids
    qp.refresh()
    assert qp.table.rowCount() == 3 and "3 queued" in qp.eta.text()
    qp.select_row(2)
    qp.move_selected(-2)                                     # the last to the top
    qp.select_row(1)
    qp.remove_selected()
    order = [ids[2], ids[1]]
    assert [it.id for it in win.queue.items] == order
    plan = tmp_path / "plan.toml"
    qp.save_plan(plan)
    win.ask_close = lambda: True
    win.close()

    win2 = MainWindow(session, qpath, procedures=all_procedures, poll_s=0.2, auto_connect=False)
    qtbot.addWidget(win2)
    assert [it.id for it in win2.queue.items] == order      # the persisted queue after a GUI restart
    assert win2.queue_panel.table.rowCount() == 2
    assert win2.queue.items[0].parameters["temperatures"] == [100.0, 50.0, 20.0]
    errors = win2.queue_panel.load_plan(plan)                # the saved plan, validated by acq.plans
    assert errors == []
    assert [it.parameters["temperatures"] for it in win2.queue.items[2:]] == [[100.0, 50.0, 20.0], [200.0]]
    bad = tmp_path / "bad.toml"
    bad.write_text(plan.read_text().replace("kV = 30.0", "kV = 300.0", 1))
    errs = win2.queue_panel.load_plan(bad)
    assert errs and "bad.toml:" in errs[0] and "kV" in errs[0]
    assert len(win2.queue.items) == 4                        # nothing of a bad plan is queued
    win2.ask_close = lambda: True
    win2.close()


@pytest.mark.timeout(180)
def test_instrument_panels_readbacks_interlock_refusal_and_make_safe(qtbot, win_fake):
    win, session, log, world = win_fake
    panels = win.instruments.panels
    assert set(panels) == set(session.lab.roles)
    qtbot.waitUntil(lambda: panels["cryostat"].labels["T_sample"].text().endswith("K"), timeout=LONG)
    assert panels["xray"].labels["interlock_closed"].text().startswith("closed")

    # manual setpoint: validated inline, executed on the instrument thread
    cryo = panels["cryostat"]
    cryo.setpoint.setText("-5")
    assert "below" in cryo.message.text()
    cryo.setpoint.setText("77")
    win.findChild(type(cryo.connect_btn), "btn_cryostat_set").click()
    qtbot.waitUntil(lambda: world.setpoint == 77.0, timeout=LONG)

    # X-ray: the rating is checked before anything is sent; the interlock disables HV on
    xr = panels["xray"]
    xr.kv.setText("50")
    xr.ma.setText("2")                                       # 100 W > the 50 W rating
    assert not xr.on_btn.isEnabled() and "rating" in xr.message.text()
    xr.ma.setText("0.5")
    assert xr.on_btn.isEnabled()
    world.interlock_closed = False
    qtbot.waitUntil(lambda: "OPEN" in xr.interlock_banner.text(), timeout=LONG)
    assert not xr.on_btn.isEnabled()
    xr.on_btn.setEnabled(True)                               # even if asked, the driver refuses
    xr.on_btn.click()
    qtbot.waitUntil(lambda: "refused" in xr.message.text(), timeout=LONG)
    assert "interlock" in xr.message.text() and not world.hv_on
    world.interlock_closed = True
    qtbot.waitUntil(lambda: xr.on_btn.isEnabled(), timeout=LONG)
    xr.on_btn.click()
    qtbot.waitUntil(lambda: world.hv_on and world.shutter_open, timeout=LONG)
    qtbot.waitUntil(lambda: xr.labels["hv_on"].text() == "ON", timeout=LONG)

    # MAKE SAFE: always visible, calls the session's backstop
    assert win.safe_btn.isVisible()
    n = len(log)
    qtbot.mouseClick(win.safe_btn, QtCore.Qt.LeftButton)
    qtbot.waitUntil(lambda: not world.hv_on and not world.shutter_open, timeout=LONG)
    cmds = [(r, c) for r, c, _ in log.entries[n:] if c != "keepalive"]
    assert ("xray", "hv_off") in cmds and ("attenuator", "max_attenuation") in cmds
    assert ("cryostat", "heater_range") in cmds
    qtbot.waitUntil(lambda: "MAKE SAFE: all roles safe" in win.log_view.toPlainText(), timeout=LONG)


@pytest.mark.timeout(180)
def test_closing_during_a_run_asks_and_the_backstop_runs(qtbot, win_fake):
    win, session, log, world = win_fake
    qp = win.queue_panel
    qp.select_procedure(FAST)
    qp.form.set_values({"n": 100000})
    item = qp.add_current()
    qp.start()
    qtbot.waitUntil(lambda: win.model.n_seen >= 5, timeout=LONG)
    world.hv_on = world.shutter_open = True                   # as if the procedure had the X-ray on
    asked = []
    win.ask_close = lambda: asked.append(1) or False          # "keep running"
    win.close()
    assert asked and win.isVisible() and win.run_active()
    n = win.model.n_seen
    qtbot.waitUntil(lambda: win.model.n_seen > n, timeout=LONG)
    win.ask_close = lambda: asked.append(2) or True           # "abort run and close"
    mark = len(log)
    win.close()
    assert asked == [1, 2] and win._closed and not win.run_active()
    assert win.queue.get(item.id).status == "interrupted"    # resumable by `sflab resume`
    assert not world.hv_on and not world.shutter_open
    cmds = [(r, c) for r, c, _ in log.entries[mark:] if c != "keepalive"]
    assert cmds.count(("xray", "hv_off")) >= 2               # the runner's backstop, then make_safe on close


@pytest.mark.timeout(180)
def test_sf_summary_panel_verdict_first(qtbot):
    from gui.summary import SFSummaryPanel, find_verdict, series_vs_T

    v = {"verdict": "SF", "confuser": None, "reasons": ["4 of 4 core items pass"],
         "items": [{"number": 1, "key": "two_band", "title": "Two bands", "status": "pass", "detail": "resolved",
                    "numbers": {"sf_fraction": {"value": 0.4, "error": 0.02}, "shift_meV": 60.0}},
                   {"number": 5, "key": "g2", "title": "Photon bunching", "status": "not measured", "detail": "",
                    "numbers": {}}],
         "strength": {"sf_fraction": {"value": 0.4, "error": 0.02}},
         "fits": {"temperature_series": [{"T_K": T, "fit": {"sf_fraction": {"value": f, "error": 0.01}}}
                                         for T, f in ((20, 0.5), (80, 0.3), (150, 0.05))],
                  "decays": [{"T_K": T, "band": "sf", "fit": {"components": [{"tau_ps": {"value": tau, "error": 5}}]}}
                             for T, tau in ((20, 80.0), (80, 120.0))]}}
    summary = {"kind": "pl-temperature-series", "sf": v}
    assert find_verdict(summary)["verdict"] == "SF"
    s = series_vs_T(summary)
    assert list(s["sf_fraction"][0]) == [20, 80, 150] and list(s["tau_sf_ps"][1]) == [80.0, 120.0]
    panel = SFSummaryPanel()
    qtbot.addWidget(panel)
    panel.show_summary(summary)
    assert panel.banner.text() == "SF"
    assert panel.table.rowCount() == 2
    assert "sf_fraction = 0.4 ± 0.02" in panel.table.item(0, 3).text()
    assert panel.table.item(1, 2).text().startswith("not measured")
    assert len(panel.frac_plot.listDataItems()) == 1 and len(panel.tau_plot.listDataItems()) == 1
    panel.show_summary({"kind": "engine-check", "points": 4})
    assert panel.banner.text().startswith("no SF verdict")
    panel.show_summary({**v, "verdict": "not SF", "confuser": "ASE"})
    assert panel.banner.text() == "not SF — likely ASE"


@pytest.mark.timeout(180)
def test_browser_follows_a_run_file_while_it_is_written(qtbot, win_fake):
    win, session, _log, _world = win_fake
    qp = win.queue_panel
    qp.select_procedure(FAST)
    qp.form.set_values({"n": 100000})
    item = qp.add_current()
    qp.start()
    qtbot.waitUntil(lambda: win.model.n_seen >= 20 and bool(win.queue.get(item.id).run_file), timeout=LONG)
    b = win.browser
    b._follow_timer.setInterval(200)
    loads = b.loads
    b.open(win.queue.get(item.id).run_file)                  # SWMR: completed points only
    # the follow timer may start the next read at any moment: wait for a state in which no read is pending,
    # so the header and the model describe the run last shown (the waitUntil returns without running events)
    qtbot.waitUntil(lambda: b.loads > loads and not b._loading, timeout=LONG)
    assert b.run.exit_status == "running" and b.run.n_points >= 20
    assert "running" in b.header.text()
    first = b.run.n_points
    qtbot.waitUntil(lambda: b.run.n_points > first + 20 and not b._loading, timeout=LONG)   # "follow" re-reads it
    assert b.model.n_seen == b.run.n_points
    qp.abort()
    qtbot.waitUntil(lambda: not win.run_active(), timeout=LONG)
    qtbot.waitUntil(lambda: b.run.exit_status == "aborted" or not b._loading, timeout=LONG)
    b.open(win.queue.get(item.id).run_file)
    qtbot.waitUntil(lambda: b.run.exit_status == "aborted", timeout=LONG)


def test_operator_prompt_from_the_run_thread_is_a_dialog_whose_done_answers_it(qtbot, win_fake):
    """Runner.operator in the GUI: a prompt asked from the run thread (a manual sample holder) appears as a
    dialog in the GUI thread and in the event log; "Done" sets the event the run waits on."""
    import threading

    from qtpy import QtWidgets

    win, session, _, _ = win_fake
    assert session.operator == win.ask_operator
    got: dict = {}
    text = "move the sample holder to 'reference'"
    th = threading.Thread(target=lambda: got.setdefault("ev", win.ask_operator(text)))
    th.start()
    th.join(10)
    qtbot.waitUntil(lambda: win.operator_box is not None and win.operator_box.isVisible(), timeout=LONG)
    assert text in win.operator_box.text() and f"operator: {text}" in win.log_view.toPlainText()
    assert not got["ev"].is_set()
    done = [b for b in win.operator_box.buttons() if b.text() == "Done"][0]
    qtbot.mouseClick(done, QtCore.Qt.LeftButton)
    assert got["ev"].is_set()
    assert isinstance(win.operator_box, QtWidgets.QMessageBox)
