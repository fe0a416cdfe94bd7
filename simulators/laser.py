"""Pulsed 3.06 eV laser, continuous ND wheel on a rotation stage, and the power meter's view of it.

* Laser: free-running, ``photon_eV`` (3.06 eV = 405 nm), ``rep_rate_Hz`` (76 MHz oscillator or
  15 kHz amplifier), average power ``power_W`` before the wheel; ``blocked`` models a beam block.
* ND wheel (Thorlabs NDC-50C-4-like): optical density rises linearly with the wheel angle from
  ``od_min`` at 0° to ``od_max`` at ``od_span_deg`` (270°) and stays at ``od_max`` beyond; the real
  coating is not flat, modelled by a small ripple ``od_ripple`` — which is why the driver needs a
  measured calibration table rather than the nominal line.
* Rotation stage (Newport CONEX-style): moves at ``stage_speed_deg_s``, has to be homed after power
  up (NOT REFERENCED), software limits ``[min_deg, max_deg]``.
* Power meter (Thorlabs PM100D + S120C-like photodiode sensor) at a sample-equivalent plane:
  reading = transmitted power × responsivity(405 nm)/responsivity(λ set) + dark offset − zero,
  with relative noise ``pm_rel_noise`` reduced by averaging (√n), over-range above ``pm_range_W``.
* Fluence on the sample = P / f_rep / spot area (``spot_area_cm2``, default a 100 µm disk).
"""

from __future__ import annotations

import logging
import math
import random

from .excitation import HC_EV_NM
from .stage import CONEX_STATES, ConexPositioner

log = logging.getLogger(__name__)

__all__ = ["LaserModel", "CONEX_STATES"]

class LaserModel(ConexPositioner):
    """Laser + ND wheel stage (a :class:`~simulators.stage.ConexPositioner` in degrees) + power meter
    state. The World serialises access."""

    def __init__(self, *, photon_eV: float = 3.06, rep_rate_Hz: float = 76e6, power_W: float = 0.05,
                 spot_area_cm2: float = math.pi * 0.005 ** 2, od_min: float = 0.04, od_max: float = 4.0,
                 od_span_deg: float = 270.0, od_ripple: float = 0.03, stage_speed_deg_s: float = 20.0,
                 min_deg: float = 0.0, max_deg: float = 350.0, pm_rel_noise: float = 0.005,
                 pm_dark_W: float = 5e-8, pm_range_W: float = 0.2, seed: int = 0, t0: float = 0.0) -> None:
        self.photon_eV = photon_eV
        self.rep_rate_Hz = rep_rate_Hz
        self.power_W = power_W
        self.spot_area_cm2 = spot_area_cm2
        self.od_min, self.od_max, self.od_span_deg, self.od_ripple = od_min, od_max, od_span_deg, od_ripple
        super().__init__(lo=min_deg, hi=max_deg, speed=stage_speed_deg_s, t0=t0)
        self.blocked = False
        # laser shutter (a second Thorlabs SC10, role "laser_shutter"): in the beam once its controller
        # is started (simulators.servers.sc10.LaserShutterServer installs it); its output is disabled
        # (shutter closed) at power-on; no interlock chain is wired to its interlock input
        self.shutter_installed = False
        self.shutter_enabled = False
        # power meter
        self.pm_rel_noise = pm_rel_noise
        self.pm_dark_W = pm_dark_W
        self.pm_range_W = pm_range_W
        self.pm_wavelength_nm = 405.0
        self.pm_averaging = 1
        self.pm_zero_W = 0.0
        self._rng = random.Random(f"laser/{seed}")

    @property
    def wavelength_nm(self) -> float:
        return HC_EV_NM / self.photon_eV

    def lab_toml(self) -> dict[str, float]:
        """The attenuator options a lab.toml records for this laser path (what the operator measured with the
        wheel out: power, repetition rate, spot area), so ``calibration = "config"`` and the fluence limits
        work on the simulated lab as at the setup; the wheel's table stays the driver's nominal OD line."""
        return {"full_power_W": self.power_W, "rep_rate_Hz": self.rep_rate_Hz, "spot_area_cm2": self.spot_area_cm2}

    # -- ND wheel --------------------------------------------------------------------------
    def optical_density(self, angle: float) -> float:
        a = min(max(angle, 0.0), self.od_span_deg)
        od = self.od_min + (self.od_max - self.od_min) * a / self.od_span_deg
        return od + self.od_ripple * math.sin(2 * math.pi * a / 90.0)

    def transmission(self, angle: float | None = None) -> float:
        return 10.0 ** (-self.optical_density(self.angle if angle is None else angle))

    # -- laser shutter (the SC10 server's device: the same interface as the X-ray tube's shutter) -----
    @property
    def shutter_open(self) -> bool:
        return self.shutter_enabled

    def interlock_closed(self, t: float | None = None) -> bool:  # noqa: ARG002 - the SC10 device interface
        return True

    def transmitted_power(self) -> float:
        shut = self.shutter_installed and not self.shutter_enabled
        return 0.0 if self.blocked or shut else self.power_W * self.transmission()

    def fluence_uJcm2(self) -> float:
        """Pulse fluence on the sample, µJ/cm² = P / f_rep / area."""
        return self.transmitted_power() / self.rep_rate_Hz / self.spot_area_cm2 * 1e6

    # -- stage (the ConexPositioner, in degrees) --------------------------------------------------
    @property
    def angle(self) -> float:
        return self.position

    @angle.setter
    def angle(self, v: float) -> None:
        self.position = v

    @property
    def min_deg(self) -> float:
        return self.lo

    @property
    def max_deg(self) -> float:
        return self.hi

    @property
    def stage_speed_deg_s(self) -> float:
        return self.speed

    # -- power meter -----------------------------------------------------------------------------
    @staticmethod
    def responsivity(nm: float) -> float:
        """Relative responsivity of a Si photodiode (A/W, roughly ∝ λ between 400 and 950 nm)."""
        return max(nm, 1.0) / 1000.0 * 0.62

    def pm_reading(self) -> float:
        """One power-meter reading in W (what ``MEAS:POW?`` answers)."""
        p_true = self.transmitted_power()
        corr = self.responsivity(self.wavelength_nm) / self.responsivity(self.pm_wavelength_nm)
        sigma = self.pm_rel_noise * p_true / math.sqrt(self.pm_averaging) + 2e-9
        p = p_true * corr + self.pm_dark_W - self.pm_zero_W + self._rng.gauss(0.0, sigma)
        if p > self.pm_range_W:
            return 9.9e37
        return p

    def pm_zero(self) -> None:
        """Dark zeroing (with the beam blocked in the real procedure): stores the dark offset."""
        self.pm_zero_W = self.pm_dark_W

    def state(self) -> dict:
        return {"angle": self.angle, "target": self.target, "referenced": self.referenced,
                "moving": self.moving or self.homing, "transmission": self.transmission(),
                "power_W": self.power_W, "transmitted_W": self.transmitted_power(),
                "rep_rate_Hz": self.rep_rate_Hz, "fluence_uJcm2": self.fluence_uJcm2(),
                "pm_wavelength_nm": self.pm_wavelength_nm, "pm_averaging": self.pm_averaging}
