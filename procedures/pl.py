"""Photoluminescence measurements: ``PLTemperatureSeries`` (physics.md P1) and ``FluenceSeries`` (P2).

At every point: the fluence is set through the measured calibration (``FluenceCalibration``), the
power meter reads the actual power, the CCD records a spectrum and a dark frame (same exposure), and
the TCSPC records a decay histogram against the laser sync.

TCSPC detection window: the simulated setup (and the role interface) has a single TCSPC path with no
monochromator of its own, so the decays are of **all** the emitted light (``window_lo_nm`` /
``window_hi_nm`` are NaN); the analysis then separates the SF and uncoupled lifetimes with a
two-exponential fit instead of band-resolved decays.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from pymeasure.experiment import BooleanParameter, FloatParameter

from acq.procedure import FloatListParameter
from acq.store import Stream

from ._common import DecayMixin, FluenceMixin, LabProcedure, SpectrumMixin

log = logging.getLogger(__name__)

__all__ = ["PLTemperatureSeries", "FluenceSeries"]


class _PLBase(SpectrumMixin, DecayMixin, FluenceMixin, LabProcedure):
    ROLES = ("cryostat", "spectrometer", "tcspc", "attenuator", "powermeter")
    DEFAULT_STREAM = "spectrum"

    record_decay = BooleanParameter("Record TCSPC decays", default=True)
    dark_during_wait = BooleanParameter("Block the laser (maximum attenuation) while T changes", default=True)

    def startup(self) -> None:
        super().startup()
        self.setup_fluence()
        self._wl = self.setup_spectrometer()

    def streams(self) -> list[Stream]:
        common = (*self.T_FIELDS, *self.fluence_fields())
        out = [Stream("spectrum", (*self.spectrum_fields(), *common), signal="counts", axes=(".", "wavelength"),
                      static={"wavelength": (self._wl, "nm")}, long_name="PL spectrum (CCD)")]
        if self.record_decay:
            out.append(Stream("decay", (*self.decay_fields(), *common), signal="counts", axes=(".", "t"),
                              static={"t": (self.decay_axis(), "ps")},
                              long_name="TCSPC decay against the laser sync (all light)"))
        return out

    def measure_point(self, index: int, point: dict[str, Any]) -> None:
        T, f = float(point["T"]), float(point["fluence"])
        if self._T_now is None or abs(self._T_now - T) > 1e-9:
            if self.dark_during_wait:
                self.lab.attenuator.set_max_attenuation()
            self.goto_temperature(T)
            self.checkpoint()
        self.set_fluence(f)
        cond = {**self.t_fields(), **self.measured_fluence(f)}
        self.emit("spectrum", **self.take_spectrum(), **cond)
        if self.record_decay:
            self.emit("decay", **self.take_decay(), **cond)

    def _point_seconds(self) -> float:
        return 2 * self.exposure_s + 3.0 + (self.decay_s + 1.0 if self.record_decay else 0.0)

    def _point_bytes(self) -> float:
        n_pix = getattr(self, "_n_pix", 1024)
        return 8 * n_pix + (4 * self.decay_bins if self.record_decay else 0) + 25 * 8

    def analyze(self, run: Any) -> dict[str, Any]:
        from acq.summary import summarize

        return summarize(run)


class PLTemperatureSeries(_PLBase):
    """P1: for each temperature, stabilise, then a spectrum and a decay at each fluence."""

    temperatures = FloatListParameter("Temperatures", units="K", minimum=1.0, maximum=400.0,
                                      default=[5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 70.0, 90.0, 110.0, 130.0,
                                               150.0, 180.0])
    fluences = FloatListParameter("Fluences", units="µJ/cm²", minimum=1e-6, maximum=1e5, default=[0.2, 1.0, 6.0])

    def points(self) -> list[dict[str, Any]]:
        return [{"T": T, "fluence": f} for T in self.temperatures for f in self.fluences]

    def estimate(self) -> dict[str, float]:
        nT, nf = len(self.temperatures), len(self.fluences)
        steps = [abs(b - a) for a, b in zip([295.0, *self.temperatures], self.temperatures, strict=False)]
        wait = sum(min(self.timeout_s, self.hold_s + 6.0 * s + 30.0) for s in steps)
        return {"lab_seconds": wait + nT * nf * self._point_seconds(),
                "bytes": 100_000.0 + nT * nf * self._point_bytes()}

    def validate(self, lab_config: Any) -> list[str]:
        return (self.validate_temperatures(lab_config, list(self.temperatures))
                + self.validate_fluences(lab_config, list(self.fluences)))


class FluenceSeries(_PLBase):
    """P2: at one temperature, a spectrum and a decay at each fluence (≥ 1.5 decades)."""

    temperature = FloatParameter("Temperature", units="K", minimum=1.0, maximum=400.0, default=5.0)
    fluences = FloatListParameter("Fluences", units="µJ/cm²", minimum=1e-6, maximum=1e5,
                                  default=[0.2, 0.4, 0.8, 1.6, 3.2, 6.4])
    min_decades = FloatParameter("Smallest span of the fluences", units="decades", minimum=0.0, maximum=10.0,
                                 default=1.5)

    def points(self) -> list[dict[str, Any]]:
        return [{"T": float(self.temperature), "fluence": f} for f in self.fluences]

    def estimate(self) -> dict[str, float]:
        n = len(self.fluences)
        wait = min(self.timeout_s, self.hold_s + 6.0 * abs(295.0 - self.temperature) + 30.0)
        return {"lab_seconds": wait + n * self._point_seconds(), "bytes": 100_000.0 + n * self._point_bytes()}

    def validate(self, lab_config: Any) -> list[str]:
        errs = (self.validate_temperatures(lab_config, [float(self.temperature)])
                + self.validate_fluences(lab_config, list(self.fluences)))
        f = [x for x in self.fluences if x > 0]
        span = math.log10(max(f) / min(f)) if len(f) >= 2 else 0.0
        if len(f) < 3 or span < self.min_decades - 1e-9:
            errs.append(f"FluenceSeries: fluences {', '.join(f'{x:g}' for x in self.fluences)} µJ/cm² span "
                        f"{span:.2f} decades with {len(f)} values; a power law needs ≥ 3 values over "
                        f"≥ {self.min_decades:g} decades (physics.md P2)")
        return errs
