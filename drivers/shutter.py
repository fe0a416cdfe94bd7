"""Thorlabs SC10 shutter controller, driving the X-ray shutter (part of the ``xray`` role).

Command set: Thorlabs SC10 manual (see ``docs/shutter.md``). ASCII over RS-232 (9600 8N1, or
115200) or, in simulation, a loopback TCP socket; commands end in CR; the controller echoes each
command + CR, then the value + CR for queries, then the prompt ``"> "``. Errors replace the value
with ``Command error CMD_NOT_DEFINED`` / ``CMD_ARG_INVALID``.

``ens`` *toggles* the output, so this driver never sends it without first reading ``ens?``, and it
never retries it blindly after a lost link (it re-reads the state instead).
"""

from __future__ import annotations

import logging
from enum import IntEnum
from typing import Any

from pymeasure.instruments import Instrument
from pymeasure.instruments.validators import strict_discrete_set, strict_range

from ._link import GarbageReply, Link, ReplyError
from .base import DriverError

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

__all__ = ["SC10", "SC10Shutter", "SC10Mode"]

PROMPT = b"> "


class SC10Mode(IntEnum):
    """``mode=`` values."""

    MANUAL = 1
    AUTO = 2
    SINGLE = 3
    REPEAT = 4
    EXTERNAL_GATE = 5


def _bool01(v: Any) -> bool:
    s = str(v).strip()
    if s not in ("0", "1"):
        raise ValueError(f"expected 0 or 1, got {s!r}")
    return s == "1"


class SC10(Instrument):
    """Thorlabs SC10 shutter controller (echo + prompt protocol, see module docstring)."""

    def __init__(self, adapter: Any, name: str = "Thorlabs SC10 Shutter Controller", **kwargs: Any):
        kwargs.setdefault("asrl", {"baud_rate": 9600})
        super().__init__(adapter, name, read_termination="\r", write_termination="\r",
                         includeSCPI=False, **kwargs)

    def write(self, command: str, **kwargs: Any) -> None:
        """Send ``command`` and consume its echo. For a set command also consume the prompt, or the
        error line that replaces it (raised as :class:`~drivers._link.ReplyError`)."""
        super().write(command, **kwargs)
        echo = super().read()
        if echo.strip() != command:
            raise ConnectionError(f"SC10 echoed {echo!r} to {command!r}")
        if not command.endswith("?"):
            head = self.read_bytes(2)
            if head != PROMPT:
                rest = super().read()
                self._prompt(command)
                text = (head.decode("latin-1") + rest).strip()
                if "CMD_" in text or "rror" in text:   # the manual's error line: the instrument refused it
                    raise ReplyError(f"SC10 error to {command!r}: {text}", code=text)
                # anything else in place of the prompt is a garbled reply: the link resynchronises and may
                # retry (a toggle is only ever sent inside a verified retry, SC10Shutter._set)
                raise GarbageReply(f"SC10 sent {text!r} instead of the prompt after {command!r}")

    def _prompt(self, command: str) -> None:
        prompt = self.read_bytes(2)
        if prompt != PROMPT:
            raise ConnectionError(f"SC10 sent {prompt!r} instead of the prompt after {command!r}")

    def read(self, **kwargs: Any) -> str:
        """Read a query's value line and the prompt after it; raise on an error reply."""
        value = super().read(**kwargs)
        self._prompt("a query")
        if "CMD_" in value or "rror" in value:
            raise ReplyError(f"SC10 error: {value.strip()}", code=value.strip())
        return value

    identity = Instrument.measurement(
        "id?", """Get the model and firmware identification (str).""", cast=str,
    )

    enabled = Instrument.measurement(
        "ens?",
        """Get whether the output is enabled (bool; in manual mode enabled = shutter open).""",
        get_process=_bool01, cast=str,
    )

    closed = Instrument.measurement(
        "closed?", """Get whether the shutter is closed (bool).""", get_process=_bool01, cast=str,
    )

    interlock_tripped = Instrument.measurement(
        "interlock?", """Get whether the interlock input is tripped (bool).""", get_process=_bool01, cast=str,
    )

    mode = Instrument.control(
        "mode?", "mode=%d",
        """Control the operating mode (:class:`SC10Mode`, strictly 1–5).""",
        validator=strict_discrete_set, values=[1, 2, 3, 4, 5], get_process=lambda v: SC10Mode(int(v)),
    )

    open_time = Instrument.control(
        "open?", "open=%d",
        """Control the open time of the auto/repeat modes in ms (int strictly from 0 to 999999).""",
        validator=strict_range, values=[0, 999999], cast=int,
    )

    def toggle(self) -> None:
        """Toggle the output enable (``ens``)."""
        self.write("ens")


class SC10Shutter:
    """X-ray shutter on an SC10 in manual mode: open/close that verify, never toggle blindly."""

    def __init__(self, link: Link) -> None:
        self.link = link

    @property
    def is_closed(self) -> bool:
        """Measure whether the shutter is closed."""
        return self.link.call("closed?", lambda i: i.closed)

    @property
    def interlock_tripped(self) -> bool:
        """Measure whether the SC10's interlock input is tripped."""
        return self.link.call("interlock?", lambda i: i.interlock_tripped)

    def _set(self, want_open: bool) -> None:
        what = "open" if want_open else "close"

        def do(i: Any) -> None:
            if i.enabled != want_open:
                i.toggle()

        # ``do`` reads the state before it toggles, so repeating it after a lost reply (over a fresh
        # connection) is a verified retry: a toggle that did arrive is not toggled back
        self.link.call(f"{what} shutter", do)
        closed = self.is_closed
        if closed == want_open:
            raise DriverError(f"shutter did not {what}: closed? = {int(closed)}"
                              + (" (interlock tripped)" if want_open and self.interlock_tripped else ""))

    def open(self) -> None:
        """Open the shutter and check it is open."""
        self._set(True)

    def close(self) -> None:
        """Close the shutter and check it is closed."""
        self._set(False)
