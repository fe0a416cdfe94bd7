"""Base class for sflab measurements: a pymeasure ``Procedure`` that runs inside ``acq.runner``.

A procedure declares, before anything moves:

* ``ROLES``            — the lab roles it uses (the runner connects them and makes them safe);
* pymeasure ``Parameter`` s with units and limits (validated by :func:`validate_parameters`);
* ``streams()``        — the per-point datasets of its run file (names, shapes, dtypes, units, axes);
* ``points()``         — the planned points (a list of dicts), so progress, ETA and resume work.

and implements ``measure_point(index, point)``, which calls ``self.emit(stream, **fields)``. The
runner injects ``lab``, ``clock``, ``emit``, ``checkpoint``, ``should_stop``, ``sleep`` and
``commit_point``. The default ``execute()`` walks ``points()`` from ``self.resume_from``, calling
``checkpoint()`` before each point and committing it after ``measure_point`` returns; a point
interrupted by a pause or suspension (:class:`RetakePoint`) is measured again. A procedure
with logic that is not a list of points overrides ``execute()`` and calls ``commit_point()`` itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from pymeasure.experiment import Procedure as _PmProcedure
from pymeasure.experiment.parameters import (
    BooleanParameter,
    FloatParameter,
    IntegerParameter,
    ListParameter,
    Parameter,
    VectorParameter,
)

from .store import Stream

log = logging.getLogger(__name__)

__all__ = ["Procedure", "RetakePoint", "ParameterError", "validate_parameters", "parameter_schema", "FloatListParameter"]


class FloatListParameter(Parameter):
    """A list of floats, each within ``[minimum, maximum]`` (temperatures, fluences, …).

    Accepts a list, a tuple, or a string ``"10, 20, 40"``; an empty list is refused."""

    def __init__(self, name: str, units: str | None = None, minimum: float = -1e9, maximum: float = 1e9,
                 **kwargs: Any) -> None:
        self.units = units
        self.minimum = minimum
        self.maximum = maximum
        super().__init__(name, **kwargs)

    def convert(self, value: Any) -> list[float]:
        if isinstance(value, str):
            value = [v for v in value.replace(";", ",").split(",") if v.strip()]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError(f"expected a non-empty list of numbers, got {value!r}")
        out = []
        for v in value:
            if isinstance(v, bool):
                raise ValueError(f"{v!r} is not a number")
            f = float(v)
            if not (self.minimum <= f <= self.maximum):
                u = f" {self.units}" if self.units else ""
                raise ValueError(f"{f:g}{u} is outside {self.minimum:g}..{self.maximum:g}{u}")
            out.append(f)
        return out

    def __str__(self) -> str:
        if not self.is_set():
            return ""
        u = f" {self.units}" if self.units else ""
        return ", ".join(f"{v:g}" for v in self._value) + u


class RetakePoint(Exception):
    """Raised inside a point when a pause or suspension interrupted it (mid-exposure, mid-wait): the
    runner has discarded what the point emitted; :meth:`Procedure.execute` measures it again."""


#: a point interrupted more often than this in a row fails the run (a pause loop cannot spin forever)
MAX_RETAKES = 20


class ParameterError(ValueError):
    """A parameter value is not allowed; ``where`` is ``file:line`` when known."""

    def __init__(self, key: str, value: Any, allowed: str, where: str = ""):
        self.key, self.value, self.allowed, self.where = key, value, allowed, where
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}{key} = {value!r} {allowed}")


class Procedure(_PmProcedure):
    ROLES: ClassVar[tuple[str, ...]] = ()
    #: does this procedure expose the sample to X-rays (points under dose are never re-taken)
    XRAY: ClassVar[bool] = False
    DEFAULT_STREAM: ClassVar[str | None] = None
    #: make the X-ray safe while paused (and restore it on resume)
    SAFE_ON_PAUSE: ClassVar[bool] = True

    # injected by the runner
    lab: Any = None
    clock: Any = None
    resume_from: int = 0
    emit: Callable[..., None]
    checkpoint: Callable[[], None]
    should_stop: Callable[[], bool]
    sleep: Callable[[float], None]
    commit_point: Callable[[], int]

    def streams(self) -> list[Stream]:
        """The run file's streams; called after ``startup()`` (instruments are connected)."""
        return []

    def points(self) -> list[dict[str, Any]] | None:
        """The planned points (for progress, ETA and resume), or None for free-form procedures."""
        return None

    def measure_point(self, index: int, point: Mapping[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement measure_point or execute")

    def execute(self) -> None:
        pts = self.points()
        if pts is None:
            raise NotImplementedError(f"{type(self).__name__} must implement points() or execute()")
        for i, p in enumerate(pts):
            if i < self.resume_from:
                continue
            for attempt in range(MAX_RETAKES + 1):
                self.checkpoint()
                try:
                    self.measure_point(i, p)
                except RetakePoint:
                    if attempt == MAX_RETAKES:
                        raise RuntimeError(f"point {i} was interrupted {MAX_RETAKES + 1} times in a row") from None
                    continue
                break
            self.commit_point()

    def estimate(self) -> dict[str, float]:
        """Lab time (s) and disk (bytes) this run will take; override for a better estimate."""
        return {"lab_seconds": float("nan"), "bytes": float("nan")}

    def analyze(self, run: Any) -> dict[str, Any] | None:
        """Summary of the finished run (stored in ``/entry/analysis`` and published); optional."""
        return None

    @classmethod
    def parameter_objects_cls(cls) -> dict[str, Parameter]:
        return {k: v for k, v in vars_all(cls).items() if isinstance(v, Parameter)}


def vars_all(cls: type) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        out.update(vars(klass))
    return out


def _allowed(p: Parameter) -> str:
    if isinstance(p, ListParameter):
        return "one of " + ", ".join(repr(c) for c in p.choices)
    if isinstance(p, FloatListParameter):
        u = f" {p.units}" if p.units else ""
        return f"a list of numbers, each between {p.minimum:g} and {p.maximum:g}{u}"
    if isinstance(p, (FloatParameter, IntegerParameter)):
        u = f" {p.units}" if getattr(p, "units", None) else ""
        return f"between {p.minimum:g} and {p.maximum:g}{u}"
    if isinstance(p, BooleanParameter):
        return "true or false"
    if isinstance(p, VectorParameter):
        return f"a list of {p._length} numbers"
    return "a value"


def parameter_schema(cls: type[Procedure]) -> dict[str, dict[str, Any]]:
    """Parameters as plain data (for the GUI forms, ``sflab check`` and docs)."""
    out = {}
    for key, p in cls.parameter_objects_cls().items():
        out[key] = {"name": p.name, "kind": type(p).__name__, "units": getattr(p, "units", None),
                    "minimum": getattr(p, "minimum", None), "maximum": getattr(p, "maximum", None),
                    "choices": getattr(p, "choices", None), "default": p.default,
                    "allowed": _allowed(p), "description": getattr(p, "description", None)}
    return out


def _check_one(p: Parameter, value: Any) -> Any:
    """Like pymeasure's convert, but also for list-valued parameters (each element checked)."""
    if isinstance(value, (list, tuple)) and not isinstance(p, (VectorParameter, ListParameter,
                                                               FloatListParameter)):
        return [p.convert(v) for v in value]
    return p.convert(value)


def validate_parameters(cls: type[Procedure], values: Mapping[str, Any], *,
                        where: Callable[[str], str] | None = None,
                        prefix: str = "") -> tuple[dict[str, Any], list[ParameterError]]:
    """Check ``values`` (attribute name → value) against ``cls``'s Parameters without creating or
    touching anything. Returns (converted values incl. defaults, errors). Unknown keys are errors.
    ``where(key)`` gives ``file:line`` for messages."""
    schema = cls.parameter_objects_cls()
    out: dict[str, Any] = {}
    errors: list[ParameterError] = []
    loc = where or (lambda _k: "")
    for key, value in values.items():
        p = schema.get(key)
        if p is None:
            known = ", ".join(sorted(schema)) or "none"
            errors.append(ParameterError(prefix + key, value, f"is not a parameter of {cls.__name__} "
                                         f"(parameters: {known})", loc(key)))
            continue
        try:
            out[key] = _check_one(p, value)
        except (ValueError, TypeError) as exc:
            errors.append(ParameterError(prefix + key, value, f"is not allowed for {p.name!r}: must be "
                                         f"{_allowed(p)} ({exc})", loc(key)))
    for key, p in schema.items():
        if key not in out and not any(e.key == prefix + key for e in errors):
            if p.default is None:
                errors.append(ParameterError(prefix + key, None, f"is required ({_allowed(p)})", loc(key)))
            else:
                out[key] = p.default
    return out, errors
