"""Role interface: the sample position (``SampleStage``, role ``sample_stage``).

The superlattice, the isolated-NC reference film (NCs in polystyrene, physics.md P1 step 1) and a blank
(bare substrate, the I0 of an in-situ transmission, P6) sit side by side on one holder; the role puts the
one that is named in the beam. The positions are named in the role's options::

    [sample_stage]
    backend = "conex"
    resource = "ASRL/dev/ttyUSB2::INSTR"
    positions = {sample = 0.0, reference = 12.5, blank = 25.0}   # mm along the stage

Names are identifiers; every position must lie within ``min_mm``–``max_mm`` (checked with the rest of the
configuration, before anything moves). Procedures ask for the names they need (``sample``, ``reference``,
``blank``): a missing name is a validation error of the procedure, not a failure in the middle of a run.

Backends: :class:`ConexSampleStage` (a Newport CONEX-CC linear stage, the CONEX command set of
:mod:`drivers.conex`) and :class:`ManualSampleStage` (no motor: the operator moves the holder; each move is
a recorded prompt). The stage has no unsafe state: ``make_safe`` does nothing (it stays where it is).

Readbacks: ``position_mm`` and ``slot`` — the index of the named position the stage is at (in the order
of ``positions``), NaN between positions.
"""

from __future__ import annotations

import logging
import math
from abc import abstractmethod
from collections.abc import Callable
from typing import Any

from ._link import LINK_OPTIONS, Link
from .base import Clock, Option, OptionError, Role
from .conex import ConexAxis, ConexCC

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

__all__ = ["SampleStage", "ConexSampleStage", "ManualSampleStage", "STAGE_OPTIONS", "DEFAULT_POSITIONS"]

#: the example holder: the superlattice at 0, the reference film at 12.5 mm, bare substrate at 25 mm
DEFAULT_POSITIONS = {"sample": 0.0, "reference": 12.5, "blank": 25.0}

#: options every backend shares
STAGE_OPTIONS: dict[str, Option] = {
    "positions": Option(dict, dict(DEFAULT_POSITIONS), values_type=float, unit="mm", within=("min_mm", "max_mm"),
                        doc="named positions along the stage: {sample = …, reference = …, blank = …} in mm"),
    "min_mm": Option(float, 0.0, min=-1000.0, max=1000.0, unit="mm", doc="lowest position the driver moves to"),
    "max_mm": Option(float, 25.0, min=-1000.0, max=1000.0, unit="mm", doc="highest position the driver moves to"),
    "tolerance_mm": Option(float, 0.01, min=1e-4, max=5.0, unit="mm",
                           doc="at a named position within this (and a move has reached its target within it)"),
}


class SampleStage(Role):
    ROLE = "sample_stage"
    READBACKS = {"position_mm": "mm", "slot": ""}

    @property
    def positions(self) -> dict[str, float]:
        """Get the named positions (mm)."""
        return dict(self.options["positions"])

    def position_of(self, name: str) -> float:
        """The position (mm) named ``name``; :class:`~drivers.base.OptionError` naming the known ones."""
        pos = self.positions
        if name not in pos:
            raise OptionError("sample_stage position", name,
                              f"is not a named position of the sample stage (named: {', '.join(pos) or 'none'}; "
                              "lab.toml [sample_stage] positions)")
        return float(pos[name])

    @property
    @abstractmethod
    def position_mm(self) -> float:
        """Measure the stage position (mm)."""

    @abstractmethod
    def move_to_mm(self, mm: float) -> None:
        """Move to ``mm`` (checked against min_mm/max_mm first) and wait until there."""

    def move_to_position(self, name: str) -> float:
        """Put the holder's position ``name`` in the beam (validated before anything moves); returns its mm."""
        mm = self.position_of(name)
        log.info("sample stage: %s (%.3f mm) into the beam", name, mm)
        self.move_to_mm(mm)
        return mm

    def at(self, mm: float | None = None) -> str | None:
        """The name of the position at ``mm`` (default: where the stage is), None between positions."""
        x = self.position_mm if mm is None else mm
        tol = float(self.options.get("tolerance_mm", 0.01))
        for name, p in self.positions.items():
            if abs(x - p) <= tol:
                return name
        return None

    def make_safe(self) -> None:
        """Nothing: no position of the holder is unsafe (the stage stays where it is)."""

    def readback(self) -> dict[str, float]:
        x = float(self.position_mm)
        name = self.at(x)
        return {"position_mm": x, "slot": float(list(self.positions).index(name)) if name is not None else math.nan}


