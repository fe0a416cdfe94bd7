"""Thorlabs PM100D power meter (SCPI) on TCP (default port 7779), reading the laser model.

SCPI over a LF-terminated link, short and long keyword forms, case-insensitive, optional leading
``SENSe``. Unknown headers queue ``-113,"Undefined header"`` and get no reply; out-of-range data
queue ``-222,"Data out of range"`` and leave the setting unchanged (``SYST:ERR?`` reads the queue).
Readings use SCPI's ``%E`` format; over-range reads ``9.900000E+37``.

Implemented: IEEE-488.2 common commands and status (``*ESR? *STB? *OPC[?] *ESE *SRE``), ``STAT:OPER`` and
``STAT:QUES`` registers, ``SYST:ERR? SYST:VERS? SYST:SENS:IDN?`` (sensor S120C, flags 289),
``MEAS:POW? MEAS:CURR? MEAS:FREQ? READ? FETC? CONF[:POW|:CURR|?] INIT ABOR``, ``SENS:CORR:WAV``,
``SENS:AVER``, ``SENS:CORR[:LOSS]``, zeroing, ranges, ``SENS:POW:UNIT``, ``SENS:CORR:BEAM``; the table
with counts is in docs/simulator.md. ``SYST:ERR?`` answers ``+0,"No error"`` when the queue is empty.

Request fault ``instrument_error``: a query answers the over-range value and queues
``-300,"Device-specific error"``; a set command is not executed and queues the same error.
"""

from __future__ import annotations

import math
from typing import Any

from .base import ProtocolServer, split_lines

__all__ = ["PM100DServer"]

IDN = "Thorlabs,PM100D,P0012345,2.8.0"
SENSOR_IDN = "S120C,12345678,15-Jan-2026,1,18,289"
WAV_MIN, WAV_MAX = 400.0, 1100.0
LONG = {"SENSE": "SENS", "SENSOR": "SENS", "CORRECTION": "CORR", "WAVELENGTH": "WAV", "MEASURE": "MEAS",
        "POWER": "POW", "SYSTEM": "SYST", "ERROR": "ERR", "AVERAGE": "AVER", "COUNT": "COUN",
        "COLLECT": "COLL", "INITIATE": "INIT", "MAGNITUDE": "MAGN", "STATE": "STAT", "RANGE": "RANG",
        "UPPER": "UPP", "CONFIGURE": "CONF", "FETCH": "FETC", "ENERGY": "ENER", "NEXT": "NEXT",
        "STATUS": "STAT", "OPERATION": "OPER", "QUESTIONABLE": "QUES", "CONDITION": "COND", "ENABLE": "ENAB",
        "EVENT": "EVEN", "PTRANSITION": "PTR", "NTRANSITION": "NTR", "ABORT": "ABOR", "CURRENT": "CURR",
        "FREQUENCY": "FREQ", "VERSION": "VERS", "LOSS": "LOSS", "INPUT": "INP", "SCALAR": "SCAL",
        "PDIODE": "PDI", "RESPONSE": "RESP", "LFREQUENCY": "LFR", "PRESET": "PRES"}


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
    # optional nodes: MEASure[:SCALar], STATus:OPERation[:EVENt]?, [SENSe:]AVERage[:COUNt],
    # [SENSe:]CORRection[:LOSS[:INPut[:MAGNitude]]]
    if len(parts) > 1 and parts[0] in ("MEAS", "CONF", "READ", "FETC") and parts[1].rstrip("?") == "SCAL":
        parts = [parts[0]] + parts[2:] if len(parts) > 2 else [parts[0] + ("?" if parts[1].endswith("?") else "")]
    if parts and parts[-1] in ("EVEN?", "EVEN") and len(parts) == 3 and parts[0] == "STAT":
        parts = parts[:2]
        parts[-1] += "?"
    joined = ":".join(parts)
    for full, short in (("AVER:COUN", "AVER"), ("CORR:LOSS:INP:MAGN", "CORR"), ("CORR:LOSS:INP", "CORR"),
                        ("CORR:LOSS", "CORR")):
        if joined.rstrip("?") == full:
            return short + ("?" if joined.endswith("?") else "")
    return joined


