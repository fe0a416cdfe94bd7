"""Lake Shore 336 temperature controller on TCP (default port 7777), answering from the cryostat model.

Syntax (instruments.md §1.1): ``MNEM a,b`` / ``MNEM? a``; several commands may be chained with
``;``; host lines end in LF (CR optional); replies end in CR LF. Unknown commands and bad
parameters get **no reply** (the real instrument is silent) and set bits in ``*ESR?``:
32 command error (unknown mnemonic), 16 execution error (bad parameter), 4 query error.

Implemented: ``*IDN? *ESR? *CLS *RST *OPC?``, ``KRDG? CRDG? SRDG? RDGST?`` (A = stage/control sensor,
B = sample sensor, C/D = not installed; ``KRDG? 0`` = all), ``SETP[?] RAMP[?] RAMPST? RANGE[?]
HTR? HTRST? MOUT[?] PID[?] OUTMODE[?] INNAME? TLIMIT?``.

Request fault ``instrument_error``: the sample/stage sensor reads invalid for ``duration_s`` (1 s lab
by default): ``KRDG?`` answers ``+000.000``, ``RDGST?`` answers ``001`` and the heater reports
``HTRST? 1`` (open load) — a flaky sensor/heater cable.
"""

from __future__ import annotations

import logging
from typing import Any

from .base import ProtocolServer, split_lines

log = logging.getLogger(__name__)

__all__ = ["LakeShore336Server"]

INPUTS = ("A", "B", "C", "D")
IDN = "LSCI,MODEL336,SIM0336/#######,2.9"

ESR_OPC, ESR_QYE, ESR_EXE, ESR_CME = 1, 4, 16, 32


class _Bad(Exception):
    def __init__(self, bit: int) -> None:
        self.bit = bit


def _f(x: float) -> str:
    return f"{x:+08.3f}"


