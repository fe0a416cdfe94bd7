"""Queue panel: parameter forms, the persisted run queue, and run control (start, pause, resume, abort).

The form is generated from the selected procedure's Parameters (:class:`gui.forms.ParameterForm`).
The queue is a :class:`~gui.queue.RunQueue` saved next to the data, so a restarted GUI shows the same
queue; items that were running when the program died come back as ``interrupted``. Plans load from
the same TOML/Python files ``sflab run`` takes (``acq.plans.load_plan``, validated as a whole, errors
with file:line) and save as TOML. The ETA adds the estimates of the queued runs (lab time) to the
remaining part of the current run, extrapolated from its points so far.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qtpy import QtCore, QtGui, QtWidgets

from acq.config import toml_value
from acq.plans import format_duration as _format_duration
from acq.queue import WAIT, QueueWorker, RunQueue

from .forms import ParameterForm

log = logging.getLogger(__name__)

__all__ = ["QueuePanel", "plan_toml", "format_duration", "worker_busy"]

STATUS_COLOR = {"queued": "#333333", "running": "#1f77b4", "done": "#1a7f37", "failed": "#c62828",
                "aborted": "#c62828", "interrupted": "#b26a00"}


def worker_busy(worker: Any) -> bool:
    """The queue worker's thread is alive or a runner is active (``state`` alone can lag behind)."""
    t = getattr(worker, "_thread", None)
    return (t is not None and t.is_alive()) or getattr(worker, "current_runner", None) is not None


def format_duration(s: float | None) -> str:
    return _format_duration(s, unknown="—")


def plan_toml(items: list[Any], *, sample: str = "", title: str = "") -> str:
    """The queued items as a plan file that ``sflab check``/``sflab run`` and this GUI read back."""
    lines = ["# written by the sflab GUI"]
    if sample:
        lines.append(f"sample = {toml_value(sample)}")
    if title:
        lines.append(f"title = {toml_value(title)}")
    for it in items:
        if it.procedure == WAIT:
            lines += ["", "[[step]]", f"wait_s = {toml_value(float(it.parameters.get('seconds', 0.0)))}"]
            if it.title:
                lines.append(f"note = {toml_value(it.title)}")
            continue
        lines += ["", "[[step]]", f"procedure = {toml_value(it.procedure)}"]
        if it.title:
            lines.append(f"title = {toml_value(it.title)}")
        for k, v in it.parameters.items():
            lines.append(f"{k} = {toml_value(v)}")
    return "\n".join(lines) + "\n"


