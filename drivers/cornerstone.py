"""Oriel (Newport) Cornerstone 260 monochromator, the ``cornerstone`` backend of the ``tcspc_mono`` role.

Command set: Cornerstone 260 manual (Newport/Oriel MCS260, Appendix I "Low level commands and queries":
§16.2 syntax, §16.3 standard mode, §16.4 handshake mode, §16.7 error codes; the same statements in the
CS260B manual §15). ASCII over RS-232 (9600 8N1) or, in simulation, a loopback TCP socket:

* statements end in LF (CR LF accepted); responses end in CR LF and come in upper case;
* under RS-232 every statement is **echoed** (the characters as received); a query's answer follows the
  echo: ``WAVE?`` → ``WAVE?`` CR LF ``500.000`` CR LF. A command has no answer beyond its echo;
* standard mode: errors are not reported by themselves — a statement that is not understood or has a bad
  parameter sets the status byte, read with ``STB?`` (``00`` success, ``20`` error: bit 5, decimal 32) and
  the error code with ``ERROR?`` (1 not understood, 2 bad parameter, 3 wavelength not allowed, 6
  accessory not present, 7 accessory already there, 8 could not home, 9 label too long, 0 system);
  reading either clears it. So this driver reads ``STB?`` after every command (``check_set_errors``);
* statements used: ``UNITS NM``/``UNITS?``, ``GOWAVE x``/``WAVE?``, ``GRAT n``/``GRAT?`` (``n,lines,label``),
  ``GRATnLINES?``, ``SHUTTER O``/``SHUTTER C``/``SHUTTER?`` (``O``/``C``), ``SLITnMICRONS x``/
  ``SLITnMICRONS?`` (slit 1 entrance, 2 exit), ``INFO?``, ``STB?``, ``ERROR?``, ``HANDSHAKE 0``.

The wavelength drive moves while the instrument keeps statements queued, so the echo of the statement
after ``GOWAVE`` comes when the move has finished; the driver waits with a timeout long enough for a
full-range move (``timeout_s``).

Open-source drivers speaking the same bytes (cross-checked): ``oriel-cornerstone-260`` on PyPI (CR LF
termination, echo then answer), ``hebecked/PyDAQ`` ``bin/monochromator.py`` (``CornerStone260``: echo line
then answer line; ``GRAT?``, ``SHUTTER O/C``, ``STB?``, ``ERROR?``).
"""

from __future__ import annotations

import logging
from typing import Any

from pymeasure.instruments import Instrument
from pymeasure.instruments.validators import strict_discrete_set, strict_range

from ._link import LINK_OPTIONS, GarbageReply, Link, ReplyError, as_float, check_range
from .base import Clock, DriverError, Option
from .monochromator import MONO_OPTIONS, TcspcMonochromator

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

__all__ = ["Cornerstone260", "CornerstoneMonochromator", "ERROR_CODES"]

#: ``ERROR?`` codes (MCS260 §16.7)
ERROR_CODES = {0: "system error (miscellaneous)", 1: "command not understood", 2: "bad parameter used in command",
               3: "destination position for wavelength motion not allowed", 6: "accessory not present",
               7: "accessory already in specified position", 8: "could not home wavelength drive",
               9: "label too long"}


def _grat(v: Any) -> tuple[int, float, str]:
    """``GRAT?`` → (number, lines/mm, label); pymeasure splits the reply at commas."""
    parts = v if isinstance(v, list | tuple) else str(v).split(",")
    if len(parts) < 2:
        raise ValueError(f"GRAT? reply {v!r} is not 'n,lines,label'")
    return int(float(parts[0])), float(parts[1]), ",".join(str(p) for p in parts[2:]).strip()


