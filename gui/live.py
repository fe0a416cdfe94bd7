"""Live plots fed from the event bus.

:class:`LiveModel` takes ``point`` events (in the GUI thread, from :class:`gui.pump.BusPump`) and copies
what the plots need into preallocated buffers: the latest spectrum, decays and g2, a waterfall of
spectra (rows = points, keyed by T or fluence) and strip charts of temperature and count rates. It
never keeps a reference to an event's arrays and never opens the run file, so memory is bounded by
the buffers whatever the run length. :class:`LivePlots` redraws from the model on the pump's
throttled tick (≈15 Hz), and only when something changed.

The band decomposition of the latest spectrum (``analysis.spectra.decompose``) runs in a worker
process (:mod:`gui.bandfit`), at most one at a time and at most every ``fit_interval_s`` wall seconds;
the plot shows the last finished fit.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

import numpy as np
import pyqtgraph as pg
from qtpy import QtCore, QtWidgets

from .bandfit import BandFitter
from .buffers import Ring, RowRing

log = logging.getLogger(__name__)

__all__ = ["LiveModel", "LivePlots", "classify_stream", "PARTS"]

pg.setConfigOptions(antialias=False, background="w", foreground="k", imageAxisOrder="row-major")

STRIP_COLUMNS = ("t", "T_sample", "T_sensor", "setpoint", "heater", "rate_ch0", "rate_ch1", "rate_ch2", "kV", "mA",
                 "transmission", "power")
#: the live plots, each redrawn on its own when its data changed
PARTS = ("spectrum", "waterfall", "decay", "g2", "temperature", "rates")
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]


def classify_stream(name: str) -> str | None:
    n = name.lower()
    if "g2" in n or "corr" in n or "hbt" in n:
        return "g2"
    if "decay" in n or "tcspc" in n or "hist" in n or "trpl" in n:
        return "decay"
    if "spec" in n or "ccd" in n or n in ("pl", "rl"):
        return "spectrum"
    return None


def _signal(fields: dict[str, Any], preferred: str | None) -> np.ndarray | None:
    if preferred and preferred in fields and np.ndim(fields[preferred]) >= 1:
        a = np.asarray(fields[preferred])
    else:
        a = next((np.asarray(v) for k, v in fields.items() if np.ndim(v) >= 1 and k != "sidecar"), None)
        if a is None:
            return None
    if a.ndim > 1:   # image rows: full vertical binning for display
        a = a.reshape(-1, a.shape[-1]).sum(axis=0)
    return a


class StreamMeta:
    """What the plots know of a stream before its first point: signal field and x axis (from the runner)."""

    def __init__(self, signal: str | None = None, axis: np.ndarray | None = None, axis_name: str = "",
                 axis_units: str = "") -> None:
        self.signal, self.axis, self.axis_name, self.axis_units = signal, axis, axis_name, axis_units


def stream_meta_from_runner(runner: Any) -> dict[str, StreamMeta]:
    """Signal and static x axis of each stream from the runner's writer (memory, not the file)."""
    out: dict[str, StreamMeta] = {}
    writer = getattr(runner, "writer", None)
    for name, st in (getattr(writer, "streams", None) or {}).items():
        axis = None
        axis_name = axis_units = ""
        axes = tuple(getattr(st, "axes", ()) or ())
        static = dict(getattr(st, "static", {}) or {})
        if axes and axes[-1] in static:
            vals, axis_units = static[axes[-1]]
            axis, axis_name = np.asarray(vals, dtype=float), axes[-1]
        out[name] = StreamMeta(getattr(st, "signal", None), axis, axis_name, axis_units)
    return out


