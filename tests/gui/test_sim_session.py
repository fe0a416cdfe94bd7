"""The GUI driving the simulated lab (acq.cli.open_lab(sim=True, speed="max")): queue an X-ray temperature
series, watch points arrive in the plots, pause/resume, abort, check the backstop in the simulated world,
open the run in the browser and reuse its parameters. Only the Qt event loop is waited on (AFAP clock)."""

import pytest

from acq.cli import open_lab
from tests.gui.procs import all_procedures

NAME = "tests.gui.procs:XRayTemperatureSeries"
LONG = 120_000    # ms: every wait is on state and fails only on a real hang, never on load
#: 36 points planned, so neither pause nor abort can lose a race against the end of the run
TEMPS = ", ".join(str(290 - 3 * i) for i in range(36))


@pytest.fixture
def sim_window(qtbot, tmp_path):
    from gui.app import MainWindow

    session = open_lab(sim=True, speed="max", data_dir=tmp_path / "runs")
    win = MainWindow(session, tmp_path / "queue.json", procedures=all_procedures, poll_s=0.3)
    win.ask_close = lambda: True      # pytest-qt closes the window before fixture teardown: never a modal dialog
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: session.lab.connected == set(session.lab.roles), timeout=LONG)
    yield win, session
    if not win._closed:
        win.ask_close = lambda: True
        win.close()
    session.close()


@pytest.mark.timeout(300)
def test_temperature_series_live_pause_resume_abort_browser(qtbot, sim_window):
    win, session = sim_window
    tube = session.sim.world.tube
    qp = win.queue_panel
    qp.select_procedure(NAME)
    qp.form.set_values({"temperatures": TEMPS,
                        "hold": 2.0, "kV": 30.0, "mA": 0.5})
    assert not qp.form.errors()
    qp.title_edit.setText("RL cool-down (test)")
    item = qp.add_current()
    assert item is not None and win.queue.items[-1].procedure == NAME
    qp.start()

    # points arrive in the plots (spectrum, waterfall, decay, temperature strip chart)
    qtbot.waitUntil(lambda: win.model.n_seen >= 2, timeout=LONG)
    qtbot.waitUntil(lambda: win.live.redraws > 0 and win.live.spec_curve.xData is not None, timeout=LONG)
    assert win.live.spec_curve.yData.size == win.model.spectrum.size > 100
    assert win.model.spectrum_axis is not None          # wavelength axis from the runner, not the file
    assert len(win.model.waterfall) >= 2
    assert "decay" in win.live.decay_curves
    assert len(win.model.strip) >= 2
    assert qp.progress.format().startswith(("running", "stopping", "paused"))

    # pause: the run stops at a checkpoint with the X-ray made safe
    qp.pause()
    qtbot.waitUntil(lambda: win.run_state == "paused", timeout=LONG)
    n_paused = win.model.n_seen
    assert not tube.hv_on and not tube.shutter_open
    qtbot.wait(300)
    assert win.model.n_seen == n_paused                 # nothing measured while paused
    qp.resume()
    qtbot.waitUntil(lambda: win.model.n_seen > n_paused, timeout=LONG)

    # abort: the backstop leaves HV off and the shutter closed in the simulated world
    qp.abort()
    qtbot.waitUntil(lambda: not win.run_active(), timeout=LONG)
    qtbot.waitUntil(lambda: win.last_exit is not None, timeout=LONG)
    assert win.last_exit["exit_status"] == "aborted"
    assert win.last_exit["backstop"] and set(win.last_exit["backstop"].values()) == {"ok"}
    assert not tube.hv_on and not tube.shutter_open
    it = win.queue.get(item.id)
    assert it.status == "aborted" and it.run_file
    n_done = win.model.n_seen
    assert 0 < n_done < 36

    # the finished run in the browser: status, points, parameters; then "use these parameters"
    win.tabs.setCurrentWidget(win.browser)
    qtbot.waitUntil(lambda: win.browser.files.count() >= 1, timeout=LONG)
    loads = win.browser.loads
    win.browser.open(it.run_file)
    qtbot.waitUntil(lambda: win.browser.loads > loads, timeout=LONG)
    run = win.browser.run
    assert run.exit_status == "aborted" and run.n_points == n_done
    assert "aborted" in win.browser.header.text()
    assert win.browser.params.rowCount() == len(run.parameters)
    assert win.browser.model.n_seen == n_done and len(win.browser.model.waterfall) == n_done
    qp.form.set_values({"temperatures": "100"})
    win.browser.use_btn.click()
    assert win.tabs.currentWidget() is qp
    assert qp.proc_box.currentText() == NAME
    assert qp.form.editors["temperatures"].text().startswith("290, 287")
    assert qp.form.editors["hold"].text() == "2"
