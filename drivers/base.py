"""What every role driver offers the run engine.

``drivers`` imports nothing of ours. A role interface (``drivers.cryostat.TemperatureController``,
``drivers.xray.XRaySource``, ``drivers.spectrometer.Spectrometer``, ``drivers.tcspc.TCSPC``,
``drivers.attenuator.Attenuator``, ``drivers.powermeter.PowerMeter``) subclasses :class:`Role`;
each vendor backend subclasses its role interface.

The engine relies on exactly this much of every role:

* ``connect()`` / ``close()``;
* ``make_safe()`` — put the instrument in its safe state (idempotent, callable in any state);
* ``readback()`` — scalar readbacks ``{name: value}`` whose names and units are declared up front
  in the class attribute ``READBACKS = {name: unit}`` (the run file is created before the first
  point, so the columns must be known before anything is measured);
* ``OPTIONS`` — the backend's ``lab.toml`` options as :class:`Option` s, so a configuration is
  validated before any instrument is contacted.

Backends take ``(resource: str, *, clock=None, **options)``. ``clock`` is any object with
``sleep(s)``, ``monotonic()``, ``now()`` and ``call_every(interval, fn)`` (see ``acq.clock``); when it
is ``None`` the backend uses :class:`WallClock`.
"""

from __future__ import annotations

import builtins
import difflib
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

log = logging.getLogger(__name__)

__all__ = ["Option", "OptionError", "Role", "WallClock", "DriverError", "SafetyError",
           "validate_options", "CancelToken", "POLL_S"]

#: longest blind stretch of any wait (lab seconds): every wait polls its cancellation token at
#: least this often, so abort / pause / MAKE SAFE / suspenders / signals act within one poll
#: (≤ 1 lab s; 0.25 lab s keeps a poll well inside 0.5 s wall on the real clock)
POLL_S = 0.25


class DriverError(RuntimeError):
    """An instrument could not do what was asked (timeout, garbage reply, instrument error)."""


class SafetyError(DriverError):
    """A request was refused because it would be unsafe (interlock open, above rating, …)."""


class OptionError(ValueError):
    """A configuration or parameter value is not allowed. ``key``, ``value`` and ``allowed`` say why."""

    def __init__(self, key: str, value: Any, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key} = {value!r} {allowed}")


@dataclass(frozen=True)
class Option:
    """One backend option in ``lab.toml``: type, default, limits, allowed choices and unit.

    ``check(key, value)`` returns the coerced value or raises :class:`OptionError` whose text says
    what is allowed ("is above the generator's 50 kV rating" via ``max_reason``).
    """

    type: type | tuple[type, ...] = float
    default: Any = None
    min: float | None = None
    max: float | None = None
    choices: Sequence[Any] | None = None
    unit: str = ""
    doc: str = ""
    required: bool = False
    max_reason: str = ""
    min_reason: str = ""
    #: a table option (``type=dict``): the type every value must have (e.g. float positions)
    values_type: builtins.type | None = None
    #: ``(low option, high option)``: the value — every value of a table — must lie between the values
    #: of these two options of the same backend (checked by :func:`validate_options`)
    within: tuple[str, str] | None = None

    def describe(self) -> str:
        parts = []
        if self.choices is not None:
            parts.append("one of " + ", ".join(repr(c) for c in self.choices))
        if self.min is not None or self.max is not None:
            lo = "-inf" if self.min is None else f"{self.min:g}"
            hi = "inf" if self.max is None else f"{self.max:g}"
            parts.append(f"between {lo} and {hi}{(' ' + self.unit) if self.unit else ''}")
        return "; ".join(parts) or f"a {getattr(self.type, '__name__', self.type)}"

    def check(self, key: str, value: Any) -> Any:
        if value is None and self.default is None and not self.required:
            return None  # an optional option left unset
        types = self.type if isinstance(self.type, tuple) else (self.type,)
        if float in types and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if bool not in types and isinstance(value, bool):
            raise OptionError(key, value, f"must be {self.describe()}, not a boolean")
        if _non_finite(value):
            raise OptionError(key, value, f"must be {self.describe()}; NaN and infinity are never allowed "
                                          "(a NaN limit would disable the limit)")
        if not isinstance(value, types):
            names = " or ".join(t.__name__ for t in types)
            raise OptionError(key, value, f"must be a {names} ({self.describe()})")
        if isinstance(value, dict) and self.values_type is not None:
            value = {k: self._table_value(key, k, v) for k, v in value.items()}
        if self.choices is not None and value not in self.choices:
            raise OptionError(key, value, f"is not allowed; allowed: {self.describe()}")
        unit = f" {self.unit}" if self.unit else ""
        if self.min is not None and isinstance(value, (int, float)) and value < self.min:
            why = self.min_reason or f"is below the minimum {self.min:g}{unit}"
            raise OptionError(key, value, why)
        if self.max is not None and isinstance(value, (int, float)) and value > self.max:
            why = self.max_reason or f"is above the maximum {self.max:g}{unit}"
            raise OptionError(key, value, why)
        return value


    def _table_value(self, key: str, name: Any, v: Any) -> Any:
        t = self.values_type
        assert t is not None
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name):
            raise OptionError(key, name, "has a name that is not an identifier (letters, digits, _ or -, "
                                         "starting with a letter)")
        if t is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if not isinstance(v, t) or isinstance(v, bool):
            unit = f" ({self.unit})" if self.unit else ""
            raise OptionError(f"{key}.{name}", v, f"must be a {t.__name__}{unit}")
        return v