class Cornerstone260(Instrument):
    """Oriel Cornerstone 260 (echo protocol, standard mode; see the module docstring)."""

    def __init__(self, adapter: Any, name: str = "Oriel Cornerstone 260", **kwargs: Any):
        kwargs.setdefault("asrl", {"baud_rate": 9600})
        super().__init__(adapter, name, read_termination="\n", write_termination="\r\n",
                         includeSCPI=False, **kwargs)

    def write(self, command: str, **kwargs: Any) -> None:
        """Send ``command`` and consume its echo (the statement as the instrument received it)."""
        super().write(command, **kwargs)
        echo = super().read().strip("\r")
        if echo.strip().upper() != command.strip().upper():
            raise ConnectionError(f"Cornerstone echoed {echo!r} to {command!r}")

    def read(self, **kwargs: Any) -> str:
        """Read one response line (CR LF terminated)."""
        return super().read(**kwargs).strip("\r")

    def check_set_errors(self) -> list[str]:
        """Standard mode: read the status byte after a command; on an error read (and clear) the
        error code and raise :class:`~drivers._link.ReplyError` naming it."""
        stb = self.status_byte
        if stb:
            code = self.error_code
            raise ReplyError(f"Cornerstone error {code}: {ERROR_CODES.get(code, 'unknown')}", code=str(code))
        return []

    status_byte = Instrument.measurement(
        "STB?", """Get the status byte (int; 0 = no error, 0x20 = an error is stored; reading clears it).""",
        get_process=lambda v: int(str(v).strip(), 16), cast=str)

    error_code = Instrument.measurement(
        "ERROR?", """Get the error code of the last error (int, see ``ERROR_CODES``; reading clears it).""",
        cast=int)

    info = Instrument.measurement("INFO?", """Get the model and firmware information (str).""", cast=str,
                                  separator="\x00")

    units = Instrument.control(
        "UNITS?", "UNITS %s", """Control the wavelength units (str strictly NM, UM or WN).""",
        validator=strict_discrete_set, values=["NM", "UM", "WN"], cast=str, check_set_errors=True)

    wavelength = Instrument.control(
        "WAVE?", "GOWAVE %.3f", """Control the wavelength in the current units (float, strictly 0–2500 nm;
        setting it moves the drive).""",
        validator=strict_range, values=[0.0, 2500.0], check_set_errors=True)

    grating = Instrument.control(
        "GRAT?", "GRAT %d", """Control the grating: get (number, lines/mm, label), set the number (int
        strictly 1–3).""",
        validator=strict_discrete_set, values=[1, 2, 3], get_process=_grat, get_process_list=_grat, cast=str,
        check_set_errors=True)

    shutter = Instrument.control(
        "SHUTTER?", "SHUTTER %s", """Control the shutter (str strictly 'O' open or 'C' closed).""",
        validator=strict_discrete_set, values=["O", "C"], cast=str, check_set_errors=True)

    slit1_um = Instrument.control(
        "SLIT1MICRONS?", "SLIT1MICRONS %d", """Control the entrance slit width in µm (int strictly 4–3000).""",
        validator=strict_range, values=[4, 3000], cast=int, check_set_errors=True)

    slit2_um = Instrument.control(
        "SLIT2MICRONS?", "SLIT2MICRONS %d", """Control the exit slit width in µm (int strictly 4–3000).""",
        validator=strict_range, values=[4, 3000], cast=int, check_set_errors=True)

    def grating_lines(self, n: int) -> float:
        """Lines/mm of grating ``n`` (``GRATnLINES?``)."""
        n = int(strict_discrete_set(n, [1, 2, 3]))
        return float(self.ask(f"GRAT{n}LINES?"))

    def standard_mode(self) -> None:
        """``HANDSHAKE 0``: no status byte after each statement (what this driver expects)."""
        self.write("HANDSHAKE 0")


