"""Thorlabs PM100D power meter (SCPI) on TCP (default port 7779), reading the laser model.

SCPI over a LF-terminated link, short and long keyword forms, case-insensitive, optional leading
``SENSe``. Unknown headers queue ``-113,"Undefined header"`` and get no reply; out-of-range data
queue ``-222,"Data out of range"`` and leave the setting unchanged (``SYST:ERR?`` reads the queue).
Readings use SCPI's ``%E`` format; over-range reads ``9.900000E+37``.

Implemented: ``*IDN? *RST *CLS SYST:ERR? SYST:SENS:IDN?`` (sensor S120C, flags 289 = power sensor,
wavelength settable, temperature sensor), ``SENS:CORR:WAV[?] [MIN|MAX]``, ``MEAS:POW? READ? FETC?
CONF:POW INIT``, ``SENS:AVER:COUN[?]``, ``SENS:CORR:COLL:ZERO:INIT``, ``…:ZERO:MAGN?``,
``…:ZERO:STAT?``, ``SENS:POW:RANG:UPP?``, ``SENS:POW:RANG:AUTO[?]``, ``SENS:CORR:BEAM[?]``.

Request fault ``instrument_error``: a query answers the over-range value and queues
``-300,"Device-specific error"``; a set command is not executed and queues the same error.
"""

from __future__ import annotations

from typing import Any

from .base import ProtocolServer, split_lines

__all__ = ["PM100DServer"]

IDN = "Thorlabs,PM100D,P0012345,2.8.0"
SENSOR_IDN = "S120C,12345678,15-Jan-2026,1,18,289"
WAV_MIN, WAV_MAX = 400.0, 1100.0
LONG = {"SENSE": "SENS", "SENSOR": "SENS", "CORRECTION": "CORR", "WAVELENGTH": "WAV", "MEASURE": "MEAS",
        "POWER": "POW", "SYSTEM": "SYST", "ERROR": "ERR", "AVERAGE": "AVER", "COUNT": "COUN",
        "COLLECT": "COLL", "INITIATE": "INIT", "MAGNITUDE": "MAGN", "STATE": "STAT", "RANGE": "RANG",
        "UPPER": "UPP", "CONFIGURE": "CONF", "FETCH": "FETC", "ENERGY": "ENER", "NEXT": "NEXT"}


def _norm(header: str) -> str:
    parts = []
    for p in header.strip().upper().lstrip(":").split(":"):
        q = p.endswith("?")
        p = p.rstrip("?")
        short = LONG.get(p, p)
        for long, s in LONG.items():
            if p != long and long.startswith(p) and p.startswith(s):
                short = s
        parts.append(short + ("?" if q else ""))
    if parts and parts[0] == "SENS" and len(parts) > 1 and parts[1] != "IDN?":
        parts = parts[1:]
    return ":".join(parts)


class PM100DServer(ProtocolServer):
    ROLE = "powermeter"
    NAME = "Thorlabs PM100D"
    DEFAULT_PORT = 7779

    def split(self, buf: bytearray) -> list[bytes]:
        return split_lines(buf, b"\n")

    def garbage(self, msg: bytes) -> bytes | None:
        return (self.junk() + "\n").encode()

    def _errors(self, session: dict[str, Any]) -> list[str]:
        return session.setdefault("errors", [])

    def instrument_error(self, msg: bytes, session: dict[str, Any], t: float) -> bytes | None:
        self._errors(session).append('-300,"Device-specific error"')
        if msg.strip().endswith(b"?") or b"? " in msg:
            return b"9.900000E+37\n"
        return None

    def handle(self, msg: bytes, session: dict[str, Any], t: float) -> bytes | None:
        replies = []
        for part in msg.decode("latin-1").split(";"):
            if part.strip():
                r = self._command(part.strip(), session)
                if r is not None:
                    replies.append(r)
        return (";".join(replies) + "\n").encode() if replies else None

    def _command(self, cmd: str, session: dict[str, Any]) -> str | None:
        las = self.world.laser
        errors = self._errors(session)
        header, _, arg = cmd.partition(" ")
        arg = arg.strip().upper()
        h = _norm(header)
        if h == "*IDN?":
            return IDN
        if h in ("*RST",):
            las.pm_averaging = 1
            las.pm_wavelength_nm = 633.0
            return None
        if h == "*CLS":
            errors.clear()
            return None
        if h in ("SYST:ERR?", "SYST:ERR:NEXT?"):
            return errors.pop(0) if errors else '0,"No error"'
        if h in ("SYST:SENS:IDN?",):
            return SENSOR_IDN
        if h == "CORR:WAV?":
            if arg == "MIN":
                return f"{WAV_MIN:E}"
            if arg == "MAX":
                return f"{WAV_MAX:E}"
            return f"{las.pm_wavelength_nm:E}"
        if h == "CORR:WAV":
            try:
                v = float(arg)
            except ValueError:
                errors.append('-104,"Data type error"')
                return None
            if not WAV_MIN <= v <= WAV_MAX:
                errors.append('-222,"Data out of range"')
                return None
            las.pm_wavelength_nm = v
            return None
        if h in ("MEAS:POW?", "READ?", "FETC?", "MEAS?"):
            return f"{las.pm_reading():E}"
        if h in ("CONF:POW", "INIT", "CORR:COLL:ZERO", "CORR:COLL:ZERO:ABOR"):
            return None
        if h == "CORR:COLL:ZERO:INIT":
            las.pm_zero()
            return None
        if h == "CORR:COLL:ZERO:MAGN?":
            return f"{las.pm_zero_W:E}"
        if h == "CORR:COLL:ZERO:STAT?":
            return "0"
        if h == "AVER:COUN":
            try:
                v = int(arg)
            except ValueError:
                errors.append('-104,"Data type error"')
                return None
            if not 1 <= v <= 10000:
                errors.append('-222,"Data out of range"')
                return None
            las.pm_averaging = v
            return None
        if h == "AVER:COUN?":
            return str(las.pm_averaging)
        if h == "POW:RANG:UPP?":
            return f"{las.pm_range_W:E}"
        if h == "POW:RANG:AUTO?":
            return "1"
        if h == "POW:RANG:AUTO":
            return None
        if h == "CORR:BEAM?":
            return f"{session.get('beam', 9.5):E}"
        if h == "CORR:BEAM":
            session["beam"] = float(arg or 0)
            return None
        errors.append('-113,"Undefined header"')
        return None
