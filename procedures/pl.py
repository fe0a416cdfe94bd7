"""Photoluminescence measurements: ``PLTemperatureSeries`` (physics.md P1) and ``FluenceSeries`` (P2).

At every point: the fluence is set through the measured calibration (``FluenceCalibration``), the
power meter reads the actual power, the CCD records a spectrum and a dark frame (same exposure), and
the TCSPC records decay histograms against the laser sync.

Band-resolved decays (physics.md P1 step 3c, P2 step 3): with a TCSPC monochromator (role
``tcspc_mono``) each point records a decay at the SF wavelength (stream ``decay``) and one at the
uncoupled wavelength (stream ``decay_unc``), both chosen from the spectrum just taken (the red and main
band peaks; or the ``sf_nm`` / ``unc_nm`` parameters), at the bandpass ``tcspc_bandpass_nm``, each with
its wavelength, bandpass and window; at every new temperature the instrument response is measured from
scattered laser (stream ``irf``, the monochromator on the laser line). Without a monochromator (or
``band_resolved = false``) the decays are of all light (window NaN) and the analysis separates the two
lifetimes with a two-exponential fit.
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

    def startup(self) -> None:
        super().startup()
        self.setup_fluence()
        self._wl = self.setup_spectrometer()
        self._irf_T: float | None = None
        if self.record_decay:
            self.setup_decays()

    def streams(self) -> list[Stream]:
        common = (*self.T_FIELDS, *self.fluence_fields())
        out = [Stream("spectrum", (*self.spectrum_fields(), *common), signal="counts", axes=(".", "wavelength"),
                      static={"wavelength": (self._wl, "nm")}, long_name="PL spectrum (CCD)")]
        if self.record_decay:
            out += self.decay_streams(common)
        return out

    def measure_point(self, index: int, point: dict[str, Any]) -> None:
        T, f = float(point["T"]), float(point["fluence"])
        self.goto_point_temperature(T)
        self.set_fluence(f)
        cond = {**self.t_fields(), **self.measured_fluence(f)}
        spectrum = self.take_spectrum()
        self.emit("spectrum", **spectrum, **cond)
        if not self.record_decay:
            return
        if not self.resolved:
            self.emit("decay", **self.take_decay(), **cond)
            return
        if self.measure_irf and self._irf_T != T:
            self.emit("irf", **self.take_irf(), **cond)
            self._irf_T = T
        sf_nm, unc_nm = self.detection_wavelengths(spectrum, self._wl, gain=float(self.ccd_gain),
                                                   read_noise_e=float(self.read_noise_e))
        self.emit("decay", **self.take_decay("sf", sf_nm), **cond)
        self.emit("decay_unc", **self.take_decay("unc", unc_nm), **cond)

    def _point_seconds(self) -> float:
        decays = 2 if self.band_resolved else 1
        return 2 * self.exposure_s + 3.0 + (decays * (self.decay_s + 2.0) if self.record_decay else 0.0)

    def _irf_seconds(self) -> float:
        """The IRF at each new temperature (band-resolved): at most ``irf_s`` (its histograms stop at
        ``irf_counts``; the bound is what a plan must allow for)."""
        return float(self.irf_s) + 2.0 if self.record_decay and self.band_resolved and self.measure_irf else 0.0

    def _point_bytes(self) -> float:
        n_pix = getattr(self, "_n_pix", 1024)
        decays = 3 if self.band_resolved else 1
        return 8 * n_pix + (4 * self.decay_bins * decays if self.record_decay else 0) + 25 * 8

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
        wait = sum(self.temperature_waits(self.temperatures))
        return {"lab_seconds": wait + nT * (self._irf_seconds() + nf * self._point_seconds()),
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
        wait = self.temperature_waits([self.temperature])[0]
        return {"lab_seconds": wait + self._irf_seconds() + n * self._point_seconds(),
                "bytes": 100_000.0 + n * self._point_bytes()}

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
