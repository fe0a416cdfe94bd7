"""Lake Shore 336 cryogenic temperature controller (role ``cryostat``).

:class:`LakeShore336` extends pymeasure's ``LakeShore3xx`` with what a temperature-sweep lab needs
and pymeasure lacks: setpoint ramp (``RAMP``/``RAMPST?``), ``PID``, ``OUTMODE``, heater status
(``HTRST?``), reading status (``RDGST?``), strict validators, and error checking through the
IEEE-488.2 event status register (the instrument answers nothing to a bad command, so setters are
followed by ``*ESR?``, which also makes every setter synchronous).

:class:`LakeShore336Controller` is the ``TemperatureController`` backend: link handling with clear
errors and bounded reconnect, heater range chosen from the setpoint, and a stability wait on the
lab clock. Inputs: ``control_input`` (the stage sensor the loop regulates, default A) and
``sample_input`` (a thermometer at the sample, default B) — the role's ``temperature`` is the
sample's.
"""

from __future__ import annotations

import logging
import math
import time
from enum import IntEnum, IntFlag
from typing import Any

from pymeasure.instruments import Channel, Instrument
from pymeasure.instruments.lakeshore import LakeShore3xx
from pymeasure.instruments.lakeshore.lakeshore_base import (
    LakeShoreHeaterChannel,
    LakeShoreTemperatureChannel,
)
from pymeasure.instruments.validators import strict_discrete_set, strict_range
from pyvisa.constants import Parity, StopBits

from ._link import LINK_OPTIONS, GarbageReply, Link, ReplyError, as_float, check_range
from .base import Clock, DriverError, Option
from .cryostat import TemperatureController

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

__all__ = ["LakeShore336", "LakeShore336Controller", "ReadingStatus", "HeaterStatus", "OutputMode"]


class ReadingStatus(IntFlag):
    """``RDGST?`` bits."""

    OK = 0
    INVALID_READING = 1
    TEMP_UNDERRANGE = 16
    TEMP_OVERRANGE = 32
    SENSOR_UNITS_ZERO = 64
    SENSOR_UNITS_OVERRANGE = 128


class HeaterStatus(IntEnum):
    """``HTRST?`` codes."""

    NO_ERROR = 0
    OPEN_LOAD = 1
    SHORT = 2


class OutputMode(IntEnum):
    """``OUTMODE`` modes."""

    OFF = 0
    CLOSED_LOOP = 1
    ZONE = 2
    OPEN_LOOP = 3
    MONITOR_OUT = 4
    WARMUP = 5


def _tuple_validator(limits: list[tuple[float, float]]):
    def validate(value: Any, values: Any) -> tuple:
        if not isinstance(value, list | tuple) or len(value) != len(limits):
            raise ValueError(f"value {value!r} must be a tuple of {len(limits)} numbers")
        for v, (lo, hi) in zip(value, limits, strict=True):
            strict_range(v, [lo, hi])
        return tuple(value)

    return validate


def _ramp_validator(value: Any, values: Any) -> tuple:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError(f"ramp {value!r} must be (enabled, rate_K_per_min)")
    enabled, rate = value
    strict_discrete_set(bool(enabled), [True, False])
    strict_range(rate, [0, 100])
    if enabled and rate < 0.1:
        raise ValueError(f"ramp rate {rate} K/min is outside 0.1 to 100 K/min")
    return (int(bool(enabled)), float(rate))


class LakeShore336Input(LakeShoreTemperatureChannel):
    """Temperature input (A–D) with the reading status."""

    reading_status = Channel.measurement(
        "RDGST? {ch}",
        """Get the reading status of the input (:class:`ReadingStatus`, 0 = valid).""",
        get_process=lambda v: ReadingStatus(int(v)),
    )