class LiveModel:
    """Bounded live state of the current run."""

    def __init__(self, *, strip_capacity: int = 4096, waterfall_rows: int = 256, point_capacity: int = 4096) -> None:
        self.strip = Ring(strip_capacity, STRIP_COLUMNS)
        self.points = Ring(point_capacity, ("t", "x", "index"))
        self.waterfall = RowRing(waterfall_rows)
        self.meta: dict[str, StreamMeta] = {}
        self.spectrum: np.ndarray | None = None      # preallocated copy target, resized per run only
        self.spectrum_axis: np.ndarray | None = None
        self.spectrum_name = ""
        self.decays: dict[str, np.ndarray] = {}
        self.decay_axes: dict[str, np.ndarray | None] = {}
        self.g2: np.ndarray | None = None
        self.g2_axis: np.ndarray | None = None
        self.x_name = "T"
        self.x_units = "K"
        self.procedure = ""
        self.n_planned: int | None = None
        self.n_seen = 0
        self.last_point_id = -1
        self.version = 0
        #: change counters per plot, so a view redraws only what changed
        self.versions = dict.fromkeys(PARTS, 0)
        self.fit: dict[str, Any] | None = None

    def _touch(self, *parts: str) -> None:
        self.version += 1
        for p in parts:
            self.versions[p] += 1

    def reset(self, procedure: str = "", n_planned: int | None = None, meta: dict[str, StreamMeta] | None = None
              ) -> None:
        self.procedure, self.n_planned = procedure, n_planned
        self.meta = dict(meta or {})
        self.points.clear()
        self.waterfall.clear()
        self.spectrum = self.spectrum_axis = self.g2 = self.g2_axis = None
        self.spectrum_name = ""
        self.decays.clear()
        self.decay_axes.clear()
        self.fit = None
        self.n_seen = 0
        self.last_point_id = -1
        fluence = "fluence" in procedure.lower()
        self.x_name, self.x_units = ("fluence", "µJ/cm²") if fluence else ("T", "K")
        self._touch(*PARTS)

    @staticmethod
    def _copy_into(target: np.ndarray | None, src: np.ndarray) -> np.ndarray:
        if target is None or target.shape != src.shape:
            return np.array(src, dtype=float)
        target[...] = src
        return target

    def add_readbacks(self, rb: dict[str, dict[str, float]], t: float) -> None:
        if len(self.strip) and t < self.strip.last("t"):
            return   # keep the strip chart monotonic in lab time
        flat: dict[str, float] = {"t": t}
        for _role, vals in rb.items():
            for k, v in vals.items():
                if k in STRIP_COLUMNS:
                    flat[k] = v
        if len(flat) > 1:
            self.strip.append(**flat)
            self._touch("temperature", "rates")

    def _x_of(self, data: dict[str, Any]) -> float:
        want = ("fluence", "fluence_uJcm2", "F") if self.x_name == "fluence" else ("T", "T_K", "temperature")
        for fields in data.get("streams", {}).values():
            for k in want:
                if k in fields and np.ndim(fields[k]) == 0:
                    return float(fields[k])
        rb = data.get("readbacks", {})
        if self.x_name == "T":
            return float(rb.get("cryostat", {}).get("T_sample", math.nan))
        return math.nan

    def add_point(self, data: dict[str, Any], t: float) -> None:
        streams = data.get("streams", {}) or {}
        x = self._x_of(data)
        touched: set[str] = set()
        for name, fields in streams.items():
            kind = classify_stream(name)
            if kind is None:
                continue
            touched.add(kind)
            meta = self.meta.get(name) or StreamMeta()
            sig = _signal(fields, meta.signal)
            if sig is None:
                continue
            if kind == "spectrum" and (not self.spectrum_name or self.spectrum_name == name):
                self.spectrum_name = name
                self.spectrum = self._copy_into(self.spectrum, sig)
                self.spectrum_axis = meta.axis if meta.axis is not None and meta.axis.size == sig.size else None
                self.waterfall.append(sig, x)
                touched.add("waterfall")
            elif kind == "decay":
                self.decays[name] = self._copy_into(self.decays.get(name), sig)
                self.decay_axes[name] = meta.axis if meta.axis is not None and meta.axis.size == sig.size else None
            elif kind == "g2":
                self.g2 = self._copy_into(self.g2, sig)
                self.g2_axis = meta.axis if meta.axis is not None and meta.axis.size == sig.size else None
        self.points.append(t=t, x=x, index=data.get("index", self.n_seen))
        if data.get("readbacks"):
            self.add_readbacks(data["readbacks"], t)
        self.n_seen += 1
        self.last_point_id = int(data.get("point_id", self.n_seen - 1))
        if data.get("n_points") is not None:
            self.n_planned = data["n_points"]
        self._touch(*touched)

    @property
    def nbytes(self) -> int:
        n = self.strip.nbytes + self.points.nbytes + self.waterfall.nbytes
        for a in (self.spectrum, self.g2, *self.decays.values()):
            if a is not None:
                n += a.nbytes
        return n


