"""CONEX positioners and the sample holder on its linear stage.

* :class:`ConexPositioner` — the motion model of a Newport CONEX controller (CONEX-AGP rotation stage or
  CONEX-CC linear stage; instruments.md §5.3): NOT REFERENCED after power-up, homing to 0, moves at
  ``speed`` units per lab second, software limits ``[lo, hi]``, the controller state codes of ``TS`` and
  the error code ``TE`` reports. :class:`simulators.servers.conex.ConexServer` speaks its bytes; the
  laser's ND-wheel stage (:class:`simulators.laser.LaserModel`) and the sample stage are both one.
* :class:`SampleHolder` — what sits along the sample stage: named pads (the superlattice, the isolated-NC
  reference film, bare substrate) at positions in mm, each ``pad_mm`` wide. Between pads the beam falls on
  the holder's frame: no emission and no transmitted light.
* :class:`LinearStageModel` — a CONEX-CC linear stage (25 mm travel, 2.5 mm/s) carrying a holder.

Nothing here imports another sflab package.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ConexPositioner", "CONEX_STATES", "SampleHolder", "Pad", "LinearStageModel", "DEFAULT_PADS"]

CONEX_STATES = {"NOT_REFERENCED": "0A", "HOMING": "1E", "MOVING": "28", "READY_FROM_HOMING": "32",
                "READY_FROM_MOVING": "33", "DISABLE": "3C"}


class ConexPositioner:
    """Motion model of one CONEX positioner (see module docstring). The World serialises access."""

    def __init__(self, *, lo: float, hi: float, speed: float, t0: float = 0.0) -> None:
        self.lo, self.hi, self.speed = float(lo), float(hi), float(speed)
        self.t = t0
        self.position = 0.0
        self.target = 0.0
        self.referenced = False
        self.homing = False
        self.moving = False
        self.last_ready = "READY_FROM_HOMING"
        self.error_code = "@"

    def state_code(self) -> str:
        if self.homing:
            return CONEX_STATES["HOMING"]
        if self.moving:
            return CONEX_STATES["MOVING"]
        if not self.referenced:
            return CONEX_STATES["NOT_REFERENCED"]
        return CONEX_STATES[self.last_ready]

    def home(self, t: float) -> None:
        self.advance_to(t)
        self.homing = True
        self.moving = False
        self.target = 0.0

    def move_to(self, target: float, t: float) -> None:
        self.advance_to(t)
        self.target = target
        self.moving = True

    def stop(self, t: float) -> None:
        self.advance_to(t)
        self.target = self.position
        self.moving = self.homing = False

    def advance_to(self, t: float) -> None:
        if t <= self.t:
            return
        dt = t - self.t
        self.t = t
        if self.homing or self.moving:
            step = self.speed * dt
            if abs(self.target - self.position) <= step:
                self.position = self.target
                if self.homing:
                    self.referenced = True
                    self.last_ready = "READY_FROM_HOMING"
                else:
                    self.last_ready = "READY_FROM_MOVING"
                self.homing = self.moving = False
            else:
                self.position += math.copysign(step, self.target - self.position)


@dataclass
class Pad:
    """One place on the holder: ``what`` is ``"sample"`` (the campaign's sample), ``"reference"`` (the
    reference film) or ``"substrate"`` (bare substrate); centred at ``mm``."""

    name: str
    mm: float
    what: str


#: the example holder of lab.example.toml: superlattice at 0, reference film at 12.5 mm, blank at 25 mm
DEFAULT_PADS = (Pad("sample", 0.0, "sample"), Pad("reference", 12.5, "reference"), Pad("blank", 25.0, "substrate"))


@dataclass
class SampleHolder:
    """Pads side by side along the stage (see module docstring). ``substrate_transmission``: the bare
    substrate (a SiN_x membrane, [000] P6) under every pad — the I0 of a transmission measured through
    ``blank`` divides it out."""

    pads: tuple[Pad, ...] = DEFAULT_PADS
    pad_mm: float = 4.0
    substrate_transmission: float = 0.9
    extra: dict[str, Any] = field(default_factory=dict)

    def pad_at(self, mm: float) -> Pad | None:
        for p in self.pads:
            if abs(mm - p.mm) <= self.pad_mm / 2:
                return p
        return None

    def positions(self) -> dict[str, float]:
        return {p.name: p.mm for p in self.pads}


class LinearStageModel(ConexPositioner):
    """A CONEX-CC linear stage (default: 25 mm travel at 2.5 mm/s) carrying a :class:`SampleHolder`.
    ``installed`` is set when its controller's server starts (a lab without one has the sample in the beam)."""

    def __init__(self, *, holder: SampleHolder | None = None, lo: float = 0.0, hi: float = 25.0,
                 speed_mm_s: float = 2.5, t0: float = 0.0) -> None:
        super().__init__(lo=lo, hi=hi, speed=speed_mm_s, t0=t0)
        self.holder = holder if holder is not None else SampleHolder()
        self.installed = False

    def pad(self) -> Pad | None:
        """The pad in the beam now (None: the frame between pads)."""
        return self.holder.pad_at(self.position)

    def state(self) -> dict[str, Any]:
        p = self.pad()
        return {"position_mm": self.position, "target_mm": self.target, "referenced": self.referenced,
                "moving": self.moving or self.homing, "in_beam": p.name if p else None,
                "positions": self.holder.positions()}
