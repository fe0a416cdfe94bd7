"""Reference spectra of the isolated-NC film (physics.md P1 step 1): ``ReferenceSpectra``.

The isolated-NC reference (NCs in polystyrene, mounted beside the superlattice on the sample holder) is
measured at the same temperatures and fluences as the PL temperature series of the sample: at each
temperature the holder's ``reference`` position is in the beam (role ``sample_stage``), the fluence is set
through the measured calibration and the CCD records a spectrum and a dark frame, exactly as the PL series
does. Stream ``reference_spectrum`` (the fields of the PL series' ``spectrum``), which ``acq.summary`` reads
into ``Evidence.reference_spectra``: the verdict compares the superlattice with the reference at a matching
temperature (``analysis.sf`` rule ``reference_max_dT_K``; checklist items 1 and 10). When the procedure
ends the sample is put back in the beam.

Without a ``sample_stage`` role (or without the positions ``sample`` and ``reference``) the procedure fails
validation before anything moves; with the ``manual`` backend the operator is prompted to move the holder.
"""

from __future__ import annotations

import logging
from typing import Any

from acq.procedure import FloatListParameter
from acq.store import Field, Stream

from ._common import FluenceMixin, LabProcedure, SpectrumMixin, StageMixin

log = logging.getLogger(__name__)

__all__ = ["ReferenceSpectra"]


class ReferenceSpectra(StageMixin, SpectrumMixin, FluenceMixin, LabProcedure):
    """P1 step 1: the isolated-NC reference film's PL spectra at the sample's temperatures and fluences."""

    ROLES = ("cryostat", "spectrometer", "attenuator", "powermeter", "sample_stage")
    DEFAULT_STREAM = "reference_spectrum"
    STAGE_POSITIONS = ("sample", "reference")

    temperatures = FloatListParameter("Temperatures", units="K", minimum=1.0, maximum=400.0, default=[295.0, 5.0])
    fluences = FloatListParameter("Fluences", units="µJ/cm²", minimum=1e-6, maximum=1e5, default=[1.2])

    def startup(self) -> None:
        super().startup()
        self.setup_fluence()
        self._wl = self.setup_spectrometer()
        self._stage_at = None

    def points(self) -> list[dict[str, Any]]:
        return [{"T": T, "fluence": f} for T in self.temperatures for f in self.fluences]

    def streams(self) -> list[Stream]:
        return [Stream("reference_spectrum",
                       (*self.spectrum_fields(), *self.T_FIELDS, *self.fluence_fields(),
                        Field("stage_mm", (), "f8", "mm", "sample stage position (the reference film's)")),
                       signal="counts", axes=(".", "wavelength"), static={"wavelength": (self._wl, "nm")},
                       long_name="PL spectrum of the isolated-NC reference film (CCD)")]

    def measure_point(self, index: int, point: dict[str, Any]) -> None:
        T, f = float(point["T"]), float(point["fluence"])
        self.goto_point_temperature(T)
        self.stage_to("reference")
        self.set_fluence(f)
        cond = {**self.t_fields(), **self.measured_fluence(f)}
        self.emit("reference_spectrum", **self.take_spectrum(), **cond,
                  stage_mm=float(self.lab.sample_stage.position_mm))

    def shutdown(self) -> None:
        self.restore_stage()

    def estimate(self) -> dict[str, float]:
        nT, nf = len(self.temperatures), len(self.fluences)
        steps = [abs(b - a) for a, b in zip([295.0, *self.temperatures], self.temperatures, strict=False)]
        wait = sum(min(self.timeout_s, self.hold_s + 6.0 * s + 30.0) for s in steps)
        moves = 2 * 12.5 / 2.5   # to the reference and back (12.5 mm at the CONEX-CC's 2.5 mm/s)
        return {"lab_seconds": wait + moves + nT * nf * (2 * self.exposure_s + 3.0),
                "bytes": 100_000.0 + nT * nf * (8 * getattr(self, "_n_pix", 1024) + 25 * 8)}

    def validate(self, lab_config: Any) -> list[str]:
        return (self.validate_stage(lab_config) + self.validate_temperatures(lab_config, list(self.temperatures))
                + self.validate_fluences(lab_config, list(self.fluences)))

    def analyze(self, run: Any) -> dict[str, Any]:
        from acq.summary import summarize

        return summarize(run)