class LakeShore336Output(LakeShoreHeaterChannel):
    """Heater output (1–4) with ramp, PID, output mode and heater status."""

    setpoint = Channel.control(
        "SETP? {ch}", "SETP {ch},%.3f",
        """Control the loop setpoint in K (float strictly from 0 to 400); while a ramp runs, the
        query returns the present ramping setpoint.""",
        validator=strict_range, values=[0, 400], check_set_errors=True,
    )

    range = Channel.control(
        "RANGE? {ch}", "RANGE {ch},%d",
        """Control the heater range (str strictly in 'off', 'low', 'medium', 'high').""",
        validator=strict_discrete_set, values={"off": 0, "low": 1, "medium": 2, "high": 3},
        map_values=True, check_set_errors=True,
    )

    mout = Channel.control(
        "MOUT? {ch}", "MOUT {ch},%.2f",
        """Control the manual (open-loop) heater output in % (float strictly from 0 to 100).""",
        validator=strict_range, values=[0, 100], check_set_errors=True,
    )

    ramp = Channel.control(
        "RAMP? {ch}", "RAMP {ch},%d,%.1f",
        """Control the setpoint ramp as (enabled, rate in K/min) (tuple of bool and float strictly
        from 0.1 to 100 K/min when enabled).""",
        validator=_ramp_validator, check_set_errors=True,
        get_process_list=lambda v: (bool(int(v[0])), float(v[1])),
    )

    ramping = Channel.measurement(
        "RAMPST? {ch}",
        """Get whether the setpoint is ramping (bool).""",
        get_process=lambda v: bool(int(v)),
    )

    pid = Channel.control(
        "PID? {ch}", "PID {ch},%.1f,%.1f,%.0f",
        """Control the loop gains (P, I, D) (tuple of floats strictly P 0.1–1000, I 0.1–1000,
        D 0–200).""",
        validator=_tuple_validator([(0.1, 1000), (0.1, 1000), (0, 200)]), check_set_errors=True,
        get_process_list=lambda v: tuple(float(x) for x in v),
    )

    outmode = Channel.control(
        "OUTMODE? {ch}", "OUTMODE {ch},%d,%d,%d",
        """Control the output mode as (mode, input, powerup enable) (tuple of int strictly mode 0–5
        (:class:`OutputMode`), input 0–4 (0 none, 1 A … 4 D), powerup 0–1).""",
        validator=_tuple_validator([(0, 5), (0, 4), (0, 1)]), check_set_errors=True,
        get_process_list=lambda v: (OutputMode(int(v[0])), int(v[1]), int(v[2])),
    )

    heater_status = Channel.measurement(
        "HTRST? {ch}",
        """Get the heater status (:class:`HeaterStatus`: 0 no error, 1 open load, 2 short).""",
        get_process=lambda v: HeaterStatus(int(v)),
    )


