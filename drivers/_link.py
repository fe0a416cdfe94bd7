"""Shared plumbing of the message-based backends: strict range checks and a pyvisa link with
clear errors and a bounded reconnect.

* :func:`check_range` raises :class:`LimitError` (a ``ValueError``) naming the allowed range —
  called before anything is sent.
* :class:`Link` opens a pymeasure ``Instrument`` through pyvisa-py (``visa_library="@py"``),
  runs each operation, and turns what can go wrong on the wire into :class:`~drivers.base.DriverError`
  with the instrument, resource and operation in the text: a timeout (pyvisa-py also reports a
  connection closed by the peer as a timeout), a refused connection, a garbage reply (a value that
  does not parse). After a timeout, a lost connection or a garbage reply the link is closed and
  reopened (so that a late reply cannot be taken for the answer to the next question) and an
  operation marked ``retry=True`` is tried again, at most ``retries`` times (per role, the
  ``retries`` option of ``lab.toml``); then the error is raised, naming the instrument, the
  operation, the attempts and the last error. Each retry waits twice as long as the attempt before,
  at most :data:`MAX_BACKOFF` × timeout (1, 2, 4, 4, … × timeout): a reply that is only late — a host
  loaded by other work, a busy instrument — gets the time it needs on the next attempt instead of
  failing the same short race again, and a dead link is still reported within
  timeout × (1 + 2 + 4 × (retries − 1)) (22 s with the defaults: 2 s, 3 retries).
  An instrument's own error reply (:class:`ReplyError`) and a refused value (:class:`LimitError`)
  are never retried. ``Link.faults`` counts what was survived (``{"timeout": n, "garbage": n}``)
  and ``Link.failures`` what was not; the run engine writes both to the run file's event log.
* Operations that must not be repeated blindly (HV on; the make-safe commands of the backstop) are
  called with ``retry=False``: a failure reaches the caller at once, which verifies the state
  before doing anything again.
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
import socket
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from .base import DriverError, Option

log = logging.getLogger(__name__)

__all__ = ["LimitError", "ReplyError", "GarbageReply", "Link", "check_range", "as_float", "LINK_OPTIONS"]

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
    "retries": Option(int, 3, min=0, max=10,
                      doc="reconnect-and-retry attempts after a timeout, a lost link or a garbage reply"),
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


#: the longest reply timeout of a retry, in multiples of the link's ``timeout_s``
MAX_BACKOFF = 4.0


def _set_timeout(inst: Any, seconds: float) -> None:
    """Set the reply timeout of a pymeasure instrument's pyvisa connection (ms); others are left alone."""
    conn = getattr(getattr(inst, "adapter", None), "connection", None)
    if conn is not None and hasattr(conn, "timeout"):
        conn.timeout = int(round(seconds * 1000))


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


def no_delay(inst: Any) -> None:
    """Turn Nagle's algorithm off on a raw TCP socket link (``TCPIP::host::port::SOCKET``), as NI-VISA does
    by default (``VI_ATTR_TCPIP_NODELAY`` defaults to ``VI_TRUE`` in the VISA specification) and
    pyvisa-py does not. With Nagle on, a set command that the instrument does not answer (``1PA5.0``, ``SETP
    1,80``) holds the next command in the host's buffer until the instrument's delayed ACK (40 ms on Linux):
    a CONEX move took 43 ms of wall time, a Lake Shore setpoint change 131 ms. pyvisa-py 0.8 lists the
    attribute but wires its setter to the generic one that refuses every attribute, so the session's socket
    is set directly."""
    conn = getattr(getattr(inst, "adapter", None), "connection", None)
    name = str(getattr(conn, "resource_name", "")).upper()
    if conn is None or not (name.startswith("TCPIP") and name.endswith("::SOCKET")):
        return
    sessions = getattr(getattr(conn, "visalib", None), "sessions", {})
    sock = getattr(sessions.get(getattr(conn, "session", None)), "interface", None)
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Link:
    """A reconnecting wrapper around one pymeasure ``Instrument``.

    ``factory()`` builds a connected instrument (it may talk, e.g. Spellman reads its scaling).
    ``attach(inst)`` uses an existing instrument (tests with ``expected_protocol``); such a link
    cannot reconnect."""

    def __init__(self, name: str, resource: str, factory: Callable[[], Any] | None, *,
                 timeout_s: float = 2.0, retries: int = 3) -> None:
        self.name = name
        self.resource = resource
        self.factory = factory
        self.timeout_s = timeout_s
        self.retries = retries
        self.reconnects = 0
        #: an exchange did not end cleanly: a stale reply may be waiting (cleared by :meth:`resync`)
        self.stale = False
        self.resyncs = 0
        #: transient faults survived by a retry, by kind ("timeout", "garbage")
        self.faults: dict[str, int] = {}
        #: operations that failed after every attempt, by kind
        self.failures: dict[str, int] = {}
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
            no_delay(self._inst)
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
        kinds: list[str] = []
        for i in range(attempts):
            try:
                inst = self.inst
            except DriverError as e:   # (re)connecting failed: a connection fault like any other
                if self.factory is None:
                    raise
                kind, last = "timeout", e
                kinds.append(kind)
                log.warning("%s at %s: %s (attempt %d of %d)", self.name, self.resource, e, i + 1, attempts)
                self._inst = None
                self.reconnects += 1
                continue
            if i:   # a retry (on a fresh connection): a longer wait than the attempt before
                _set_timeout(inst, self.timeout_s * min(2.0 ** i, MAX_BACKOFF))
            try:
                out = fn(inst)
            except (ReplyError, LimitError):
                raise
            except GarbageReply as e:
                kind, last = "garbage", e
            except DriverError:
                raise
            except Exception as e:
                kind, last = ("timeout" if _is_timeout(e) else "garbage"), e
            else:
                if i:
                    _set_timeout(inst, self.timeout_s)
                for k in kinds:
                    self.faults[k] = self.faults.get(k, 0) + 1
                return out
            kinds.append(kind)
            log.warning("%s at %s: %s on %s (attempt %d of %d: %s: %s)%s", self.name, self.resource,
                        "no reply" if kind == "timeout" else "garbage reply", what, i + 1, attempts,
                        type(last).__name__, last, "; reconnecting" if self.factory is not None else "")
            if self.factory is None:
                break
            self.close()
            self.reconnects += 1   # the next attempt reopens the link (``inst``)
        kind = kinds[-1] if kinds else "timeout"
        self.failures[kind] = self.failures.get(kind, 0) + 1
        if kind == "garbage" and len(set(kinds)) == 1:
            raise GarbageReply(f"{self.name} at {self.resource}: garbage or unexpected reply to {what} after "
                               f"{len(kinds)} attempt(s) ({type(last).__name__}: {last})") from last
        raise DriverError(f"{self.name} at {self.resource}: no valid reply to {what} within {self.timeout_s:g} s "
                          f"after {len(kinds)} attempt(s) (timeout, connection lost or garbage: {last})") from last