class PM100DServer(ProtocolServer):
    ROLE = "powermeter"
    NAME = "Thorlabs PM100D"
    DEFAULT_PORT = 7779

    def __init__(self, world: Any, host: str = "127.0.0.1", port: int = 0, hislip_port: int = 0) -> None:
        super().__init__(world, host, port)
        # the instrument's own link (USBTMC) marks the end of each message: HiSLIP does the same on a LAN
        from .hislip import HislipFrontEnd

        self.hislip = HislipFrontEnd(self, "127.0.0.1", hislip_port)

    @property
    def hislip_resource(self) -> str:
        """pyvisa-py resource of the HiSLIP front end (whole messages, no read termination needed)."""
        return self.hislip.resource

    def start(self) -> PM100DServer:
        super().start()
        self.hislip.start()
        return self

    def stop(self) -> None:
        self.hislip.stop()
        super().stop()

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
        st = session.setdefault("status", {"OPER": 0, "OPER:ENAB": 0, "OPER:PTR": 32767, "OPER:NTR": 0,
                                           "QUES": 0, "QUES:ENAB": 0, "QUES:PTR": 32767, "QUES:NTR": 0,
                                           "ESR": 0, "ESE": 0, "SRE": 0})
        query = h.endswith("?")
        base = h.rstrip("?")

        def number(lo: float, hi: float, special: dict[str, float] | None = None) -> float | None:
            if special and arg in special:
                return special[arg]
            try:
                v = float(arg)
            except ValueError:
                errors.append('-104,"Data type error"')
                return None
            if not lo <= v <= hi:
                errors.append('-222,"Data out of range"')
                return None
            return v

        if h == "*IDN?":
            return IDN
        if h in ("*RST", "SYST:PRES"):
            las.pm_averaging = 1
            las.pm_wavelength_nm = 633.0
            session.update({"beam": 9.5, "loss_dB": 0.0, "unit": "W", "auto": True, "conf": "POW"})
            return None
        if h == "*CLS":
            errors.clear()
            for k in ("OPER", "QUES", "ESR"):
                st[k] = 0
            return None
        if h in ("*OPC?",):
            return "1"
        if h == "*OPC":
            st["ESR"] |= 1
            return None
        if h in ("*WAI", "ABOR"):
            return None
        if h == "*TST?":
            return "0"
        if h == "*ESR?":
            v, st["ESR"] = st["ESR"], 0
            return str(v)
        if h in ("*ESE?", "*SRE?"):
            return str(st[h[1:4]])
        if h in ("*ESE", "*SRE"):
            v = number(0, 255)
            if v is not None:
                st[h[1:4]] = int(v)
            return None
        if h == "*STB?":
            stb = (4 if errors else 0) | (32 if st["ESR"] & st["ESE"] else 0)
            stb |= 128 if st["OPER"] & st["OPER:ENAB"] else 0
            return str(stb)
        if h in ("STAT:OPER?", "STAT:QUES?"):
            key = h[5:9]
            v, st[key] = st[key], 0      # reading the event register clears it
            return str(v)
        if h in ("STAT:OPER:COND?", "STAT:QUES:COND?"):
            return "0"
        if base in ("STAT:OPER:ENAB", "STAT:OPER:PTR", "STAT:OPER:NTR", "STAT:QUES:ENAB", "STAT:QUES:PTR",
                    "STAT:QUES:NTR"):
            key = base[5:]
            if query:
                return str(st[key])
            v = number(0, 32767)
            if v is not None:
                st[key] = int(v)
            return None
        if h in ("SYST:ERR?", "SYST:ERR:NEXT?"):
            return errors.pop(0) if errors else '+0,"No error"'
        if h == "SYST:ERR:COUN?":
            return str(len(errors))
        if h == "SYST:VERS?":
            return "1999.0"
        if h == "SYST:LFR?":
            return "50"
        if h in ("SYST:SENS:IDN?",):
            return SENSOR_IDN
        if h == "CORR:WAV?":
            if arg == "MIN":
                return f"{WAV_MIN:E}"
            if arg == "MAX":
                return f"{WAV_MAX:E}"
            return f"{las.pm_wavelength_nm:E}"
        if h == "CORR:WAV":
            v = number(WAV_MIN, WAV_MAX)
            if v is not None:
                las.pm_wavelength_nm = v
            return None
        if h == "CORR:POW:PDI:RESP?":
            return f"{las.responsivity(las.pm_wavelength_nm):E}"
        if h == "CORR?":
            return f"{session.get('loss_dB', 0.0):E}"
        if h == "CORR":
            v = number(-60.0, 60.0)
            if v is not None:
                session["loss_dB"] = v
            return None
        gain = 10 ** (session.get("loss_dB", 0.0) / 10)   # the attenuation the user declared in front of the sensor
        if h in ("MEAS:POW?", "READ?", "FETC?", "MEAS?"):
            if session.get("conf", "POW") == "CURR" and h != "MEAS:POW?":
                return f"{las.pm_reading() * las.responsivity(las.pm_wavelength_nm):E}"
            p = las.pm_reading()
            if p < 1e30:
                p *= gain
                if session.get("unit", "W") == "DBM":
                    return f"{10 * math.log10(max(p, 1e-15) / 1e-3):E}"
            return f"{p:E}"
        if h == "MEAS:CURR?":
            p = las.pm_reading()
            return f"{p * las.responsivity(las.pm_wavelength_nm):E}" if p < 1e30 else f"{p:E}"
        if h == "MEAS:FREQ?":
            # the PM100D counts the modulation frequency of the input up to its ~100 kHz bandwidth
            f = las.rep_rate_Hz if las.rep_rate_Hz <= 1e5 else 0.0
            return f"{f:E}"
        if h in ("CONF:POW", "CONF:CURR"):
            session["conf"] = h[5:]
            return None
        if h == "CONF?":
            return session.get("conf", "POW")
        if h in ("INIT", "CORR:COLL:ZERO:ABOR"):
            return None
        if h in ("CORR:COLL:ZERO", "CORR:COLL:ZERO:INIT"):
            las.pm_zero()
            return None
        if h == "CORR:COLL:ZERO:MAGN?":
            return f"{las.pm_zero_W:E}"
        if h == "CORR:COLL:ZERO:STAT?":
            return "0"
        if h == "AVER":
            v = number(1, 10000)
            if v is not None:
                las.pm_averaging = int(v)
            return None
        if h == "AVER?":
            return str(las.pm_averaging)
        if h == "POW:RANG:UPP?":
            return f"{las.pm_range_W:E}"
        if h == "POW:RANG:UPP":
            v = number(1e-9, 10.0, {"MAX": 10.0, "MIN": 1e-9})
            if v is not None:
                session["auto"] = False
            return None
        if h == "CURR:RANG:UPP?":
            return f"{las.pm_range_W * las.responsivity(las.pm_wavelength_nm):E}"
        if h == "POW:RANG:AUTO?":
            return "1" if session.get("auto", True) else "0"
        if h == "POW:RANG:AUTO":
            if arg not in ("ON", "OFF", "1", "0"):
                errors.append('-224,"Illegal parameter value"')
                return None
            session["auto"] = arg in ("ON", "1")
            return None
        if h == "POW:UNIT?":
            return session.get("unit", "W")
        if h == "POW:UNIT":
            if arg not in ("W", "DBM"):
                errors.append('-224,"Illegal parameter value"')
                return None
            session["unit"] = arg
            return None
        if h == "CORR:BEAM?":
            return f"{session.get('beam', 9.5):E}"
        if h == "CORR:BEAM":
            v = number(0.0, 1000.0)
            if v is not None:
                session["beam"] = v
            return None
        st["ESR"] |= 32                    # command error in the standard event register
        errors.append('-113,"Undefined header"')
        return None
