"""X-ray measurements: ``RLTemperatureSeries`` (physics.md P7), ``HBTCorrelation`` (P5) and
``TimeResolvedRL`` (P8).

All three expose the sample to X-rays (``XRAY = True``: the runner never re-takes a point under dose
on resume). The X-ray source is switched with its role's safe sequence (``xray.on``: interlock and
fault check, HV on, ramp, shutter open at the setpoint; ``xray.off``: shutter closed, ramp down, HV
off); by default it is off while the temperature changes. The laser is held at maximum attenuation.

HBT wiring: the g2 comes from the time tagger's ``hbt_correlation()`` with the backend's HBT inputs
(PicoHarp 300: the start detector on the sync input 0 and the delayed stop detector on input 1, a
start–stop histogram accumulated by the device in histogram mode, as in [000]; Swabian: the
``Correlation`` of detectors 1 and 2). Raw T2 tags are listed only for the bounded ``tags_s`` window
of the Photon-HDF5 sidecar. The tagger must be cabled for HBT (two detectors, no laser sync) — in
the simulated lab that is the emulated tagger's ``hbt`` wiring.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pymeasure.experiment import BooleanParameter, FloatParameter, IntegerParameter, ListParameter

from acq.photon_hdf5 import phconvert_hdf5, sidecar_path, write_sidecar
from acq.procedure import FloatListParameter
from acq.store import Field, Stream

from ._common import DecayMixin, LabProcedure, SpectrumMixin

log = logging.getLogger(__name__)

__all__ = ["RLTemperatureSeries", "HBTCorrelation", "TimeResolvedRL"]


class _XrayBase(LabProcedure):
    XRAY = True

    temperatures = FloatListParameter("Temperatures", units="K", minimum=1.0, maximum=400.0,
                                      default=[180.0, 150.0, 120.0, 90.0, 70.0, 50.0, 35.0, 20.0])
    kV = FloatParameter("Tube voltage", units="kV", minimum=0.0, maximum=100.0, default=20.0)
    mA = FloatParameter("Tube current", units="mA", minimum=0.0, maximum=10.0, default=0.5)
    xray_off_while_waiting = BooleanParameter("X-ray off while the temperature changes", default=True)

    XRAY_FIELDS = (Field("kV", (), "f8", "kV", "tube voltage (readback)"),
                   Field("mA", (), "f8", "mA", "tube current (readback)"))

    def startup(self) -> None:
        super().startup()
        self._xray_on = False
        if "attenuator" in self.lab.connected:
            self.lab.attenuator.set_max_attenuation()

    def xray_on(self) -> None:
        if not self._xray_on:
            self.lab.xray.on(self.kV, self.mA)
            self._xray_on = True

    def xray_off(self) -> None:
        if self._xray_on:
            self.lab.xray.off()
            self._xray_on = False

    def goto(self, T: float) -> None:
        if self._T_now is None or abs(self._T_now - T) > 1e-9:
            if self.xray_off_while_waiting:
                self.xray_off()
            self.goto_temperature(T)
            self.checkpoint()
        self.xray_on()

    def xray_fields(self) -> dict[str, float]:
        rb = self.lab.xray.readback()
        return {"kV": float(rb.get("kV", math.nan)), "mA": float(rb.get("mA", math.nan))}

    def shutdown(self) -> None:
        # the runner's backstop makes the X-ray safe anyway; this is the procedure's own clean end
        if getattr(self, "_xray_on", False) and self.lab is not None and "xray" in self.lab.connected:
            try:
                self.xray_off()
            except Exception as exc:
                log.error("X-ray off at the end of the run failed (the backstop follows): %s", exc)

    def points(self) -> list[dict[str, Any]]:
        return [{"T": T} for T in self.temperatures]

    def validate(self, lab_config: Any) -> list[str]:
        return (self.validate_temperatures(lab_config, list(self.temperatures))
                + self.validate_xray(lab_config, self.kV, self.mA))

    def _wait_seconds(self) -> float:
        return sum(self.temperature_waits(self.temperatures)) + 20.0 * len(self.temperatures)

    def analyze(self, run: Any) -> dict[str, Any]:
        from acq.summary import summarize

        return summarize(run)


class RLTemperatureSeries(SpectrumMixin, _XrayBase):
    """P7: X-ray on (safe sequence), a radioluminescence spectrum at each temperature."""

    # tcspc: the session's count-rate suspender polls it and fails on an unconnected tagger (runner note)
    ROLES = ("cryostat", "xray", "spectrometer", "attenuator", "tcspc")
    DEFAULT_STREAM = "spectrum"

    exposure_s = FloatParameter("CCD exposure", units="s", minimum=0.001, maximum=600.0, default=1.0)
    background = BooleanParameter("Background spectrum with the X-ray off after each RL spectrum (same "
                                  "exposure; subtracts light that is not RL, e.g. laser leaking through "
                                  "the attenuator)", default=True)

    def startup(self) -> None:
        super().startup()
        self._wl = self.setup_spectrometer()

    def streams(self) -> list[Stream]:
        bg = (Field("background", (self._n_pix,), "u4", "counts", "X-ray off, shutter open, same exposure"),) \
            if self.background else ()
        return [Stream("spectrum", (*self.spectrum_fields(), *bg, *self.T_FIELDS, *self.XRAY_FIELDS),
                       signal="counts", axes=(".", "wavelength"), static={"wavelength": (self._wl, "nm")},
                       long_name="Radioluminescence spectrum (CCD)")]

    def measure_point(self, index: int, point: dict[str, Any]) -> None:
        self.goto(float(point["T"]))
        cond = {**self.t_fields(), **self.xray_fields()}
        data = self.take_spectrum()
        if self.background:
            self.xray_off()
            data["background"] = np.asarray(self.lab.spectrometer.acquire(data["exposure"]).counts,
                                            np.int64).clip(0)
        self.emit("spectrum", **data, **cond)

    def estimate(self) -> dict[str, float]:
        n = len(self.temperatures)
        per = 2 * self.exposure_s + 3.0 + 2 * self.kV / 5.0
        return {"lab_seconds": self._wait_seconds() + n * per, "bytes": 100_000.0 + n * (8 * 1024 + 80)}


class HBTCorrelation(_XrayBase):
    """P5: CW X-ray, g2(τ) at negative and positive delays from the time tagger, raw tags to a
    Photon-HDF5 sidecar per point; optionally at several temperatures."""

    ROLES = ("cryostat", "xray", "tcspc", "attenuator")
    DEFAULT_STREAM = "g2"
    TCSPC_WIRING = "hbt"              # two detectors on the tagger, no laser sync

    temperatures = FloatListParameter("Temperatures", units="K", minimum=1.0, maximum=400.0, default=[20.0])
    g2_s = FloatParameter("g2 acquisition", units="s", minimum=0.01, maximum=360000.0, default=60.0)
    g2_binwidth_ps = FloatParameter("g2 bin width", units="ps", minimum=1.0, maximum=10000.0, default=8.0)
    g2_bins = IntegerParameter("g2 bins (centred on τ = 0)", minimum=10, maximum=1_000_000, default=500)
    tags_s = FloatParameter("Raw tags per point for the sidecar (0 = none)", units="s", minimum=0.0,
                            maximum=3600.0, default=0.2)
    hbt_irf_fwhm_ps = FloatParameter("HBT instrument FWHM", units="ps", minimum=1.0, maximum=5000.0, default=70.0)

    def startup(self) -> None:
        super().startup()
        # with the X-ray still off: the first sidecar's writer (phconvert, ≈ 3–14 s to import on a loaded host)
        # and a first count-rate reading (the tagger answers; a simulated lab builds its photon source here).
        # Done later, inside a point, they held the interpreter long enough to starve the X-ray keep-alive at
        # --speed 40 (a 5 s watchdog is 125 ms of wall time there) and trip the generator.
        if float(self.tags_s) > 0:
            phconvert_hdf5()
        if "tcspc" in self.lab.connected:
            self.lab.tcspc.count_rates()

    def tau_axis(self) -> np.ndarray:
        n, bw = int(self.g2_bins), float(self.g2_binwidth_ps)
        return (np.arange(n) - n // 2 + 0.5) * bw

    @staticmethod
    def g2_quality_fields() -> tuple[Field, ...]:
        """Per-point g2 data quality (``Correlation.quality()``), as the decays record theirs."""
        return (Field("start_stop", (), "u1", "", "1: start-stop histogram (first stop per start), 0: all pairs"),
                Field("requested", (), "f8", "s", "acquisition time asked for"),
                Field("overflow", (), "u1", "", "FLAG_OVERFLOW: a bin reached the stop count / ceiling"),
                Field("stop_count", (), "i4", "counts", "stop-on-overflow count in force (0 = off)"),
                Field("clipped_bins", (), "i4", "", "device bins at the ceiling (not photon counts)"),
                Field("pileup", (), "f8", "", "start-stop: share of starts with a stop within the lag range "
                                              "(bounds the pairs an earlier stop hides)"),
                Field("dead_time_fraction", (), "f8", "", "busier input's count rate × TDC dead time"),
                Field("lost_records", (), "i8", "", "FIFO records lost (T2 read-out overrun)"))

    @staticmethod
    def g2_quality(c: Any) -> dict[str, Any]:
        q = c.quality() if hasattr(c, "quality") else {}
        return {"start_stop": int(getattr(c, "method", "all-pairs") == "start-stop"),
                "requested": float(q.get("requested_s", c.duration_s)), "overflow": int(bool(q.get("overflow"))),
                "stop_count": int(q.get("stop_count", 0)), "clipped_bins": int(q.get("clipped_bins", 0)),
                "pileup": float(q.get("pileup", math.nan)),
                "dead_time_fraction": float(q.get("dead_time_fraction", math.nan)),
                "lost_records": int(q.get("lost_records", 0))}

    def streams(self) -> list[Stream]:
        n = int(self.g2_bins)
        return [Stream("g2", (
            Field("counts", (n,), "i8", "counts", "coincidences ch2 after ch1 (τ = t2 − t1)"),
            Field("n1", (), "i8", "counts", "events on the start detector"),
            Field("n2", (), "i8", "counts", "events on the stop detector"),
            Field("duration", (), "f8", "s"), Field("binwidth", (), "f8", "ps"),
            *self.g2_quality_fields(), *self.T_FIELDS, *self.XRAY_FIELDS), signal="counts", axes=(".", "tau"),
            static={"tau": (self.tau_axis(), "ps")}, sidecar=float(self.tags_s) > 0,
            long_name="HBT coincidences under CW X-rays (g2 = counts·T/(bw·N1·N2))")]

    def measure_point(self, index: int, point: dict[str, Any]) -> None:
        self.goto(float(point["T"]))
        cond = {**self.t_fields(), **self.xray_fields()}
        tc = self.lab.tcspc
        c = tc.hbt_correlation(self.g2_s, binwidth_ps=self.g2_binwidth_ps, n_bins=int(self.g2_bins))
        if c.counts.size != int(self.g2_bins) or not np.allclose(c.lag_ps, self.tau_axis(), atol=0.5):
            log.warning("the tagger's lag axis differs from the declared one (first %s, declared %s)",
                        c.lag_ps[:1], self.tau_axis()[:1])
        lo, hi = sorted((max(c.n1, 1), max(c.n2, 1)))
        if hi > 100 * lo:
            log.warning("HBT channels very unequal (N1 = %d, N2 = %d): is the tagger wired for HBT (two "
                        "detectors, no laser sync)?", c.n1, c.n2)
        q = self.g2_quality(c)
        if q["overflow"]:
            log.info("g2 histogram %s after %.3g of %.3g s (%d clipped bins)",
                     "stopped at the stop count" if q["stop_count"] else "overflowed", c.duration_s,
                     q["requested"], q["clipped_bins"])
        data = {"counts": np.asarray(c.counts, np.int64), "n1": int(c.n1), "n2": int(c.n2),
                "duration": float(c.duration_s), "binwidth": float(c.binwidth_ps), **q, **cond}
        if float(self.tags_s) > 0:
            data["sidecar"] = self._write_tags(index, cond)
        self.emit("g2", **data)

    def _write_tags(self, index: int, cond: dict[str, float]) -> str:
        ts = self.lab.tcspc.stream(self.tags_s)
        run_path = Path(getattr(self.runner, "path", "run.h5"))
        path = sidecar_path(run_path, index, "g2")
        if path.exists():  # a resumed point: never overwrite recorded tags
            path = path.with_name(path.stem + f".r{int(self.clock.now())}.h5")
        write_sidecar(path, ts, kind="hbt", description="HBT raw time tags under CW X-rays",
                      sample_name=str(getattr(self.runner, "sample", {}).get("name", "")),
                      user={"point": index, **cond, "procedure": type(self).__name__})
        return path.name

    def estimate(self) -> dict[str, float]:
        n = len(self.temperatures)
        per = self.g2_s + self.tags_s + 5.0 + 2 * self.kV / 5.0
        tag_bytes = 16 * 2e5 * self.tags_s  # ~2e5 tags/s on both detectors in the simulated setup
        return {"lab_seconds": self._wait_seconds() + n * per,
                "bytes": 100_000.0 + n * (8 * int(self.g2_bins) + 150 + tag_bytes + 20_000)}

    def validate(self, lab_config: Any) -> list[str]:
        errs = super().validate(lab_config)
        bw = float(self.g2_binwidth_ps)
        roles = getattr(lab_config, "roles", {}) or {}
        rc = roles.get("tcspc")
        if rc is not None and rc.backend == "picoharp300":
            if bw % 4.0:
                errs.append(f"{type(self).__name__}: g2_binwidth_ps = {bw:g} must be a multiple of the PicoHarp's "
                            "4 ps resolution")
            elif str((rc.options or {}).get("hbt_source", "hist")) == "hist":
                # start-stop histogram mode: the lags fit the 65 536 device bins, the stop delay the sync offset
                per = bw / 4.0
                while per % 2 == 0 and bw / per < 512:
                    per /= 2
                n = int(self.g2_bins)
                cable = float((rc.options or {}).get("hbt_stop_cable_ps", 0) or 0)
                if n * per > 65536:
                    errs.append(f"{type(self).__name__}: g2_bins = {n} of {bw:g} ps need {n * per:g} histogram bins "
                                "of the PicoHarp (at most 65 536)")
                if (n // 2) * bw - cable > 99_999:
                    errs.append(f"{type(self).__name__}: g2_bins = {n} of {bw:g} ps need {(n // 2) * bw:g} ps of stop "
                                "delay: more than the sync offset (99 999 ps) plus hbt_stop_cable_ps")
        return errs


class TimeResolvedRL(DecayMixin, HBTCorrelation):
    """P8: the RL time profile.

    ``method = "pulsed"``: start–stop histogram of RL photons against the pulsed X-ray tube's trigger on
    the TCSPC sync input (physics.md P8; resolution set by the X-ray pulse, typically > 120 ps). The
    sync rate must match ``pulse_rate_Hz``, else the run stops before any X-ray: a laser sync would
    give a flat, meaningless histogram.

    ``method = "hbt"`` (what the simulated lab allows — its X-ray tube is CW only): the photon-pair
    histogram under CW X-rays, whose bunching peak is the autocorrelation of one event's emission
    profile; the fit gives the RL emission lifetime τ_s (two-sided exponential ⊗ instrument) and the
    Lorentzian width ([000]), at each temperature. It does not give the rise or the multi-exciton
    components a pulsed measurement would.
    """

    DEFAULT_STREAM = "g2"

    method = ListParameter("Method", choices=["hbt", "pulsed"], default="hbt")
    pulse_rate_Hz = FloatParameter("X-ray pulse rate (pulsed method)", units="Hz", minimum=1.0, maximum=1e9,
                                   default=1e6)
    temperatures = FloatListParameter("Temperatures", units="K", minimum=1.0, maximum=400.0,
                                      default=[20.0, 80.0, 150.0])
    decay_binwidth_ps = FloatParameter("TCSPC bin width", units="ps", minimum=1.0, maximum=512.0, default=16.0)
    decay_bins = IntegerParameter("TCSPC bins", minimum=16, maximum=65536, default=4096)
    irf_fwhm_ps = FloatParameter("IRF FWHM (X-ray pulse ⊕ detector)", units="ps", minimum=1.0, maximum=5000.0,
                                 default=120.0)

    @classmethod
    def tcspc_wiring(cls, parameters: Mapping[str, Any]) -> str:
        """``hbt``: two detectors; ``pulsed``: the X-ray trigger on the sync input, one detector."""
        return "hbt" if parameters.get("method", "hbt") == "hbt" else "tcspc"

    def startup(self) -> None:
        super().startup()
        if self.method == "pulsed":
            # with a TCSPC monochromator: decays at sf_nm and unc_nm when both are given (an RL series has
            # no spectrum to choose them from), else of all light with the monochromator at zero order
            self.setup_decays()
            rates = self.lab.tcspc.count_rates()
            sync = float(rates.get("rate_ch0", math.nan))
            if not (abs(sync - self.pulse_rate_Hz) <= 0.05 * self.pulse_rate_Hz):
                raise RuntimeError(f"TimeResolvedRL (pulsed): the TCSPC sync counts {sync:.4g}/s, not the X-ray "
                                   f"pulse rate {self.pulse_rate_Hz:.4g}/s — no pulsed X-ray trigger on the sync "
                                   "input (a CW tube, or the laser sync). Use method = 'hbt' with a CW tube.")

    def streams(self) -> list[Stream]:
        if self.method == "hbt":
            return super().streams()
        return self.decay_streams((*self.T_FIELDS, *self.XRAY_FIELDS), title="RL decay against the X-ray pulse "
                                  "trigger", resolved=self._rl_bands(), irf=False)

    def _rl_bands(self) -> bool:
        """Band-resolved RL decays: a monochromator, ``band_resolved`` and both wavelengths given."""
        return self.resolved and float(self.sf_nm) > 0 and float(self.unc_nm) > 0

    def measure_point(self, index: int, point: dict[str, Any]) -> None:
        if self.method == "hbt":
            return super().measure_point(index, point)
        self.goto(float(point["T"]))
        cond = {**self.t_fields(), **self.xray_fields()}
        if self._rl_bands():
            self.emit("decay", **self.take_decay("sf", float(self.sf_nm)), **cond)
            self.emit("decay_unc", **self.take_decay("unc", float(self.unc_nm)), **cond)
        else:
            self.emit("decay", **self.take_decay(), **cond)
        return None

    def estimate(self) -> dict[str, float]:
        if self.method == "hbt":
            return super().estimate()
        n = len(self.temperatures)
        return {"lab_seconds": self._wait_seconds() + n * (self.decay_s + 5.0 + 2 * self.kV / 5.0),
                "bytes": 100_000.0 + n * (4 * int(self.decay_bins) + 100)}
