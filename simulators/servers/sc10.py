"""Thorlabs SC10 shutter controllers on TCP: the X-ray shutter (role ``shutter``, default port 50002), the
laser shutter (role ``laser_shutter``, port 50003, :class:`LaserShutterServer`) and the white-light lamp's
shutter (role ``lamp_shutter``, port 50004, :class:`LampShutterServer`).

Protocol (Thorlabs SC10 manual, "Communication Commands"): ASCII, commands end in CR; the
controller **echoes** each command followed by CR, then the value (queries) followed by CR, then
the prompt ``"> "``. Errors answer ``Command error CMD_NOT_DEFINED`` / ``Command error
CMD_ARG_INVALID`` in place of the value.

Implemented: ``id?``/``*idn?``, ``ens`` (toggle enable; in manual mode 1 enabled = shutter open),
``ens?``, ``closed?`` (1 = closed), ``interlock?`` (1 = tripped), ``mode=n``/``mode?`` (1–5),
``open=ms``/``open?``, ``shut=ms``/``shut?``, ``rep=n``/``rep?``, ``trig=``/``trig?``,
``xto=``/``xto?``, ``baud=``/``baud?``, ``?`` (command list), ``save savp resp`` (answered, nothing
stored). The X-ray shutter's interlock input is wired to the X-ray enclosure interlock chain:
while it is tripped the shutter is closed and ``ens`` is refused (stays 0). The laser shutter's
interlock input is not wired (``interlock?`` answers 0), nor is the lamp shutter's. Both start with the output disabled
(shutter closed), as the controller does at power-on.

Request fault ``instrument_error``: the command is echoed and answered with
``Command error CMD_NOT_DEFINED`` without being executed.
"""

from __future__ import annotations

from typing import Any

from .base import ProtocolServer, split_lines

__all__ = ["SC10Server", "LaserShutterServer", "LampShutterServer"]

PROMPT = b"> "
IDN = "THORLABS SC10 VERSION 1.07 (SIM)"
#: the manual's keyword table ("Keywords (Commands and Queries)"), what ``?`` lists
COMMAND_LIST = ("? id? ens ens? rep=n rep? mode=n mode? trig=n trig? xto=n xto? open=n open? shut=n shut? "
                "closed? interlock? baud=n baud? save savp resp")


class SC10Server(ProtocolServer):
    ROLE = "shutter"
    NAME = "Thorlabs SC10"
    DEFAULT_PORT = 50002

    def split(self, buf: bytearray) -> list[bytes]:
        return _split_cr(buf)

    def device(self) -> Any:
        """What the shutter blade blocks: the X-ray tube's beam port."""
        return self.world.tube

    def _answer(self, echo: str, value: str | None) -> bytes:
        out = echo + "\r"
        if value is not None:
            out += value + "\r"
        return out.encode() + PROMPT

    def garbage(self, msg: bytes) -> bytes | None:
        return msg + b"\r" + self.junk().encode() + b"\r" + PROMPT

    def instrument_error(self, msg: bytes, session: dict[str, Any], t: float) -> bytes | None:
        return self._answer(msg.decode("latin-1"), "Command error CMD_NOT_DEFINED")

    def handle(self, msg: bytes, session: dict[str, Any], t: float) -> bytes | None:
        text = msg.decode("latin-1")
        cmd = text.strip().lower()
        tube = self.device()
        settings = session.setdefault("settings", {"mode": 1, "open": 100, "shut": 100, "rep": 1,
                                                   "trig": 0, "xto": 0, "baud": 0})
        limits = {"mode": (1, 5), "open": (0, 999999), "shut": (0, 999999), "rep": (1, 99), "trig": (0, 1),
                  "xto": (0, 1)}
        if cmd in ("id?", "*idn?"):
            return self._answer(text, IDN)
        if cmd == "ens?":
            return self._answer(text, "1" if tube.shutter_enabled else "0")
        if cmd == "ens":
            if tube.interlock_closed(t):
                tube.shutter_enabled = not tube.shutter_enabled
            return self._answer(text, None)
        if cmd == "closed?":
            return self._answer(text, "0" if tube.shutter_open else "1")
        if cmd == "interlock?":
            return self._answer(text, "0" if tube.interlock_closed(t) else "1")
        if cmd == "baud?":
            return self._answer(text, str(settings["baud"]))
        if cmd == "?":
            return self._answer(text, COMMAND_LIST)
        if cmd in ("save", "savp", "resp"):   # store / load configuration: nothing to persist in the simulation
            return self._answer(text, None)
        if cmd.startswith("baud="):
            if cmd[5:] not in ("0", "1"):          # 0 = 9600, 1 = 115200
                return self._answer(text, "Command error CMD_ARG_INVALID")
            settings["baud"] = int(cmd[5:])
            return self._answer(text, None)
        key, eq, val = cmd.partition("=")
        if key.endswith("?") and key[:-1] in limits:
            return self._answer(text, str(settings[key[:-1]]))
        if eq and key in limits:
            lo, hi = limits[key]
            try:
                v = int(val)
            except ValueError:
                return self._answer(text, "Command error CMD_ARG_INVALID")
            if not lo <= v <= hi:
                return self._answer(text, "Command error CMD_ARG_INVALID")
            settings[key] = v
            return self._answer(text, None)
        return self._answer(text, "Command error CMD_NOT_DEFINED")


def _split_cr(buf: bytearray) -> list[bytes]:
    """CR-terminated commands; a LF after the CR (or instead of it) is tolerated."""
    return split_lines(buf, b"\r", b"\r\n ") if b"\r" in buf else (
        split_lines(buf, b"\n", b"\r\n ") if b"\n" in buf else [])


class LaserShutterServer(SC10Server):
    """The second SC10, in front of the laser (issue 15): closing it takes the laser off the sample."""

    ROLE = "laser_shutter"
    NAME = "Thorlabs SC10 (laser)"
    DEFAULT_PORT = 50003

    def __init__(self, world: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(world, host, port)
        world.laser.shutter_installed = True   # a lab without this controller has no shutter in the beam

    def device(self) -> Any:
        return self.world.laser


class LampShutterServer(SC10Server):
    """The third SC10, gating the white-light lamp of the in-situ transmission (physics.md P6): starting it
    puts the lamp behind the sample holder (``world.lamp.installed``)."""

    ROLE = "lamp_shutter"
    NAME = "Thorlabs SC10 (white light)"
    DEFAULT_PORT = 50004

    def __init__(self, world: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(world, host, port)
        world.lamp.installed = True

    def device(self) -> Any:
        return self.world.lamp
