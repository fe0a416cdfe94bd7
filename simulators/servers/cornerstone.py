"""Oriel (Newport) Cornerstone 260 monochromator on TCP (role ``tcspc_mono``, default port 7780): the TCSPC
monochromator of the [000] PL TCSPC setup, in front of the simulated TCSPC detector.

Protocol (Cornerstone 260 manual MCS260, Appendix I "Low level commands and queries": §16.2 syntax,
§16.3 standard mode, §16.4 handshake mode, §16.7 error codes; CS260B manual §15 alike):

* statements end in LF (a CR before it is accepted); upper, lower or mixed case; a parameter follows
  the keyword after a space;
* RS-232 **echo**: every statement comes back as received (its characters and terminator) before
  anything else; a query's response follows the echo, in upper case, ending in CR LF;
* standard mode (power-up): a command has no response beyond its echo; an error (statement not
  understood, bad parameter, wavelength not allowed, accessory not present …) is not reported by
  itself but stored: ``STB?`` answers ``00`` or ``20`` (bit 5) and ``ERROR?`` the code (1 not understood,
  2 bad parameter, 3 destination not allowed, 6 accessory not present, 7 accessory already there,
  9 label too long); reading either clears it;
* handshake mode (``HANDSHAKE 1``): the status byte follows every statement (after a query's response),
  ``00`` or ``20``; with an error the status byte is not cleared until ``STB?``/``ERROR?`` reads it;
* the wavelength drive moves in lab time (``GOWAVE``, ``GRAT``): statements received while it moves are
  answered when it is there (the instrument processes them in order).

Implemented: ``GOWAVE x``, ``WAVE?``, ``CALIBRATE x``, ``ABORT``, ``STEP n``, ``STEP?``, ``UNITS NM|UM|WN``,
``UNITS?``, ``GRAT n``, ``GRAT?`` (``n,lines,label``), ``GRATnLINES[?]``, ``GRATnLABEL[?]``, ``GRATnZERO[?]``,
``GRATnFACTOR[?]``, ``GRATnOFFSET[?]``, ``SHUTTER O|C``, ``SHUTTER?`` (``O``/``C``), ``SLITnMICRONS x`` /
``SLITnMICRONS?`` (1 entrance, 2 exit, 3 second exit; 4–3000 µm), ``OUTPORT n``, ``OUTPORT?``,
``FILTER n`` / ``FILTER?`` (no filter wheel fitted: error 6), ``HANDSHAKE 0|1``, ``HANDSHAKE?``,
``INFO?``, ``STB?``, ``ERROR?``, ``*IDN?``. At power-up the drive is at 0 nm (zero order: the grating is a
mirror) and the shutter open (a simulator choice), so a lab that never commands the monochromator sees
all light, as without one.

Request fault ``instrument_error``: the statement is echoed but not executed and error 0 (system error)
is stored.
"""

from __future__ import annotations

import re
from typing import Any

from .base import ProtocolServer

__all__ = ["CornerstoneServer"]

INFO = "CORNERSTONE 260 SIM VER 2.30"
GRATING_LABELS = ("VIS1200", "VIS600", "NIR300")
SLIT_RANGE_UM = (4.0, 3000.0)
_NUM = r"\s+([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"


