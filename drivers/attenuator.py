"""Role interface: laser attenuator (continuous ND wheel on a rotation stage) (``Attenuator``).

Backends: ``drivers.conex.ConexNDAttenuator`` (Newport CONEX-AGP/CC). Safe state: maximum attenuation.
"""

from __future__ import annotations

from abc import abstractmethod

from .base import Role


class Attenuator(Role):
    ROLE = "attenuator"
    READBACKS = {"angle": "deg", "transmission": ""}

    @abstractmethod
    def set_transmission(self, transmission: float) -> None:
        """Move to the angle giving this transmission (through the calibration table)."""

    @property
    @abstractmethod
    def transmission(self) -> float:
        """Measure the present transmission (from the angle and the calibration)."""

    @abstractmethod
    def set_max_attenuation(self) -> None:
        """Move to the darkest position."""

    def set_fluence(self, uJ_per_cm2: float) -> None:
        """Set the pulse fluence (µJ/cm² = P / f_rep / spot area) through the calibration. Backends
        that know the calibrated full power, repetition rate and spot area implement it."""
        raise NotImplementedError(f"{type(self).__name__} cannot set a fluence (no power calibration)")

    def make_safe(self) -> None:
        self.set_max_attenuation()