def sticky_range(plot: pg.PlotWidget, x: np.ndarray | None, y: np.ndarray | None, *, log_y: bool = False,
                 pad: float = 0.08, shrink: float = 0.35) -> bool:
    """Set the view range with hysteresis instead of auto-ranging on every update: the range changes only
    when the data leave it or fill less than ``shrink`` of it. A changed range regenerates the axis (tick
    text is the most expensive thing pyqtgraph paints); a steady one is a cached pixmap."""
    vb = plot.getViewBox()
    (cx0, cx1), (cy0, cy1) = vb.viewRange()
    changed = False

    def want(lo: float, hi: float, c0: float, c1: float) -> tuple[float, float] | None:
        if not (np.isfinite(lo) and np.isfinite(hi)):
            return None
        if hi <= lo:
            hi, lo = lo + 0.5 * (abs(lo) or 1.0), lo - 0.5 * (abs(lo) or 1.0)
        span = hi - lo
        if lo >= c0 and hi <= c1 and span >= shrink * (c1 - c0):
            return None
        return lo - pad * span, hi + pad * span

    if x is not None and len(x):
        r = want(float(np.nanmin(x)), float(np.nanmax(x)), cx0, cx1)
        if r is not None:
            vb.setXRange(*r, padding=0)
            changed = True
    if y is not None and len(y):
        yy = np.asarray(y, dtype=float)
        if log_y:
            yy = np.log10(yy[yy > 0])
        if yy.size:
            r = want(float(np.nanmin(yy)), float(np.nanmax(yy)), cy0, cy1)
            if r is not None:
                vb.setYRange(*r, padding=0)
                changed = True
    return changed


def _cache_axes(plot: pg.PlotWidget) -> None:
    for name in ("left", "bottom"):
        ax = plot.getPlotItem().getAxis(name)
        ax.setCacheMode(QtWidgets.QGraphicsItem.DeviceCoordinateCache)
        ax.enableAutoSIPrefix(False)     # it rewrites the label (HTML layout) on every range change
    plot.getViewBox().disableAutoRange()


class _KeyAxis(pg.AxisItem):
    """Left axis of the waterfall: row index → T or fluence of that row."""

    def __init__(self, keys: Any, **kw: Any) -> None:
        super().__init__("left", **kw)
        self._keys = keys

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        keys = self._keys()
        out = []
        for v in values:
            i = int(math.floor(v))
            out.append(f"{keys[i]:.3g}" if 0 <= i < len(keys) and np.isfinite(keys[i]) else "")
        return out


