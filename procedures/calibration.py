"""``FluenceCalibration``: the attenuator's transmission table and the fluence map, measured.

The ND wheel is stepped from its clearest to its darkest setting (evenly in optical density, i.e.
evenly in wheel angle for a linear wheel) and the power meter — at a sample-equivalent plane — is
read at each step. Transmission is P / P_full, where P_full is the power with the wheel out
(``full_power_W``) or, when that was not measured (``full_power_W = 0``), the power at the clearest
step divided by the wheel's nominal transmission there (``10^-clear_od``). The fluence of each step
is P / f_rep / spot area (µJ/cm²), with the repetition rate and the measured spot diameter given as
parameters. The run file's ``calibration`` stream is the table; later runs load it
(``calibration = "latest"`` or a path) and install it in the wheel driver.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from pymeasure.experiment import FloatParameter, IntegerParameter

from acq.store import Field, Stream

from ._common import LabProcedure, role_options

log = logging.getLogger(__name__)

__all__ = ["FluenceCalibration"]


class FluenceCalibration(LabProcedure):
    """Attenuator sweep with the power meter → transmission table and fluence map."""

    # tcspc: the session's count-rate suspender polls it and fails on an unconnected tagger (runner note)
    ROLES = ("attenuator", "powermeter", "tcspc")
    DEFAULT_STREAM = "calibration"

    n_steps = IntegerParameter("Steps", minimum=3, maximum=500, default=28)
    min_transmission = FloatParameter("Darkest transmission", minimum=1e-7, maximum=0.5, default=1.2e-4)
    max_transmission = FloatParameter("Clearest transmission (1 = the clear end of the wheel)", minimum=1e-3,
                                      maximum=1.0, default=1.0)
    readings = IntegerParameter("Readings averaged per step", minimum=1, maximum=1000, default=3)
    settle_s = FloatParameter("Settle time per step", units="s", minimum=0.0, maximum=60.0, default=0.2)
    full_power_W = FloatParameter("Power with the wheel out (0 = from the clearest step)", units="W",
                                  minimum=0.0, maximum=10.0, default=0.0)
    clear_od = FloatParameter("Nominal OD at the clear end of the wheel (used when full power is 0)", minimum=0.0,
                              maximum=2.0, default=0.04)
    rep_rate_Hz = FloatParameter("Laser repetition rate", units="Hz", minimum=1.0, maximum=1e10, default=76e6)
    spot_diameter_um = FloatParameter("Spot diameter (1/e², measured)", units="µm", minimum=0.1,
                                      maximum=10000.0, default=100.0)

    def startup(self) -> None:
        super().startup()
        att = self.lab.attenuator
        rng = getattr(att, "transmission_range", None)
        lo, hi = float(self.min_transmission), float(self.max_transmission)
        if rng is not None:  # stay inside what the wheel's present table can reach
            lo, hi = max(lo, float(rng[0])), min(hi, float(rng[1]))
        self._targets = list(np.geomspace(hi, lo, int(self.n_steps)))
        self._p_full: float | None = float(self.full_power_W) or None

    @property
    def spot_area_cm2(self) -> float:
        return math.pi * (self.spot_diameter_um * 1e-4 / 2) ** 2

    def streams(self) -> list[Stream]:
        return [Stream("calibration", (
            Field("angle", (), "f8", "deg", "wheel angle (readback)"),
            Field("target_transmission", (), "f8", "", "nominal transmission asked of the wheel"),
            Field("power", (), "f8", "W", "mean power-meter reading"),
            Field("power_std", (), "f8", "W", "standard deviation of the readings"),
            Field("transmission", (), "f8", "", "P / P_full"),
            Field("fluence_uJcm2", (), "f8", "µJ/cm²", "P / f_rep / spot area"),
        ), signal="transmission", axes=("angle",), long_name="ND-wheel transmission and fluence map")]

    def points(self) -> list[dict[str, Any]]:
        n = int(self.n_steps)
        return [{"step": i} for i in range(n)]

    def measure_point(self, index: int, point: dict[str, Any]) -> None:
        att, pm = self.lab.attenuator, self.lab.powermeter
        target = self._targets[index]
        att.set_transmission(float(target))
        if self.settle_s:
            self.sleep(self.settle_s)
        angle = float(att.readback()["angle"])
        vals = np.array([float(pm.power) for _ in range(int(self.readings))])
        P = float(vals.mean())
        if self._p_full is None:
            if index != 0:  # resumed run: take the full power from the first recorded point
                raise RuntimeError("full power unknown: resume a FluenceCalibration only with full_power_W set")
            self._p_full = P / 10 ** (-self.clear_od)
        T = P / self._p_full
        F = P / self.rep_rate_Hz / self.spot_area_cm2 * 1e6
        self.emit("calibration", angle=angle, target_transmission=float(target), power=P,
                  power_std=float(vals.std(ddof=1)) if vals.size > 1 else math.nan, transmission=T,
                  fluence_uJcm2=F)

    def estimate(self) -> dict[str, float]:
        n = int(self.n_steps)
        return {"lab_seconds": n * (self.settle_s + 0.3 * self.readings + 5.0) + 20.0,
                "bytes": 60_000.0 + n * 6 * 8 + n * 100}

    def validate(self, lab_config: Any) -> list[str]:
        errs = []
        if self.min_transmission >= self.max_transmission:
            errs.append(f"FluenceCalibration: min_transmission {self.min_transmission:g} must be below "
                        f"max_transmission {self.max_transmission:g}")
        o = role_options(lab_config, "attenuator")
        if o.get("rep_rate_Hz") and abs(o["rep_rate_Hz"] - self.rep_rate_Hz) > 1e-3 * self.rep_rate_Hz:
            log.warning("FluenceCalibration rep_rate_Hz %g differs from the attenuator's %g in lab.toml",
                        self.rep_rate_Hz, o["rep_rate_Hz"])
        return errs

    def analyze(self, run: Any) -> dict[str, Any]:
        from acq.summary import summarize

        return summarize(run)