class QueuePanel(QtWidgets.QWidget):
    """Procedure form + queue table + run control."""

    message = QtCore.Signal(str)

    def __init__(self, session: Any, queue: RunQueue, worker: QueueWorker, *,
                 procedures: Callable[[], dict[str, type]] | None = None,
                 start_via: Callable[[Callable[[], None]], None] | None = None,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        from acq.registry import procedures as registry_procedures

        self.session, self.queue, self.worker = session, queue, worker
        #: the problems of the last refused add / start (the same messages as `sflab check`)
        self.last_refusal: list[str] = []
        self.procedures = (procedures or registry_procedures)()
        self._start_via = start_via or (lambda fn: fn())
        self.form: ParameterForm | None = None
        self.run_progress: tuple[int, int | None] = (0, None)
        self.run_lab_t0: float | None = None
        self.run_lab_t: float | None = None

        split = QtWidgets.QSplitter(QtCore.Qt.Horizontal, self)
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(2, 2, 2, 2)
        outer.addWidget(split)

        # -------- left: the form
        left = QtWidgets.QWidget()
        fl = QtWidgets.QVBoxLayout(left)
        fl.setContentsMargins(0, 0, 0, 0)
        self.proc_box = QtWidgets.QComboBox()
        self.proc_box.setObjectName("queue_procedure")
        for name in self.procedures:
            self.proc_box.addItem(name)
        self.proc_box.currentTextChanged.connect(self.select_procedure)
        fl.addWidget(QtWidgets.QLabel("Procedure"))
        fl.addWidget(self.proc_box)
        self.doc = QtWidgets.QLabel("")
        self.doc.setWordWrap(True)
        self.doc.setStyleSheet("color: #555")
        fl.addWidget(self.doc)
        self.title_edit = QtWidgets.QLineEdit()
        self.title_edit.setObjectName("queue_title")
        self.title_edit.setPlaceholderText("title (optional)")
        fl.addWidget(self.title_edit)
        self.form_area = QtWidgets.QScrollArea()
        self.form_area.setWidgetResizable(True)
        fl.addWidget(self.form_area, 1)
        self.estimate = QtWidgets.QLabel("")
        self.estimate.setObjectName("queue_estimate")
        fl.addWidget(self.estimate)
        self.add_btn = QtWidgets.QPushButton("Add to queue")
        self.add_btn.setObjectName("queue_add")
        self.add_btn.clicked.connect(self.add_current)
        fl.addWidget(self.add_btn)
        split.addWidget(left)

        # -------- right: the queue
        right = QtWidgets.QWidget()
        rl = QtWidgets.QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        ctl = QtWidgets.QHBoxLayout()
        self.buttons: dict[str, QtWidgets.QPushButton] = {}
        for key, text, slot in (("start", "▶ Start", self.start), ("pause", "❚❚ Pause", self.pause),
                                ("resume", "▶ Resume", self.resume), ("stop_after", "Stop after this run",
                                                                       self.stop_after),
                                ("abort", "■ Abort", self.abort)):
            b = QtWidgets.QPushButton(text)
            b.setObjectName(f"queue_{key}")
            b.clicked.connect(slot)
            ctl.addWidget(b)
            self.buttons[key] = b
        self.buttons["abort"].setStyleSheet("QPushButton:enabled { color: #c62828; font-weight: bold }")
        ctl.addStretch(1)
        rl.addLayout(ctl)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setObjectName("queue_progress")
        self.progress.setFormat("idle")
        self.progress.setValue(0)
        rl.addWidget(self.progress)
        self.eta = QtWidgets.QLabel("")
        self.eta.setObjectName("queue_eta")
        rl.addWidget(self.eta)
        self.table = QtWidgets.QTableWidget(0, 6)
        self.table.setObjectName("queue_table")
        self.table.setHorizontalHeaderLabels(["status", "procedure", "title", "parameters", "estimate", "run file"])
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().hide()
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(3, QtWidgets.QHeaderView.Stretch)
        for c in (0, 1, 4):
            hh.setSectionResizeMode(c, QtWidgets.QHeaderView.ResizeToContents)
        rl.addWidget(self.table, 1)
        edit = QtWidgets.QHBoxLayout()
        for key, text, slot in (("up", "↑ Up", lambda: self.move_selected(-1)),
                                ("down", "↓ Down", lambda: self.move_selected(+1)),
                                ("remove", "Remove", self.remove_selected),
                                ("requeue", "Re-queue", self.requeue_selected),
                                ("clear", "Clear finished", self.clear_done),
                                ("load", "Load plan…", self.load_plan_dialog),
                                ("save", "Save plan…", self.save_plan_dialog)):
            b = QtWidgets.QPushButton(text)
            b.setObjectName(f"queue_{key}")
            b.clicked.connect(slot)
            edit.addWidget(b)
            self.buttons[key] = b
        edit.addStretch(1)
        rl.addLayout(edit)
        split.addWidget(right)
        split.setSizes([360, 840])

        if self.procedures:
            self.select_procedure(self.proc_box.currentText())
        self.refresh()

    # ------------------------------------------------------------------ form
    def select_procedure(self, name: str, values: dict[str, Any] | None = None) -> list[str]:
        cls = self.procedures.get(name)
        if cls is None:
            return []
        if self.proc_box.currentText() != name:
            self.proc_box.blockSignals(True)
            self.proc_box.setCurrentText(name)
            self.proc_box.blockSignals(False)
        self.form = ParameterForm(cls)
        self.form.changed.connect(self._form_changed)
        self.form_area.setWidget(self.form)
        doc = (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        self.doc.setText(doc)
        unknown = self.form.set_values(values) if values else []
        self._form_changed()
        return unknown

    def use_parameters(self, procedure: str, parameters: dict[str, Any]) -> None:
        """From the run browser: fill the form with a past run's parameters."""
        if procedure not in self.procedures:   # run files record the class name
            procedure = next((k for k, c in self.procedures.items() if c.__name__ == procedure), procedure)
        if procedure not in self.procedures:
            self.message.emit(f"procedure {procedure!r} is not available here (known: {', '.join(self.procedures)})")
            return
        unknown = self.select_procedure(procedure, parameters)
        if unknown:
            self.message.emit(f"ignored parameters the procedure no longer has: {', '.join(unknown)}")
        else:
            self.message.emit(f"form filled with the parameters of a {procedure} run")

    def _form_changed(self) -> None:
        if self.form is None:
            return
        bad = self.form.errors()
        self.add_btn.setEnabled(not bad)
        if bad:
            self.estimate.setText(f"{len(bad)} value(s) not allowed")
            self.estimate.setStyleSheet("color: #c62828")
            return
        self.estimate.setStyleSheet("")
        try:
            proc = self.form.cls(**self.form.values())
            est = proc.estimate()
            pts = proc.points()
            self.estimate.setText(f"estimate: {format_duration(est.get('lab_seconds'))} lab time"
                                  + (f", {len(pts)} points" if pts is not None else ""))
        except Exception as exc:  # an estimate is a courtesy
            self.estimate.setText(f"no estimate ({exc})")

    def add_current(self) -> Any:
        if self.form is None:
            return None
        try:
            values = self.form.values()
        except ValueError as exc:
            self.message.emit(f"not added: {exc}")
            return None
        proc = self.proc_box.currentText()
        problems = self.check_run(proc, values)
        if problems:
            self.last_refusal = problems
            self.message.emit(f"not added: {problems[0]}" + (f" (and {len(problems) - 1} more)"
                                                              if len(problems) > 1 else ""))
            return None
        item = self.queue.add(proc, values, title=self.title_edit.text().strip())
        self.message.emit(f"queued {proc}" + (f" “{item.title}”" if item.title else ""))
        self.refresh()
        return item

    def check_run(self, procedure: str, values: dict[str, Any]) -> list[str]:
        """The checks of ``sflab check`` for one run (``acq.plans.validate_run``): parameter types and
        ranges and the lab's limits; the messages are the same."""
        from acq.plans import validate_run

        _conv, problems = validate_run(procedure, values, getattr(self.session, "config", None))
        return [str(p) for p in problems]

    # ------------------------------------------------------------------ queue editing
    def selected_id(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        it = self.table.item(rows[0].row(), 0)
        return it.data(QtCore.Qt.UserRole) if it else None

    def select_row(self, row: int) -> None:
        self.table.selectRow(row)

    def move_selected(self, delta: int) -> None:
        i = self.selected_id()
        if i is None:
            return
        idx = [it.id for it in self.queue.items].index(i)
        self.queue.move(i, max(0, idx + delta))
        self.refresh()
        self.select_row([it.id for it in self.queue.items].index(i))

    def remove_selected(self) -> None:
        i = self.selected_id()
        if i is None:
            return
        try:
            self.queue.remove(i)
        except Exception as exc:
            self.message.emit(str(exc))
        self.refresh()

    def requeue_selected(self) -> None:
        i = self.selected_id()
        if i is None:
            return
        if self.queue.get(i).status in ("failed", "aborted", "done"):
            self.queue.requeue(i)
        self.refresh()

    def clear_done(self) -> None:
        self.queue.clear_done()
        self.refresh()

    def load_plan(self, path: Path) -> list[str]:
        """Append a plan's runs to the queue after validating the whole plan; returns the errors."""
        from acq.plans import load_plan

        plan = load_plan(path, getattr(self.session, "config", None))
        if plan.errors:
            return list(plan.errors)
        for r in plan.runs:   # waits become wait items of the queue (lab clock, no instrument command)
            self.queue.add(r.procedure, dict(r.parameters), title=r.title,
                           estimate_s=r.estimate_s if math.isfinite(r.estimate_s) else None, n_points=r.n_points)
        self.message.emit(f"plan {path.name}: {len(plan.runs)} items queued "
                          f"({format_duration(plan.lab_seconds)} of lab time)")
        self.refresh()
        return []

    def save_plan(self, path: Path) -> None:
        items = [it for it in self.queue.items if it.status == "queued"] or list(self.queue.items)
        Path(path).write_text(plan_toml(items, sample=self.session.sample.get("name", "")))
        self.message.emit(f"plan saved to {path}")

    def load_plan_dialog(self) -> None:
        f, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Load plan", "", "Plans (*.toml *.py)")
        if f:
            errors = self.load_plan(Path(f))
            if errors:
                QtWidgets.QMessageBox.warning(self, "Plan not loaded", "\n".join(errors[:30]))

    def save_plan_dialog(self) -> None:
        f, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save plan", "plan.toml", "Plans (*.toml)")
        if f:
            self.save_plan(Path(f))

    # ------------------------------------------------------------------ run control
    def start(self) -> None:
        if self.queue.next_queued() is None:
            self.message.emit("nothing queued")
            return
        for it in self.queue.items:   # on start too: the lab (its limits) may differ from when it was added
            if it.status in ("queued", "interrupted") and it.procedure != "wait":
                problems = self.check_run(it.procedure, it.parameters)
                if problems:
                    self.last_refusal = problems
                    self.message.emit(f"not started: item {it.id} ({it.procedure}): {problems[0]}")
                    return

        def go() -> None:
            try:
                self.worker.start()
            except RuntimeError as exc:   # already running
                self.message.emit(str(exc))

        self._start_via(go)
        self.message.emit("queue started")

    def pause(self) -> None:
        self.worker.pause()
        self.message.emit("pause requested (takes effect at the next checkpoint; X-ray made safe while paused)")

    def resume(self) -> None:
        self.worker.resume()
        self.message.emit("resumed")

    def abort(self) -> None:
        self.worker.abort()
        self.message.emit("abort requested: the run stops at the next checkpoint and the backstop runs")

    def stop_after(self) -> None:
        self.worker.stop_after_current()
        self.message.emit("the queue stops after the current run")

    # ------------------------------------------------------------------ progress (from the bus)
    def on_run_start(self, data: dict[str, Any], t: float) -> None:
        self.run_progress = (int(data.get("resume_from") or 0), data.get("n_points"))
        self.run_lab_t0 = self.run_lab_t = t

    def on_point(self, n_done: int, n_planned: int | None, t: float) -> None:
        self.run_progress = (n_done, n_planned)
        self.run_lab_t = t

    def on_run_stop(self) -> None:
        self.run_lab_t0 = None

    def remaining_s(self) -> float:
        """Lab seconds left: the current run (extrapolated from its rate) plus the queued estimates."""
        queued = sum(it.estimate_s for it in self.queue.items if it.status in ("queued", "interrupted")
                     and it.estimate_s is not None and math.isfinite(it.estimate_s))
        cur = 0.0
        done, planned = self.run_progress
        if self.run_lab_t0 is not None and planned and done:
            rate = (self.run_lab_t - self.run_lab_t0) / done
            cur = rate * max(planned - done, 0)
        else:
            running = next((it for it in self.queue.items if it.status == "running"), None)
            if running is not None and running.estimate_s is not None and math.isfinite(running.estimate_s):
                cur = running.estimate_s * (1 - (done / planned if planned else 0))
        return queued + cur

    def refresh(self) -> None:
        """Re-draw the table and the control state (cheap; called on the pump's tick)."""
        items = list(self.queue.items)
        sel = self.selected_id()
        if self.table.rowCount() != len(items):
            self.table.setRowCount(len(items))
        for r, it in enumerate(items):
            params = ", ".join(f"{k}={v}" for k, v in it.parameters.items())
            status = it.status if it.status not in ("failed", "aborted") or not it.error else \
                f"{it.status}: {it.error}"
            cells = [status, it.procedure, it.title, params, format_duration(it.estimate_s),
                     Path(it.run_file).name if it.run_file else ""]
            for c, text in enumerate(cells):
                cell = self.table.item(r, c)
                if cell is None:
                    cell = QtWidgets.QTableWidgetItem()
                    self.table.setItem(r, c, cell)
                if cell.text() != text:
                    cell.setText(text)
                    cell.setToolTip(text)
                if c == 0:
                    cell.setData(QtCore.Qt.UserRole, it.id)
                    cell.setForeground(QtGui.QBrush(QtGui.QColor(STATUS_COLOR.get(it.status, "#333"))))
        if sel is not None:
            ids = [it.id for it in items]
            if sel in ids and self.selected_id() != sel:
                self.select_row(ids.index(sel))
        state = self.worker.state
        running = worker_busy(self.worker)
        if not running:
            state = "idle"
        self.buttons["start"].setEnabled(not running and self.queue.next_queued() is not None)
        self.buttons["pause"].setEnabled(state in ("running", "stopping"))
        self.buttons["resume"].setEnabled(state == "paused")
        self.buttons["abort"].setEnabled(running)
        self.buttons["stop_after"].setEnabled(running)
        done, planned = self.run_progress
        if running and planned:
            self.progress.setMaximum(int(planned))
            self.progress.setValue(int(done))
            self.progress.setFormat(f"{state}: point {done} of {planned}")
        elif running:
            self.progress.setMaximum(0 if state == "running" else 1)
            self.progress.setFormat(state)
        else:
            self.progress.setMaximum(1)
            self.progress.setValue(0)
            self.progress.setFormat("idle")
        n_q = sum(it.status in ("queued", "interrupted") for it in items)
        self.eta.setText(f"{n_q} queued · ETA {format_duration(self.remaining_s())} of lab time"
                         if (n_q or running) else "queue empty")