class LivePlots(QtWidgets.QWidget):
    """Spectrum (+ band fit), waterfall, decays (log), g2, temperature and count-rate strip charts."""

    def __init__(self, model: LiveModel, parent: QtWidgets.QWidget | None = None, *, fit_bands: bool = True,
                 fit_interval_s: float = 2.0) -> None:
        super().__init__(parent)
        self.model = model
        self._drawn = -1
        self._part_drawn = dict.fromkeys(PARTS, -1)
        self._labels: dict[tuple[int, str], str] = {}
        self._next = 0
        self.plots_per_tick = 2
        self.redraws = 0
        self.fit_bands = fit_bands
        self.fit_interval_s = fit_interval_s
        self._fitter = BandFitter()
        self._fit_for = -1
        self._fit_last = 0.0
        self._fit_result: dict[str, Any] | None = None
        self._fit_lock = threading.Lock()
        self._wf_keys = np.zeros(0)

        grid = QtWidgets.QGridLayout(self)
        grid.setContentsMargins(2, 2, 2, 2)
        grid.setSpacing(4)

        def plot(title: str, x: str, y: str, obj: str) -> pg.PlotWidget:
            w = pg.PlotWidget(title=title)
            w.setObjectName(obj)
            w.setLabel("bottom", x)
            w.setLabel("left", y)
            w.showGrid(x=True, y=True, alpha=0.2)
            w.setMinimumSize(200, 140)
            _cache_axes(w)
            return w

        self.spec_plot = plot("Latest spectrum", "wavelength (nm)", "counts", "plot_spectrum")
        self.spec_plot.addLegend(offset=(-5, 5))
        self.spec_curve = self.spec_plot.plot(pen=pg.mkPen("#333", width=1), name="data")
        self.fit_curves = [self.spec_plot.plot(pen=pg.mkPen(c, width=2, style=QtCore.Qt.DashLine), name=n)
                           for c, n in (("#d62728", "SF band"), ("#1f77b4", "uncoupled"), ("#2ca02c", "band 3"))]
        self.fit_total = self.spec_plot.plot(pen=pg.mkPen("#ff7f0e", width=1.5), name="fit")
        for c in (self.spec_curve, self.fit_total, *self.fit_curves):
            c.setClipToView(True)
            c.setDownsampling(auto=True, method="peak")

        self.wf_plot = pg.PlotWidget(title="Waterfall", axisItems={"left": _KeyAxis(lambda: self._wf_keys)})
        self.wf_plot.setObjectName("plot_waterfall")
        self.wf_plot.setLabel("bottom", "wavelength (nm)")
        self.wf_plot.setMinimumSize(200, 140)
        _cache_axes(self.wf_plot)
        self.wf_image = pg.ImageItem()
        self.wf_image.setColorMap(pg.colormap.get("viridis"))
        self.wf_plot.addItem(self.wf_image)

        self.decay_plot = plot("Decays", "t (ps)", "counts", "plot_decay")
        self.decay_plot.setLogMode(y=True)
        self.decay_plot.addLegend(offset=(-5, 5))
        self.decay_curves: dict[str, pg.PlotDataItem] = {}
        self.decay_fit_curve = self.decay_plot.plot(pen=pg.mkPen("#111", width=1.5, style=QtCore.Qt.DashLine),
                                                    name="fit (2 exp)")
        self._decay_fit_for = -1
        self._decay_fit_result: dict[str, Any] | None = None

        self.g2_plot = plot("g2 (HBT)", "τ (ps)", "coincidences", "plot_g2")
        self.g2_curve = self.g2_plot.plot(pen=pg.mkPen("#9467bd", width=1))
        self.g2_curve.setClipToView(True)
        self.g2_curve.setDownsampling(auto=True, method="peak")

        self.T_plot = plot("Temperature", "lab time (min)", "K", "plot_temperature")
        self.T_plot.addLegend(offset=(-5, 5))
        self.T_curve = self.T_plot.plot(pen=pg.mkPen("#d62728", width=1.5), name="T sample")
        self.sp_curve = self.T_plot.plot(pen=pg.mkPen("#777", width=1, style=QtCore.Qt.DashLine), name="setpoint")

        self.rate_plot = plot("Count rates", "lab time (min)", "counts/s", "plot_rates")
        self.rate_plot.setLogMode(y=True)
        self.rate_plot.addLegend(offset=(-5, 5))
        self.rate_curves = {k: self.rate_plot.plot(pen=pg.mkPen(COLORS[i], width=1.5), name=k.replace("rate_", ""))
                            for i, k in enumerate(("rate_ch0", "rate_ch1", "rate_ch2"))}
        for c in (self.T_curve, self.sp_curve, *self.rate_curves.values()):
            c.setClipToView(True)
            c.setDownsampling(auto=True, method="peak")

        self.status = QtWidgets.QLabel("no run yet")
        self.status.setObjectName("live_status")
        # a changing text must not re-lay out (and so repaint) the plots below it
        self.status.setSizePolicy(QtWidgets.QSizePolicy.Ignored, QtWidgets.QSizePolicy.Fixed)
        grid.addWidget(self.status, 0, 0, 1, 2)
        grid.addWidget(self.spec_plot, 1, 0)
        grid.addWidget(self.wf_plot, 1, 1)
        grid.addWidget(self.decay_plot, 2, 0)
        grid.addWidget(self.g2_plot, 2, 1)
        grid.addWidget(self.T_plot, 3, 0)
        grid.addWidget(self.rate_plot, 3, 1)
        for r in (1, 2, 3):
            grid.setRowStretch(r, 1)

    # ------------------------------------------------------------------ drawing (GUI thread, throttled)
    def refresh(self, max_plots: int | None = None) -> bool:
        """Redraw the plots whose data changed since they were last drawn — at most ``max_plots`` per call
        (default ``plots_per_tick``), in turn, so one tick never paints every plot at once: painting is
        what costs (axes and curves), and the event loop must stay responsive during fast acquisition."""
        with self._fit_lock:
            fit, self._fit_result = self._fit_result, None
        if fit is not None:
            self._draw_fit(fit)
        with self._fit_lock:
            dfit, self._decay_fit_result = self._decay_fit_result, None
        if dfit is not None:
            self._draw_decay_fit(dfit)
        m = self.model
        if (self.fit_bands and m.spectrum is not None and m.spectrum_axis is not None
                and self._fit_for != m.versions["spectrum"]):
            self._maybe_fit(m.spectrum_axis, m.spectrum, True)   # the last spectrum of a run gets its fit too
        if self.fit_bands and m.decays and self._decay_fit_for != m.versions["decay"]:
            self._maybe_fit_decay()
        if m.version == self._drawn:
            return False
        limit = self.plots_per_tick if max_plots is None else max_plots
        n = m.n_planned
        self.status.setText(f"{m.procedure or 'no run'} — point {m.n_seen}" + (f" of {n}" if n else "")
                            + (f", {m.x_name} = {m.points.last('x'):.4g} {m.x_units}" if len(m.points) else ""))
        drawn = 0
        for k in range(len(PARTS)):
            part = PARTS[(self._next + k) % len(PARTS)]
            if self._part_drawn[part] == m.versions[part]:
                continue
            self._part_drawn[part] = m.versions[part]
            getattr(self, f"_draw_{part}")()
            drawn += 1
            if drawn >= limit:
                self._next = (PARTS.index(part) + 1) % len(PARTS)
                break
        if all(self._part_drawn[p] == m.versions[p] for p in PARTS):
            self._drawn = m.version
        if drawn:
            self.redraws += 1
        return drawn > 0

    def refresh_all(self) -> None:
        self.refresh(max_plots=len(PARTS))

    def _label(self, plot: pg.PlotWidget, side: str, text: str) -> None:
        """Set an axis label only when it changes (a new label re-lays out and repaints the whole plot)."""
        key = (id(plot), side)
        if self._labels.get(key) != text:
            self._labels[key] = text
            plot.setLabel(side, text)

    def _title(self, plot: pg.PlotWidget, text: str) -> None:
        key = (id(plot), "title")
        if self._labels.get(key) != text:
            self._labels[key] = text
            plot.setTitle(text)

    def _draw_spectrum(self) -> None:
        m = self.model
        if m.spectrum is not None:
            x = m.spectrum_axis if m.spectrum_axis is not None else np.arange(m.spectrum.size, dtype=float)
            self._label(self.spec_plot, "bottom", "wavelength (nm)" if m.spectrum_axis is not None else "pixel")
            self.spec_curve.setData(x, m.spectrum)
            sticky_range(self.spec_plot, x, m.spectrum)
            self._maybe_fit(x, m.spectrum, m.spectrum_axis is not None)
        else:
            self.spec_curve.setData([], [])
            for c in (*self.fit_curves, self.fit_total):
                c.setData([], [])
            self.spec_plot.setTitle("Latest spectrum")

    def _draw_waterfall(self) -> None:
        m = self.model
        img = m.waterfall.image()
        if not len(img):
            self.wf_image.clear()
            return
        self._wf_keys = m.waterfall.keys()
        self.wf_image.setImage(img, autoLevels=True)
        ax = m.spectrum_axis
        if ax is not None and ax.size == img.shape[1] and ax.size > 1:
            x0, x1 = float(ax[0]), float(ax[-1])
            self._label(self.wf_plot, "bottom", "wavelength (nm)")
        else:
            x0, x1 = 0.0, float(img.shape[1])
            self._label(self.wf_plot, "bottom", "pixel")
        self.wf_image.setRect(QtCore.QRectF(x0, 0.0, x1 - x0, float(img.shape[0])))
        sticky_range(self.wf_plot, np.array([x0, x1]), np.array([0.0, float(img.shape[0])]), pad=0.0, shrink=0.9)
        self._label(self.wf_plot, "left", f"{m.x_name} ({m.x_units})")

    def _draw_decay(self) -> None:
        m = self.model
        for i, (name, counts) in enumerate(m.decays.items()):
            curve = self.decay_curves.get(name)
            if curve is None:
                curve = self.decay_plot.plot(pen=pg.mkPen(COLORS[i % len(COLORS)], width=1), name=name)
                curve.setClipToView(True)
                curve.setDownsampling(auto=True, method="peak")
                self.decay_curves[name] = curve
            ax = m.decay_axes.get(name)
            x = ax if ax is not None else np.arange(counts.size, dtype=float)
            curve.setData(x, np.maximum(counts, 0.5))   # log scale: empty bins drawn at 0.5
        for name in [k for k in self.decay_curves if k not in m.decays]:
            self.decay_plot.removeItem(self.decay_curves.pop(name))
        has = bool(m.decays) or any(classify_stream(n) == "decay" for n in m.meta) or not (m.meta or m.n_seen)
        if not m.decays:
            self.decay_fit_curve.setData([], [])
            self._title(self.decay_plot, "Decays" if has else "Decays — none in this run")
        if m.decays:
            xs = [m.decay_axes.get(k) if m.decay_axes.get(k) is not None else np.arange(v.size, dtype=float)
                  for k, v in m.decays.items()]
            sticky_range(self.decay_plot, np.concatenate(xs), np.concatenate([np.maximum(v, 0.5)
                                                                             for v in m.decays.values()]), log_y=True)

    def _draw_g2(self) -> None:
        m = self.model
        if m.g2 is not None:
            x = m.g2_axis if m.g2_axis is not None else np.arange(m.g2.size, dtype=float)
            self.g2_curve.setData(x, m.g2)
            sticky_range(self.g2_plot, x, m.g2)
            self._title(self.g2_plot, "g2 (HBT)")
        else:
            self.g2_curve.setData([], [])
            has = any(classify_stream(n) == "g2" for n in m.meta) or not (m.meta or m.n_seen)
            self._title(self.g2_plot, "g2 (HBT)" if has else "g2 (HBT) — none in this run")

    def _strip_t(self) -> np.ndarray | None:
        s = self.model.strip
        if not len(s):
            return None
        t = s.column("t")
        return (t - t[0]) / 60.0

    def _draw_temperature(self) -> None:
        t = self._strip_t()
        if t is None:
            self.T_curve.setData([], [])
            self.sp_curve.setData([], [])
            return
        s = self.model.strip
        T, sp = s.column("T_sample"), s.column("setpoint")
        self.T_curve.setData(t, T, connect="finite")
        self.sp_curve.setData(t, sp, connect="finite")
        both = np.concatenate([T[np.isfinite(T)], sp[np.isfinite(sp)]])
        sticky_range(self.T_plot, t, both if both.size else None, shrink=0.2)

    def _draw_rates(self) -> None:
        t = self._strip_t()
        for k, c in self.rate_curves.items():
            if t is None:
                c.setData([], [])
                continue
            y = self.model.strip.column(k)
            ok = np.isfinite(y) & (y > 0)
            c.setData(t[ok], y[ok]) if ok.any() else c.setData([], [])
        if t is not None:
            ys = [self.model.strip.column(k) for k in self.rate_curves]
            y = np.concatenate([v[np.isfinite(v) & (v > 0)] for v in ys])
            sticky_range(self.rate_plot, t, y if y.size else None, log_y=True, shrink=0.2)

    # ------------------------------------------------------------------ band decomposition (worker thread)
    def _maybe_fit(self, x: np.ndarray, y: np.ndarray, is_nm: bool) -> None:
        if not (self.fit_bands and is_nm) or self._fitter.busy:
            return
        now = time.monotonic()
        if now - self._fit_last < self.fit_interval_s:
            return
        self._fit_last = now
        version, point = self.model.versions["spectrum"], self.model.n_seen

        def done(res: dict[str, Any]) -> None:   # in the pool's thread: hand over under the lock
            res["point"] = point
            with self._fit_lock:
                self._fit_result = res

        if self._fitter.submit(x, y, done):
            self._fit_for = version

    def _maybe_fit_decay(self) -> None:
        m = self.model
        if self._fitter.busy or time.monotonic() - self._fit_last < self.fit_interval_s / 2:
            return
        name, counts = next(iter(m.decays.items()))
        t = m.decay_axes.get(name)
        if t is None or counts.sum() < 100:
            return
        self._fit_last = time.monotonic()
        version, point = m.versions["decay"], m.n_seen

        def done(res: dict[str, Any]) -> None:
            res["point"] = point
            with self._fit_lock:
                self._decay_fit_result = res

        if self._fitter.submit(t, counts, done, kind="decay"):
            self._decay_fit_for = version

    def _draw_decay_fit(self, fit: dict[str, Any]) -> None:
        if "error" in fit:
            self.decay_fit_curve.setData([], [])
            return
        self.decay_fit_curve.setData(fit["t"], np.maximum(fit["model"], 0.5))
        taus = ", ".join(f"{t:.0f}" for t in sorted(fit["taus_ps"]))
        self._title(self.decay_plot, f"Decays — fit of point {fit.get('point', '?')}: τ = {taus} ps")

    def _draw_fit(self, fit: dict[str, Any]) -> None:
        if "error" in fit:
            for c in (*self.fit_curves, self.fit_total):
                c.setData([], [])
            self.spec_plot.setTitle("Latest spectrum")
            return
        x = fit["x_nm"]
        comps = np.atleast_2d(fit["components"])
        bg = fit["model"] - comps.sum(axis=0) if comps.shape[-1] == x.size else 0.0
        order = {"sf": 0, "unc": 1}
        for c in self.fit_curves:
            c.setData([], [])
        for i, role in enumerate(fit["roles"][: comps.shape[0]]):
            self.fit_curves[order.get(role, 2)].setData(x, comps[i] + bg)
        self.fit_total.setData(x, fit["model"])
        self.spec_plot.setTitle(f"Latest spectrum — band fit of point {fit.get('point', '?')}: SF fraction "
                                f"{fit['sf_fraction']:.2f}, shift {fit['shift_meV']:.0f} meV")

    def close_workers(self) -> None:
        self.fit_bands = False
        self._fitter.close()
