"""Run browser: past run files (also ones still being written, through SWMR).

The folder list shows file names only; a file is opened (``acq.store.open_run``, completed points
only) on a background thread when selected, so a large or busy file never freezes the window. The
run's points are replayed into a private :class:`gui.live.LiveModel` for the same plots as the live
view; the SF summary comes from ``/entry/analysis``. A file whose ``exit_status`` is still
``running`` is re-read every ``follow_s`` seconds while "follow" is on. "Use these parameters"
sends the procedure and its parameters to the queue form.
"""

from __future__ import annotations

import collections
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from qtpy import QtCore, QtWidgets

from acq.store import RunData, open_run

from .forms import format_value
from .live import LiveModel, LivePlots
from .summary import SFSummaryPanel, find_verdict

log = logging.getLogger(__name__)

__all__ = ["RunBrowser", "replay_into"]


def replay_into(model: LiveModel, run: RunData) -> None:
    """Feed a run file's completed points into ``model`` (as the bus would have)."""
    from .live import StreamMeta

    meta = {}
    for name, static in run.static_axes.items():
        axis = next(iter(static.values())) if len(static) == 1 else None
        for k in ("wavelength", "t", "tau", "time", "lag"):
            if k in static:
                axis = static[k]
        fields = run.streams.get(name, {})
        signal = "counts" if "counts" in fields else None
        meta[name] = StreamMeta(signal, None if axis is None else axis.astype(float))
    model.reset(run.procedure, run.n_points, meta)
    for i in range(run.n_points):
        streams = {s: {k: v[i] for k, v in f.items()} for s, f in run.streams.items()}
        rb = {r: {k: float(v[i]) for k, v in d.items()} for r, d in run.readbacks.items()}
        t = float(run.timestamp[i]) if i < len(run.timestamp) else float(i)
        model.add_point({"streams": streams, "readbacks": rb, "index": i, "point_id": int(run.point_id[i]),
                         "n_points": run.n_points}, t)


