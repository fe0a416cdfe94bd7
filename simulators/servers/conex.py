"""Newport CONEX controllers on TCP: the CONEX-AGP rotation stage carrying the continuous ND wheel (role
``attenuator``, default port 7778, :class:`ConexServer`) and the CONEX-CC linear stage of the sample holder
(role ``sample_stage``, port 7781, :class:`ConexCCServer`) — one protocol, two positioners
(:class:`simulators.stage.ConexPositioner`).

Protocol (CONEX-CC / CONEX-AGP controller manuals, "Command set"; instruments.md §5.3):
``<addr><CC>[<value>|?]`` CR LF, controller address 1 (``1`` or ``01``). Queries answer
``<addr><CC><value>`` CR LF with the address echoed as it was sent (``01TP`` → ``01TP45.00000``);
the tell commands are bare (``1TP``, ``1TS``, ``1TE``, ``1TH``, ``1VE``, ``1TB``) and their ``?``
forms are answered alike; set commands answer **nothing**. A bad command is not answered
either: the controller stores an error code that ``TE`` returns (and clears), ``TB`` explains.
Error codes used here: ``@`` none, ``A`` unknown command, ``B`` wrong address, ``C`` parameter
missing or out of range, ``G`` displacement out of limits, ``H`` not allowed in NOT REFERENCED,
``K`` not allowed in READY, ``L`` not allowed in HOMING, ``M`` not allowed in MOVING, ``V`` error
during command execution.

Implemented: ``ID? VE TP TH PA[?] PR OR ST RS TS TE TB SL? SR? VA? DB[?]``. ``TS`` answers 4 hex digits
of positioner errors (0000) and 2 of controller state (0A not referenced, 1E homing, 28 moving,
32/33 ready). The stage moves at the model's speed in lab time (degrees or mm per lab second).

Request fault ``instrument_error``: a set command is not executed and ``TE`` reports ``V``.
"""

from __future__ import annotations

import re
from typing import Any

from .base import ProtocolServer, split_lines

__all__ = ["ConexServer", "ConexCCServer", "ERROR_TEXT"]

ERROR_TEXT = {"@": "No error", "A": "Unknown message code or floating point controller address",
              "B": "Controller address not correct", "C": "Parameter missing or out of range",
              "G": "Displacement out of limits", "H": "Command not allowed in NOT REFERENCED state",
              "K": "Command not allowed in READY state", "L": "Command not allowed in HOMING state",
              "M": "Command not allowed in MOVING state", "V": "Error during command execution"}

_CMD = re.compile(r"^(\d{1,2})([A-Za-z]{2})(.*)$")


class ConexServer(ProtocolServer):
    ROLE = "attenuator"
    NAME = "Newport CONEX-AGP"
    DEFAULT_PORT = 7778
    #: what ``ID?`` and ``VE`` answer
    IDENT = "CONEX-AGP-PR100P_SIM"
    VERSION = " CONEX-AGP 1.0.4 (SIM)"

    def device(self) -> Any:
        """The positioner this controller drives: the ND wheel's rotation stage (the laser model)."""
        return self.world.laser

    def __init__(self, world: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(world, host, port)
        self.settings: dict[str, float] = {"DB": 0.0}   # dead band: stored, no effect on the model

    def split(self, buf: bytearray) -> list[bytes]:
        return split_lines(buf, b"\n")

    def garbage(self, msg: bytes) -> bytes | None:
        return (self.junk() + "\r\n").encode()

    def instrument_error(self, msg: bytes, session: dict[str, Any], t: float) -> bytes | None:
        m = _CMD.match(msg.decode("latin-1"))
        if m and not m.group(3).endswith("?"):
            self.device().error_code = "V"
            return None
        return self.handle(msg, session, t)

    def handle(self, msg: bytes, session: dict[str, Any], t: float) -> bytes | None:
        las = self.device()
        m = _CMD.match(msg.decode("latin-1").strip())
        if not m:
            las.error_code = "A"
            return None
        addr, cc, arg = m.groups()
        cc = cc.upper()
        if int(addr) != 1:
            las.error_code = "B"
            return None
        a = addr   # the reply starts with the command as sent: address (as written) + command code

        def reply(v: str) -> bytes:
            return f"{a}{cc}{v}\r\n".encode()

        # the "tell" commands are bare in the manual (xxTP, xxTS, xxTE, xxTH, xxVE; xxTB[code]); the
        # "?" forms are answered the same way (sflab's driver and older scripts send them)
        if cc in ("TP", "TS", "TE", "TH", "VE") and arg == "":
            arg = "?"
        query = arg == "?"
        if cc == "TE" and query:
            code, las.error_code = las.error_code, "@"
            return reply(code)
        if cc == "TB":
            code = las.error_code if (query or not arg) else arg
            return reply(f"{code} {ERROR_TEXT.get(code, 'Unknown error')}")
        if cc == "ID" and query:
            return reply(self.IDENT)
        if cc == "VE" and query:
            return reply(self.VERSION)
        if cc == "TP" and query:
            return reply(f"{las.position:.5f}")
        if cc in ("TH", "PA") and query:
            return reply(f"{las.target:.5f}")
        if cc == "TS" and query:
            return reply("0000" + las.state_code())
        if cc == "SL" and query:
            return reply(f"{las.lo:g}")
        if cc == "SR" and query:
            return reply(f"{las.hi:g}")
        if cc == "VA" and query:
            return reply(f"{las.speed:g}")
        if cc == "DB" and query:
            return reply(f"{self.settings['DB']:g}")
        if cc == "DB" and arg:
            try:
                self.settings["DB"] = float(arg)
            except ValueError:
                las.error_code = "C"
            return None
        if query:
            las.error_code = "A"
            return None
        state = las.state_code()
        if cc in ("PA", "PR"):
            try:
                v = float(arg)
            except ValueError:
                las.error_code = "C"
                return None
            if state == "0A":
                las.error_code = "H"
                return None
            if state == "1E":
                las.error_code = "L"
                return None
            target = v if cc == "PA" else las.target + v
            if not las.lo <= target <= las.hi:
                las.error_code = "G" if cc == "PR" else "C"
                return None
            las.move_to(target, t)
            return None
        if cc == "OR" and not arg:
            if state in ("32", "33"):
                las.error_code = "K"
                return None
            if state == "28":
                las.error_code = "M"
                return None
            las.home(t)
            return None
        if cc == "ST" and not arg:
            las.stop(t)
            return None
        if cc == "RS" and not arg:
            las.stop(t)
            las.referenced = False
            return None
        las.error_code = "A"
        return None


class ConexCCServer(ConexServer):
    """The CONEX-CC controller of the sample stage (a 25 mm linear stage; positions in mm): starting it
    puts the holder in the beam path (``world.sample_stage.installed``)."""

    ROLE = "sample_stage"
    NAME = "Newport CONEX-CC"
    DEFAULT_PORT = 7781
    IDENT = "CONEX-CC-LTA-HS_SIM"
    VERSION = " CONEX-CC 2.0.1 (SIM)"

    def __init__(self, world: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(world, host, port)
        world.sample_stage.installed = True

    def device(self) -> Any:
        return self.world.sample_stage
