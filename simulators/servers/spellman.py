"""Spellman XRV/DXM HV generator on TCP (default port 50001), answering from the X-ray tube model.

Framing (instruments.md §2.1): ``STX <cmd>,<arg>,...,[<csum>] ETX``. The checksum is optional on
this link: a frame whose last comma is followed by a character is checked like the serial link
(sum of the bytes after STX up to the last comma, two's complement, ``& 0x7F | 0x40``) and **a bad
checksum gets no reply at all**; a frame ending in a comma is taken as a LAN frame without
checksum. Replies carry a checksum iff the request did. Set commands answer ``$``; errors answer
the numeric code (1 bad packet format, 2 invalid command, 3 parameter out of range, 4 packet
overrun). HV-on (``98,1``) is refused with ``E#2`` while the interlock is open (the code the uX
uses over TCP) and with ``E#3`` while the fault register is not clear (reset with ``31``).

Every valid frame feeds the watchdog; the tube model drops HV ``watchdog_s`` after the last one.
12-bit setpoints scale against the full scale reported by ``28`` (``50,1,0`` = 50 kV, 1 mA);
monitors have the ADC's 20 % over-range (1.2·FS per 4095 counts).

Request fault ``instrument_error``: the frame is answered with error code 4 (packet overrun) and
not executed.
"""

from __future__ import annotations

import logging
from typing import Any

from .base import ProtocolServer

log = logging.getLogger(__name__)

__all__ = ["SpellmanServer", "checksum"]

STX, ETX = b"\x02", b"\x03"


def checksum(body: str) -> str:
    """Spellman checksum of the bytes after STX up to and including the last comma."""
    return chr(((0x100 - sum(body.encode("latin-1"))) & 0x7F) | 0x40)


