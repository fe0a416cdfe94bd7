"""``EngineCheck``: a small temperature series that exercises every part of the run engine.

Used by the engine tests and by ``sflab demo --engine-check`` (in-memory fake instruments): for each
temperature it sets the cryostat, waits for stability on the lab clock, optionally turns the X-ray
on (safe sequence) and records a spectrum, a decay histogram and a g2 histogram per point, with
every role's readbacks. It is a real procedure on the engine's API, not a canned file writer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pymeasure.experiment import BooleanParameter, FloatParameter, IntegerParameter

from .procedure import FloatListParameter, Procedure
from .store import Field, Stream

__all__ = ["EngineCheck"]


class EngineCheck(Procedure):
    ROLES = ("cryostat", "xray", "spectrometer", "tcspc", "attenuator")
    DEFAULT_STREAM = "spectrum"

    temperatures = FloatListParameter("Temperatures", units="K", minimum=3.0, maximum=350.0,
                                      default=[290.0, 200.0, 120.0, 80.0, 40.0, 20.0])
    exposure = FloatParameter("Exposure", units="s", minimum=1e-3, maximum=600.0, default=1.0)
    decay_time = FloatParameter("Decay acquisition", units="s", minimum=0.01, maximum=3600.0, default=5.0)
    g2_time = FloatParameter("g2 acquisition", units="s", minimum=0.01, maximum=36000.0, default=10.0)
    band = FloatParameter("Stability band", units="K", minimum=0.001, maximum=10.0, default=0.2)
    hold = FloatParameter("Stability hold", units="s", minimum=0.0, maximum=3600.0, default=30.0)
    xray = BooleanParameter("X-ray excitation", default=True)
    kV = FloatParameter("Tube voltage", units="kV", minimum=0.0, maximum=60.0, default=40.0)
    mA = FloatParameter("Tube current", units="mA", minimum=0.0, maximum=2.0, default=0.5)
    n_pixels = IntegerParameter("CCD pixels", minimum=16, maximum=4096, default=1024)

    @property
    def XRAY(self) -> bool:  # type: ignore[override]
        return bool(self.xray)

    def points(self) -> list[dict[str, Any]]:
        return [{"T": t} for t in self.temperatures]

    def streams(self) -> list[Stream]:
        spec = self.lab.spectrometer
        wl = np.asarray(spec.wavelength_axis())
        return [
            Stream("spectrum", (Field("counts", (len(wl),), "f4", "counts"), Field("T", (), "f8", "K"),
                                Field("exposure", (), "f8", "s")),
                   signal="counts", axes=("T", "wavelength"), static={"wavelength": (wl, "nm")},
                   long_name="CCD spectrum vs temperature"),
            Stream("decay", (Field("counts", (4096,), "u4", "counts"),), signal="counts", axes=(".", "t"),
                   static={"t": (np.arange(4096) * 16.0, "ps")}, long_name="TCSPC decay"),
            Stream("g2", (Field("counts", (2000,), "u4", "counts"),), signal="counts", axes=(".", "tau"),
                   static={"tau": ((np.arange(2000) - 1000) * 10.0, "ps")}, long_name="HBT coincidences"),
        ]

    def estimate(self) -> dict[str, float]:
        per = self.exposure + self.decay_time + self.g2_time + self.hold + 600.0
        return {"lab_seconds": per * len(self.temperatures),
                "bytes": len(self.temperatures) * (4 * 1024 + 4 * 4096 + 4 * 2000 + 200)}

    def measure_point(self, index: int, point: dict[str, Any]) -> None:
        lab = self.lab
        T = point["T"]
        lab.cryostat.set_temperature(T)
        lab.cryostat.wait_stable(T, band_K=self.band, hold_s=self.hold, timeout_s=7200.0)
        self.checkpoint()
        if self.xray:
            lab.attenuator.set_max_attenuation()
            lab.xray.on(self.kV, self.mA)
        else:
            lab.attenuator.set_transmission(0.1)
        spec = lab.spectrometer.acquire(self.exposure)
        self.emit("spectrum", counts=spec.counts, T=lab.cryostat.temperature, exposure=self.exposure)
        dec = lab.tcspc.histogram(self.decay_time)
        self.emit("decay", counts=dec.counts)
        g2 = lab.tcspc.correlation(self.g2_time)
        self.emit("g2", counts=g2.counts)
        if self.xray:
            lab.xray.off()

    def analyze(self, run: Any) -> dict[str, Any]:
        """Peak wavelength per temperature and the red shift between highest and lowest T."""
        s = run.stream("spectrum")
        wl = run.static_axes["spectrum"]["wavelength"]
        peaks = wl[np.argmax(s["counts"], axis=1)]
        order = np.argsort(s["T"])
        return {"kind": "engine-check", "points": int(run.n_points),
                "peak_nm_vs_T": {f"{t:g}": float(p) for t, p in zip(s["T"], peaks, strict=True)},
                "red_shift_nm": float(peaks[order[0]] - peaks[order[-1]]) if run.n_points > 1 else 0.0}
