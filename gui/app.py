"""The sflab desktop application: ``sflab gui`` calls :func:`main`.

Window layout: a tool bar with the always-visible **MAKE SAFE** button and the run state; the
instrument panels in a dock on the left; tabs for the live plots, the queue, the run browser and the
SF summary; the run's event log in a dock at the bottom.

Threads: the GUI thread only draws. Driver calls go to the instrument thread (:mod:`gui.io`), runs
go to the queue worker's thread (the engine's runner), run files are read on the browser's thread,
and the live band fit on its own; the bus is drained on a 15 Hz timer (:mod:`gui.pump`).

Closing the window while a run is active asks whether to abort it; either way the backstop runs
(aborting ends the run through the runner's backstop, then ``session.make_safe()`` runs once more
before the window goes; "keep running" keeps the window, and the run ends with its own backstop).
"""

from __future__ import annotations

import collections
import gc
import logging
import math
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qtpy import QtCore, QtGui, QtWidgets

from acq.queue import QueueWorker, RunQueue

from .browser import RunBrowser
from .instruments import InstrumentsView
from .io import InstrumentIO
from .live import LiveModel, LivePlots, stream_meta_from_runner
from .pump import BusPump
from .queue_panel import QueuePanel, worker_busy
from .summary import SFSummaryPanel

log = logging.getLogger(__name__)

__all__ = ["MainWindow", "main"]

#: the MAKE SAFE keyboard shortcut (application-wide: works from any tab or dock)
MAKE_SAFE_KEY = "Ctrl+Shift+S"
XRAY_ON_STYLE = "QLabel { background: #c62828; color: white; font-weight: bold; padding: 3px 8px; }"
XRAY_OFF_STYLE = "QLabel { color: #555; padding: 3px 8px; }"
MAKE_SAFE_STYLE = ("QPushButton { background: #c62828; color: white; font-size: 18px; font-weight: bold; "
                   "padding: 10px 28px; border-radius: 6px; border: 2px solid #7f0000; }"
                   "QPushButton:pressed { background: #7f0000; }")


class _OperatorBridge(QtCore.QObject):
    """Carries a driver's prompt to the operator from the run thread to the GUI thread (queued signal)."""

    asked = QtCore.Signal(str, object)   # the prompt, the threading.Event to set when the operator is done