class LakeShore336(LakeShore3xx):
    """Lake Shore 336 with the extended channels (see module docstring).

    .. code-block:: python

        ls = LakeShore336("TCPIP::192.168.0.12::7777::SOCKET", visa_library="@py")
        ls.output_1.ramp = (True, 5.0)      # 5 K/min
        ls.output_1.range = "medium"
        ls.output_1.setpoint = 20.0
        ls.input_B.kelvin
    """

    input_A = Instrument.ChannelCreator(LakeShore336Input, "A")
    input_B = Instrument.ChannelCreator(LakeShore336Input, "B")
    input_C = Instrument.ChannelCreator(LakeShore336Input, "C")
    input_D = Instrument.ChannelCreator(LakeShore336Input, "D")
    output_1 = Instrument.ChannelCreator(LakeShore336Output, 1)
    output_2 = Instrument.ChannelCreator(LakeShore336Output, 2)
    output_3 = Instrument.ChannelCreator(LakeShore336Output, 3)
    output_4 = Instrument.ChannelCreator(LakeShore336Output, 4)

    def __init__(self, adapter: Any, name: str = "Lake Shore 336 Temperature Controller", **kwargs: Any):
        # USB virtual COM port: 57600 baud, 7 data bits, odd parity, 1 stop bit (ignored on TCP/GPIB)
        kwargs.setdefault("asrl", {"baud_rate": 57600, "data_bits": 7, "parity": Parity.odd,
                                   "stop_bits": StopBits.one})
        super().__init__(adapter, name=name, **kwargs)
        #: minimum wall time between messages (the Lake Shore manuals ask for ≥ 50 ms, ≤ 20 msg/s)
        self.min_interval_s = 0.0
        self._last_write = -math.inf

    def write(self, command: str, **kwargs: Any) -> None:
        """Write ``command``, first waiting out ``min_interval_s`` since the previous message."""
        if self.min_interval_s > 0:
            wait = self._last_write + self.min_interval_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        super().write(command, **kwargs)
        self._last_write = time.monotonic()

    event_status = Instrument.measurement(
        "*ESR?",
        """Get (and clear) the standard event status register (int; 4 query error, 16 execution
        error, 32 command error).""",
        cast=int,
    )

    def check_errors(self) -> list:
        """Read ``*ESR?`` and raise :class:`~drivers._link.ReplyError` if a command, execution or
        query error is flagged (the instrument is silent on bad commands)."""
        raw = self.ask("*ESR?").strip()
        try:
            esr = int(raw)
        except ValueError:
            raise GarbageReply(f"garbage reply to *ESR?: {raw!r}") from None
        bad = esr & (4 | 16 | 32)
        if bad:
            what = ", ".join(n for b, n in ((32, "command error"), (16, "execution error"),
                                            (4, "query error")) if bad & b)
            raise ReplyError(f"Lake Shore flagged {what} (*ESR? = {esr})", code=str(esr))
        return []


RANGES = ("off", "low", "medium", "high")