class RunBrowser(QtWidgets.QWidget):
    useParameters = QtCore.Signal(str, dict)     # procedure, parameters

    def __init__(self, data_dir: Path, parent: QtWidgets.QWidget | None = None, *, follow_s: float = 2.0) -> None:
        super().__init__(parent)
        self.data_dir = Path(data_dir)
        self.run: RunData | None = None
        self.path: Path | None = None
        self.loads = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sflab-browser")
        self._done: collections.deque = collections.deque()
        self._loading = False

        split = QtWidgets.QSplitter(QtCore.Qt.Horizontal, self)
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(split)

        left = QtWidgets.QWidget()
        ll = QtWidgets.QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        self.folder = QtWidgets.QLabel(str(self.data_dir))
        self.folder.setWordWrap(True)
        ll.addWidget(self.folder)
        row = QtWidgets.QHBoxLayout()
        b_dir = QtWidgets.QPushButton("Folder…")
        b_dir.clicked.connect(self.choose_folder)
        b_open = QtWidgets.QPushButton("Open file…")
        b_open.clicked.connect(self.choose_file)
        b_scan = QtWidgets.QPushButton("Rescan")
        b_scan.clicked.connect(self.rescan)
        for b in (b_dir, b_open, b_scan):
            row.addWidget(b)
        ll.addLayout(row)
        self.files = QtWidgets.QListWidget()
        self.files.setObjectName("browser_files")
        self.files.itemActivated.connect(lambda it: self.open(Path(it.data(QtCore.Qt.UserRole))))
        self.files.itemClicked.connect(lambda it: self.open(Path(it.data(QtCore.Qt.UserRole))))
        ll.addWidget(self.files, 1)
        split.addWidget(left)

        right = QtWidgets.QWidget()
        rl = QtWidgets.QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        self.header = QtWidgets.QLabel("Select a run file.")
        self.header.setObjectName("browser_header")
        self.header.setWordWrap(True)
        self.header.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        rl.addWidget(self.header)
        bar = QtWidgets.QHBoxLayout()
        self.use_btn = QtWidgets.QPushButton("Use these parameters")
        self.use_btn.setObjectName("browser_use")
        self.use_btn.setEnabled(False)
        self.use_btn.clicked.connect(self._use)
        self.reload_btn = QtWidgets.QPushButton("Re-read")
        self.reload_btn.clicked.connect(lambda: self.path and self.open(self.path))
        self.follow = QtWidgets.QCheckBox("follow while it is being written")
        self.follow.setChecked(True)
        bar.addWidget(self.use_btn)
        bar.addWidget(self.reload_btn)
        bar.addWidget(self.follow)
        bar.addStretch(1)
        rl.addLayout(bar)
        self.tabs = QtWidgets.QTabWidget()
        self.params = QtWidgets.QTableWidget(0, 2)
        self.params.setObjectName("browser_params")
        self.params.setHorizontalHeaderLabels(["parameter", "value"])
        self.params.horizontalHeader().setStretchLastSection(True)
        self.params.verticalHeader().hide()
        self.params.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.model = LiveModel(waterfall_rows=512)
        self.plots = LivePlots(self.model, fit_bands=True, fit_interval_s=0.0)
        self.summary = SFSummaryPanel(compact=True)
        self.events = QtWidgets.QPlainTextEdit()
        self.events.setReadOnly(True)
        self.tabs.addTab(self.summary, "SF summary")
        self.tabs.addTab(self.plots, "Plots")
        self.tabs.addTab(self.params, "Parameters")
        self.tabs.addTab(self.events, "Event log")
        rl.addWidget(self.tabs, 1)
        split.addWidget(right)
        split.setSizes([260, 900])

        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(50)
        self._timer.timeout.connect(self._deliver)
        self._timer.start()
        self._follow_timer = QtCore.QTimer(self)
        self._follow_timer.setInterval(int(follow_s * 1000))
        self._follow_timer.timeout.connect(self._follow)
        self._follow_timer.start()
        self.rescan()

    # ------------------------------------------------------------------ folder
    def set_folder(self, folder: Path) -> None:
        self.data_dir = Path(folder)
        self.folder.setText(str(self.data_dir))
        self.rescan()

    def rescan(self) -> None:
        sel = str(self.path) if self.path else None
        self.files.clear()
        if not self.data_dir.is_dir():
            return
        files = sorted((p for p in self.data_dir.rglob("*.h5") if not p.name.endswith(".interrupted.h5")
                        and p.parent.name != "raw"), key=lambda p: p.stat().st_mtime, reverse=True)
        for p in files[:500]:
            it = QtWidgets.QListWidgetItem(str(p.relative_to(self.data_dir)))
            it.setData(QtCore.Qt.UserRole, str(p))
            it.setToolTip(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(p.stat().st_mtime)))
            self.files.addItem(it)
            if sel == str(p):
                it.setSelected(True)

    def choose_folder(self) -> None:
        d = QtWidgets.QFileDialog.getExistingDirectory(self, "Run folder", str(self.data_dir))
        if d:
            self.set_folder(Path(d))

    def choose_file(self) -> None:
        f, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open run file", str(self.data_dir), "Run files (*.h5)")
        if f:
            self.open(Path(f))

    # ------------------------------------------------------------------ loading (background thread)
    def open(self, path: Path) -> None:
        """Read ``path`` on the browser's thread; the views update when it is read."""
        path = Path(path)
        if self._loading:
            return
        self._loading = True
        self.header.setText(f"reading {path.name} …")

        def job() -> None:
            try:
                self._done.append((path, open_run(path), None))
            except Exception as exc:
                self._done.append((path, None, exc))

        self._pool.submit(job)

    def _deliver(self) -> None:
        if self.run is not None:
            self.plots.refresh()     # picks up the band fit when it comes back
        while self._done:
            path, run, err = self._done.popleft()
            self._loading = False
            if err is not None:
                self.header.setText(f"<span style='color:#c62828'>{path}: {err}</span>")
                continue
            self.show_run(path, run)

    def _follow(self) -> None:
        if self.follow.isChecked() and self.run is not None and self.run.exit_status == "running" \
                and not self._loading and self.path is not None:
            self.open(self.path)

    # ------------------------------------------------------------------ display
    def show_run(self, path: Path, run: RunData) -> None:
        self.path, self.run = Path(path), run
        self.loads += 1
        v = find_verdict(run.analysis)
        status_color = {"success": "#1a7f37", "running": "#1f77b4"}.get(run.exit_status, "#c62828")
        self.header.setText(
            f"<b>{path.name}</b><br>{run.procedure} — <span style='color:{status_color}'><b>{run.exit_status}"
            f"</b></span>, {run.n_points} completed points; sample {run.sample_name or '—'}<br>"
            f"start {run.start_time} · end {run.end_time or '—'}"
            + (f" · resumed at {run.resumed_at}" if run.resumed_at else "")
            + (f"<br>verdict: <b>{v.get('verdict')}</b>" if v else ""))
        self.params.setRowCount(len(run.parameters))
        for r, (k, val) in enumerate(run.parameters.items()):
            self.params.setItem(r, 0, QtWidgets.QTableWidgetItem(k))
            self.params.setItem(r, 1, QtWidgets.QTableWidgetItem(format_value(val)))
        self.params.resizeColumnToContents(0)
        self.use_btn.setEnabled(bool(run.procedure))
        replay_into(self.model, run)
        self.plots.refresh_all()
        self.summary.show_summary(run.analysis, "" if run.analysis else
                                  ("the run is still being written; the analysis comes at its end"
                                   if run.exit_status == "running" else "this run file has no analysis summary"))
        lines = []
        for ev in run.events:
            lines.append(f"{ev.get('t', '')}  {ev.get('kind', '')}: {ev.get('message', '')}")
        if run.backstop:
            lines.append("backstop: " + json.dumps(run.backstop))
        self.events.setPlainText("\n".join(lines))

    def _use(self) -> None:
        if self.run is not None:
            name = self.run.procedure.rsplit(".", 1)[-1]
            self.useParameters.emit(name, dict(self.run.parameters))

    def close_workers(self) -> None:
        self._timer.stop()
        self._follow_timer.stop()
        self.plots.close_workers()
        self._pool.shutdown(wait=False, cancel_futures=True)
