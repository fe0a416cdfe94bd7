"""Shared plumbing of the message-based backends: strict range checks and a pyvisa link with
clear errors and a bounded reconnect.

* :func:`check_range` raises :class:`LimitError` (a ``ValueError``) naming the allowed range —
  called before anything is sent.
* :class:`Link` opens a pymeasure ``Instrument`` through pyvisa-py (``visa_library="@py"``),
  runs each operation, and turns what can go wrong on the wire into :class:`~drivers.base.DriverError`
  with the instrument, resource and operation in the text: a timeout (pyvisa-py also reports a
  connection closed by the peer as a timeout), a refused connection, a garbage reply (a value that
  does not parse). After a timeout or lost connection the link is closed and reopened (so that a
  late reply cannot be taken for the answer to the next question) and an operation marked
  ``retry=True`` is tried again, at most ``retries`` times; then the error is raised. Nothing waits
  longer than (retries + 1) × timeout.
* **Stale replies.** An exchange that did not end cleanly — a garbage reply, or a write/read pair cut by
  a signal (``KeyboardInterrupt``, SIGTERM) between the write and the read — may leave a reply in the
  input buffer that the *next* question would take for its answer (a status reply read as the answer
  to HV off). The link marks itself ``stale`` and, before its next exchange, resynchronises (:meth:`Link.resync`):
  a link that can reconnect opens a fresh connection (a late reply goes to the old socket), and the
  input buffer is flushed (pymeasure's ``flush_read_buffer``: everything already received is read and
  discarded). ``resync()`` is also what the engine's backstop calls between safe-state attempts.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from .base import DriverError, Option

log = logging.getLogger(__name__)

__all__ = ["LimitError", "ReplyError", "Link", "check_range", "as_float", "LINK_OPTIONS"]

T = TypeVar("T")


class LimitError(ValueError):
    """A requested value is outside what is allowed; raised before anything is sent."""


class ReplyError(DriverError):
    """The instrument answered with its own error code (``code``) to ``what``."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class GarbageReply(DriverError):
    """The instrument's reply could not be understood."""


LINK_OPTIONS = {
    "timeout_s": Option(float, 2.0, min=0.05, max=60.0, unit="s", doc="reply timeout per message"),
    "retries": Option(int, 1, min=0, max=5, doc="reconnect-and-retry attempts after a timeout or lost link"),
}


def check_range(name: str, value: Any, lo: float, hi: float, unit: str = "", why: str = "") -> float:
    """Return ``value`` as float if ``lo <= value <= hi``; else raise :class:`LimitError` naming the
    range (and ``why``, e.g. "the generator's 50 kV rating")."""
    u = f" {unit}" if unit else ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LimitError(f"{name} must be a number between {lo:g} and {hi:g}{u}, not {value!r}")
    v = float(value)
    if not math.isfinite(v) or not lo <= v <= hi:
        extra = f" ({why})" if why else ""
        raise LimitError(f"{name} = {value:g}{u} is outside the allowed range {lo:g} to {hi:g}{u}{extra}")
    return v


def as_float(value: Any, what: str) -> float:
    """Coerce a parsed reply to float or raise :class:`GarbageReply`."""
    if isinstance(value, list | tuple) and len(value) == 1:
        value = value[0]
    try:
        if isinstance(value, bool):
            raise TypeError
        v = float(value)
    except (TypeError, ValueError):
        raise GarbageReply(f"garbage reply to {what}: {value!r} is not a number") from None
    if not math.isfinite(v):
        raise GarbageReply(f"garbage reply to {what}: {value!r}")
    return v


def _is_timeout(exc: BaseException) -> bool:
    try:
        import pyvisa

        if isinstance(exc, pyvisa.errors.VisaIOError):
            return True
    except ImportError:  # pragma: no cover
        pass
    if isinstance(exc, ConnectionRefusedError | ConnectionResetError | BrokenPipeError | TimeoutError):
        return True
    if isinstance(exc, ConnectionError):  # pymeasure's framing/checksum complaints: a bad reply
        return False
    return isinstance(exc, OSError | EOFError)


