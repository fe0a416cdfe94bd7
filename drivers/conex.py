"""Newport CONEX controllers: the CONEX-AGP rotation stage carrying a continuous ND wheel (role
``attenuator``) and the CONEX-CC linear stage of the sample holder (role ``sample_stage``,
:mod:`drivers.sample_stage`).

:class:`ConexController` is a pymeasure Instrument for the CONEX command set the two controllers share
(``1PA``, ``1TP?``, ``1TS?``, ``1OR``, ``1TE?``, …; CR LF; address 1; instruments.md §5.3);
:class:`ConexAGP` (degrees) and :class:`ConexCC` (mm) add the absolute move with their positioner's
range, and :class:`ConexAxis` is the verified motion (state poll, home, move and re-send) both
backends use. The controller does not answer set commands, good or bad:
every set command is therefore followed by ``1TE?`` and a non-``@`` code raises
:class:`~drivers._link.ReplyError` with the manual's meaning (this also makes setters synchronous).

:class:`ConexNDAttenuator` is the ``Attenuator`` backend: a calibration table (angle → transmission,
monotonically decreasing) maps transmission to angle by interpolation in log10(T); fluence is set
through the calibrated full power, repetition rate and spot area (fluence = P / f_rep / area).
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pymeasure.instruments import Instrument
from pymeasure.instruments.validators import strict_range
from pyvisa.constants import ControlFlow

from ._link import LINK_OPTIONS, LimitError, Link, ReplyError, as_float, check_range
from .attenuator import Attenuator
from .base import Clock, DriverError, Option
from .shutter import SC10, SC10Shutter

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

__all__ = ["ConexController", "ConexAGP", "ConexCC", "ConexAxis", "ConexNDAttenuator", "ERROR_CODES", "STATES",
           "nominal_calibration"]

ERROR_CODES = {"@": "no error", "A": "unknown message code or floating point controller address",
               "B": "controller address not correct", "C": "parameter missing or out of range",
               "D": "command not allowed", "E": "home sequence already started",
               "G": "displacement out of limits", "H": "command not allowed in NOT REFERENCED state",
               "I": "command not allowed in CONFIGURATION state", "J": "command not allowed in DISABLE state",
               "K": "command not allowed in READY state", "L": "command not allowed in HOMING state",
               "M": "command not allowed in MOVING state", "N": "current position out of software limit",
               "S": "communication time out", "U": "error during EEPROM access",
               "V": "error during command execution", "W": "command not allowed for PP version",
               "X": "command not allowed for CC version"}

STATES = {"0A": "NOT REFERENCED from reset", "0B": "NOT REFERENCED from HOMING",
          "0C": "NOT REFERENCED from CONFIGURATION", "0D": "NOT REFERENCED from DISABLE",
          "0E": "NOT REFERENCED from READY", "0F": "NOT REFERENCED from MOVING",
          "10": "NOT REFERENCED no parameters", "14": "CONFIGURATION", "1E": "HOMING", "28": "MOVING",
          "32": "READY from HOMING", "33": "READY from MOVING", "34": "READY from DISABLE",
          "3C": "DISABLE from READY", "3D": "DISABLE from MOVING", "3E": "DISABLE from TRACKING"}


def _strip(prefix: str):
    def process(v: str) -> str:
        v = str(v).strip()
        if not v.startswith(prefix):
            raise ValueError(f"reply {v!r} does not start with {prefix!r}")
        return v[len(prefix):].strip()

    return process


def nominal_calibration(od_min: float = 0.04, od_max: float = 4.0, span_deg: float = 270.0,
                        n: int = 28) -> list[list[float]]:
    """Nominal table of a Thorlabs NDC-50C-4 wheel: OD linear in angle over ``span_deg``."""
    angles = np.linspace(0.0, span_deg, n)
    return [[float(a), float(10 ** -(od_min + (od_max - od_min) * a / span_deg))] for a in angles]


def _target(lo: float, hi: float, unit: str) -> Any:
    """The ``1PA`` control of a CONEX controller whose positioner moves within ``[lo, hi]`` ``unit``."""
    return Instrument.control(
        "1PA?", "1PA%.5f",
        f"""Control the target position in {unit} (float strictly from {lo:g} to {hi:g}; the stage's
        software limits apply too). Setting it starts an absolute move.""",
        validator=strict_range, values=[lo, hi], check_set_errors=True,
        get_process=lambda v: float(_strip("1PA")(v)), cast=str)


class ConexController(Instrument):
    """The CONEX command set shared by the CONEX-AGP and CONEX-CC controllers, address 1 (see module
    docstring). Positions are in the positioner's unit: degrees for a rotation stage, mm for a linear one.
    Subclasses add ``target`` (``1PA``) with their positioner's range."""

    def __init__(self, adapter: Any, name: str = "Newport CONEX", **kwargs: Any):
        # USB virtual COM port: 921600 baud, 8N1, XON/XOFF (instruments.md §5.3)
        kwargs.setdefault("asrl", {"baud_rate": 921600, "flow_control": ControlFlow.xon_xoff})
        super().__init__(adapter, name, read_termination="\r\n", write_termination="\r\n",
                         includeSCPI=False, **kwargs)

    def check_errors(self) -> list:
        """Read ``1TE?``; raise :class:`~drivers._link.ReplyError` for any code but ``@``."""
        code = _strip("1TE")(self.ask("1TE?"))
        if code != "@":
            raise ReplyError(f"CONEX error {code}: {ERROR_CODES.get(code, 'unknown code')}", code=code)
        return []

    identity = Instrument.measurement(
        "1ID?", """Get the stage identifier (str).""", get_process=_strip("1ID"), cast=str)

    version = Instrument.measurement(
        "1VE?", """Get the controller model and firmware version (str).""", get_process=_strip("1VE"), cast=str)

    position = Instrument.measurement(
        "1TP?", """Measure the current position in the positioner's unit (float; degrees or mm).""",
        get_process=lambda v: float(_strip("1TP")(v)), cast=str)

    state = Instrument.measurement(
        "1TS?", """Get the controller state code (str, 2 hex digits, see ``STATES``); positioner
        error bits are checked and raise when set.""",
        get_process=lambda v: _state(_strip("1TS")(v)), cast=str)

    left_limit = Instrument.measurement(
        "1SL?", """Get the negative software limit in the positioner's unit (float).""",
        get_process=lambda v: float(_strip("1SL")(v)), cast=str)

    right_limit = Instrument.measurement(
        "1SR?", """Get the positive software limit in the positioner's unit (float).""",
        get_process=lambda v: float(_strip("1SR")(v)), cast=str)

    def home(self) -> None:
        """Start the home search (``1OR``); allowed only in NOT REFERENCED."""
        self.write("1OR")
        self.check_errors()

    def stop(self) -> None:
        """Stop the motion (``1ST``)."""
        self.write("1ST")
        self.check_errors()


