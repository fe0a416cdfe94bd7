"""Lake Shore 336 temperature controller on TCP (default port 7777), answering from the cryostat model.

Syntax (instruments.md §1.1): ``MNEM a,b`` / ``MNEM? a``; several commands may be chained with
``;``; host lines end in LF (CR optional); replies end in CR LF. Unknown commands and bad
parameters get **no reply** (the real instrument is silent) and set bits in ``*ESR?``:
32 command error (unknown mnemonic), 16 execution error (bad parameter), 4 query error.

Implemented: ``*IDN? *ESR? *CLS *RST *OPC?``, ``KRDG? CRDG? SRDG? RDGST?`` (A = stage/control sensor,
B = sample sensor, C/D = not installed; ``KRDG? 0`` = all), ``SETP[?] RAMP[?] RAMPST? RANGE[?]
HTR? HTRST? MOUT[?] PID[?] OUTMODE[?]``; settings answered from stored values (``CONFIG``: ``INTYPE
INCRV HTRSET FILTER DIOCUR ALARM ANALOG WARMUP ZONE RELAY DISPFLD DISPLAY BRIGT LEDS LOCK MODE IEEE
INTSEL OPSTE`` and their queries, ``INNAME[?] TLIMIT[?] CRVHDR[?] CRVDEL *ESE[?] *SRE[?] *STB? *TST?
*WAI``). The table with counts is in docs/simulator.md.

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

    def __init__(self, world: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(world, host, port)
        # instrument settings that live in the controller, not in the thermal model (one instrument:
        # shared by every connection); defaults are the manual's factory defaults for a DT-670 on A/B
        self.config: dict[str, dict[tuple, tuple]] = {k: dict(v) for k, v in _config_defaults().items()}
        self.names = {"A": "Stage", "B": "Sample", "C": "Input C", "D": "Input D"}
        self.tlimit = {i: 0.0 for i in INPUTS}
        self.user_curves: dict[int, tuple[str, str, int, float, int]] = {}

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
            return self.names.get(i, "")
        if head == "TLIMIT?":
            return _f(self.tlimit.get(inp_arg(), 0.0))
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
        if head == "INNAME":
            if len(args) < 1 or args[0].upper() not in INPUTS:
                raise _Bad(ESR_EXE)
            name = rest.partition(",")[2].strip().strip('"')
            if len(name) > 15:
                raise _Bad(ESR_EXE)
            self.names[args[0].upper()] = name
            return None
        if head == "TLIMIT":
            if len(args) != 2 or args[0].upper() not in INPUTS:
                raise _Bad(ESR_EXE)
            self.tlimit[args[0].upper()] = num(1, 0.0, 2000.0)
            return None
        if head == "CRVHDR?":
            if len(args) != 1 or not args[0].isdigit() or not 1 <= int(args[0]) <= 59:
                raise _Bad(ESR_EXE)
            return _crvhdr(int(args[0]), self.user_curves)
        if head == "CRVHDR":
            if len(args) != 6 or not args[0].isdigit() or not 21 <= int(args[0]) <= 59:
                raise _Bad(ESR_EXE)
            self.user_curves[int(args[0])] = (args[1][:15], args[2][:10], int(num(3, 1, 4)), num(4, 0, 9999),
                                              int(num(5, 1, 2)))
            return None
        if head == "CRVDEL":
            if len(args) != 1 or not args[0].isdigit() or not 21 <= int(args[0]) <= 59:
                raise _Bad(ESR_EXE)
            self.user_curves.pop(int(args[0]), None)
            return None
        if head in ("*STB?", "*SRE?", "*ESE?", "*TST?"):
            if head == "*STB?":  # bit 5 ESB: an enabled standard event is pending
                return f"{32 if session.get('esr', 0) & self.config['*ESE'][()][0] else 0:03d}"
            if head == "*TST?":
                return "0"
            return f"{self.config[head[:-1]][()][0]:03d}"
        if head in ("*SRE", "*ESE"):
            self.config[head][()] = (int(num(0, 0, 255)),)
            return None
        if head == "*WAI":
            return None
        spec = CONFIG.get(head.rstrip("?"))
        if spec is not None:
            nidx, fields = spec
            if len(args) < nidx:
                raise _Bad(ESR_EXE)
            key = tuple(a.upper() for a in args[:nidx])
            table = self.config[head.rstrip("?")]
            if key not in table:
                raise _Bad(ESR_EXE)
            if query:
                if len(args) != nidx:
                    raise _Bad(ESR_EXE)
                return ",".join(fmt.format(v) for fmt, v in zip(fields, table[key], strict=True))
            vals = args[nidx:]
            if len(vals) != len(fields):
                raise _Bad(ESR_EXE)
            new: list[Any] = []
            for v, old in zip(vals, table[key], strict=True):
                try:
                    new.append(type(old)(float(v)) if not isinstance(old, str) else v.strip('"'))
                except ValueError:
                    raise _Bad(ESR_EXE) from None
            table[key] = tuple(new)
            if head == "INTYPE":
                cr.poke()
            return None
        if query:
            raise _Bad(ESR_CME | ESR_QYE)
        raise _Bad(ESR_CME)


#: settings commands answered from stored values: name -> (number of index arguments, field formats)
CONFIG: dict[str, tuple[int, tuple[str, ...]]] = {
    "INTYPE": (1, ("{:d}", "{:d}", "{:d}", "{:d}", "{:d}")),    # type, autorange, range, compensation, units
    "INCRV": (1, ("{:02d}",)),
    "HTRSET": (1, ("{:d}", "{:d}", "{:+.3f}", "{:d}")),          # resistance, max current, max user I, I/P
    "FILTER": (1, ("{:d}", "{:d}", "{:d}")),                    # on/off, points, window %
    "DIOCUR": (1, ("{:d}",)),
    "ALARM": (1, ("{:d}", "{:+.3f}", "{:+.3f}", "{:+.3f}", "{:d}", "{:d}", "{:d}")),
    "ANALOG": (1, ("{:d}", "{:d}", "{:+.3f}", "{:+.3f}", "{:d}")),
    "WARMUP": (1, ("{:d}", "{:+.2f}")),
    "ZONE": (2, ("{:+.3f}", "{:+.1f}", "{:+.1f}", "{:+.0f}", "{:+.2f}", "{:d}", "{:d}", "{:+.1f}")),
    "RELAY": (1, ("{:d}", "{}", "{:d}")),
    "DISPFLD": (1, ("{:d}", "{:d}")),
    "DISPLAY": (0, ("{:d}", "{:d}", "{:d}")),
    "BRIGT": (0, ("{:d}",)),
    "LEDS": (0, ("{:d}",)),
    "LOCK": (0, ("{:d}", "{:03d}")),
    "MODE": (0, ("{:d}",)),
    "IEEE": (0, ("{:d}",)),
    "INTSEL": (0, ("{}",)),
    "OPSTE": (0, ("{:03d}",)),
    "*SRE": (0, ("{:d}",)),
    "*ESE": (0, ("{:d}",)),
}
#: standard curves of the 336 (manual table "Standard curves"): number -> header
STANDARD_CURVES = {1: ("DT-470", "STANDARD", 2, 475.0, 1), 2: ("DT-670", "STANDARD", 2, 500.0, 1),
                   3: ("DT-500-D", "STANDARD", 2, 365.0, 1), 4: ("DT-500-E1", "STANDARD", 2, 330.0, 1),
                   6: ("PT-100", "STANDARD", 3, 800.0, 2), 7: ("PT-1000", "STANDARD", 3, 800.0, 2),
                   8: ("RX-102A-AA", "STANDARD", 4, 40.0, 1), 9: ("RX-202A-AA", "STANDARD", 4, 40.0, 1),
                   12: ("Type K", "STANDARD", 1, 1645.0, 2), 13: ("Type E", "STANDARD", 1, 1188.0, 2),
                   14: ("Type T", "STANDARD", 1, 673.0, 2), 15: ("AuFe 0.03%", "STANDARD", 1, 500.0, 2),
                   16: ("AuFe 0.07%", "STANDARD", 1, 610.0, 2)}


def _config_defaults() -> dict[str, dict[tuple, tuple]]:
    ins, outs = ("A", "B", "C", "D"), ("1", "2", "3", "4")
    return {
        # every input configured for a DT-670 diode (C and D have no sensor connected: invalid reading)
        "INTYPE": {(i,): (1, 0, 0, 0, 1) for i in ins},
        "INCRV": {(i,): (2,) for i in ins},
        "HTRSET": {("1",): (1, 2, 0.0, 1), ("2",): (1, 2, 0.0, 1)},
        "FILTER": {(i,): (0, 10, 10) for i in ins},
        "DIOCUR": {(i,): (0,) for i in ins},
        "ALARM": {(i,): (0, 0.0, 0.0, 0.0, 0, 0, 0) for i in ins},
        "ANALOG": {("3",): (0, 1, 0.0, 0.0, 0), ("4",): (0, 1, 0.0, 0.0, 0)},
        "WARMUP": {("3",): (0, 0.0), ("4",): (0, 0.0)},
        "ZONE": {(o, str(z)): (0.0, 50.0, 20.0, 0.0, 0.0, 0, 0, 0.0) for o in outs for z in range(1, 11)},
        "RELAY": {("1",): (0, "A", 0), ("2",): (0, "A", 0)},
        "DISPFLD": {(str(f),): (0, 1) for f in range(1, 9)},
        "DISPLAY": {(): (0, 0, 1)},
        "BRIGT": {(): (32,)},
        "LEDS": {(): (1,)},
        "LOCK": {(): (0, 123)},
        "MODE": {(): (1,)},
        "IEEE": {(): (12,)},
        "INTSEL": {(): ("A",)},
        "OPSTE": {(): (0,)},
        "*SRE": {(): (0,)},
        "*ESE": {(): (0,)},
    }


def _crvhdr(n: int, user: dict[int, tuple[str, str, int, float, int]]) -> str:
    name, sn, fmt, limit, coeff = STANDARD_CURVES.get(n) or user.get(n) or ("User Curve", "", 0, 0.0, 0)
    return f"{name:<15},{sn:<10},{fmt:d},{limit:+.3f},{coeff:d}"


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
