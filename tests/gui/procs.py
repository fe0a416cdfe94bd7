"""Small procedures for the GUI tests (role interfaces only, so they run on fakes and on the simulated lab)."""

from __future__ import annotations

from typing import Any

import numpy as np
from pymeasure.experiment import FloatParameter, IntegerParameter

from acq.procedure import FloatListParameter, Procedure
from acq.store import Field, Stream


class XRayTemperatureSeries(Procedure):
    """RL-style temperature series: X-ray on, a CCD spectrum and a TCSPC decay per temperature.

    The X-ray stays on from the first point to the end, so an abort leaves it to the backstop."""

    ROLES = ("cryostat", "xray", "spectrometer", "tcspc")
    XRAY = True
    DEFAULT_STREAM = "spectrum"
    temperatures = FloatListParameter("Temperatures", units="K", minimum=4.0, maximum=350.0,
                                      default=[290.0, 280.0, 270.0, 260.0, 250.0, 240.0])
    exposure = FloatParameter("Exposure", units="s", minimum=1e-3, maximum=60.0, default=0.1)
    decay_s = FloatParameter("Decay acquisition", units="s", minimum=1e-3, maximum=60.0, default=0.1)
    hold = FloatParameter("Stability hold", units="s", minimum=0.0, maximum=600.0, default=5.0)
    band = FloatParameter("Stability band", units="K", minimum=0.01, maximum=10.0, default=1.0)
    kV = FloatParameter("Tube voltage", units="kV", minimum=0.0, maximum=50.0, default=30.0)
    mA = FloatParameter("Tube current", units="mA", minimum=0.0, maximum=1.0, default=0.5)

    def startup(self) -> None:
        spec = self.lab.spectrometer.dark_frame(self.exposure)
        self._wl = np.asarray(spec.wavelength_nm, dtype=float)
        h = self.lab.tcspc.histogram(self.decay_s)
        self._t = np.asarray(getattr(h, "time_ps", getattr(h, "t_ps", None)), dtype=float)

    def points(self) -> list[dict[str, Any]]:
        return [{"T": t} for t in self.temperatures]

    def streams(self) -> list[Stream]:
        return [Stream("spectrum", (Field("counts", (self._wl.size,), "f4", "counts"), Field("T", (), "f8", "K")),
                       signal="counts", axes=(".", "wavelength"), static={"wavelength": (self._wl, "nm")}),
                Stream("decay", (Field("counts", (self._t.size,), "u4", "counts"), Field("T", (), "f8", "K")),
                       signal="counts", axes=(".", "t"), static={"t": (self._t, "ps")})]

    def estimate(self) -> dict[str, float]:
        n = len(self.temperatures)
        return {"lab_seconds": n * (self.hold + 300.0 + self.exposure + self.decay_s), "bytes": n * 30_000.0}

    def measure_point(self, index: int, point: dict[str, Any]) -> None:
        cryo = self.lab.cryostat
        cryo.set_temperature(point["T"])
        cryo.wait_stable(point["T"], band_K=self.band, hold_s=self.hold, timeout_s=7200.0)
        self.checkpoint()
        if index == self.resume_from or not self.lab.xray.hv_on:
            self.lab.xray.on(self.kV, self.mA)
        T = cryo.temperature
        s = self.lab.spectrometer.acquire(self.exposure)
        self.emit("spectrum", counts=np.asarray(s.counts, dtype="f4").reshape(-1)[: self._wl.size], T=T)
        h = self.lab.tcspc.histogram(self.decay_s)
        self.emit("decay", counts=np.asarray(h.counts).astype("u4")[: self._t.size], T=T)


class FastStream(Procedure):
    """Points as fast as the engine can write them (no instrument I/O): spectrum, decay and g2 per point."""

    ROLES = ()
    DEFAULT_STREAM = "spectrum"
    n = IntegerParameter("Points", minimum=1, maximum=100000, default=1000)
    n_pixels = IntegerParameter("Pixels", minimum=16, maximum=4096, default=1024)

    def points(self) -> list[dict[str, Any]]:
        return [{"T": 300.0 - 0.25 * i} for i in range(self.n)]

    def streams(self) -> list[Stream]:
        wl = np.linspace(480.0, 560.0, self.n_pixels)
        return [Stream("spectrum", (Field("counts", (self.n_pixels,), "f4", "counts"), Field("T", (), "f8", "K")),
                       signal="counts", axes=(".", "wavelength"), static={"wavelength": (wl, "nm")}),
                Stream("decay", (Field("counts", (4096,), "u4", "counts"),), signal="counts", axes=(".", "t"),
                       static={"t": (np.arange(4096) * 16.0, "ps")}),
                Stream("g2", (Field("counts", (2000,), "u4", "counts"),), signal="counts", axes=(".", "tau"),
                       static={"tau": ((np.arange(2000) - 1000) * 10.0, "ps")})]

    def measure_point(self, index: int, point: dict[str, Any]) -> None:
        rng = np.random.default_rng(index)
        wl = np.linspace(480.0, 560.0, self.n_pixels)
        peak = 515.0 + 10.0 / (1.0 + np.exp((point["T"] - 100.0) / 20.0))
        self.emit("spectrum", counts=(600 + 5000 * np.exp(-0.5 * ((wl - peak) / 5.0) ** 2)).astype("f4"),
                  T=point["T"])
        self.emit("decay", counts=rng.poisson(1 + 1000 * np.exp(-np.arange(4096) / 300.0)).astype("u4"))
        self.emit("g2", counts=rng.poisson(50 * (1 + 0.3 * np.exp(-np.abs(np.arange(2000) - 1000) / 20))).astype("u4"))
        self.sleep(1.0)


def all_procedures() -> dict[str, type]:
    """The registry's procedures plus these, under names ``acq.registry.procedure_class`` resolves."""
    from acq.registry import procedures

    out = procedures()
    out.update({f"{__name__}:{c.__name__}": c for c in (XRayTemperatureSeries, FastStream)})
    return out