class LakeShore336Server(ProtocolServer):
    ROLE = "cryostat"
    NAME = "Lake Shore 336"
    DEFAULT_PORT = 7777

    def split(self, buf: bytearray) -> list[bytes]:
        return split_lines(buf, b"\n")

    def garbage(self, msg: bytes) -> bytes | None:
        return (self.junk() + "\r\n").encode()

    def instrument_error(self, msg: bytes, session: dict[str, Any], t: float) -> bytes | None:
        cr = self.world.cryostat
        cr.sensor_fault_until = max(cr.sensor_fault_until, t + 1.0)
        cr.heater_fault_until = max(cr.heater_fault_until, t + 1.0)
        cr.poke()
        return self.handle(msg, session, t)

    def handle(self, msg: bytes, session: dict[str, Any], t: float) -> bytes | None:
        try:
            text = msg.decode("ascii")
        except UnicodeDecodeError:
            session["esr"] = session.get("esr", 0) | ESR_CME
            return None
        replies = []
        for cmd in text.split(";"):
            cmd = cmd.strip()
            if not cmd:
                continue
            try:
                r = self._command(cmd, session, t)
            except _Bad as e:
                session["esr"] = session.get("esr", 0) | e.bit
                log.debug("Lake Shore ignores %r (ESR bit %d)", cmd, e.bit)
                continue
            if r is not None:
                replies.append(r)
        if not replies:
            return None
        return (";".join(replies) + "\r\n").encode()

    # -- commands ----------------------------------------------------------------------------
    def _command(self, cmd: str, session: dict[str, Any], t: float) -> str | None:
        cr = self.world.cryostat
        head, _, rest = cmd.partition(" ")
        head = head.upper()
        args = [a.strip() for a in rest.split(",")] if rest.strip() else []
        query = head.endswith("?")

        def out_arg(i: int = 0) -> int:
            try:
                o = int(args[i])
            except (IndexError, ValueError):
                raise _Bad(ESR_EXE) from None
            if o not in (1, 2, 3, 4):
                raise _Bad(ESR_EXE)
            return o

        def num(i: int, lo: float, hi: float) -> float:
            try:
                v = float(args[i])
            except (IndexError, ValueError):
                raise _Bad(ESR_EXE) from None
            if not lo <= v <= hi:
                raise _Bad(ESR_EXE)
            return v

        def inp_arg() -> str:
            if len(args) != 1 or args[0].upper() not in INPUTS + ("0",):
                raise _Bad(ESR_EXE)
            return args[0].upper()

        if head == "*IDN?":
            return IDN
        if head == "*ESR?":
            v = session.get("esr", 0)
            session["esr"] = 0
            return str(v)
        if head == "*CLS":
            session["esr"] = 0
            return None
        if head == "*OPC?":
            return "1"
        if head == "*OPC":
            session["esr"] = session.get("esr", 0) | ESR_OPC
            return None
        if head == "*RST":
            for o in (1, 2, 3, 4):
                cr.range[o] = 0
                cr.ramp_on[o] = False
            cr.poke()
            return None
        if head in ("KRDG?", "CRDG?", "SRDG?", "RDGST?"):
            i = inp_arg()
            inputs = INPUTS if i == "0" else (i,)
            vals = []
            for name in inputs:
                st = cr.reading_status(name, t)
                if head == "RDGST?":
                    vals.append(f"{st:03d}")
                    continue
                T = 0.0 if st & 1 else cr.reading(name)
                if head == "KRDG?":
                    vals.append(_f(T))
                elif head == "CRDG?":
                    vals.append(_f(T - 273.15 if T else 0.0))
                else:
                    vals.append(f"{_diode_volts(T):+08.5f}" if T else "+0.00000")
            return ",".join(vals)
        if head == "INNAME?":
            i = inp_arg()
            return {"A": "Stage", "B": "Sample"}.get(i, "")
        if head == "TLIMIT?":
            inp_arg()
            return _f(cr.T_max)
        if head == "SETP":
            o = out_arg()
            v = num(1, 0.0, cr.T_max)
            if len(args) != 2:
                raise _Bad(ESR_EXE)
            cr.target[o] = v
            if not cr.ramp_on[o]:
                cr.setpoint[o] = v
            cr.poke()
            return None
        if head == "SETP?":
            o = out_arg()
            return _f(cr.setpoint[o])
        if head == "RAMP":
            o = out_arg()
            if len(args) != 3 or args[1] not in ("0", "1"):
                raise _Bad(ESR_EXE)
            rate = num(2, 0.0, 100.0)
            if 0 < rate < 0.1:
                raise _Bad(ESR_EXE)
            cr.ramp_on[o] = args[1] == "1" and rate > 0
            cr.ramp_rate[o] = rate
            if not cr.ramp_on[o]:
                cr.setpoint[o] = cr.target[o]
            cr.poke()
            return None
        if head == "RAMP?":
            o = out_arg()
            return f"{int(cr.ramp_on[o])},{cr.ramp_rate[o]:.1f}"
        if head == "RAMPST?":
            o = out_arg()
            return "1" if cr.ramping(o) else "0"
        if head == "RANGE":
            o = out_arg()
            if len(args) != 2 or args[1] not in ("0", "1", "2", "3"):
                raise _Bad(ESR_EXE)
            cr.range[o] = int(args[1])
            cr.poke()
            return None
        if head == "RANGE?":
            return str(cr.range[out_arg()])
        if head == "HTR?":
            o = out_arg()
            if o != 1:
                return "+000.00"
            return f"{cr.output_pct:+07.2f}"
        if head == "HTRST?":
            out_arg()
            return "1" if t < cr.heater_fault_until else "0"
        if head == "MOUT":
            o = out_arg()
            cr.mout[o] = num(1, 0.0, 100.0)
            cr.poke()
            return None
        if head == "MOUT?":
            return f"{cr.mout[out_arg()]:+07.2f}"
        if head == "PID":
            o = out_arg()
            if len(args) != 4:
                raise _Bad(ESR_EXE)
            cr.pid[o] = (num(1, 0.1, 1000.0), num(2, 0.1, 1000.0), num(3, 0.0, 200.0))
            cr.poke()
            return None
        if head == "PID?":
            P, I, D = cr.pid[out_arg()]
            return f"{P:+07.1f},{I:+07.1f},{D:+04.0f}"
        if head == "OUTMODE":
            o = out_arg()
            if len(args) != 4:
                raise _Bad(ESR_EXE)
            mode = int(num(1, 0, 5))
            inp = int(num(2, 0, 4))
            pu = int(num(3, 0, 1))
            cr.outmode[o] = (mode, inp, pu)
            cr.poke()
            return None
        if head == "OUTMODE?":
            m, i, p = cr.outmode[out_arg()]
            return f"{m},{i},{p}"
        if query:
            raise _Bad(ESR_CME | ESR_QYE)
        raise _Bad(ESR_CME)


_DT670 = [(1.4, 1.6443), (4.2, 1.5782), (10.0, 1.4222), (20.0, 1.2163), (30.0, 1.1069),
          (50.0, 1.0723), (77.35, 1.0240), (100.0, 0.9748), (200.0, 0.7456), (300.0, 0.5191),
          (400.0, 0.2875)]


def _diode_volts(T: float) -> float:
    """Approximate DT-670 silicon diode voltage (sensor units) by linear interpolation."""
    if T <= _DT670[0][0]:
        return _DT670[0][1]
    for (t0, v0), (t1, v1) in zip(_DT670, _DT670[1:], strict=False):
        if T <= t1:
            return v0 + (v1 - v0) * (T - t0) / (t1 - t0)
    return _DT670[-1][1]