class MainWindow(QtWidgets.QMainWindow):
    def __init__(self, session: Any, queue_path: Path, *, procedures: Callable[[], dict[str, type]] | None = None,
                 poll_s: float = 1.0, rate_hz: float = 15.0, auto_connect: bool = True,
                 fit_bands: bool = True) -> None:
        super().__init__()
        self.session = session
        self.queue = RunQueue(Path(queue_path))
        self.worker = QueueWorker(session, self.queue)
        self.ask_close: Callable[[], bool] = self._ask_close
        self._closed = False
        #: set by SIGTERM / SIGINT: closing then never asks (a dialog nobody answers would hang it)
        self.close_by_signal = False
        self._safe_results: collections.deque = collections.deque()
        self.last_run_file: str | None = None
        self.current_run_file: str | None = None
        self.last_exit: dict[str, Any] | None = None
        self.run_state = "idle"
        self.setWindowTitle(f"sflab — {getattr(session.config, 'lab', {}).get('name', 'lab')}"
                            + (" (simulated)" if getattr(session, "simulated", False) else ""))

        # The runner, instrument I/O and file reading are threads of this process. With CPython's default
        # 5 ms GIL switch interval, every return from Qt's C++ painting into a Python callback can wait up to
        # 5 ms behind a busy acquisition thread; 1 ms keeps a repaint of a few plots well under 100 ms.
        self._old_switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._old_switch_interval, 0.001))
        self.io = InstrumentIO(session, poll_s=poll_s, run_active=self.run_active, parent=self)
        self.pump = BusPump(session.bus, rate_hz=rate_hz, parent=self)

        # ---------------------------------------------------------------- tool bar: MAKE SAFE + state
        tb = QtWidgets.QToolBar("Safety")
        tb.setObjectName("toolbar_safety")
        tb.setMovable(False)
        tb.setFloatable(False)
        self.addToolBar(QtCore.Qt.TopToolBarArea, tb)
        self.safe_btn = QtWidgets.QPushButton(f"⚠  MAKE SAFE ({MAKE_SAFE_KEY})")
        self.safe_btn.setObjectName("make_safe")
        self.safe_btn.setToolTip("X-ray shutter closed and HV off, attenuator dark, heater to its safe range; "
                                 f"aborts the running run and stops the queue. Shortcut {MAKE_SAFE_KEY} "
                                 "from any tab.")
        self.safe_btn.setStyleSheet(MAKE_SAFE_STYLE)
        self.safe_btn.clicked.connect(self.make_safe)
        tb.addWidget(self.safe_btn)
        # MAKE SAFE from anywhere in the application (any tab, any dock with the focus)
        self.safe_shortcut = QtWidgets.QShortcut(QtGui.QKeySequence(MAKE_SAFE_KEY), self)
        self.safe_shortcut.setContext(QtCore.Qt.ApplicationShortcut)
        self.safe_shortcut.activated.connect(self.make_safe)
        tb.addSeparator()
        # the X-ray banner: red whenever HV may be on, with kV, mA, shutter and the readback's age
        self.xray_banner = QtWidgets.QLabel("")
        self.xray_banner.setObjectName("xray_banner")
        self.xray_banner.setContentsMargins(8, 2, 8, 2)
        tb.addWidget(self.xray_banner)
        self._xray_rb: dict[str, float] | None = None
        self._xray_t: float | None = None
        tb.addSeparator()
        self.state_label = QtWidgets.QLabel("idle")
        self.state_label.setObjectName("run_state")
        f = self.state_label.font()
        f.setPointSize(f.pointSize() + 3)
        f.setBold(True)
        self.state_label.setFont(f)
        self.state_label.setContentsMargins(12, 0, 12, 0)
        tb.addWidget(self.state_label)
        self.detail_label = QtWidgets.QLabel("")
        self.detail_label.setObjectName("run_detail")
        tb.addWidget(self.detail_label)

        # ---------------------------------------------------------------- central tabs
        self.model = LiveModel()
        self.live = LivePlots(self.model, fit_bands=fit_bands)
        self.queue_panel = QueuePanel(session, self.queue, self.worker, procedures=procedures,
                                      start_via=self._start_after_io)
        data_dir = Path(getattr(session, "data_dir", "runs"))
        self.browser = RunBrowser(data_dir)
        self.summary = SFSummaryPanel()
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.setObjectName("main_tabs")
        self.tabs.addTab(self.live, "Live")
        self.tabs.addTab(self.queue_panel, "Queue")
        self.tabs.addTab(self.browser, "Runs")
        self.tabs.addTab(self.summary, "SF summary")
        self.setCentralWidget(self.tabs)

        # ---------------------------------------------------------------- docks
        self.instruments = InstrumentsView(session, self.io)
        dock = QtWidgets.QDockWidget("Instruments", self)
        dock.setObjectName("dock_instruments")
        dock.setWidget(self.instruments)
        dock.setFeatures(QtWidgets.QDockWidget.DockWidgetMovable | QtWidgets.QDockWidget.DockWidgetFloatable)
        dock.setMinimumWidth(300)
        self.addDockWidget(QtCore.Qt.LeftDockWidgetArea, dock)
        self.log_view = QtWidgets.QPlainTextEdit()
        self.log_view.setObjectName("log_view")
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(2000)
        ldock = QtWidgets.QDockWidget("Event log", self)
        ldock.setObjectName("dock_log")
        ldock.setWidget(self.log_view)
        self.addDockWidget(QtCore.Qt.BottomDockWidgetArea, ldock)
        self.resizeDocks([ldock], [110], QtCore.Qt.Vertical)
        self.statusBar().showMessage("ready")

        # ---------------------------------------------------------------- wiring
        # a manual sample holder's prompts ("move the sample holder to 'reference'"): a dialog with "Done";
        # the run waits for it (Abort still acts), and the prompt is in the run file's event log
        self._operator = _OperatorBridge(self)
        self._operator.asked.connect(self.on_operator_prompt)
        self.operator_box: QtWidgets.QMessageBox | None = None
        session.operator = self.ask_operator
        p = self.pump
        p.runStarted.connect(self.on_run_start)
        p.runStatus.connect(self.on_run_status)
        p.runStopped.connect(self.on_run_stop)
        p.points.connect(self.on_points)
        p.logged.connect(self.on_log)
        p.suspended.connect(self.on_suspend)
        p.analysis.connect(self.on_analysis)
        p.queueEvent.connect(lambda _ev: self.queue_panel.refresh())
        p.tick.connect(self.on_tick)
        self.io.readbacks.connect(self.model.add_readbacks)
        self.io.readbacks.connect(self.on_xray_readback)
        self.instruments.manual.connect(self.append_log)
        self.queue_panel.message.connect(self.say)
        self.browser.useParameters.connect(self.use_parameters)
        self._ticks = 0
        self._point_readbacks: dict[str, Any] | None = None
        if auto_connect:
            self.io.connect_all()
        self.resize(1500, 950)
        self.setMinimumSize(0, 0)
        self.update_xray_banner()
        self.freeze_heap()

    @staticmethod
    def freeze_heap() -> None:
        """Collect once, then move every surviving object out of the collector's reach (``gc.freeze``).
        The process holds a large, long-lived heap (Qt wrappers, numpy, h5py, numba, scipy); a full
        collection scanning it took 90–400 ms, stalling the event loop *and* acquisition. Called at start-up
        and when a run starts, so the collections during a run only scan what that run allocates."""
        gc.collect()
        gc.freeze()

    # ------------------------------------------------------------------ X-ray banner
    def on_xray_readback(self, rb: dict[str, dict[str, float]], t: float) -> None:
        if "xray" in rb:
            self._xray_rb, self._xray_t = dict(rb["xray"]), float(t)
            self.update_xray_banner()

    def update_xray_banner(self) -> None:
        """Red and explicit whenever HV may be on (reported on, or unknown while the X-ray is
        connected); the readback's age says how fresh that is."""
        x_connected = "xray" in getattr(self.session.lab, "connected", set())
        rb, t = self._xray_rb, self._xray_t
        age = "" if t is None else f" · readback {max(self.session.clock.now() - t, 0.0):.1f} s ago"
        if rb is None or not x_connected:
            if x_connected:
                self.xray_banner.setText("X-RAY: HV STATE UNKNOWN (no readback yet)")
                self.xray_banner.setStyleSheet(XRAY_ON_STYLE)
            else:
                self.xray_banner.setText("X-ray not connected")
                self.xray_banner.setStyleSheet(XRAY_OFF_STYLE)
            return
        hv = rb.get("hv_on", math.nan)
        kV, mA, sh = rb.get("kV", math.nan), rb.get("mA", math.nan), rb.get("shutter_open", math.nan)
        shutter = "OPEN" if sh == 1.0 else ("closed" if sh == 0.0 else "unknown")
        if hv == 0.0:
            self.xray_banner.setText(f"X-ray HV off · shutter {shutter}{age}")
            self.xray_banner.setStyleSheet(XRAY_OFF_STYLE)
            return
        state = "ON" if hv == 1.0 else "STATE UNKNOWN"
        self.xray_banner.setText(f"☢ X-RAY HV {state} · {kV:.1f} kV · {mA:.2f} mA · shutter {shutter}{age}")
        self.xray_banner.setStyleSheet(XRAY_ON_STYLE)

    # ------------------------------------------------------------------ helpers
    def run_active(self) -> bool:
        return worker_busy(self.worker)

    def say(self, text: str) -> None:
        self.statusBar().showMessage(text, 15000)
        self.append_log(text)

    def append_log(self, text: str, t: float | None = None) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(t if t is not None else self.session.clock.now()))
        self.log_view.appendPlainText(f"{stamp}  {text}")

    def _start_after_io(self, fn: Callable[[], None]) -> None:
        """Start the queue from the instrument thread, after pending connects/commands finished, so the
        runner never races a GUI-initiated connect."""
        self.io.submit(lambda: None, lambda _r, _e: fn(), what="start queue")

    def use_parameters(self, procedure: str, parameters: dict[str, Any]) -> None:
        self.queue_panel.use_parameters(procedure, parameters)
        self.tabs.setCurrentWidget(self.queue_panel)

    # ------------------------------------------------------------------ bus events
    def on_log(self, ev: Any) -> None:
        self.append_log(f"{ev.data.get('kind', '')}: {ev.data.get('message', '')}", ev.time)
        if ev.data.get("kind") == "stop" and self.run_active():
            self.set_state("analysing…", "run file closed, instruments safe; the SF analysis is running")

    def on_run_start(self, ev: Any) -> None:
        d = ev.data
        self.current_run_file = d.get("path")
        self.freeze_heap()
        meta = stream_meta_from_runner(self.worker.current_runner)
        self.model.reset(d.get("procedure", ""), d.get("n_points"), meta)
        self.queue_panel.on_run_start(d, ev.time)
        self.instruments.set_run_active(True)
        self.set_state("running", f"{d.get('procedure', '')} → {Path(d.get('path', '')).name}")
        self.append_log(f"run started: {d.get('procedure')} ({d.get('n_points')} points) → {d.get('path')}", ev.time)
        self.tabs.setCurrentWidget(self.live)

    def on_run_status(self, ev: Any) -> None:
        st = ev.data.get("state", "")
        if st in ("paused", "running", "suspended"):
            self.set_state(st)
        elif st == "pause-requested":
            self.set_state("pausing…")

    def on_suspend(self, ev: Any) -> None:
        if ev.topic == "suspend":
            self.set_state("suspended", ev.data.get("reason", ""))
        else:
            self.set_state("running", f"suspension over after {ev.data.get('duration_s', 0):.0f} s (lab)")

    def on_points(self, batch: list[Any]) -> None:
        for ev in batch:
            self.model.add_point(ev.data, float(ev.data.get("lab_time", ev.time)))
        last = batch[-1].data
        if last.get("readbacks"):
            self._point_readbacks = last["readbacks"]   # shown on the next slow tick (≈3 Hz)
            if "xray" in last["readbacks"]:
                self._xray_rb = dict(last["readbacks"]["xray"])
                self._xray_t = float(last.get("lab_time", batch[-1].time))
        self.queue_panel.on_point(int(last.get("point_id", 0)) + 1, last.get("n_points"),
                                  float(last.get("lab_time", batch[-1].time)))

    def ask_operator(self, text: str) -> threading.Event:
        """``Runner.operator`` (called in the run thread): show the prompt here, return the event "Done" sets."""
        done = threading.Event()
        self._operator.asked.emit(text, done)
        return done

    def on_operator_prompt(self, text: str, done: threading.Event) -> None:
        self.append_log(f"operator: {text}")
        box = QtWidgets.QMessageBox(self)
        box.setIcon(QtWidgets.QMessageBox.Information)
        box.setWindowTitle("sflab — operator")
        box.setText(text)
        box.setInformativeText("The run waits until you press Done (Abort in the main window still stops it).")
        ok = box.addButton("Done", QtWidgets.QMessageBox.AcceptRole)
        ok.clicked.connect(done.set)
        box.setModal(False)
        self.operator_box = box
        box.show()

    def on_run_stop(self, ev: Any) -> None:
        if self.operator_box is not None:   # the run ended (aborted) while the prompt was open
            self.operator_box.close()
            self.operator_box = None
        d = ev.data
        self.last_run_file = d.get("path")
        self.last_exit = dict(d)
        self.queue_panel.on_run_stop()
        failed = {r: v for r, v in (d.get("backstop") or {}).items() if v != "ok"}
        status = d.get("exit_status", "idle")
        why = d.get("error") or ""
        who = f" by {d['stopped_by']}" if d.get("stopped_by") else ""
        role = f" [{d['role']}]" if d.get("role") else ""
        self.append_log(f"run ended: {status}{who} after {d.get('n_points')} points"
                        + (f"{role} ({why})" if why else "")
                        + ("; backstop: all roles safe" if not failed else f"; BACKSTOP FAILED: {failed}"), ev.time)
        safe = "backstop ok" if not failed else f"BACKSTOP FAILED: {failed}"
        self.set_state(status, (f"{why} — " if why and status != "success" else "") + safe)
        self.browser.rescan()

    def on_analysis(self, ev: Any) -> None:
        path = self.current_run_file or self.last_run_file or ""
        self.summary.show_summary(ev.data, f"analysis of the run that just finished: {Path(path).name}")

    def on_tick(self) -> None:
        self._ticks += 1
        if self.tabs.currentWidget() is self.live or self._ticks % 8 == 0:
            self.live.refresh()
        if self._ticks % 5 == 0:
            self.update_xray_banner()
            if self._point_readbacks is not None:
                self.instruments.on_readbacks(self._point_readbacks)
                self._point_readbacks = None
            self.queue_panel.refresh()
            active = self.run_active()
            self.instruments.set_run_active(active)
            if not active and self.run_state in ("running", "paused", "pausing…", "suspended", "analysing…"):
                self.set_state("idle")
        while self._safe_results:
            res = self._safe_results.popleft()
            bad = {r: v for r, v in res.items() if v != "ok"}
            self.say("MAKE SAFE: " + ("all roles safe (" + ", ".join(res) + ")" if not bad else f"FAILED for {bad}"))

    def set_state(self, state: str, detail: str = "") -> None:
        self.run_state = state
        colors = {"running": "#1f77b4", "paused": "#b26a00", "pausing…": "#b26a00", "suspended": "#c62828",
                  "success": "#1a7f37", "aborted": "#c62828", "failed": "#c62828", "interrupted": "#b26a00"}
        self.state_label.setText(state.upper() if state in ("suspended", "failed") else state)
        self.state_label.setStyleSheet(f"color: {colors.get(state, '#333')}")
        if detail or state in ("idle", "running"):
            self.detail_label.setText(detail)

    # ------------------------------------------------------------------ MAKE SAFE
    def make_safe(self) -> threading.Thread:
        """Abort the running run (its backstop runs), stop the queue, and make every role safe now —
        on a thread of its own, so a busy instrument thread cannot delay it."""
        self.append_log("MAKE SAFE pressed")
        if self.run_active():
            self.worker.abort("MAKE SAFE pressed in the GUI", by="MAKE SAFE")
        self.io.stop_keepalive()

        def work() -> None:
            try:
                res = self.session.make_safe()
            except Exception as exc:  # make_safe_all never raises; a broken session might
                res = {"session": f"failed: {exc}"}
            self._safe_results.append(res)

        t = threading.Thread(target=work, name="sflab-make-safe", daemon=True)
        t.start()
        return t

    # ------------------------------------------------------------------ closing
    def _ask_close(self) -> bool:
        box = QtWidgets.QMessageBox(self)
        box.setIcon(QtWidgets.QMessageBox.Warning)
        box.setWindowTitle("A run is in progress")
        box.setText("A run is in progress. Abort it and close sflab?")
        box.setInformativeText("Aborting ends the run at its next checkpoint and the backstop makes every "
                               "instrument safe. Keep running leaves the window open; the run ends with its "
                               "own backstop.")
        abort = box.addButton("Abort run and close", QtWidgets.QMessageBox.DestructiveRole)
        box.addButton("Keep running", QtWidgets.QMessageBox.RejectRole)
        box.exec()
        return box.clickedButton() is abort

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 - Qt API
        if self._closed:
            event.accept()
            return
        if self.run_active():
            if not self.close_by_signal and not self.ask_close():
                self.append_log("close cancelled: the run continues (its backstop runs when it ends)")
                event.ignore()
                return
            self.append_log("closing: interrupting the run (resumable)")
            self.worker.abort("SIGTERM" if self.close_by_signal else "the GUI was closed", status="interrupted",
                              by="SIGTERM" if self.close_by_signal else "GUI close")
            # every wait polls the runner (drivers.base.POLL_S), so the run ends within a poll or two
            self._wait(lambda: not worker_busy(self.worker), 30.0)
        self.shutdown()
        event.accept()

    def _wait(self, cond: Callable[[], bool], timeout_s: float) -> bool:
        t0 = time.monotonic()
        while not cond():
            if time.monotonic() - t0 > timeout_s:
                log.error("gave up waiting after %.0f s", timeout_s)
                return False
            QtWidgets.QApplication.processEvents(QtCore.QEventLoop.AllEvents, 50)
            time.sleep(0.01)
        return True

    def shutdown(self) -> None:
        """Backstop once more (whatever happened before), then stop the GUI's threads and timers."""
        if self._closed:
            return
        self._closed = True
        if getattr(self.session, "operator", None) == self.ask_operator:
            self.session.operator = None   # nobody left to answer a prompt: the driver's own wait_s
        t = self.make_safe()
        self._wait(lambda: not t.is_alive(), 60.0)
        self.pump.drain()
        self.pump.close()
        self.io.close()
        self.live.close_workers()
        self.browser.close_workers()
        self.queue.save()
        sys.setswitchinterval(self._old_switch_interval)   # the interpreter as it was (tests share it)
        gc.unfreeze()


def main(open_session: Callable[[], Any], queue_path: Path) -> int:
    """Run the GUI: ``open_session()`` returns a :class:`acq.session.LabSession` (real or simulated);
    ``queue_path`` is the persisted queue (JSON). Returns the process exit code."""
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("sflab")
    try:
        session = open_session()
    except Exception as exc:
        log.error("cannot open the lab: %s", exc)
        QtWidgets.QMessageBox.critical(None, "sflab", f"Cannot open the lab:\n\n{exc}")
        return 2
    try:
        win = MainWindow(session, Path(queue_path))
        win.show()
        # Ctrl-C / SIGTERM close the window (the close path runs the backstop)
        def on_signal(*_a: Any) -> None:
            win.close_by_signal = True          # no dialog: nobody is there to answer it
            QtCore.QTimer.singleShot(0, win.close)

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, on_signal)
        wake = QtCore.QTimer()
        wake.timeout.connect(lambda: None)   # lets Python run signal handlers while Qt waits
        wake.start(200)
        rc = app.exec()
        if not win._closed:
            win.shutdown()
        return int(rc)
    finally:
        session.close()
