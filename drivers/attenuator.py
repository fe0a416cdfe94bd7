"""Role interface: laser attenuator (continuous ND wheel on a rotation stage) (``Attenuator``).

Backends: ``drivers.conex.ConexNDAttenuator`` (Newport CONEX-AGP/CC). Safe state: the laser shutter closed
(when the backend has one: a Thorlabs SC10 in front of the laser, option ``shutter_resource``), then maximum
attenuation. Without a shutter the darkest wheel position still lets OD 4 of the laser through.

The shutter follows the wheel: :meth:`set_transmission` / :meth:`set_fluence` open it once the wheel is
there (never during the move), :meth:`set_max_attenuation` closes it before the wheel moves. ``block`` /
``unblock`` act on the shutter alone (the runner blocks the laser while a run is paused or suspended).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from .base import Role


class Attenuator(Role):
    ROLE = "attenuator"
    READBACKS = {"angle": "deg", "transmission": ""}
    #: the laser shutter (``drivers.shutter.SC10Shutter``), when the backend has one
    shutter: Any = None

    def block(self) -> None:
        """Close the laser shutter and check it is closed (nothing to do without one)."""
        if self.shutter is not None:
            self.shutter.close()

    def unblock(self) -> None:
        """Open the laser shutter and check it is open (nothing to do without one)."""
        if self.shutter is not None:
            self.shutter.open()

    def laser_blocked(self) -> bool | None:
        """Measure whether the laser shutter is closed (None: there is no shutter)."""
        return None if self.shutter is None else bool(self.shutter.is_closed)

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
        """Shutter closed first (milliseconds; the wheel takes seconds), then the darkest position —
        attempted even when the shutter did not answer."""
        try:
            self.block()
        finally:
            self.set_max_attenuation()