class LakeShore336Controller(TemperatureController):
    """Lake Shore 336 behind the ``TemperatureController`` role (see module docstring)."""

    OPTIONS = {
        "control_input": Option(str, "A", choices=("A", "B", "C", "D"), doc="sensor the loop regulates"),
        "sample_input": Option(str, "B", choices=("A", "B", "C", "D"), doc="thermometer at the sample"),
        "output": Option(int, 1, choices=(1, 2), doc="heater output driving the stage"),
        "min_K": Option(float, 4.0, min=0.0, max=400.0, unit="K", doc="lowest setpoint accepted"),
        "max_K": Option(float, 325.0, min=1.0, max=400.0, unit="K", doc="highest setpoint accepted",
                        max_reason="is above the controller's 400 K setpoint limit"),
        "low_range_below_K": Option(float, 10.0, min=0.0, max=400.0, unit="K",
                                    doc="setpoints below this use the low heater range"),
        "medium_range_below_K": Option(float, 40.0, min=0.0, max=400.0, unit="K",
                                       doc="setpoints below this (and above the low limit) use medium"),
        "safe_range": Option(str, "off", choices=RANGES, doc="heater range of the safe state"),
        "min_interval_s": Option(float, 0.0, min=0.0, max=1.0, unit="s",
                                 doc="wall time between messages; 0.05 at the setup (Lake Shore pacing advice)"),
        "ramp_from_present": Option(bool, True, doc="start a ramp from the present control-sensor "
                                                    "temperature (not from a stale setpoint)"),
        **LINK_OPTIONS,
    }

    def __init__(self, resource: str = "", *, clock: Clock | None = None, **options: Any) -> None:
        super().__init__(resource, clock=clock, **options)
        opts = self.opts = self.checked_options(options)
        self.link = Link("Lake Shore 336", resource, self._open, timeout_s=opts["timeout_s"],
                         retries=opts["retries"])
        self.idn = ""

    @classmethod
    def attach(cls, inst: LakeShore336, *, clock: Clock | None = None, **options: Any) -> LakeShore336Controller:
        """Wrap an existing :class:`LakeShore336` (e.g. one built by ``expected_protocol``)."""
        self = cls("<attached>", clock=clock, **options)
        self.link = Link.attach("Lake Shore 336", inst)
        return self

    def _open(self) -> LakeShore336:
        inst = LakeShore336(self.resource, visa_library="@py", timeout=int(self.opts["timeout_s"] * 1000))
        inst.min_interval_s = self.opts["min_interval_s"]
        return inst

    # -- plumbing ----------------------------------------------------------------------------
    @property
    def _out(self) -> Any:
        return getattr(self.link.inst, f"output_{self.opts['output']}")

    def _input(self, name: str) -> Any:
        return getattr(self.link.inst, f"input_{name}")

    def connect(self) -> None:
        """Open the link and check the identity (``*IDN?`` must name a Lake Shore)."""
        idn = self.link.call("*IDN?", lambda i: i.ask("*IDN?").strip())
        if not idn.startswith("LSCI"):
            raise DriverError(f"{self.resource} does not identify as a Lake Shore controller: {idn!r}")
        self.idn = idn

    def close(self) -> None:
        self.link.close()

    @staticmethod
    def _valid_T(i: Any, inp: str, T: float) -> float:
        """``T`` if it is a reading; a Lake Shore answers ``+000.000`` for an invalid one (RDGST? says why)."""
        if T <= 0.0:
            status = getattr(i, f"input_{inp}").reading_status
            raise DriverError(f"Lake Shore input {inp} reading invalid (RDGST? = {int(status)}: "
                              f"{status!r}); check the sensor and its cable")
        return T

    def _read_T(self, inp: str) -> float:
        def read(i: Any) -> float:
            return self._valid_T(i, inp, as_float(getattr(i, f"input_{inp}").kelvin, f"KRDG? {inp}"))

        return self.link.call(f"KRDG? {inp}", read)

    def temperature_and_setpoint(self) -> tuple[float, float]:
        """The sample temperature and the loop setpoint (K) in one message, ``KRDG? B;SETP? 1``: the
        controller answers chained queries with their replies joined by ``;`` (instruments.md §1.1), one
        exchange instead of two at every temperature-band check."""
        inp, out = self.opts["sample_input"], self.opts["output"]
        q = f"KRDG? {inp};SETP? {out}"

        def read(i: Any) -> tuple[float, float]:
            parts = i.ask(q).strip().split(";")
            if len(parts) != 2:
                raise GarbageReply(f"garbage reply to {q}: {';'.join(parts)!r} is not two values")
            T = as_float(parts[0], f"KRDG? {inp}")
            sp = as_float(parts[1], f"SETP? {out}")
            return self._valid_T(i, inp, T), sp

        return self.link.call(q, read)

    # -- role interface --------------------------------------------------------------------------
    @property
    def temperature(self) -> float:
        """Measure the sample temperature in K (input ``sample_input``)."""
        return self._read_T(self.opts["sample_input"])

    @property
    def sensor_temperature(self) -> float:
        """Measure the control-sensor (stage) temperature in K (input ``control_input``)."""
        return self._read_T(self.opts["control_input"])

    @property
    def setpoint(self) -> float:
        """Measure the present loop setpoint in K (ramping value while a ramp runs)."""
        return self.link.call("SETP?", lambda i: as_float(self._out.setpoint, "SETP?"))

    @property
    def heater(self) -> float:
        """Measure the heater output in % of the range."""
        return self.link.call("HTR?", lambda i: as_float(self._out.output, "HTR?"))

    @property
    def ramping(self) -> bool:
        """Measure whether the setpoint ramp is still running."""
        return self.link.call("RAMPST?", lambda i: self._out.ramping)

    @property
    def heater_status(self) -> HeaterStatus:
        """Measure the heater status (open load / short)."""
        return self.link.call("HTRST?", lambda i: self._out.heater_status)

    def range_for(self, kelvin: float) -> str:
        """Heater range suited to a setpoint (from the ``*_range_below_K`` options)."""
        if kelvin < self.opts["low_range_below_K"]:
            return "low"
        if kelvin < self.opts["medium_range_below_K"]:
            return "medium"
        return "high"

    def set_pid(self, p: float, i: float, d: float) -> None:
        """Set the loop gains (P 0.1–1000, I 0.1–1000, D 0–200)."""
        vals = (check_range("P", p, 0.1, 1000), check_range("I", i, 0.1, 1000), check_range("D", d, 0, 200))
        self.link.call("PID", lambda _: setattr(self._out, "pid", vals))

    def set_temperature(self, kelvin: float, *, ramp_K_per_min: float | None = None) -> None:
        """Set the ramp (or none), the heater range suited to ``kelvin``, then the setpoint.
        Everything is validated before the first byte is sent. With a ramp (and the
        ``ramp_from_present`` option) the setpoint is first set to the present control-sensor
        temperature, so the ramp starts where the stage is."""
        k = check_range("setpoint", kelvin, self.opts["min_K"], self.opts["max_K"], "K",
                        "the min_K/max_K options of the cryostat")
        ramp = (False, 0.0) if ramp_K_per_min is None else (
            True, check_range("ramp rate", ramp_K_per_min, 0.1, 100.0, "K/min", "the Lake Shore 336's ramp limits"))
        rng = self.range_for(k)
        start = None
        if ramp[0] and self.opts["ramp_from_present"]:
            start = self.sensor_temperature

        def do(_: Any) -> None:
            out = self._out
            if start is not None:
                # the controller ramps from its present setpoint, which may be far from the stage
                # temperature (e.g. an old 300 K setpoint with the heater off): start from where we are
                out.ramp = (False, 0.0)
                out.setpoint = round(min(max(start, 0.0), 400.0), 3)
            out.ramp = ramp
            out.range = rng
            out.setpoint = k

        self.link.call(f"set {k:g} K", do)
        log.info("cryostat setpoint %.3f K (ramp %s, range %s)", k, ramp_K_per_min, rng)

    def wait_stable(self, kelvin: float, *, band_K: float = 0.1, hold_s: float = 60.0,
                    timeout_s: float = 3600.0, poll_s: float = 1.0) -> float:
        """Wait on the lab clock until the sample stays within ``band_K`` of ``kelvin`` for
        ``hold_s``; return the lab seconds waited. Raises TimeoutError naming the last reading.
        Polls the role's cancellation token between readings (at least every ``POLL_S``), so an
        abort, pause, MAKE SAFE or suspender acts within one poll, not at the end of the wait."""
        check_range("band_K", band_K, 1e-4, 100, "K")
        check_range("hold_s", hold_s, 0, 1e6, "s")
        check_range("timeout_s", timeout_s, 0, 1e7, "s")
        check_range("poll_s", poll_s, 1e-3, 3600, "s")
        clock = self.clock
        t0 = clock.monotonic()
        inside_since: float | None = None
        while True:
            T = self.temperature
            t = clock.monotonic()
            if abs(T - kelvin) < band_K:
                inside_since = t if inside_since is None else inside_since
                if t - inside_since >= hold_s:
                    return t - t0
            else:
                inside_since = None
            if t - t0 >= timeout_s:
                raise TimeoutError(f"cryostat not stable at {kelvin:g} K ± {band_K:g} K for {hold_s:g} s "
                                   f"within {timeout_s:g} s; last reading {T:.3f} K")
            self.wait(poll_s)

    def readback(self) -> dict[str, float]:
        return {"T_sample": self.temperature, "T_sensor": self.sensor_temperature,
                "setpoint": self.setpoint, "heater": self.heater}

    def make_safe(self) -> None:
        """Put the heater in ``safe_range`` (off by default); the setpoint is left alone."""
        rng = self.opts["safe_range"]
        self.link.call(f"RANGE {rng}", lambda _: setattr(self._out, "range", rng))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "idn": self.idn, "options": dict(self.opts)}