class SpellmanServer(ProtocolServer):
    ROLE = "xray"
    NAME = "Spellman XRV"
    DEFAULT_PORT = 50001

    def __init__(self, world: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(world, host, port)
        self.filament_setpoints = {"12": 0, "13": 0}   # XRV: 12 filament limit, 13 filament preheat (0-4095)

    def split(self, buf: bytearray) -> list[bytes]:
        out = []
        while True:
            end = buf.find(ETX)
            if end < 0:
                if len(buf) > 4096:
                    buf.clear()
                return out
            frame = bytes(buf[:end])
            del buf[: end + 1]
            start = frame.rfind(STX)
            if start < 0:
                continue  # no STX: not a frame, ignored
            out.append(frame[start + 1:])

    def _reply(self, session: dict[str, Any], cmd: str, fields: list[Any]) -> bytes:
        body = cmd + "," + "".join(f"{f}," for f in fields)
        if session.get("csum"):
            body += checksum(body)
        return STX + body.encode("latin-1") + ETX

    def garbage(self, msg: bytes) -> bytes | None:
        return STX + self.junk().encode() + ETX

    def _parse(self, msg: bytes, session: dict[str, Any]) -> tuple[str, list[str]] | None:
        try:
            text = msg.decode("latin-1")
        except UnicodeDecodeError:
            return None
        head, comma, tail = text.rpartition(",")
        if not comma:
            return None
        if tail:
            if len(tail) != 1 or tail != checksum(head + ","):
                log.info("Spellman: bad checksum in %r, no reply", text)
                return None
            session["csum"] = True
        else:
            session["csum"] = False
        parts = head.split(",")
        return parts[0], parts[1:]

    def instrument_error(self, msg: bytes, session: dict[str, Any], t: float) -> bytes | None:
        parsed = self._parse(msg, session)
        if parsed is None:
            return None
        return self._reply(session, parsed[0], [4])

    def handle(self, msg: bytes, session: dict[str, Any], t: float) -> bytes | None:
        parsed = self._parse(msg, session)
        if parsed is None:
            return None
        cmd, args = parsed
        tube = self.world.tube
        tube.touch(t)
        if len(cmd) != 2 or not cmd.isdigit():
            return self._reply(session, cmd, [1])
        fs_kV, fs_mA = tube.full_scale_kV, tube.full_scale_mA
        adc_kV = 4095 / (1.2 * fs_kV)
        adc_mA = 4095 / (1.2 * fs_mA)

        def ints(n: int, lo: int, hi: int) -> list[int] | None:
            if len(args) != n:
                return None
            try:
                vals = [int(a) for a in args]
            except ValueError:
                return None
            return vals if all(lo <= v <= hi for v in vals) else None

        ok = [("$")]
        if cmd in ("10", "11"):
            v = ints(1, 0, 4095)
            if v is None:
                return self._reply(session, cmd, [3])
            if cmd == "10":
                tube.set_kV(v[0] / 4095 * fs_kV)
            else:
                tube.set_mA(v[0] / 4095 * fs_mA)
            return self._reply(session, cmd, ok)
        if cmd in ("12", "13"):
            v = ints(1, 0, 4095)
            if v is None:
                return self._reply(session, cmd, [3])
            self.filament_setpoints[cmd] = v[0]   # an instrument setting: every connection sees it
            return self._reply(session, cmd, ok)
        if cmd in ("07", "32", "70"):
            v = ints(1, 0, 5 if cmd == "07" else 1)
            if v is None:
                return self._reply(session, cmd, [3])
            if cmd == "70":
                tube.filament_enabled = bool(v[0])
            return self._reply(session, cmd, ok)
        if args:
            if cmd == "98":
                v = ints(1, 0, 1)
                if v is None:
                    return self._reply(session, cmd, [3])
                why = tube.request_hv(bool(v[0]), t)
                if why is None:
                    return self._reply(session, cmd, ok)
                log.info("Spellman refuses HV on: %s", why)
                return self._reply(session, cmd, ["E#2" if why.startswith("interlock") else "E#3"])
            if cmd == "97":
                v = ints(2, 0, 100000)
                if v is None:
                    return self._reply(session, cmd, [3])
                tube.power_limit_W = float(min(v))
                return self._reply(session, cmd, ok)
            return self._reply(session, cmd, [2] if cmd not in ("09",) else ok)
        if cmd == "14":
            return self._reply(session, cmd, [round(tube.kV_set / fs_kV * 4095)])
        if cmd == "15":
            return self._reply(session, cmd, [round(tube.mA_set / fs_mA * 4095)])
        if cmd in ("16", "17"):
            # XRV: 16 reads back what 12 (filament limit) set, 17 what 13 (preheat) set
            return self._reply(session, cmd, [self.filament_setpoints[str(int(cmd) - 4)]])
        if cmd == "19":
            return self._reply(session, cmd, [round(tube.kV * adc_kV), round(tube.mA * adc_mA),
                                              2000 if tube.hv_on else 0,
                                              0, 0, 0, 0, 0])
        if cmd == "21":
            return self._reply(session, cmd, [f"{tube.hv_seconds / 3600:.1f}"])
        if cmd == "22":
            bits = tube.status_bits()
            return self._reply(session, cmd, [(bits >> i) & 1 for i in range(17)])
        if cmd == "23":
            return self._reply(session, cmd, ["SWM9999-999", "SIM"])
        if cmd == "26":
            return self._reply(session, cmd, ["XRV50P1"])
        if cmd == "27":
            return self._reply(session, cmd, [0, 10, round(fs_kV / tube.kV_ramp_per_s * 1000),
                                              round(fs_mA / tube.mA_ramp_per_s * 1000), 0, tube.arc_count, 0,
                                              0, 0, f"{fs_kV:g}", f"{fs_mA:g}", f"{tube.watchdog_s:g}"])
        if cmd == "28":
            return self._reply(session, cmd, [f"{fs_kV:g}", f"{fs_mA:g}", 0])
        if cmd == "30":
            tube.hv_seconds = 0.0
            return self._reply(session, cmd, ok)
        if cmd == "31":
            tube.reset_faults()
            return self._reply(session, cmd, ok)
        if cmd == "38":
            p = round(tube.power_limit_W)
            return self._reply(session, cmd, [p, p])
        if cmd == "43":
            return self._reply(session, cmd, ["FPGA-SIM", "1"])
        if cmd == "60":
            return self._reply(session, cmd, [round(tube.kV * adc_kV)])
        if cmd == "61":
            return self._reply(session, cmd, [round(tube.mA * adc_mA)])
        if cmd == "65":
            return self._reply(session, cmd, [3000])
        if cmd == "68":
            bits = tube.fault_bits()
            return self._reply(session, cmd, [(bits >> i) & 1 for i in range(27)])
        if cmd == "69":
            return self._reply(session, cmd, [600, 0, round(tube.kV * adc_kV), 0, 1300, 1200, 1300, 1200,
                                              2800, 2600])
        return self._reply(session, cmd, [2])
