"""Screenshots of the GUI's main views, taken from the running application on the simulated lab.

    .venv/bin/python docs/scripts/screenshots.py [--out docs/screenshots]

Runs headless (``QT_QPA_PLATFORM=offscreen`` unless a display platform is set, e.g. under ``xvfb-run``):
opens the simulated lab as ``sflab gui`` does (``acq.cli.open_lab(sim=True, speed="max")``), queues an
RL temperature series, and grabs each view (``QWidget.grab``) while it runs and after it ends:

* ``live.png``        live plots during the run (spectrum + band fit, waterfall, decays, strip charts)
* ``queue.png``       the queue with the generated parameter form, progress and ETA
* ``sf-summary.png``  the SF summary of the finished run (verdict first, checklist, SF fraction / τ vs T)
* ``runs.png``        the run browser with the finished run file
* ``instruments.png`` the instrument panels with the X-ray interlock opened in the simulator
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

log = logging.getLogger("screenshots")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    ap.add_argument("--procedure", default="RLTemperatureSeries",
                    help="procedure to queue (falls back to the GUI tests' X-ray series if not registered)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from qtpy import QtWidgets

    import gui  # noqa: F401  (PySide6 refcount workaround before anything else touches Qt)
    from acq.cli import open_lab
    from acq.registry import procedures
    from gui.app import MainWindow

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["sflab"])
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="sflab-shots-"))
    session = open_lab(sim=True, speed="max", data_dir=work / "runs")

    def wait(cond: Callable[[], bool], timeout_s: float, what: str) -> None:
        t0 = time.monotonic()
        while not cond():
            if time.monotonic() - t0 > timeout_s:
                raise TimeoutError(f"gave up waiting for {what} after {timeout_s:.0f} s")
            app.processEvents()
            time.sleep(0.01)

    def settle(seconds: float = 0.6) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            app.processEvents()
            time.sleep(0.01)

    def shot(widget: QtWidgets.QWidget, name: str) -> None:
        settle()
        path = args.out / name
        widget.grab().save(str(path))
        log.info("wrote %s", path)

    extra = {}
    if args.procedure not in procedures():
        from tests.gui.procs import all_procedures

        extra = all_procedures()
        args.procedure = "tests.gui.procs:XRayTemperatureSeries"
    win = MainWindow(session, work / "queue.json", procedures=(lambda: {**procedures(), **extra}), poll_s=0.5)
    win.resize(1600, 1000)
    win.show()
    try:
        wait(lambda: session.lab.connected == set(session.lab.roles), 60, "the instruments to connect")
        qp = win.queue_panel
        qp.select_procedure(args.procedure)
        if "hold_s" in qp.form.editors:
            qp.form.set_values({"hold_s": 10})
        qp.title_edit.setText("RL cool-down 180 → 20 K")
        item = qp.add_current()
        if "FluenceSeries" in qp.procedures:
            qp.select_procedure("FluenceSeries")
            qp.form.set_values({"temperature": 20})
            qp.title_edit.setText("PL fluence series at 20 K")
            qp.add_current()
            qp.select_procedure(args.procedure)
        qp.start()
        wait(lambda: win.model.n_seen >= 4, 120, "four points")
        qp.stop_after()            # the second item stays queued (shown in the queue view)
        qp.pause()                 # hold the run (X-ray made safe) while the views are grabbed
        wait(lambda: win.run_state == "paused", 120, "the pause")
        win.tabs.setCurrentWidget(win.live)
        wait(lambda: f"point {win.model.n_seen}:" in win.live.spec_plot.plotItem.titleLabel.text, 60,
             "the band fit of the latest spectrum")
        win.live.refresh_all()
        shot(win, "live.png")
        win.tabs.setCurrentWidget(qp)
        shot(win, "queue.png")
        qp.resume()

        wait(lambda: not win.run_active() and win.queue.get(item.id).status != "running", 300, "the run to end")
        wait(lambda: win.summary.summary is not None, 120, "the analysis")
        win.tabs.setCurrentWidget(win.summary)
        shot(win, "sf-summary.png")

        win.tabs.setCurrentWidget(win.browser)
        win.browser.rescan()
        loads = win.browser.loads
        win.browser.open(Path(win.queue.get(item.id).run_file))
        wait(lambda: win.browser.loads > loads, 60, "the run file")
        win.browser.tabs.setCurrentWidget(win.browser.plots)
        wait(lambda: "band fit of point" in win.browser.plots.spec_plot.plotItem.titleLabel.text, 60,
             "the band fit in the browser")
        shot(win, "runs.png")

        tube = session.sim.world.tube
        tube.open_interlock(session.clock.monotonic())
        xr = win.instruments.panels["xray"]
        wait(lambda: "OPEN" in xr.interlock_banner.text(), 30, "the interlock readback")
        xr.kv.setText("60")
        dock = win.findChild(QtWidgets.QDockWidget, "dock_instruments")
        dock.setMinimumHeight(900)
        shot(dock, "instruments.png")
        tube.close_interlock()
    finally:
        win.ask_close = lambda: True
        win.close()
        session.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