class CornerstoneMonochromator(TcspcMonochromator):
    """Cornerstone 260 behind the ``tcspc_mono`` role: verified moves, slits for a bandpass, a shutter."""

    OPTIONS = {
        **MONO_OPTIONS,
        "grating": Option(int, None, min=1, max=3, doc="grating to select on connect (None = leave it)"),
        "tolerance_nm": Option(float, 0.05, min=0.001, max=5.0, unit="nm", doc="position reached within"),
        "max_nm": Option(float, 1400.0, min=1.0, max=2500.0, unit="nm",
                         doc="highest wavelength the driver moves to (grating range)"),
        **LINK_OPTIONS,
        "timeout_s": Option(float, 20.0, min=0.05, max=120.0, unit="s",
                            doc="reply timeout per message (a full-range move holds the next echo back)"),
    }

    def __init__(self, resource: str = "", *, clock: Clock | None = None, **options: Any) -> None:
        opts = self.checked_options(options)
        super().__init__(resource, clock=clock, **opts)
        self.opts = opts
        self.link = Link("Cornerstone 260", resource, self._open, timeout_s=opts["timeout_s"],
                         retries=opts["retries"])
        self._grating: tuple[int, float, str] = (1, 1200.0, "")
        self.identity = ""

    @classmethod
    def attach(cls, inst: Cornerstone260, *, clock: Clock | None = None, **options: Any) -> CornerstoneMonochromator:
        """Wrap an existing :class:`Cornerstone260` (e.g. built by ``expected_protocol``)."""
        self = cls("<attached>", clock=clock, **options)
        self.link = Link.attach("Cornerstone 260", inst)
        return self

    def _open(self) -> Cornerstone260:
        return Cornerstone260(self.resource, visa_library="@py", timeout=int(self.opts["timeout_s"] * 1000))

    # -- connection ---------------------------------------------------------------------------------------
    def connect(self) -> None:
        """Identify (``INFO?``), nanometre units, the grating (selected if the option says so)."""
        self.identity = self.link.call("INFO?", lambda i: i.info)
        self.link.call("UNITS NM", lambda i: setattr(i, "units", "NM"))
        if self.opts["grating"] is not None:
            self.link.call(f"GRAT {self.opts['grating']}", lambda i: setattr(i, "grating", self.opts["grating"]))
        self._grating = self.link.call("GRAT?", lambda i: i.grating)

    def close(self) -> None:
        self.link.close()

    # -- role -------------------------------------------------------------------------------------------
    @property
    def grating_lpmm(self) -> float:
        return float(self._grating[1])

    @property
    def wavelength_nm(self) -> float:
        return self.link.call("WAVE?", lambda i: as_float(i.wavelength, "WAVE?"))

    def move_to(self, wavelength_nm: float) -> None:
        """``GOWAVE`` (the range checked first), then ``WAVE?`` must read the target back."""
        nm = check_range("wavelength", wavelength_nm, 0.0, self.opts["max_nm"], "nm", "the max_nm option")
        self.link.call(f"GOWAVE {nm:.3f}", lambda i: setattr(i, "wavelength", nm))
        here = self.wavelength_nm
        if abs(here - nm) > self.opts["tolerance_nm"]:
            raise DriverError(f"Cornerstone at {here:.3f} nm after GOWAVE {nm:.3f}")

    @property
    def slit_um(self) -> float:
        return self.link.call("SLIT1MICRONS?", lambda i: as_float(i.slit1_um, "SLIT1MICRONS?"))

    def set_slits_um(self, width_um: float) -> None:
        w = int(round(check_range("slit", width_um, self.opts["min_slit_um"], self.opts["max_slit_um"], "µm")))
        self.link.call(f"SLIT1MICRONS {w}", lambda i: setattr(i, "slit1_um", w))
        self.link.call(f"SLIT2MICRONS {w}", lambda i: setattr(i, "slit2_um", w))

    @property
    def shutter_open(self) -> bool:
        def state(i: Any) -> bool:
            v = str(i.shutter).strip().upper()
            if v not in ("O", "C"):
                raise GarbageReply(f"SHUTTER? reply {v!r} is neither O nor C")
            return v == "O"

        return bool(self.link.call("SHUTTER?", state))

    def _shutter(self, state: str) -> None:
        # idempotent either way (a second SHUTTER O leaves it open), and read back below: retried like any
        # setter (the fault campaign lost runs to one dropped SHUTTER O when opening was not retried)
        self.link.call(f"SHUTTER {state}", lambda i: setattr(i, "shutter", state))
        if self.shutter_open != (state == "O"):
            raise DriverError(f"Cornerstone shutter did not {'open' if state == 'O' else 'close'}")

    def open_shutter(self) -> None:
        self._shutter("O")

    def close_shutter(self) -> None:
        self._shutter("C")

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "identity": self.identity, "grating": list(self._grating),
                "rld_nm_per_mm": self.rld_nm_per_mm}
