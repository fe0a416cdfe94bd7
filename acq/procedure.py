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
import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from .clock import Clock
from .plugins import without_modules
from .store import Stream

log = logging.getLogger(__name__)


def _import_pymeasure_experiment() -> None:
    """Import ``pymeasure.experiment`` without the optional modules it would drag in and sflab never uses.

    ``pymeasure.experiment`` imports pint, whose ``pint.compat`` tries ``dask.array`` (≈ 3 s with dask itself: pandas,
    xarray, sparse, numba, scipy.fft) only to learn whether Quantities may wrap dask arrays, and
    ``pymeasure.experiment.experiment`` tries IPython (≈ 0.7 s) for notebook display. Both imports are
    guarded by ``except ImportError`` there, so a ``None`` entry in ``sys.modules`` (the documented way to
    make an import fail) skips them; the entries are removed again at once, so ``import dask.array`` or
    ``IPython`` later works as usual — sflab's Dask cluster uses ``dask.distributed``, never Quantities
    of dask arrays. Every sflab process starts ≈ 3 s sooner (``-X importtime``; tests/acq/test_imports.py).
    """
    import sys

    if "pymeasure.experiment" in sys.modules:
        return
    quiet = logging.getLogger("pymeasure.experiment.experiment")   # its "IPython could not be imported"
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        # only those not imported yet: a process that already uses dask (a Dask worker) keeps it whole
        with without_modules(*(m for m in ("dask", "IPython") if m not in sys.modules)):
            import pymeasure.experiment  # noqa: F401
    finally:
        quiet.setLevel(level)


_import_pymeasure_experiment()

from pymeasure.experiment import Procedure as _PmProcedure  # noqa: E402
from pymeasure.experiment.parameters import (  # noqa: E402
    BooleanParameter,
    FloatParameter,
    IntegerParameter,
    ListParameter,
    Parameter,
    VectorParameter,
)

__all__ = ["Procedure", "RetakePoint", "Issue", "ParameterError", "validate_parameters", "parameter_schema",
           "FloatListParameter", "ROOM_K"]


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


class Issue(str):
    """One validation problem as a record (it is also its message, a ``str``): ``key`` (the parameter
    or option it is about), ``value``, ``allowed``, and ``file``/``line`` once located. Hooks return
    these so that the plan checker places the error on the right line without parsing the text."""

    key: str
    value: Any
    allowed: str
    file: str
    line: int

    def __new__(cls, message: str, *, key: str = "", value: Any = None, allowed: str = "",
                file: str = "", line: int = 0) -> Issue:
        self = super().__new__(cls, message)
        self.key, self.value, self.allowed, self.file, self.line = key, value, allowed, file, line
        return self

    def located(self, file: str, line: int) -> Issue:
        """The same record with ``file:line: `` in front of its message."""
        text = str.__str__(self)
        return Issue(f"{file}:{line}: {text}", key=self.key, value=self.value, allowed=self.allowed,
                     file=file, line=line)

    def to_dict(self) -> dict[str, Any]:
        return {"message": str.__str__(self), "key": self.key, "value": repr(self.value) if self.value is not None
                else None, "allowed": self.allowed, "file": self.file, "line": self.line}


class RetakePoint(Exception):
    """Raised inside a point when a pause or suspension interrupted it (mid-exposure, mid-wait): the
    runner has discarded what the point emitted; :meth:`Procedure.execute` measures it again."""


#: a point interrupted more often than this in a row fails the run (a pause loop cannot spin forever)
MAX_RETAKES = 20
#: where an estimate assumes the cryostat is when it does not know (:attr:`Procedure.start_K` None): room temperature
ROOM_K = 295.0


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
    #: how the time tagger must be cabled for this procedure: ``"tcspc"`` (laser sync + detector) or
    #: ``"hbt"`` (two detectors, no sync). See :meth:`tcspc_wiring` for a choice that depends on parameters.
    TCSPC_WIRING: ClassVar[str] = "tcspc"

    # injected by the runner
    lab: Any = None
    clock: Clock
    resume_from: int = 0
    #: the temperature (K) the run will start at, when known: set by ``acq.plans`` to the previous run's last
    #: temperature (its last point's ``T``) before it asks for the estimate; None = unknown, estimates then
    #: assume room temperature (:data:`ROOM_K`)
    start_K: float | None = None
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

    def measure_point(self, index: int, point: dict[str, Any]) -> None:
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
    def tcspc_wiring(cls, parameters: Mapping[str, Any]) -> str:
        """The time tagger's cabling for a run with ``parameters`` (default :attr:`TCSPC_WIRING`)."""
        return cls.TCSPC_WIRING

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


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"


def _non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return any(_non_finite(v) for v in value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    return False


def _strict(p: Parameter, value: Any) -> None:
    """Type rules pymeasure's ``convert`` is lenient about: no bool, string or list where a number
    goes (``True`` would become 1, ``"20 K"`` would be parsed, 2.5 would be truncated to 2), no NaN
    or infinity anywhere, integers where integers are asked, no list or table for a scalar."""
    if _non_finite(value):
        raise ValueError(f"{value!r} is not a finite number (NaN and infinity are never allowed)")
    if isinstance(p, (FloatParameter, IntegerParameter)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{_kind(value)} is not a number")
        if isinstance(p, IntegerParameter) and isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{value!r} is not an integer")
    elif isinstance(p, FloatListParameter):
        vals = value if isinstance(value, (list, tuple)) else [value]
        for v in vals:
            if isinstance(v, bool) or isinstance(v, (list, tuple, dict)) or (
                    not isinstance(v, (int, float)) and not isinstance(value, str)):
                raise ValueError(f"{v!r} ({_kind(v)}) is not a number")
    elif isinstance(p, BooleanParameter):
        if not isinstance(value, bool):
            raise ValueError(f"{_kind(value)} is not true or false")
    elif isinstance(p, VectorParameter):
        if not isinstance(value, (list, tuple, str)):
            raise ValueError(f"{_kind(value)} is not a list")
    elif isinstance(value, (list, tuple, dict)):
        raise ValueError(f"{_kind(value)} where a single value goes")


def _check_one(p: Parameter, value: Any) -> Any:
    """pymeasure's convert after the strict type rules of :func:`_strict`."""
    _strict(p, value)
    out = p.convert(value)
    if _non_finite(out):
        raise ValueError(f"{value!r} gives a value that is not finite")
    return out


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
