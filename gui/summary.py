"""SF summary: the verdict first, then the checklist with its numbers, then SF fraction and τ_SF vs T.

Input is a run's analysis summary (``RunData.analysis`` or the ``analysis`` event): the
``analysis.sf.SFVerdict.to_dict()`` layout (``verdict``, ``confuser``, ``reasons``, ``items``,
``strength``, ``fits``), found at the top level or nested under a key such as ``sf`` or ``verdict``.
Summaries without a verdict (e.g. the engine check) are shown as a plain key/value table.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyqtgraph as pg
from qtpy import QtCore, QtGui, QtWidgets

log = logging.getLogger(__name__)

__all__ = ["SFSummaryPanel", "find_verdict", "series_vs_T"]

VERDICT_STYLE = {"SF": ("#d7f5dd", "#1a7f37"), "not SF": ("#fde0e0", "#c62828"),
                 "inconclusive": ("#fff3cd", "#8a6d00")}
STATUS_COLOR = {"pass": "#1a7f37", "fail": "#c62828", "not measured": "#777777"}


def find_verdict(summary: Any, _depth: int = 0) -> dict[str, Any] | None:
    """The SFVerdict-shaped dict inside ``summary`` (or None)."""
    if not isinstance(summary, Mapping) or _depth > 3:
        return None
    if isinstance(summary.get("verdict"), str) and ("items" in summary or "checklist" in summary):
        return dict(summary)
    for key in ("sf", "verdict", "sf_verdict", "assessment", "summary", "analysis"):
        v = find_verdict(summary.get(key), _depth + 1)
        if v is not None:
            return v
    for v in summary.values():
        found = find_verdict(v, _depth + 1)
        if found is not None:
            return found
    return None


def _val(x: Any) -> tuple[float, float]:
    if isinstance(x, Mapping):
        v, e = x.get("value"), x.get("error")
        return (math.nan if v is None else float(v), math.nan if e is None else float(e))
    try:
        return float(x), math.nan
    except (TypeError, ValueError):
        return math.nan, math.nan


def series_vs_T(summary: Mapping[str, Any] | None) -> dict[str, np.ndarray]:
    """SF fraction and τ_SF against T (arrays T, y, err per quantity) from either layout: the run summary
    of ``acq.summary`` (``sf_fraction_vs_T``, ``spectra``, ``decays`` with ``taus_ps``) or a raw
    ``SFVerdict.to_dict()`` (``fits.temperature_series``, ``fits.decays``)."""
    out: dict[str, np.ndarray] = {}
    if not isinstance(summary, Mapping):
        return out
    v = find_verdict(summary) or summary
    fits = v.get("fits", {}) or {}
    pts: list[tuple[float, float, float]] = []
    for r in v.get("sf_fraction_vs_T") or []:
        y, e = _val(r.get("sf_fraction")), _val(r.get("error"))[0]
        if r.get("T_K") is not None and math.isfinite(y[0]):
            pts.append((float(r["T_K"]), y[0], e))
    if not pts:
        rows = fits.get("temperature_series") or fits.get("spectra") or []
        for r in rows:
            f = r.get("fit") or {}
            y, e = _val(f.get("sf_fraction"))
            if r.get("T_K") is not None and math.isfinite(y):
                pts.append((float(r["T_K"]), y, e))
    if pts:
        out["sf_fraction"] = np.array(sorted(pts)).T
    taus: list[tuple[float, float, float]] = []
    for d in (v.get("decays") or fits.get("decays") or []):
        if d.get("T_K") is None:
            continue
        if "taus_ps" in d:     # acq.summary: the SF band, or the fast component of a decay of all light
            tt = [t for t in d.get("taus_ps") or [] if t is not None and math.isfinite(t)]
            if d.get("band") == "sf" and tt:
                taus.append((float(d["T_K"]), tt[0], math.nan))
            elif d.get("band") == "all" and len(tt) >= 2:
                taus.append((float(d["T_K"]), min(tt), math.nan))
            continue
        comps = (d.get("fit") or {}).get("components") or []
        if d.get("band") == "sf" and comps:
            y, e = _val(comps[0].get("tau_ps"))
            if math.isfinite(y):
                taus.append((float(d["T_K"]), y, e))
    if taus:
        out["tau_sf_ps"] = np.array(sorted(taus)).T
    return out


def _fmt_numbers(nums: Any) -> str:
    if not isinstance(nums, Mapping):
        return ""
    parts = []
    for k, v in nums.items():
        if isinstance(v, Mapping) and "value" in v:
            val, err = _val(v)
            parts.append(f"{k} = {val:.4g}" + (f" ± {err:.2g}" if math.isfinite(err) else ""))
        elif isinstance(v, float):
            parts.append(f"{k} = {v:.4g}")
        elif isinstance(v, (int, str, bool)):
            parts.append(f"{k} = {v}")
        elif isinstance(v, (list, tuple)) and len(v) <= 6:
            parts.append(f"{k} = " + ", ".join(f"{x:.3g}" if isinstance(x, float) else str(x) for x in v))
    return "; ".join(parts)


class SFSummaryPanel(QtWidgets.QWidget):
    """Verdict banner, checklist table, SF fraction and τ_SF vs T."""

    def __init__(self, parent: QtWidgets.QWidget | None = None, *, compact: bool = False) -> None:
        super().__init__(parent)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        self.source = QtWidgets.QLabel("No analysis yet: the summary appears when a run finishes, "
                                       "or open a run file in the run browser.")
        self.source.setWordWrap(True)
        self.source.setStyleSheet("color: #555")
        lay.addWidget(self.source)
        self.banner = QtWidgets.QLabel("—")
        self.banner.setObjectName("sf_verdict")
        self.banner.setAlignment(QtCore.Qt.AlignCenter)
        f = self.banner.font()
        f.setPointSize(f.pointSize() + (6 if not compact else 3))
        f.setBold(True)
        self.banner.setFont(f)
        self.banner.setStyleSheet("padding: 8px; background: #eee; color: #555")
        lay.addWidget(self.banner)
        self.reasons = QtWidgets.QLabel("")
        self.reasons.setWordWrap(True)
        lay.addWidget(self.reasons)
        split = QtWidgets.QSplitter(QtCore.Qt.Vertical)
        self.table = QtWidgets.QTableWidget(0, 4)
        self.table.setObjectName("sf_checklist")
        self.table.setHorizontalHeaderLabels(["#", "check", "result", "numbers"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.table.setWordWrap(True)
        self.table.verticalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeToContents)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeToContents)
        hh.setSectionResizeMode(1, QtWidgets.QHeaderView.Interactive)
        hh.setSectionResizeMode(2, QtWidgets.QHeaderView.Interactive)
        hh.setSectionResizeMode(3, QtWidgets.QHeaderView.Stretch)
        self.table.setColumnWidth(1, 260)
        self.table.setColumnWidth(2, 280)
        split.addWidget(self.table)
        self.plots = plots = QtWidgets.QWidget()
        pl = QtWidgets.QHBoxLayout(plots)
        pl.setContentsMargins(0, 0, 0, 0)
        self.frac_plot = pg.PlotWidget(title="SF fraction vs T")
        self.frac_plot.setObjectName("plot_sf_fraction")
        self.frac_plot.setLabel("bottom", "T (K)")
        self.frac_plot.setLabel("left", "SF fraction")
        self.tau_plot = pg.PlotWidget(title="τ_SF vs T")
        self.tau_plot.setObjectName("plot_tau_sf")
        self.tau_plot.setLabel("bottom", "T (K)")
        self.tau_plot.setLabel("left", "τ_SF (ps)")
        for p in (self.frac_plot, self.tau_plot):
            for side in ("left", "bottom"):
                p.getPlotItem().getAxis(side).enableAutoSIPrefix(False)
            p.showGrid(x=True, y=True, alpha=0.2)
            p.setMinimumHeight(160)
            pl.addWidget(p)
        split.addWidget(plots)
        split.setSizes([300, 220])
        lay.addWidget(split, 1)
        self.summary: dict[str, Any] | None = None

    def clear(self) -> None:
        self.show_summary(None)

    def show_summary(self, summary: Mapping[str, Any] | None, source: str = "") -> None:
        self.summary = dict(summary) if summary else None
        self.source.setText(source or ("No analysis summary." if not summary else ""))
        self.source.setVisible(bool(self.source.text()))
        self.table.setRowCount(0)
        self.frac_plot.clear()
        self.tau_plot.clear()
        self.reasons.setText("")
        if not summary:
            self.plots.hide()
            self.banner.setText("—")
            self.banner.setStyleSheet("padding: 8px; background: #eee; color: #555")
            return
        if "error" in summary and len(summary) == 1:
            self.banner.setText("analysis failed")
            self.banner.setStyleSheet("padding: 8px; background: #fde0e0; color: #c62828")
            self.reasons.setText(str(summary["error"]))
            return
        v = find_verdict(summary)
        if v is None:
            self.banner.setText(f"no SF verdict ({summary.get('kind', 'summary')})")
            self.banner.setStyleSheet("padding: 8px; background: #eee; color: #555")
            self._plain_table(summary)
        else:
            verdict = str(v.get("verdict"))
            text = verdict + (f" — likely {v['confuser']}" if v.get("confuser") else "")
            bg, fg = VERDICT_STYLE.get(verdict, ("#eee", "#333"))
            self.banner.setText(text)
            self.banner.setStyleSheet(f"padding: 8px; background: {bg}; color: {fg}; border: 2px solid {fg}")
            reasons = ([v["headline"]] if v.get("headline") else []) + list(v.get("reasons") or [])
            keys = ("sf_fraction", "shift_meV", "T_on_K", "tau_sf_ps", "tau_unc_ps", "tau_ratio", "alpha_sf")
            st = v.get("strength") or {k: v[k] for k in keys if v.get(k) is not None}
            extra = _fmt_numbers({k: x for k, x in st.items() if x is not None})
            self.reasons.setText("\n".join(f"• {r}" for r in reasons) + (f"\nstrength: {extra}" if extra else ""))
            self._checklist(v.get("items") or v.get("checklist") or [])
        self._plots(summary)

    def _checklist(self, items: list[Mapping[str, Any]]) -> None:
        self.table.setRowCount(len(items))
        for r, it in enumerate(items):
            status = str(it.get("status", ""))
            cells = [str(it.get("number", r + 1)), str(it.get("title", it.get("key", ""))),
                     f"{status}: {it.get('detail', '')}", _fmt_numbers(it.get("numbers"))]
            for c, text in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(text)
                item.setToolTip(text)
                if c == 2:
                    item.setForeground(QtGui.QBrush(QtGui.QColor(STATUS_COLOR.get(status, "#333"))))
                    fnt = item.font()
                    fnt.setBold(True)
                    item.setFont(fnt)
                self.table.setItem(r, c, item)

    def _plain_table(self, summary: Mapping[str, Any]) -> None:
        rows = [(k, v) for k, v in summary.items() if k != "fits"]
        self.table.setRowCount(len(rows))
        for r, (k, v) in enumerate(rows):
            text = v if isinstance(v, str) else json.dumps(v, default=str)[:300]
            for c, t in enumerate((str(r + 1), str(k), "", text)):
                self.table.setItem(r, c, QtWidgets.QTableWidgetItem(t))

    def _plots(self, summary: Mapping[str, Any]) -> None:
        s = series_vs_T(summary)
        self.plots.setVisible(bool(s))
        for key, plot, color in (("sf_fraction", self.frac_plot, "#d62728"), ("tau_sf_ps", self.tau_plot, "#1f77b4")):
            title = {"sf_fraction": "SF fraction vs T", "tau_sf_ps": "τ_SF vs T"}[key]
            plot.setTitle(title if key in s else f"{title}: not measured")
            if key not in s:
                continue
            T, y, e = s[key]
            plot.plot(T, y, pen=pg.mkPen(color, width=1.5), symbol="o", symbolBrush=color, symbolSize=7)
            ok = np.isfinite(e)
            if ok.any():
                plot.addItem(pg.ErrorBarItem(x=T[ok], y=y[ok], top=e[ok], bottom=e[ok], beam=2, pen=color))