class Link:
    """A reconnecting wrapper around one pymeasure ``Instrument``.

    ``factory()`` builds a connected instrument (it may talk, e.g. Spellman reads its scaling).
    ``attach(inst)`` uses an existing instrument (tests with ``expected_protocol``); such a link
    cannot reconnect."""

    def __init__(self, name: str, resource: str, factory: Callable[[], Any] | None, *,
                 timeout_s: float = 2.0, retries: int = 1) -> None:
        self.name = name
        self.resource = resource
        self.factory = factory
        self.timeout_s = timeout_s
        self.retries = retries
        self.reconnects = 0
        #: an exchange did not end cleanly: a stale reply may be waiting (cleared by :meth:`resync`)
        self.stale = False
        self.resyncs = 0
        self._inst: Any = None
        self.lock = threading.RLock()  # keep-alives may come from the clock's thread

    @classmethod
    def attach(cls, name: str, inst: Any) -> Link:
        link = cls(name, "<attached>", None)
        link._inst = inst
        return link

    @property
    def inst(self) -> Any:
        if self._inst is None:
            self.open()
        return self._inst

    def open(self) -> None:
        if self.factory is None:
            raise DriverError(f"{self.name}: link closed and cannot be reopened (attached instrument)")
        try:
            self._inst = self.factory()
        except DriverError:
            raise
        except Exception as e:
            self._inst = None
            raise DriverError(f"{self.name} at {self.resource}: cannot connect ({type(e).__name__}: {e})") from e

    def close(self) -> None:
        inst, self._inst = self._inst, None
        if inst is None or self.factory is None:
            return
        try:
            inst.adapter.close()
        except Exception as e:  # must not raise
            log.debug("%s: close failed: %s", self.name, e)

    def call(self, what: str, fn: Callable[[Any], T], *, retry: bool = True) -> T:
        """Run ``fn(instrument)``; translate failures (see module docstring)."""
        with self.lock:
            if self.stale:
                self.resync()
            try:
                return self._call(what, fn, retry)
            except GarbageReply:
                self.stale = True      # what came may be half a reply, or a reply to something else
                raise
            except BaseException as e:
                if not isinstance(e, Exception):
                    self.stale = True  # a signal cut the exchange between its write and its read
                raise

    def resync(self) -> None:
        """Discard whatever stale replies may be waiting: reconnect if this link can, then flush the
        input buffer. Never raises (a link that cannot be reached reports it on the next call)."""
        with self.lock:
            self.resyncs += 1
            if self.factory is not None and self._inst is not None:
                self.close()
                try:
                    self.open()
                except DriverError as e:
                    log.warning("%s: reconnect while resynchronising failed: %s", self.name, e)
            inst = self._inst
            if inst is not None:
                try:
                    inst.adapter.flush_read_buffer()
                except Exception as e:  # noqa: BLE001 - not every adapter can; reconnecting did the job
                    log.debug("%s: flush_read_buffer: %s", self.name, e)
            self.stale = False
            log.info("%s at %s: link resynchronised (stale replies discarded)", self.name, self.resource)

    def _call(self, what: str, fn: Callable[[Any], T], retry: bool) -> T:
        attempts = 1 + (self.retries if retry and self.factory is not None else 0)
        last: BaseException | None = None
        for i in range(attempts):
            try:
                return fn(self.inst)
            except (DriverError, LimitError):
                raise
            except Exception as e:
                if not _is_timeout(e):
                    raise GarbageReply(f"{self.name} at {self.resource}: garbage or unexpected reply to "
                                       f"{what} ({type(e).__name__}: {e})") from e
                last = e
                log.warning("%s at %s: no reply to %s within %g s (attempt %d of %d); reconnecting",
                            self.name, self.resource, what, self.timeout_s, i + 1, attempts)
                if self.factory is not None:
                    self.close()
                    self.reconnects += 1
                    if i + 1 < attempts:
                        try:
                            self.open()
                        except DriverError as oe:
                            last = oe
                            break
        raise DriverError(f"{self.name} at {self.resource}: no reply to {what} within {self.timeout_s:g} s "
                          f"after {attempts} attempt(s) (timeout or connection lost: {last})")
