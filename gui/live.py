"""Live plots fed from the event bus.

:class:`LiveModel` takes ``point`` events (in the GUI thread, from :class:`gui.pump.BusPump`) and copies
what the plots need into preallocated buffers: the latest spectrum, decays and g2, a waterfall of
spectra (rows = points, keyed by T or fluence) and strip charts of temperature and count rates. It
never keeps a reference to an event's arrays and never opens the run file, so memory is bounded by
the buffers whatever the run length. :class:`LivePlots` redraws from the model on the pump's
throttled tick (≈15 Hz), and only when something changed.

The band decomposition of the latest spectrum (``analysis.spectra.decompose``) runs on a background
thread, at most one at a time and at most every ``fit_interval_s`` wall seconds; the plot shows the
last finished fit.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyqtgraph as pg
from qtpy import QtCore, QtWidgets

from .buffers import Ring, RowRing

log = logging.getLogger(__name__)

__all__ = ["LiveModel", "LivePlots", "classify_stream"]

pg.setConfigOptions(antialias=False, background="w", foreground="k", imageAxisOrder="row-major")

STRIP_COLUMNS = ("t", "T_sample", "T_sensor", "setpoint", "heater", "rate_ch0", "rate_ch1", "rate_ch2", "kV", "mA",
                 "transmission", "power")
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
        self.fit: dict[str, Any] | None = None

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
        self.version += 1

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
            self.version += 1

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
        for name, fields in streams.items():
            kind = classify_stream(name)
            if kind is None:
                continue
            meta = self.meta.get(name) or StreamMeta()
            sig = _signal(fields, meta.signal)
            if sig is None:
                continue
            if kind == "spectrum" and (not self.spectrum_name or self.spectrum_name == name):
                self.spectrum_name = name
                self.spectrum = self._copy_into(self.spectrum, sig)
                self.spectrum_axis = meta.axis if meta.axis is not None and meta.axis.size == sig.size else None
                self.waterfall.append(sig, x)
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
        self.version += 1

    @property
    def nbytes(self) -> int:
        n = self.strip.nbytes + self.points.nbytes + self.waterfall.nbytes
        for a in (self.spectrum, self.g2, *self.decays.values()):
            if a is not None:
                n += a.nbytes
        return n


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
        self.redraws = 0
        self.fit_bands = fit_bands
        self.fit_interval_s = fit_interval_s
        self._fit_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sflab-bandfit")
        self._fit_busy = threading.Event()
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
        self.wf_image = pg.ImageItem()
        self.wf_image.setColorMap(pg.colormap.get("viridis"))
        self.wf_plot.addItem(self.wf_image)

        self.decay_plot = plot("Decays", "t (ps)", "counts", "plot_decay")
        self.decay_plot.setLogMode(y=True)
        self.decay_plot.addLegend(offset=(-5, 5))
        self.decay_curves: dict[str, pg.PlotDataItem] = {}

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
    def refresh(self) -> bool:
        """Redraw if the model changed since the last call; returns whether it drew."""
        with self._fit_lock:
            fit, self._fit_result = self._fit_result, None
        if fit is not None:
            self._draw_fit(fit)
        m = self.model
        if m.version == self._drawn:
            return False
        self._drawn = m.version
        self.redraws += 1
        n = m.n_planned
        self.status.setText(f"{m.procedure or 'no run'} — point {m.n_seen}" + (f" of {n}" if n else "")
                            + (f", {m.x_name} = {m.points.last('x'):.4g} {m.x_units}" if len(m.points) else ""))
        if m.spectrum is not None:
            x = m.spectrum_axis if m.spectrum_axis is not None else np.arange(m.spectrum.size, dtype=float)
            self.spec_plot.setLabel("bottom", "wavelength (nm)" if m.spectrum_axis is not None else "pixel")
            self.spec_curve.setData(x, m.spectrum)
            self._maybe_fit(x, m.spectrum, m.spectrum_axis is not None)
        else:
            self.spec_curve.setData([], [])
        img = m.waterfall.image()
        if len(img):
            self._wf_keys = m.waterfall.keys()
            self.wf_image.setImage(img, autoLevels=True)
            ax = m.spectrum_axis
            if ax is not None and ax.size == img.shape[1] and ax.size > 1:
                x0, x1 = float(ax[0]), float(ax[-1])
                self.wf_plot.setLabel("bottom", "wavelength (nm)")
            else:
                x0, x1 = 0.0, float(img.shape[1])
                self.wf_plot.setLabel("bottom", "pixel")
            self.wf_image.setRect(QtCore.QRectF(x0, 0.0, x1 - x0, float(img.shape[0])))
            self.wf_plot.setLabel("left", f"{m.x_name} ({m.x_units})")
        else:
            self.wf_image.clear()
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
        if m.g2 is not None:
            x = m.g2_axis if m.g2_axis is not None else np.arange(m.g2.size, dtype=float)
            self.g2_curve.setData(x, m.g2)
        else:
            self.g2_curve.setData([], [])
        s = m.strip
        if len(s):
            t = s.column("t")
            t = (t - t[0]) / 60.0
            self.T_curve.setData(t, s.column("T_sample"), connect="finite")
            self.sp_curve.setData(t, s.column("setpoint"), connect="finite")
            for k, c in self.rate_curves.items():
                y = s.column(k)
                ok = np.isfinite(y) & (y > 0)
                c.setData(t[ok], y[ok]) if ok.any() else c.setData([], [])
        return True

    # ------------------------------------------------------------------ band decomposition (worker thread)
    def _maybe_fit(self, x: np.ndarray, y: np.ndarray, is_nm: bool) -> None:
        if not (self.fit_bands and is_nm) or self._fit_busy.is_set():
            return
        now = time.monotonic()
        if now - self._fit_last < self.fit_interval_s:
            return
        self._fit_last = now
        self._fit_busy.set()
        xs, ys = np.array(x, dtype=float), np.array(y, dtype=float)

        def work() -> None:
            try:
                from analysis.spectra import HC_EV_NM, decompose, wavelength_to_energy

                e, c = wavelength_to_energy(xs, ys, density=False)
                f = decompose(e, c, n_bands=2)
                res = {"x_nm": HC_EV_NM / f.energy_eV, "model": np.asarray(f.model),
                       "components": np.asarray(f.components), "sf_fraction": f.sf_fraction.value,
                       "shift_meV": f.shift_meV.value, "roles": [b.role for b in f.bands]}
            except Exception as exc:  # a failed live fit only removes the overlay
                log.debug("live band fit failed: %s", exc)
                res = {"error": str(exc)}
            finally:
                self._fit_busy.clear()
            with self._fit_lock:
                self._fit_result = res

        self._fit_pool.submit(work)

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
        self.spec_plot.setTitle(f"Latest spectrum — band fit: SF fraction {fit['sf_fraction']:.2f}, "
                                f"shift {fit['shift_meV']:.0f} meV")

    def close_workers(self) -> None:
        self.fit_bands = False
        self._fit_pool.shutdown(wait=False, cancel_futures=True)