class ConexAGP(ConexController):
    """Newport CONEX-AGP controller with a rotation stage (AG-PR100P), positions in degrees."""

    def __init__(self, adapter: Any, name: str = "Newport CONEX-AGP", **kwargs: Any):
        super().__init__(adapter, name, **kwargs)

    target = _target(-360, 360, "degrees")


class ConexCC(ConexController):
    """Newport CONEX-CC controller with a linear stage or actuator (e.g. the 25 mm LTA-HS), positions in mm.
    The ``1PA`` bound is a sanity range; the stage's own travel is its ``SL``/``SR`` software limits."""

    def __init__(self, adapter: Any, name: str = "Newport CONEX-CC", **kwargs: Any):
        super().__init__(adapter, name, **kwargs)

    target = _target(-1000, 1000, "mm")


class ConexAxis:
    """Moving a CONEX positioner through a :class:`~drivers._link.Link` to a ``ConexController``: the
    state poll, home, and a verified absolute move — shared by the attenuator's rotation stage and the
    sample stage. The class using it has ``link``, ``opts`` (``move_timeout_s``, ``poll_s``, ``retries``
    and the ``AXIS`` option names), ``clock`` and ``wait`` (a :class:`~drivers.base.Role`)."""

    #: (quantity, unit, lowest option, highest option, tolerance option, where the limits come from)
    AXIS: ClassVar[tuple[str, str, str, str, str, str]] = (
        "angle", "deg", "min_deg", "max_deg", "tolerance_deg", "the attenuator's min_deg/max_deg options")
    link: Link
    opts: dict[str, Any]
    clock: Clock

    if TYPE_CHECKING:
        def wait(self, seconds: float) -> None: ...   # drivers.base.Role.wait

    def state_code(self) -> str:
        """Measure the controller state (2 hex digits)."""
        return self.link.call("1TS?", lambda i: i.state)

    def axis_position(self) -> float:
        """Measure the positioner's position (``1TP?``) in its unit."""
        return self.link.call("1TP?", lambda i: as_float(i.position, "1TP?"))

    def _wait_ready(self, what: str) -> None:
        t0 = self.clock.monotonic()
        while True:
            st = self.state_code()
            if st in ("32", "33", "34"):
                return
            if st not in ("1E", "28"):
                raise DriverError(f"CONEX {what}: stage in state {st} ({STATES.get(st, 'unknown')})")
            if self.clock.monotonic() - t0 > self.opts["move_timeout_s"]:
                raise DriverError(f"CONEX {what} did not finish within {self.opts['move_timeout_s']:g} s")
            self.wait(self.opts["poll_s"])

    def home(self) -> None:
        """Home the stage (``1OR``) and wait for READY."""
        self.link.call("1OR", lambda i: i.home())
        self._wait_ready("home")

    def home_if_needed(self) -> None:
        """Home the stage if the controller is NOT REFERENCED."""
        st = self.state_code()
        if st.startswith("0") or st == "10":
            self.home()

    def check_position(self, value: float) -> float:
        """``value`` checked against the axis limits (raises :class:`~drivers._link.LimitError`)."""
        name, unit, lo, hi, _tol, where = self.AXIS
        return check_range(name, value, self.opts[lo], self.opts[hi], unit, where)

    def move_to(self, value: float) -> None:
        """Move to ``value`` (validated against the axis limits first) and wait until there."""
        a = self.check_position(value)
        unit = "°" if self.AXIS[1] == "deg" else f" {self.AXIS[1]}"
        tol = self.opts[self.AXIS[4]]
        # ``1PA`` has no reply: a message lost on the way is seen only as a stage that did not move.
        # A move is idempotent, so it is sent again (at most ``retries`` times) while the position
        # read back says the stage is not there.
        for attempt in range(self.opts["retries"] + 1):
            self.link.call(f"1PA{a:.5f}", lambda i: setattr(i, "target", a))
            self._wait_ready(f"move to {a:g}{unit}")
            pos = self.axis_position()
            if abs(pos - a) <= tol:
                return
            log.warning("CONEX stopped at %.4f%s, asked %.4f%s (attempt %d): moving again", pos, unit, a, unit,
                        attempt + 1)
        raise DriverError(f"CONEX stopped at {pos:.4f}{unit}, asked {a:.4f}{unit}")


