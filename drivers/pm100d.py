"""Thorlabs PM100D optical power meter (role ``powermeter``).

:class:`PM100D` extends pymeasure's ``ThorlabsPM100USB`` (same SCPI) with: a wavelength setter that
**fails loudly** (LimitError naming the sensor's range) instead of silently truncating, averaging
(``SENS:AVER:COUN``), dark zeroing (``SENS:CORR:COLL:ZERO:INIT``), over-range detection
(9.9E37 → error), and ``SYST:ERR?`` checks after setters (which also make them synchronous).
:class:`PM100DPowerMeter` is the ``PowerMeter`` backend.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from pymeasure.instruments import Instrument
from pymeasure.instruments.thorlabs import ThorlabsPM100USB
from pymeasure.instruments.validators import strict_range

from ._link import LINK_OPTIONS, GarbageReply, Link, ReplyError, as_float, check_range
from .base import Clock, DriverError, Option
from .powermeter import PowerMeter

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

__all__ = ["PM100D", "PM100DPowerMeter", "OVERRANGE_W"]

OVERRANGE_W = 1e12  # readings above this are the over-range sentinel (9.9E37)


class PM100D(ThorlabsPM100USB):
    """Thorlabs PM100D (see module docstring)."""

    def __init__(self, adapter: Any, name: str = "Thorlabs PM100D", **kwargs: Any):
        kwargs.setdefault("read_termination", "\n")
        with warnings.catch_warnings():  # ThorlabsPM100USB's "SCPI unknown" warning: it is SCPI
            warnings.simplefilter("ignore", FutureWarning)
            super().__init__(adapter, name=name, **kwargs)

    def check_errors(self) -> list:
        """Drain ``SYST:ERR?``; raise :class:`~drivers._link.ReplyError` with the first error."""
        errors = []
        for _ in range(10):
            reply = self.ask("SYST:ERR?").strip()
            code, _, text = reply.partition(",")
            try:
                n = int(code)
            except ValueError:
                # not an instrument error: an unreadable reply, which the link retries (as the Lake Shore's *ESR?)
                raise GarbageReply(f"garbage reply to SYST:ERR?: {reply!r}") from None
            if n == 0:
                break
            errors.append(reply)
        if errors:
            raise ReplyError(f"PM100D error {errors[0]}", code=errors[0].partition(",")[0])
        return []

    @property
    def wavelength(self) -> float:
        """Control the correction wavelength in nm (float strictly within the sensor's range,
        ``wavelength_min`` to ``wavelength_max``; out of range raises instead of truncating)."""
        return self.values("SENSE:CORR:WAV?")[0]

    @wavelength.setter
    def wavelength(self, value: float) -> None:
        if not self.wavelength_settable:
            raise AttributeError(f"{self.sensor_name} does not allow setting the wavelength.")
        if not hasattr(self, "_wavelength_min"):
            self._wavelength_min = self.wavelength_min
        if not hasattr(self, "_wavelength_max"):
            self._wavelength_max = self.wavelength_max
        check_range("wavelength", value, self._wavelength_min, self._wavelength_max, "nm",
                    f"the {self.sensor_name} sensor's range")
        self.write(f"SENSE:CORR:WAV {value:g}")
        self.check_errors()

    averaging = Instrument.control(
        "SENS:AVER:COUN?", "SENS:AVER:COUN %d",
        """Control the number of readings averaged per measurement (int strictly from 1 to 10000).""",
        validator=strict_range, values=[1, 10000], cast=int, check_set_errors=True,
    )

    zero_magnitude = Instrument.measurement(
        "SENS:CORR:COLL:ZERO:MAGN?", """Measure the stored dark-zero offset in W (float).""",
    )

    def zero(self) -> None:
        """Start dark zeroing (block the beam first)."""
        self.write("SENS:CORR:COLL:ZERO:INIT")
        self.check_errors()


class PM100DPowerMeter(PowerMeter):
    """PM100D behind the ``PowerMeter`` role."""

    OPTIONS = {
        "wavelength_nm": Option(float, 405.0, min=400.0, max=1100.0, unit="nm",
                                doc="correction wavelength (3.06 eV = 405 nm)",
                                max_reason="is above the S120C sensor's 1100 nm limit",
                                min_reason="is below the S120C sensor's 400 nm limit"),
        "averaging": Option(int, 10, min=1, max=10000, doc="readings averaged per measurement"),
        **LINK_OPTIONS,
    }

    def __init__(self, resource: str = "", *, clock: Clock | None = None, **options: Any) -> None:
        super().__init__(resource, clock=clock, **options)
        opts = self.opts = self.checked_options(options)
        self.link = Link("PM100D", resource, self._open, timeout_s=opts["timeout_s"], retries=opts["retries"])

    @classmethod
    def attach(cls, inst: PM100D, *, clock: Clock | None = None, **options: Any) -> PM100DPowerMeter:
        self = cls("<attached>", clock=clock, **options)
        self.link = Link.attach("PM100D", inst)
        return self

    def _open(self) -> PM100D:
        return PM100D(self.resource, visa_library="@py", timeout=int(self.opts["timeout_s"] * 1000))

    def connect(self) -> None:
        """Open the link; set the wavelength and averaging from the options."""
        wl, n = self.opts["wavelength_nm"], self.opts["averaging"]

        def setup(i: PM100D) -> None:
            i.wavelength = wl
            i.averaging = n

        self.link.call("setup", setup)

    def close(self) -> None:
        self.link.close()

    @property
    def power(self) -> float:
        """Measure the optical power in W (raises DriverError on over-range)."""
        p = self.link.call("MEAS:POW?", lambda i: as_float(i.values("MEAS:POW?"), "MEAS:POW?"))
        if p > OVERRANGE_W:
            raise DriverError(f"PM100D over range (reply {p:g}); reduce the power or change the range")
        return p

    @property
    def wavelength(self) -> float:
        """Measure the correction wavelength in nm."""
        return self.link.call("wavelength", lambda i: as_float(i.wavelength, "SENSE:CORR:WAV?"))

    def set_wavelength(self, nm: float) -> None:
        """Set the correction wavelength (LimitError naming the sensor range if outside)."""
        self.link.call("wavelength", lambda i: setattr(i, "wavelength", nm))

    def zero(self) -> None:
        """Dark-zero the sensor (block the beam first)."""
        self.link.call("zero", lambda i: i.zero())

    def readback(self) -> dict[str, float]:
        return {"power": self.power}