class CornerstoneServer(ProtocolServer):
    ROLE = "tcspc_mono"
    NAME = "Oriel Cornerstone 260"
    DEFAULT_PORT = 7780

    def __init__(self, world: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(world, host, port)
        m = self.mono
        self.stb = 0
        self.error = 0
        self.handshake = False
        self.units = "NM"
        self.outport = 1
        self.slit3_um = 500.0
        self.grat = {i + 1: {"LINES": g, "LABEL": GRATING_LABELS[i] if i < len(GRATING_LABELS) else f"G{i + 1}",
                             "ZERO": 0.0, "FACTOR": 1.0, "OFFSET": 0.0}
                     for i, g in enumerate(m.gratings_lpmm)}

    @property
    def mono(self) -> Any:
        return self.world.tcspc_monos["cornerstone"]

    # -- framing ----------------------------------------------------------------------------------------------
    def split(self, buf: bytearray) -> list[bytes]:
        """LF-terminated statements, returned with their own terminator (the echo repeats them)."""
        out = []
        while True:
            i = buf.find(b"\n")
            if i < 0:
                return out
            raw = bytes(buf[: i + 1])
            del buf[: i + 1]
            if raw.strip():
                out.append(raw)

    def respond(self, msg: bytes, session: dict[str, Any]) -> tuple[bool, bytes | None]:
        # a statement that arrives while the drive moves waits in the input buffer until it is there
        clock = self.world.clock
        left = self.mono.moving_until - clock.monotonic()
        if left > 0:
            clock.sleep(left)
        return super().respond(msg, session)

    # -- replies ---------------------------------------------------------------------------------------------
    def _reply(self, echo: bytes, value: str | None = None) -> bytes:
        out = echo
        if value is not None:
            out += value.upper().encode() + b"\r\n"
        if self.handshake:
            out += (b"20" if self.stb else b"00") + b"\r\n"
        return out

    def _err(self, echo: bytes, code: int) -> bytes:
        self.stb, self.error = 0x20, code
        return self._reply(echo)

    def garbage(self, msg: bytes) -> bytes | None:
        return msg + (self.junk() + "\r\n").encode()

    def instrument_error(self, msg: bytes, session: dict[str, Any], t: float) -> bytes | None:
        return self._err(msg, 0)

    def handle(self, msg: bytes, session: dict[str, Any], t: float) -> bytes | None:
        text = msg.decode("latin-1").strip().upper()
        m = self.mono
        if text == "STB?":
            v = f"{self.stb:02X}"
            self.stb = 0
            return self._reply(msg, v)
        if text == "ERROR?":
            v = str(self.error)
            self.error, self.stb = 0, 0
            return self._reply(msg, v)
        if text in ("INFO?", "*IDN?"):
            return self._reply(msg, INFO)
        if text == "WAVE?":
            return self._reply(msg, f"{self._from_nm(m.wavelength_nm):.3f}")
        if text == "UNITS?":
            return self._reply(msg, self.units)
        if text == "GRAT?":
            g = m.grating + 1
            return self._reply(msg, f"{g},{self.grat[g]['LINES']:g},{self.grat[g]['LABEL']}")
        if text == "SHUTTER?":
            return self._reply(msg, "O" if m.shutter_open else "C")
        if text == "OUTPORT?":
            return self._reply(msg, str(self.outport))
        if text == "HANDSHAKE?":
            return self._reply(msg, "1" if self.handshake else "0")
        if text == "STEP?":
            return self._reply(msg, str(int(round(m.wavelength_nm * 100))))
        if text in ("FILTER?",) or text.startswith("FILTER"):
            return self._err(msg, 6)
        if text == "ABORT":
            m.moving_until = min(m.moving_until, t)
            return self._reply(msg)
        if text == "*OPC?":
            return self._reply(msg, "1")
        kw = re.match(r"^SLIT([123])MICRONS(\?|" + _NUM + ")$", text)
        if kw:
            n = int(kw.group(1))
            if kw.group(2) == "?":
                w = {1: m.entrance_um, 2: m.exit_um, 3: self.slit3_um}[n]
                return self._reply(msg, str(int(round(w))))
            w = float(kw.group(3))
            if not SLIT_RANGE_UM[0] <= w <= SLIT_RANGE_UM[1]:
                return self._err(msg, 2)
            if n == 1:
                m.entrance_um = w
            elif n == 2:
                m.exit_um = w
            else:
                self.slit3_um = w
            return self._reply(msg)
        kw = re.match(r"^GRAT([123])(LINES|LABEL|ZERO|FACTOR|OFFSET)(\?|\s+(.+))$", text)
        if kw:
            n, key = int(kw.group(1)), kw.group(2)
            if n not in self.grat:
                return self._err(msg, 6)
            if kw.group(3) == "?":
                v = self.grat[n][key]
                return self._reply(msg, v if isinstance(v, str) else f"{v:g}")
            arg = kw.group(4).strip()
            if key == "LABEL":
                if len(arg) > 8:
                    return self._err(msg, 9)
                self.grat[n][key] = arg
                return self._reply(msg)
            try:
                self.grat[n][key] = float(arg)
            except ValueError:
                return self._err(msg, 2)
            return self._reply(msg)
        word, _, arg = text.partition(" ")
        arg = arg.strip()
        if word == "UNITS":
            if arg not in ("NM", "UM", "WN"):
                return self._err(msg, 2)
            self.units = arg
            return self._reply(msg)
        if word == "SHUTTER":
            if arg not in ("O", "C"):
                return self._err(msg, 2)
            m.shutter_open = arg == "O"
            return self._reply(msg)
        if word == "HANDSHAKE":
            if arg not in ("0", "1"):
                return self._err(msg, 2)
            self.handshake = arg == "1"
            return self._reply(msg)
        num = _number(arg)
        if word in ("GOWAVE", "CALIBRATE", "STEP", "GRAT", "OUTPORT") and num is None:
            return self._err(msg, 2)
        if word == "GOWAVE":
            nm = self._to_nm(num)
            if nm is None or not 0.0 <= nm <= m.max_nm():
                return self._err(msg, 3)
            m.move(nm, t)
            return self._reply(msg)
        if word == "STEP":
            nm = m.wavelength_nm + num / 100.0
            if not 0.0 <= nm <= m.max_nm():
                return self._err(msg, 3)
            m.move(nm, t)
            return self._reply(msg)
        if word == "CALIBRATE":
            nm = self._to_nm(num)
            if nm is None:
                return self._err(msg, 2)
            m.wavelength_nm = nm
            return self._reply(msg)
        if word == "GRAT":
            g = int(num)
            if g != num or g not in self.grat:
                return self._err(msg, 2)
            if g - 1 == m.grating:
                return self._err(msg, 7)
            if m.wavelength_nm > m.max_nm(g - 1):
                return self._err(msg, 3)
            m.grating = g - 1
            m.moving_until = max(m.moving_until, t) + 10.0   # turret rotation
            return self._reply(msg)
        if word == "OUTPORT":
            if num not in (1.0, 2.0):
                return self._err(msg, 2)
            self.outport = int(num)
            return self._reply(msg)
        return self._err(msg, 1)

    # -- units -----------------------------------------------------------------------------------------------
    def _to_nm(self, v: float) -> float | None:
        if self.units == "NM":
            return v
        if self.units == "UM":
            return v * 1000.0
        return 1e7 / v if v > 0 else None

    def _from_nm(self, nm: float) -> float:
        if self.units == "NM":
            return nm
        if self.units == "UM":
            return nm / 1000.0
        return 1e7 / nm if nm > 0 else 0.0


def _number(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        return None