def _state(v: str) -> str:
    if len(v) != 6:
        raise ValueError(f"TS reply {v!r} is not 6 hex digits")
    int(v, 16)
    if v[:4] != "0000":
        raise ReplyError(f"CONEX positioner error bits {v[:4]}", code=v[:4])
    return v[4:].upper()


class ConexNDAttenuator(ConexAxis, Attenuator):
    """Continuous ND wheel on a CONEX stage behind the ``Attenuator`` role (see module docstring)."""

    OPTIONS = {
        "calibration": Option(list, None, doc="[[angle_deg, transmission], …] monotonically decreasing "
                                              "in transmission; default: nominal NDC-50C-4 (OD 0.04–4 over 270°)"),
        "min_deg": Option(float, 0.0, min=-360.0, max=360.0, unit="deg", doc="lowest angle the driver moves to"),
        "max_deg": Option(float, 270.0, min=-360.0, max=360.0, unit="deg", doc="highest angle the driver moves to"),
        "tolerance_deg": Option(float, 0.01, min=1e-4, max=1.0, unit="deg", doc="position reached within"),
        "move_timeout_s": Option(float, 60.0, min=0.1, max=600.0, unit="s", doc="time allowed for a move/home"),
        # the state is asked every POLL_S (the slice at which every wait polls for abort anyway): a move of
        # the wheel takes seconds, and at 0.1 s a series spent a third of its link traffic on ``1TS?``
        "poll_s": Option(float, 0.25, min=0.001, max=10.0, unit="s", doc="how often a move's state is asked"),
        "full_power_W": Option(float, None, min=0.0, max=10.0, unit="W",
                               doc="power at the sample at transmission 1 (from a calibration); needed for fluence"),
        "rep_rate_Hz": Option(float, 76e6, min=1.0, max=1e10, unit="Hz", doc="laser repetition rate"),
        "spot_area_cm2": Option(float, math.pi * 0.005 ** 2, min=1e-9, max=1.0, unit="cm²",
                                doc="spot area used for fluence (state which definition in the run metadata)"),
        "shutter_resource": Option(str, "", doc="pyvisa resource of the Thorlabs SC10 laser shutter controller "
                                               "('' = no laser shutter: the darkest wheel position is the safe state)"),
        **LINK_OPTIONS,
    }

    def __init__(self, resource: str = "", *, clock: Clock | None = None, **options: Any) -> None:
        super().__init__(resource, clock=clock, **options)
        opts = self.opts = self.checked_options(options)
        self.set_calibration(opts["calibration"] or nominal_calibration())
        self.link = Link("CONEX-AGP", resource, self._open, timeout_s=opts["timeout_s"], retries=opts["retries"])
        self.shutter: SC10Shutter | None = None
        if opts["shutter_resource"]:
            self.shutter = SC10Shutter(Link("SC10 laser shutter", opts["shutter_resource"], self._open_shutter,
                                            timeout_s=opts["timeout_s"], retries=opts["retries"]))

    def _open_shutter(self) -> SC10:
        return SC10(self.opts["shutter_resource"], visa_library="@py", timeout=int(self.opts["timeout_s"] * 1000))

    @classmethod
    def attach(cls, inst: ConexAGP, *, clock: Clock | None = None, **options: Any) -> ConexNDAttenuator:
        """Wrap an existing :class:`ConexAGP` (e.g. built by ``expected_protocol``)."""
        self = cls("<attached>", clock=clock, **options)
        self.link = Link.attach("CONEX-AGP", inst)
        return self

    def _open(self) -> ConexAGP:
        return ConexAGP(self.resource, visa_library="@py", timeout=int(self.opts["timeout_s"] * 1000))

    # -- calibration -----------------------------------------------------------------------
    def set_calibration(self, table: list) -> None:
        """Install a calibration table ``[[angle, transmission], …]`` (≥ 2 rows, angles increasing,
        transmission strictly decreasing and in (0, 1])."""
        try:
            arr = np.asarray(table, dtype=float)
        except (TypeError, ValueError):
            raise LimitError(f"calibration must be [[angle_deg, transmission], …], got {table!r}") from None
        if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 2:
            raise LimitError("calibration must have at least two [angle_deg, transmission] rows")
        a, T = arr[:, 0], arr[:, 1]
        if np.any(np.diff(a) <= 0):
            raise LimitError("calibration angles must increase strictly")
        if np.any(T <= 0) or np.any(T > 1) or np.any(np.diff(T) >= 0):
            raise LimitError("calibration transmissions must lie in (0, 1] and decrease strictly with angle")
        if a[0] < self.opts["min_deg"] or a[-1] > self.opts["max_deg"]:
            raise LimitError(f"calibration angles {a[0]:g}–{a[-1]:g}° leave min_deg/max_deg "
                             f"{self.opts['min_deg']:g}–{self.opts['max_deg']:g}°")
        self._cal_angle, self._cal_logT = a, np.log10(T)

    @property
    def transmission_range(self) -> tuple[float, float]:
        """Get the (lowest, highest) transmission the calibration covers."""
        return float(10 ** self._cal_logT[-1]), float(10 ** self._cal_logT[0])

    def angle_for(self, transmission: float) -> float:
        """Angle giving ``transmission`` (interpolated in log10 T)."""
        lo, hi = self.transmission_range
        t = check_range("transmission", transmission, lo, hi, "", "the calibration table's range")
        return float(np.interp(math.log10(t), self._cal_logT[::-1], self._cal_angle[::-1]))

    def transmission_at(self, angle: float) -> float:
        return float(10 ** np.interp(angle, self._cal_angle, self._cal_logT))

    def calibrate(self, power_meter: Any, angles: list[float], *, full_power_W: float) -> list[list[float]]:
        """Measure the power at ``angles`` with ``power_meter`` (laser shutter open) and install
        T = P / full_power_W as the calibration; returns the table."""
        table = []
        self.unblock()
        for a in angles:
            self.move_to(a)
            table.append([float(a), float(power_meter.power) / full_power_W])
        self.set_calibration(table)
        self.opts["full_power_W"] = full_power_W
        return table

    # -- motion ------------------------------------------------------------------------------
    def connect(self) -> None:
        """Open the link, read the identity, and home the stage if it is not referenced; with a laser
        shutter, check it answers and close it (the wheel homes through its brightest position)."""
        self.link.call("1ID?", lambda i: i.identity)
        if self.shutter is not None:
            self.shutter.link.call("id?", lambda i: i.identity)
            self.shutter.close()
        self.home_if_needed()

    def close(self) -> None:
        self.link.close()
        if self.shutter is not None:
            self.shutter.link.close()

    @property
    def angle(self) -> float:
        """Measure the wheel angle in degrees."""
        return self.axis_position()

    @property
    def transmission(self) -> float:
        """Measure the transmission from the angle and the calibration."""
        return self.transmission_at(self.angle)

    # -- role interface --------------------------------------------------------------------------
    def set_transmission(self, transmission: float) -> None:
        """Move to the angle giving ``transmission`` (through the calibration table), then open the
        laser shutter."""
        self.move_to(self.angle_for(transmission))
        self.unblock()

    def fluence_for(self, transmission: float) -> float:
        """Fluence in µJ/cm² at ``transmission`` (needs ``full_power_W``)."""
        P = self.opts["full_power_W"]
        if P is None:
            raise LimitError("fluence needs the full_power_W option (measure it with the power meter)")
        return P * transmission / self.opts["rep_rate_Hz"] / self.opts["spot_area_cm2"] * 1e6

    def set_fluence(self, uJ_per_cm2: float) -> None:
        """Set the pulse fluence in µJ/cm² (= P / f_rep / area) through the calibration."""
        lo, hi = self.transmission_range
        f_lo, f_hi = self.fluence_for(lo), self.fluence_for(hi)
        f = check_range("fluence", uJ_per_cm2, f_lo, f_hi, "µJ/cm²", "what the calibration and full power allow")
        self.set_transmission(min(max(f / self.fluence_for(1.0), lo), hi))

    def set_max_attenuation(self) -> None:
        """Close the laser shutter, then move to the darkest calibrated angle."""
        self.block()
        self.move_to(float(self._cal_angle[int(np.argmin(self._cal_logT))]))

    def readback(self) -> dict[str, float]:
        a = self.angle
        return {"angle": a, "transmission": self.transmission_at(a)}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "options": {k: v for k, v in self.opts.items() if k != "calibration"},
                "calibration": [[float(a), float(10 ** t)] for a, t in zip(self._cal_angle, self._cal_logT,
                                                                          strict=True)]}
