"""The white-light lamp of the in-situ transmission (physics.md P6): a halogen lamp behind the cryostat
whose light passes the sample holder into the collection optics, gated by a Thorlabs SC10 shutter
(:class:`simulators.servers.sc10.LampShutterServer`).

Spectrum: a blackbody at ``T_lamp_K`` (3000 K, a quartz-tungsten-halogen filament) in photons per second
per nm, ``photons_per_s_nm`` at ``ref_nm`` at the output of the collection optics with nothing in the
beam. A lab without the lamp's shutter controller has no lamp (``installed`` is set when its server
starts); the shutter is closed at power-on.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["LampModel"]

#: h c / k_B in nm·K (second radiation constant)
C2_NM_K = 1.438777e7


class LampModel:
    """Halogen lamp + shutter (the SC10 server's device: the interface of the X-ray and laser shutters)."""

    def __init__(self, *, T_lamp_K: float = 3000.0, photons_per_s_nm: float = 4.0e8, ref_nm: float = 520.0) -> None:
        self.T_lamp_K = float(T_lamp_K)
        self.photons_per_s_nm = float(photons_per_s_nm)
        self.ref_nm = float(ref_nm)
        self.installed = False
        self.shutter_enabled = False

    @property
    def shutter_installed(self) -> bool:
        return self.installed

    @property
    def shutter_open(self) -> bool:
        return self.shutter_enabled

    def interlock_closed(self, t: float | None = None) -> bool:  # noqa: ARG002 - the SC10 device interface
        return True

    def _photon_radiance(self, lam_nm: np.ndarray) -> np.ndarray:
        """Planck's law in photons per nm (∝ λ⁻⁴ / (exp(c₂/λT) − 1)), unnormalised."""
        lam = np.maximum(np.asarray(lam_nm, float), 1.0)
        return lam ** -4.0 / np.expm1(C2_NM_K / (lam * self.T_lamp_K))

    def spectrum(self, lam_nm: np.ndarray) -> np.ndarray:
        """Photons/s/nm reaching the collection optics' output with nothing in the beam (0 when the shutter
        is closed or there is no lamp)."""
        lam = np.asarray(lam_nm, float)
        if not (self.installed and self.shutter_enabled):
            return np.zeros_like(lam)
        ref = float(self._photon_radiance(np.array([self.ref_nm]))[0])
        return self.photons_per_s_nm * self._photon_radiance(lam) / ref

    def state(self) -> dict[str, float | bool]:
        return {"installed": self.installed, "shutter_open": self.shutter_enabled, "T_lamp_K": self.T_lamp_K,
                "photons_per_s_nm": self.photons_per_s_nm, "ref_nm": self.ref_nm,
                "blackbody_peak_nm": 2.897771955e6 / self.T_lamp_K if math.isfinite(self.T_lamp_K) else math.nan}