class ConexSampleStage(ConexAxis, SampleStage):
    """The sample holder on a Newport CONEX-CC linear stage (CONEX command set, :mod:`drivers.conex`)."""

    AXIS = ("position", "mm", "min_mm", "max_mm", "tolerance_mm", "the sample stage's min_mm/max_mm options")
    OPTIONS = {
        **STAGE_OPTIONS,
        "move_timeout_s": Option(float, 60.0, min=0.1, max=600.0, unit="s", doc="time allowed for a move/home"),
        "poll_s": Option(float, 0.25, min=0.001, max=10.0, unit="s", doc="how often a move's state is asked"),
        **LINK_OPTIONS,
    }

    def __init__(self, resource: str = "", *, clock: Clock | None = None, **options: Any) -> None:
        opts = self.opts = self.checked_options(options)
        super().__init__(resource, clock=clock, **opts)
        self.link = Link("CONEX-CC", resource, self._open, timeout_s=opts["timeout_s"], retries=opts["retries"])

    @classmethod
    def attach(cls, inst: ConexCC, *, clock: Clock | None = None, **options: Any) -> ConexSampleStage:
        """Wrap an existing :class:`~drivers.conex.ConexCC` (e.g. built by ``expected_protocol``)."""
        self = cls("<attached>", clock=clock, **options)
        self.link = Link.attach("CONEX-CC", inst)
        return self

    def _open(self) -> ConexCC:
        return ConexCC(self.resource, visa_library="@py", timeout=int(self.opts["timeout_s"] * 1000))

    def connect(self) -> None:
        """Open the link, read the identity, and home the stage if it is not referenced."""
        self.link.call("1ID?", lambda i: i.identity)
        self.home_if_needed()

    def close(self) -> None:
        self.link.close()

    @property
    def position_mm(self) -> float:
        return self.axis_position()

    def move_to_mm(self, mm: float) -> None:
        self.move_to(mm)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "options": dict(self.opts)}


class ManualSampleStage(SampleStage):
    """A holder without a motor: every move is a prompt to the operator ("put the reference in the beam"),
    recorded (logged at WARNING, kept in :attr:`prompts` and in ``describe()``). ``ask`` — set by the run
    engine for the duration of a run (``acq.runner.Runner._ask_operator``: the prompt goes into the run file's
    event log and to the front end, the CLI on a terminal or the GUI's dialog) — is given the prompt and
    returns True once the operator has done it; when it returns False (nobody there to answer) or there is
    none, the driver waits ``wait_s`` of lab time (the operator's time to move the holder; the wait is
    interruptible) and goes on. The position read back is the one last asked for. Also the in-memory fake
    of the role."""

    OPTIONS = {
        **STAGE_OPTIONS,
        "wait_s": Option(float, 0.0, min=0.0, max=3600.0, unit="s",
                         doc="without an operator prompt to answer, wait this long after each prompt"),
        "start": Option(str, "sample", doc="the named position in the beam when the run starts"),
    }

    def __init__(self, resource: str = "", *, clock: Clock | None = None,
                 ask: Callable[[str], None] | None = None, **options: Any) -> None:
        opts = self.checked_options(options)
        super().__init__(resource, clock=clock, **opts)
        self.ask = ask
        self.prompts: list[dict[str, Any]] = []
        self._mm = self.position_of(opts["start"])

    @property
    def position_mm(self) -> float:
        return self._mm

    def move_to_mm(self, mm: float) -> None:
        lo, hi = float(self.options["min_mm"]), float(self.options["max_mm"])
        if not lo <= mm <= hi:
            raise OptionError("sample_stage position", mm, f"is outside min_mm–max_mm = {lo:g}–{hi:g} mm")
        if abs(mm - self._mm) <= float(self.options["tolerance_mm"]):
            return
        name = self.at(mm)
        text = f"move the sample holder to {name!r} ({mm:.3f} mm)" if name else f"move the sample holder to {mm:.3f} mm"
        self.prompts.append({"t": float(self.clock.now()), "prompt": text})
        log.warning("operator: %s", text)
        answered = bool(self.ask(text)) if self.ask is not None else False
        if not answered and self.options["wait_s"] > 0:
            self.wait(float(self.options["wait_s"]))
        self._mm = float(mm)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "options": dict(self.options), "prompts": list(self.prompts)}
