"""In-situ transmission (physics.md P6): ``Transmission`` — the absorbance of the sample in the cryostat.

At each temperature, with the laser blocked (attenuator at maximum attenuation, its shutter closed): the
white-light lamp's shutter is opened (role ``white_light``) and the CCD records the lamp through the bare
substrate (holder position ``blank``: I0) and through the sample (``sample``: I); then the lamp's shutter is
closed and the CCD records D at the sample position (everything that is not lamp light: bias, dark current,
stray light, any PL the blocked laser still leaks). Each of I0, I and D is the sum of ``n_frames`` frames at
one exposure, chosen on I0 by the auto-exposure of the PL spectra. Then, per pixel,

    T = (I − D) / (I0 − D),   A = −log₁₀ T,
    σ_A = (1 / ln 10) · √(var(I − D) / (I − D)² + var(I0 − D) / (I0 − D)²),
    var(X − D) = g·(X − D) + 2·n_frames·σ_read²   (photo-electrons: shot noise of the signal, read noise of
    the two sums; ``ccd_gain`` g e⁻/count and ``read_noise_e`` as for the PL spectra).

Pixels are masked (NaN in ``absorbance`` and ``ordinate``, their reason in ``mask``) and counted per reason:
1 **saturated** — a frame of I0, I or D at the CCD ceiling (``CCD_SATURATION``); 2 **too little light** —
(I0 − D) below ``min_snr`` times its noise; 3 **opaque** — (I − D) below ``min_snr`` times its noise (the
absorbance there is only a lower bound). Thresholds: docs/decisions/0012-sample-stage-and-in-situ-absorption.md.

Written as the stream ``absorption`` of ``acq.absorption.absorption_stream`` (ordinate: the transmittance
T), the stream a spectrophotometer import writes, so ``acq.summary`` pools it into the campaign's verdict
(checklist item 9: no ground-state absorption at E_SF) unchanged. The sample is left in the beam.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from pymeasure.experiment import FloatParameter, IntegerParameter

from acq.absorption import absorption_point, absorption_stream, to_absorbance
from acq.procedure import FloatListParameter
from acq.store import Field, Stream

from ._common import CCD_SATURATION, LabProcedure, SpectrumMixin, StageMixin

log = logging.getLogger(__name__)

__all__ = ["Transmission", "MASK_CODES", "absorbance_from_frames"]

#: the ``mask`` codes of the absorption stream
MASK_CODES = {"ok": 0, "saturated": 1, "too little light": 2, "opaque": 3}


def absorbance_from_frames(I: np.ndarray, I0: np.ndarray, D: np.ndarray, *, n_frames: int, gain: float,
                           read_noise_e: float, min_snr: float, saturated: np.ndarray | None = None
                           ) -> dict[str, np.ndarray]:
    """Transmittance, absorbance, its error and the mask from the summed frames (see module docstring)."""
    I, I0, D = (np.asarray(x, float) for x in (I, I0, D))
    S, S0 = (I - D) * gain, (I0 - D) * gain
    rn2 = 2.0 * n_frames * read_noise_e ** 2
    sig, sig0 = np.sqrt(np.maximum(S, 0.0) + rn2), np.sqrt(np.maximum(S0, 0.0) + rn2)
    mask = np.zeros(I.shape, np.uint8)
    mask[S < min_snr * sig] = MASK_CODES["opaque"]
    mask[S0 < min_snr * sig0] = MASK_CODES["too little light"]
    if saturated is not None:
        mask[np.asarray(saturated, bool)] = MASK_CODES["saturated"]
    ok = mask == 0
    T = np.full(I.shape, np.nan)
    T[ok] = S[ok] / S0[ok]
    A = to_absorbance(T, "T")
    err = np.full(I.shape, np.nan)
    err[ok] = np.sqrt((sig[ok] / S[ok]) ** 2 + (sig0[ok] / S0[ok]) ** 2) / math.log(10.0)
    return {"ordinate": T, "absorbance": A, "absorbance_error": err, "mask": mask}


class Transmission(StageMixin, SpectrumMixin, LabProcedure):
    """P6 in situ: absorbance from white light through the sample and through the blank at each temperature."""

    ROLES = ("cryostat", "spectrometer", "attenuator", "white_light", "sample_stage")
    DEFAULT_STREAM = "absorption"
    STAGE_POSITIONS = ("sample", "blank")

    temperatures = FloatListParameter("Temperatures", units="K", minimum=1.0, maximum=400.0, default=[20.0])
    n_frames = IntegerParameter("Frames summed for each of I0, I and D", minimum=1, maximum=1000, default=4)
    min_snr = FloatParameter("Signal-to-noise below which a pixel is masked", minimum=1.0, maximum=1e4,
                             default=10.0)

    def startup(self) -> None:
        super().startup()
        self._wl = self.setup_spectrometer()
        self._order = np.argsort(self._wl)
        self._stage_at = None

    def points(self) -> list[dict[str, Any]]:
        return [{"T": float(T)} for T in self.temperatures]

    def streams(self) -> list[Stream]:
        n = int(self._wl.size)
        extra = (Field("absorbance_error", (n,), "f8", "", "1σ error of the absorbance (shot + read noise)"),
                 Field("mask", (n,), "u1", "", "0 ok, 1 saturated, 2 too little light (I0), 3 opaque (I)"),
                 Field("I0", (n,), "f8", "counts", "lamp through the blank, summed frames"),
                 Field("I", (n,), "f8", "counts", "lamp through the sample, summed frames"),
                 Field("D", (n,), "f8", "counts", "lamp shutter closed at the sample, summed frames"),
                 Field("exposure", (), "f8", "s", "exposure of each frame"),
                 Field("n_frames", (), "i4", "", "frames summed"),
                 Field("n_saturated", (), "i4", "", "pixels masked: saturated"),
                 Field("n_dim", (), "i4", "", "pixels masked: too little light through the blank"),
                 Field("n_opaque", (), "i4", "", "pixels masked: too little light through the sample"),
                 # the procedures' temperature fields; T_K is already the absorption stream's own
                 *(f for f in self.T_FIELDS if f.name != "T_K"))
        return [absorption_stream(self._wl[self._order], "T", extra=extra,
                                  ordinate_doc="transmittance T = (I - D) / (I0 - D)",
                                  long_name="absorption spectrum (in-situ white-light transmission)")]

    def _frames(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Sum of ``n_frames`` spectra at exposure ``t`` and the pixels saturated in any of them."""
        spec = self.lab.spectrometer
        total = np.zeros(self._wl.size)
        sat = np.zeros(self._wl.size, bool)
        for _ in range(int(self.n_frames)):
            c = np.asarray(spec.acquire(t).counts, float)
            total += c
            sat |= c >= CCD_SATURATION
        return total, sat

    def measure_point(self, index: int, point: dict[str, Any]) -> None:
        T = float(point["T"])
        self.lab.attenuator.set_max_attenuation()   # the laser blocked for the whole measurement
        self.goto_temperature(T)
        self.checkpoint()
        lamp = self.lab.white_light
        T_K = float(self.lab.cryostat.temperature)
        self.stage_to("blank")
        lamp.open_shutter()
        try:
            self.take_spectrum()                      # sets the exposure on the brightest light (I0)
            t = float(self._exposure)
            I0, s0 = self._frames(t)
            self.stage_to("sample")
            I, s1 = self._frames(t)
        finally:
            lamp.close_shutter()
        D, s2 = self._frames(t)
        r = absorbance_from_frames(I, I0, D, n_frames=int(self.n_frames), gain=float(self.ccd_gain),
                                   read_noise_e=float(self.read_noise_e), min_snr=float(self.min_snr),
                                   saturated=s0 | s1 | s2)
        o = self._order
        m = r["mask"]
        counts = {k: int(np.sum(m == MASK_CODES[name])) for k, name in
                  (("n_saturated", "saturated"), ("n_dim", "too little light"), ("n_opaque", "opaque"))}
        if any(counts.values()):
            log.info("transmission at %g K: masked %s", T, ", ".join(f"{v} {k[2:]}" for k, v in counts.items() if v))
        self.emit("absorption", **absorption_point(r["absorbance"][o], r["ordinate"][o], T_K),
                  absorbance_error=r["absorbance_error"][o], mask=m[o], I0=I0[o], I=I[o], D=D[o], exposure=t,
                  n_frames=int(self.n_frames), T_set=T, stable=int(self._stable), **counts)

    def shutdown(self) -> None:
        self.restore_stage()

    def estimate(self) -> dict[str, float]:
        nT = len(self.temperatures)
        steps = [abs(b - a) for a, b in zip([295.0, *self.temperatures], self.temperatures, strict=False)]
        wait = sum(min(self.timeout_s, self.hold_s + 6.0 * s + 30.0) for s in steps)
        per_T = 2 * 25.0 / 2.5 + (3 * int(self.n_frames) + 2) * (self.exposure_s + 0.5)
        return {"lab_seconds": wait + nT * per_T,
                "bytes": 100_000.0 + nT * 8 * 7 * getattr(self, "_n_pix", 1024)}

    def validate(self, lab_config: Any) -> list[str]:
        errs = self.validate_stage(lab_config) + self.validate_temperatures(lab_config, list(self.temperatures))
        if lab_config is not None and "white_light" not in (getattr(lab_config, "roles", None) or {}):
            errs.append(f"{type(self).__name__} needs the white_light role (a lamp behind the sample whose shutter "
                        "an SC10 gates): add [white_light] to lab.toml, or import a spectrophotometer export with "
                        "`sflab absorption import`")
        return errs

    def analyze(self, run: Any) -> dict[str, Any]:
        from acq.summary import summarize

        return summarize(run)