def _non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list | tuple):
        return any(_non_finite(v) for v in value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    return False


def _suggest(word: str, options: Sequence[str]) -> str:
    m = difflib.get_close_matches(word, list(options), n=1)
    return f" — did you mean {m[0]!r}?" if m else ""


def cross_check_options(values: Mapping[str, Any], *, prefix: str = "") -> list[OptionError]:
    """Rules between options of one backend: every ``min_X`` must be below its ``max_X``, and the
    ``*_below_K`` heater-range thresholds must increase (low below medium)."""
    errors: list[OptionError] = []
    for key, lo in values.items():
        if not key.startswith("min_"):
            continue
        hi_key = "max_" + key[4:]
        hi = values.get(hi_key)
        if isinstance(lo, int | float) and isinstance(hi, int | float) and not lo < hi:
            errors.append(OptionError(prefix + key, lo, f"must be below {prefix}{hi_key} = {hi!r}"))
    lo, hi = values.get("low_range_below_K"), values.get("medium_range_below_K")
    if isinstance(lo, int | float) and isinstance(hi, int | float) and lo > hi:
        errors.append(OptionError(prefix + "low_range_below_K", lo,
                                  f"must not be above {prefix}medium_range_below_K = {hi!r}"))
    return errors


def validate_options(schema: Mapping[str, Option], options: Mapping[str, Any], *,
                     prefix: str = "") -> tuple[dict[str, Any], list[OptionError]]:
    """Check ``options`` against ``schema``. Returns (values with defaults filled in, errors).

    Unknown keys are errors (a typo must not silently fall back to a default).
    """
    out: dict[str, Any] = {}
    errors: list[OptionError] = []
    for key, value in options.items():
        if key not in schema:
            allowed = ", ".join(sorted(schema)) or "none"
            errors.append(OptionError(prefix + key, value, f"is not a known option (known: {allowed})"
                                      f"{_suggest(key, sorted(schema))}"))
            continue
        try:
            out[key] = schema[key].check(prefix + key, value)
        except OptionError as e:
            errors.append(e)
    for key, opt in schema.items():
        if key not in out and not any(e.key == prefix + key for e in errors):
            if opt.required:
                errors.append(OptionError(prefix + key, None, f"is required ({opt.describe()})"))
            else:
                out[key] = opt.default
    if not errors:
        errors.extend(cross_check_options(out, prefix=prefix))
        errors.extend(_within_errors(schema, out, prefix))
    return out, errors


def _within_errors(schema: Mapping[str, Option], values: Mapping[str, Any], prefix: str) -> list[OptionError]:
    """Options whose value (or every value of their table) must lie between two other options (``Option.within``)."""
    errors: list[OptionError] = []
    for key, opt in schema.items():
        if opt.within is None or values.get(key) is None:
            continue
        lo_key, hi_key = opt.within
        lo, hi = values.get(lo_key), values.get(hi_key)
        v = values[key]
        items = v.items() if isinstance(v, dict) else [("", v)]
        unit = f" {opt.unit}" if opt.unit else ""
        for name, x in items:
            if isinstance(x, int | float) and isinstance(lo, int | float) and isinstance(hi, int | float) \
                    and not lo <= x <= hi:
                k = f"{prefix}{key}" + (f".{name}" if name else "")
                errors.append(OptionError(k, x, f"is outside {prefix}{lo_key}–{prefix}{hi_key} = "
                                                f"{lo:g}–{hi:g}{unit}"))
    return errors


class Cancellable(Protocol):
    """A periodic callback's handle."""

    def cancel(self) -> None: ...


@runtime_checkable
class Clock(Protocol):
    """What every component may ask of the lab clock (``acq.clock`` re-exports this one protocol: the
    drivers cannot import ``acq``, so the protocol lives in the lower layer)."""

    def now(self) -> float:
        """Lab time, POSIX seconds."""
        ...

    def monotonic(self) -> float:
        """Lab seconds since the clock was created; never decreases."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait this many lab seconds."""
        ...

    def call_every(self, interval: float, fn: Callable[[], None], *, name: str = "",
                   hold: bool = False) -> Cancellable:
        """Run ``fn`` every ``interval`` lab seconds until the returned handle is cancelled. ``hold``: an
        accelerated clock does not let lab time run ahead of this callback while the host is late running
        it (a keep-alive; real time needs nothing)."""
        ...


class CancelToken:
    """What every long wait of a driver polls: the one cancellation mechanism of sflab.

    The owner (the run engine) installs ``hook``; ``poll()`` calls it. The hook returns to let the
    wait go on, blocks while the run is paused or suspended, or raises to stop the wait (the
    engine's abort exception, or its "retake the point" exception after a pause). ``poll(urgent=True)``
    asks the owner to look at its conditions now (the generator saw HV drop: is the interlock
    open?). Without a hook (a driver used on its own, or the backstop) ``poll()`` does nothing.

    ``sleep(clock, seconds)`` is the only sleep a driver's wait may use for more than ``POLL_S``:
    it sleeps in slices of at most ``POLL_S`` lab seconds and polls between them.
    """

    def __init__(self, hook: Callable[..., None] | None = None) -> None:
        self.hook = hook
        self.polls = 0

    def poll(self, *, urgent: bool = False) -> None:
        self.polls += 1
        hook = self.hook
        if hook is not None:
            hook(urgent=urgent)

    def sleep(self, clock: Any, seconds: float) -> None:
        end = clock.monotonic() + max(float(seconds), 0.0)
        while True:
            self.poll()
            left = end - clock.monotonic()
            if left <= 0:
                return
            clock.sleep(min(left, POLL_S))


#: the token of a role nobody watches (polling it does nothing)
NO_CANCEL = CancelToken()


class WallClock:
    """Fallback clock with the lab-clock interface, for drivers used outside sflab's engine."""

    def __init__(self) -> None:
        self._t0 = time.monotonic()

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic() - self._t0

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def call_every(self, interval: float, fn: Callable[[], None], *, name: str = "", hold: bool = False) -> Any:
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(interval):
                try:
                    fn()
                except Exception as exc:  # pragma: no cover - logged only
                    log.warning("periodic %s failed: %s", name, exc)

        threading.Thread(target=loop, name=name or "periodic", daemon=True).start()

        class _Handle:
            def cancel(self_inner) -> None:
                stop.set()

        return _Handle()


class Role:
    """Base of every role interface. Subclasses set ``ROLE`` and ``READBACKS`` and implement
    ``make_safe`` and ``readback``. Not a dataclass, so that a backend may also be (or wrap) a
    pymeasure ``Instrument``."""

    ROLE: ClassVar[str] = ""
    #: scalar readbacks recorded with every point: name -> unit
    READBACKS: ClassVar[dict[str, str]] = {}
    #: lab.toml options of this backend
    OPTIONS: ClassVar[dict[str, Option]] = {}

    #: polled by every long wait of the backend (installed by the run engine, see CancelToken)
    cancel: CancelToken = NO_CANCEL

    def __init__(self, resource: str = "", *, clock: Clock | None = None, **options: Any) -> None:
        self.resource = resource
        self.clock = clock if clock is not None else WallClock()
        self.options = dict(options)
        self.cancel = NO_CANCEL

    def wait(self, seconds: float) -> None:
        """Wait ``seconds`` of lab time, polling ``cancel`` at least every ``POLL_S``."""
        self.cancel.sleep(self.clock, seconds)

    @classmethod
    def checked_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """``OPTIONS`` defaults updated with ``options``, each checked; raises the first
        :class:`OptionError` (unknown key or bad value) before anything is sent."""
        values, errors = validate_options(cls.OPTIONS, options)
        if errors:
            raise errors[0]
        return values

    def connect(self) -> None:
        """Open the link and check the instrument answers (``*IDN?`` or equivalent)."""

    def close(self) -> None:
        """Release the link. Must not raise."""

    def make_safe(self) -> None:
        """Put the instrument in its safe state. Idempotent; raises DriverError if it could not."""
        raise NotImplementedError(f"{type(self).__name__} must define its safe state")

    def readback(self) -> dict[str, float]:
        """Current scalar readbacks, keys exactly ``READBACKS``."""
        return {}

    def describe(self) -> dict[str, Any]:
        """Identity and settings for the run file's provenance (model, serial, firmware, options)."""
        return {"backend": type(self).__name__, "resource": self.resource}
