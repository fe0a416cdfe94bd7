"""Horiba iHR/MicroHR monochromator + Syncerity/Synapse CCD backend of the ``Spectrometer`` role.

Uses the vendor's ``horiba-sdk`` (``DeviceManager(start_icl=False, icl_ip, icl_port)``,
``Monochromator``, ``ChargeCoupledDevice``) over the ICL WebSocket. The SDK is asyncio; this driver
is synchronous and runs the SDK on its own event-loop thread. The same code talks to the vendor's
ICL.exe at the setup and to ``simulators.icl_server.IclServer`` in simulation::

    spec = HoribaSpectrometer("ws://127.0.0.1:25010", clock=clock)   # both
    spec.connect(); spec.move_to(520.0); s = spec.acquire(0.1)

``connect()`` does what ``DeviceManager.start()`` does (open the WebSocket, ``icl_info``,
``icl_binMode``, settle, discover devices) but waits the vendor's settle time on the lab clock
(``icl_settle_s``) instead of a hard-coded 5 s ``asyncio.sleep``.

``HoribaMonochromator`` is a second monochromator of the same ICL (no CCD), the ``horiba`` backend of the
``tcspc_mono`` role (the MicroHR in front of the TCSPC detector, ICL device index 1).

Every setter validates its value (range of the current grating, slit 0–7 mm, exposure within the
CCD's limits and timer resolution, ROI inside the chip with binning that divides it, tokens from
the CCD's configuration) before anything is sent.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any
from urllib.parse import urlparse

import numpy as np

from .base import Clock, DriverError, Option, OptionError, validate_options
from .monochromator import MONO_OPTIONS, TcspcMonochromator
from .spectrometer import Spectrometer, Spectrum

log = logging.getLogger(__name__)

__all__ = ["HoribaSpectrometer", "HoribaMonochromator", "ICL_MONO_OPTIONS"]

SLIT_MAX_MM = 7.0
EXPOSURE_MAX_S = 3600.0

#: the options of a monochromator reached through the ICL, shared by the spectrograph's
#: (:class:`HoribaSpectrometer`) and the TCSPC monochromator (:class:`HoribaMonochromator`, which only changes
#: ``mono_index``'s default): defined once
ICL_MONO_OPTIONS: dict[str, Option] = {
    "mono_index": Option(int, default=0, min=0, max=7),
    "icl_settle_s": Option(float, default=5.0, min=0.0, max=60.0, unit="s",
                           doc="wait after connecting before discovering devices (vendor: 5 s)"),
    "grating": Option(int, default=None, min=0, max=2, doc="turret position to select on connect"),
    "range_nm_at_1200": Option(float, default=1500.0, min=100.0, max=10000.0, unit="nm",
                               doc="mechanical range for a 1200 gr/mm grating (scales as 1/grooves)"),
    "home_on_connect": Option(bool, default=True, doc="initialise (home) the mono if it is not"),
    "poll_s": Option(float, default=0.05, min=0.001, max=5.0, unit="s"),
    "command_timeout_s": Option(float, default=30.0, min=1.0, max=600.0, unit="s"),
}


class _LoopThread:
    """An asyncio event loop on a daemon thread; ``run(coro)`` waits for the result."""

    def __init__(self, name: str = "horiba-sdk") -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float) -> Any:
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except TimeoutError:
            fut.cancel()
            raise

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.loop.is_running():
            self.loop.close()


def _parse_resource(resource: str) -> tuple[str, int]:
    r = (resource or "").strip()
    if not r:
        return "127.0.0.1", 25010
    if "://" not in r:
        r = "ws://" + r
    u = urlparse(r)
    return u.hostname or "127.0.0.1", int(u.port or 25010)


class _IclSession:
    """The horiba-sdk session both ICL drivers hold (the spectrograph and the TCSPC monochromator): its
    event-loop thread, the ``DeviceManager`` link, the monochromator of the ICL's device list, homing and
    the busy wait, and an orderly close. ``LABEL`` names the instrument in errors and logs."""

    LABEL = "monochromator"
    options: dict[str, Any]
    clock: Clock
    host: str
    port: int
    _lt: _LoopThread | None
    dm: Any
    mono: Any
    mono_config: dict[str, Any]
    _grating: int
    wait: Callable[[float], None]     # the role's cancellable wait (drivers.base.Role)

    def _run(self, coro: Coroutine[Any, Any, Any], timeout: float | None = None) -> Any:
        if self._lt is None:
            coro.close()
            raise DriverError(f"{type(self).__name__} is not connected (call connect() first)")
        try:
            return self._lt.run(coro, timeout or self.options["command_timeout_s"])
        except DriverError:
            raise
        except TimeoutError as exc:
            raise DriverError(f"ICL at {self.host}:{self.port} did not answer in time") from exc
        except Exception as exc:  # horiba-sdk raises bare Exception / CommunicationException
            raise DriverError(f"ICL: {exc}") from exc

    def _open_icl(self, thread_name: str, *, bin_mode: bool) -> None:
        """Start the loop thread, open the ICL link (``icl_info``; ``icl_binMode none`` when the session
        reads CCD data as JSON), wait ``icl_settle_s`` and discover the devices."""
        from horiba_sdk.communication import Command
        from horiba_sdk.devices.device_manager import DeviceManager

        self._lt = _LoopThread(thread_name)

        async def make() -> Any:
            return DeviceManager(start_icl=False, icl_ip=self.host, icl_port=str(self.port),
                                 enable_binary_messages=False)

        async def open_link() -> dict[str, Any]:
            comm = self.dm.communicator
            await comm.open()
            info = await comm.request_with_response(Command("icl_info", {}))
            if bin_mode:
                resp = await comm.request_with_response(Command("icl_binMode", {"mode": "none"}))
                if resp.errors:
                    raise DriverError(f"icl_binMode: {resp.errors}")
            return dict(info.results)

        try:
            self.dm = self._run(make())
            self.icl_info = self._run(open_link())
            self.wait(self.options["icl_settle_s"])
            self._run(self.dm.discover_devices())
        except DriverError:
            self._stop_loop()
            raise

    def _open_mono(self, mono: Any) -> None:
        self.mono = mono
        self._run(self.mono.open())
        self.mono_config = self._run(self.mono.configuration())

    def _home_mono(self) -> None:
        """Home the monochromator if it is not initialised (``home_on_connect``), then read its turret."""
        if not self._run(self.mono.is_initialized()):
            if not self.options["home_on_connect"]:
                raise DriverError(f"{self.LABEL} is not initialised and home_on_connect is off")
            log.info("homing the %s", self.LABEL)
            self._run(self.mono.initialize())
            self._wait_mono(timeout_s=600.0)
        self._grating = int(self._run(self.mono.get_turret_grating()).value)

    def _stop_loop(self) -> None:
        if self._lt is not None:
            self._lt.stop()
            self._lt = None

    def _close_session(self, *devices: Any) -> None:
        """Close ``devices`` (those opened), then the link, then the loop; never raises."""
        if self._lt is None:
            return
        for dev in (*devices, None):
            try:
                if dev is None:
                    self._run(self.dm.communicator.close(), timeout=5.0)
                else:
                    self._run(dev.close(), timeout=5.0)
            except Exception as exc:  # noqa: BLE001 - close must not raise
                log.debug("closing %s: %s", dev if dev is not None else "the ICL link", exc)
        self._stop_loop()

    def _wait_mono(self, timeout_s: float = 300.0) -> None:
        t_end = self.clock.monotonic() + timeout_s
        while self._run(self.mono.is_busy()):
            if self.clock.monotonic() > t_end:
                raise DriverError(f"{self.LABEL} still busy after {timeout_s:g} s")
            self.wait(self.options["poll_s"])


class HoribaSpectrometer(_IclSession, Spectrometer):
    """iHR320-class monochromator + Syncerity CCD through horiba-sdk."""

    OPTIONS = {
        **ICL_MONO_OPTIONS,
        "ccd_index": Option(int, default=0, min=0, max=7),
        "timer_resolution": Option(str, default="ms", choices=("ms", "us"),
                                   doc="CCD exposure timer unit (µs is not supported by every CCD)"),
        "exposure_s": Option(float, default=1.0, min=0.0, max=EXPOSURE_MAX_S, unit="s"),
        "min_exposure_s": Option(float, default=0.0, min=0.0, max=1.0, unit="s"),
        "max_exposure_s": Option(float, default=EXPOSURE_MAX_S, min=0.001, max=EXPOSURE_MAX_S, unit="s"),
        "gain_token": Option(int, default=None, doc="CCD gain token (see the CCD configuration)"),
        "speed_token": Option(int, default=None, doc="CCD read-out speed token"),
        "e_per_count": Option(float, default=None, min=0.01, max=100.0, unit="e-/count",
                              doc="CCD conversion gain at gain_token (test sheet / photon transfer curve)"),
        "read_noise_e": Option(float, default=None, min=0.0, max=1000.0, unit="e-",
                               doc="CCD read noise (RMS) at speed_token (test sheet)"),
        "center_nm": Option(float, default=None, min=0.0, max=10000.0, unit="nm"),
        "slit_mm": Option(float, default=None, min=0.0, max=SLIT_MAX_MM, unit="mm"),
        "x_bin": Option(int, default=1, min=1, max=4096),
        "y_origin": Option(int, default=0, min=0, max=4095),
        "y_size": Option(int, default=None, min=1, max=4096, doc="rows (None = the whole chip)"),
        "full_vertical_binning": Option(bool, default=True),
    }

    def __init__(self, resource: str = "ws://127.0.0.1:25010", *, clock: Clock | None = None, **options: Any):
        values, errors = validate_options(self.OPTIONS, options)
        if errors:
            raise errors[0]
        super().__init__(resource, clock=clock, **values)
        self.host, self.port = _parse_resource(resource)
        self._lt: _LoopThread | None = None
        self.dm: Any = None
        self.mono: Any = None
        self.ccd: Any = None
        self.mono_config: dict[str, Any] = {}
        self.ccd_config: dict[str, Any] = {}
        self.chip = (1024, 256)
        self._exposure_s = float(values["exposure_s"])
        self._roi: dict[str, int] = {}
        self._grating = 0
        self._slit_mm = float("nan")

    def ccd_calibration(self) -> dict[str, float]:
        return {k: float(self.options[k]) for k in ("e_per_count", "read_noise_e") if self.options[k] is not None}

    # -- plumbing ---------------------------------------------------------------------------------
    def connect(self) -> None:
        self._open_icl("horiba-sdk", bin_mode=True)
        monos, ccds = self.dm.monochromators, self.dm.charge_coupled_devices
        if len(monos) <= self.options["mono_index"] or len(ccds) <= self.options["ccd_index"]:
            self.close()
            raise DriverError(f"ICL found {len(monos)} monochromator(s) and {len(ccds)} CCD(s); need "
                              f"mono #{self.options['mono_index']} and CCD #{self.options['ccd_index']}")
        self._open_mono(monos[self.options["mono_index"]])
        self.ccd = ccds[self.options["ccd_index"]]
        self._run(self.ccd.open())
        self.ccd_config = self._run(self.ccd.get_configuration())
        size = self._run(self.ccd.get_chip_size())
        self.chip = (int(size.width), int(size.height))
        self._home_mono()
        self._setup_ccd()
        o = self.options
        if o["gain_token"] is not None:
            self.set_gain(o["gain_token"])
        if o["speed_token"] is not None:
            self.set_speed(o["speed_token"])
        if o["grating"] is not None:
            self.set_grating(o["grating"])
        if o["slit_mm"] is not None:
            self.slit_mm = o["slit_mm"]
        else:
            self._slit_mm = self._read_slit()
        if o["center_nm"] is not None:
            self.move_to(o["center_nm"])
        log.info("Horiba spectrometer connected: %s + %s", self.mono_config.get("monoModel"),
                 self.ccd_config.get("deviceType"))

    def _setup_ccd(self) -> None:
        from horiba_sdk.core.acquisition_format import AcquisitionFormat
        from horiba_sdk.core.timer_resolution import TimerResolution
        from horiba_sdk.core.x_axis_conversion_type import XAxisConversionType

        res = TimerResolution.MICROSECONDS if self.options["timer_resolution"] == "us" else TimerResolution.MILLISECONDS
        self._run(self.ccd.set_timer_resolution(res))
        o = self.options
        y_size = o["y_size"] if o["y_size"] is not None else self.chip[1] - o["y_origin"]
        self.set_roi(x_bin=o["x_bin"], y_origin=o["y_origin"], y_size=y_size,
                     y_bin=y_size if o["full_vertical_binning"] else 1, _format=AcquisitionFormat.SPECTRA_IMAGE)
        self._run(self.ccd.set_x_axis_conversion_type(XAxisConversionType.FROM_ICL_SETTINGS_INI))
        self.exposure_s = self._exposure_s

    def close(self) -> None:
        self._close_session(*(d for d in (self.ccd, self.mono) if d is not None))

    # -- monochromator ------------------------------------------------------------------------------
    @property
    def gratings_lpmm(self) -> list[float]:
        gs = sorted(self.mono_config.get("gratings", []), key=lambda g: g.get("positionIndex", 0))
        return [float(g.get("grooveDensity", 0)) for g in gs] or [1800.0, 1200.0, 300.0]

    @property
    def grating(self) -> int:
        return self._grating

    @property
    def grating_lpmm(self) -> float:
        return self.gratings_lpmm[self._grating]

    def max_center_nm(self, grating: int | None = None) -> float:
        g = self.gratings_lpmm[self._grating if grating is None else grating]
        return self.options["range_nm_at_1200"] * 1200.0 / g if g > 0 else self.options["range_nm_at_1200"]

    def set_grating(self, grating: int) -> None:
        """Select turret position ``grating`` (0-based, see ``gratings_lpmm``)."""
        from horiba_sdk.devices.single_devices.monochromator import Monochromator

        n = len(self.gratings_lpmm)
        if isinstance(grating, bool) or not isinstance(grating, int) or not 0 <= grating < n:
            raise OptionError("grating", grating, f"must be a turret position 0..{n - 1} "
                              f"({', '.join(f'{g:g} gr/mm' for g in self.gratings_lpmm)})")
        here = self.center_nm
        if here > self.max_center_nm(grating):
            raise OptionError("grating", grating, f"cannot take the mono at {here:g} nm (range of that grating "
                              f"0..{self.max_center_nm(grating):g} nm); move first")
        self._run(self.mono.set_turret_grating(Monochromator.Grating(grating)))
        self._wait_mono()
        self._grating = grating

    @property
    def center_nm(self) -> float:
        return float(self._run(self.mono.get_current_wavelength()))

    def check_center(self, center_nm: float) -> float:
        return Option(float, min=0.0, max=self.max_center_nm(), unit="nm",
                      max_reason=f"is beyond the {self.max_center_nm():g} nm range of the "
                                 f"{self.grating_lpmm:g} gr/mm grating").check("center_nm", center_nm)

    def move_to(self, center_nm: float) -> None:
        nm = self.check_center(center_nm)
        self._run(self.mono.move_to_target_wavelength(nm), timeout=200.0)
        self._wait_mono()
        self._run(self.ccd.set_center_wavelength(self.options["mono_index"], nm))

    def _read_slit(self) -> float:
        from horiba_sdk.devices.single_devices.monochromator import Monochromator

        return float(self._run(self.mono.get_slit_position_in_mm(Monochromator.Slit.A)))

    @property
    def slit_mm(self) -> float:
        return self._read_slit()

    @slit_mm.setter
    def slit_mm(self, width_mm: float) -> None:
        from horiba_sdk.devices.single_devices.monochromator import Monochromator

        w = Option(float, min=0.0, max=SLIT_MAX_MM, unit="mm").check("slit_mm", width_mm)
        self._run(self.mono.set_slit_position(Monochromator.Slit.A, w))
        self._wait_mono()
        self._slit_mm = w

    def open_shutter(self) -> None:
        self._run(self.mono.open_shutter())

    def close_shutter(self) -> None:
        self._run(self.mono.close_shutter())

    # -- CCD ------------------------------------------------------------------------------------------
    @property
    def exposure_s(self) -> float:
        return self._exposure_s

    @exposure_s.setter
    def exposure_s(self, exposure_s: float) -> None:
        v, ticks = self.check_exposure(exposure_s)
        self._run(self.ccd.set_exposure_time(ticks))
        self._exposure_s = v

    def check_exposure(self, exposure_s: float) -> tuple[float, int]:
        """Validate an exposure; returns (seconds, timer units)."""
        unit = 1e-6 if self.options["timer_resolution"] == "us" else 1e-3
        lo = max(self.options["min_exposure_s"], unit)
        hi = self.options["max_exposure_s"]
        v = Option(float, min=lo, max=hi, unit="s",
                   min_reason=f"is below the CCD minimum {lo:g} s (timer resolution "
                              f"{self.options['timer_resolution']})",
                   max_reason=f"is beyond the CCD limit {hi:g} s").check("exposure_s", exposure_s)
        ticks = int(round(v / unit))
        if abs(ticks * unit - v) > 1e-9 + 1e-6 * v:
            raise OptionError("exposure_s", exposure_s, f"is not a whole number of {unit * 1e6:g} µs timer units")
        return ticks * unit, ticks

    def _tokens(self, key: str) -> list[int]:
        return [int(t["token"]) for t in self.ccd_config.get(key, [])]

    def set_gain(self, token: int) -> None:
        allowed = self._tokens("gains")
        if token not in allowed:
            raise OptionError("gain_token", token, f"is not a gain of this CCD (tokens {allowed}: "
                              + ", ".join(g["info"] for g in self.ccd_config.get("gains", [])) + ")")
        self._run(self.ccd.set_gain(token))

    def set_speed(self, token: int) -> None:
        allowed = self._tokens("speeds")
        if token not in allowed:
            raise OptionError("speed_token", token, f"is not a read-out speed of this CCD (tokens {allowed})")
        self._run(self.ccd.set_speed(token))

    def set_roi(self, *, x_origin: int = 0, x_size: int | None = None, y_origin: int = 0, y_size: int | None = None,
                x_bin: int = 1, y_bin: int | None = None, _format: Any = None) -> dict[str, int]:
        """One region of interest; ``y_bin = y_size`` (the default) is full vertical binning."""
        from horiba_sdk.core.acquisition_format import AcquisitionFormat

        w, h = self.chip
        x_size = w - x_origin if x_size is None else x_size
        y_size = h - y_origin if y_size is None else y_size
        y_bin = y_size if y_bin is None else y_bin
        checks = [("x_origin", x_origin, 0, w - 1), ("y_origin", y_origin, 0, h - 1),
                  ("x_size", x_size, 1, w - x_origin), ("y_size", y_size, 1, h - y_origin),
                  ("x_bin", x_bin, 1, x_size), ("y_bin", y_bin, 1, y_size)]
        for key, val, lo, hi in checks:
            Option(int, min=lo, max=hi).check(key, val)
        if x_size % x_bin:
            raise OptionError("x_bin", x_bin, f"must divide the ROI width {x_size}")
        if y_size % y_bin:
            raise OptionError("y_bin", y_bin, f"must divide the ROI height {y_size}")
        self._run(self.ccd.set_acquisition_format(1, _format or AcquisitionFormat.SPECTRA_IMAGE))
        self._run(self.ccd.set_region_of_interest(1, x_origin, y_origin, x_size, y_size, x_bin, y_bin))
        self._roi = dict(x_origin=x_origin, y_origin=y_origin, x_size=x_size, y_size=y_size, x_bin=x_bin,
                         y_bin=y_bin)
        return dict(self._roi)

    @property
    def ccd_temperature(self) -> float:
        return float(self._run(self.ccd.get_chip_temperature()))

    def acquire(self, exposure_s: float | None = None) -> Spectrum:
        return self._acquire(exposure_s, open_shutter=True)

    def dark_frame(self, exposure_s: float | None = None) -> Spectrum:
        return self._acquire(exposure_s, open_shutter=False)

    def _acquire(self, exposure_s: float | None, *, open_shutter: bool) -> Spectrum:
        if exposure_s is not None:
            v, _ = self.check_exposure(exposure_s)
            if v != self._exposure_s:
                self.exposure_s = v
        t_exp = self._exposure_s
        temp = self.ccd_temperature
        center = self.center_nm
        self._run(self.ccd.acquisition_start(open_shutter=open_shutter))
        try:
            self.wait(t_exp)   # polls the cancellation token: a stop ends the exposure within one poll
            t_end = self.clock.monotonic() + t_exp + 600.0
            while self._run(self.ccd.get_acquisition_busy()):
                if self.clock.monotonic() > t_end:
                    raise DriverError("CCD acquisition did not finish")
                self.wait(self.options["poll_s"])
        except BaseException:
            try:
                self._run(self.ccd.acquisition_abort())
            except Exception as exc:  # noqa: BLE001 - the original error is the one to report
                log.warning("CCD acquisition abort failed: %s", exc)
            raise
        data = self._run(self.ccd.get_acquisition_data(), timeout=max(60.0, self.options["command_timeout_s"]))
        try:
            acq = data["acquisition"][0]
            roi = acq["roi"][0]
            x = np.asarray(roi["xData"][0], float)
            y = np.asarray(roi["yData"], np.int64)
        except (KeyError, IndexError, TypeError) as exc:
            raise DriverError(f"unexpected ccd_getAcquisitionData reply: {exc}") from exc
        counts = y[0] if y.shape[0] == 1 else y
        xb = int(roi.get("xBinning", 1))
        pixel = int(roi.get("xOrigin", 0)) + xb * (np.arange(x.size) + 0.5) - 0.5
        coeffs = np.polynomial.polynomial.polyfit(pixel, x, 3) if x.size >= 4 else np.array([])
        return Spectrum(wavelength_nm=x, counts=counts, exposure_s=t_exp, center_nm=center,
                        grating_lpmm=self.grating_lpmm, slit_mm=self._slit_mm, ccd_temperature=temp,
                        dark=not open_shutter, pixel=pixel,
                        calibration={"method": "ICL grating equation (x-axis conversion 2)",
                                     "coefficients": [float(c) for c in coeffs], "pixel_origin": 0,
                                     "center_nm": center, "grating_lpmm": self.grating_lpmm,
                                     "fit_parameters_ccd": list(self.ccd_config.get("fitParameters", []))},
                        roi=dict(self._roi), timestamp=str(data.get("timestamp", "")))

    # -- role ------------------------------------------------------------------------------------------
    def make_safe(self) -> None:
        if self._lt is None:
            return
        errors = []
        try:
            if self.ccd is not None and self._run(self.ccd.get_acquisition_busy()):
                self._run(self.ccd.acquisition_abort())
        except DriverError as exc:
            errors.append(f"abort: {exc}")
        try:
            if self.mono is not None:
                self._run(self.mono.close_shutter())
        except DriverError as exc:
            errors.append(f"shutter: {exc}")
        if errors:
            raise DriverError("spectrometer could not be made safe: " + "; ".join(errors))

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(mono=self.mono_config.get("monoModel"), ccd=self.ccd_config.get("deviceType"),
                 ccd_serial=self.ccd_config.get("serialNumber"), chip=list(self.chip),
                 gratings_lpmm=self.gratings_lpmm, roi=dict(self._roi), exposure_s=self._exposure_s,
                 icl=getattr(self, "icl_info", {}))
        return d


class HoribaMonochromator(_IclSession, TcspcMonochromator):
    """A second Horiba monochromator (no CCD) through horiba-sdk: the ``horiba`` backend of the
    ``tcspc_mono`` role — the [000] time-resolved RL setup's MicroHR (150 l/mm) in front of the TCSPC
    detector. It opens its own ICL connection (``DeviceManager``) and the monochromator ``mono_index``
    (default 1: the spectrograph's mono is 0) of the ICL's device list; slit A is the entrance slit, slit
    B the exit slit."""

    LABEL = "TCSPC monochromator"
    OPTIONS = {
        **MONO_OPTIONS,
        "rld_nm_per_mm_at_1200": Option(float, 6.6, min=0.01, max=100.0, unit="nm/mm",
                                        doc="nominal reciprocal linear dispersion with 1200 l/mm (MicroHR, "
                                            "f = 140 mm: ≈ 6.6; 150 l/mm then gives ≈ 53 nm/mm)"),
        "max_slit_um": Option(float, SLIT_MAX_MM * 1000.0, min=1.0, max=SLIT_MAX_MM * 1000.0, unit="µm"),
        **ICL_MONO_OPTIONS,
        "mono_index": replace(ICL_MONO_OPTIONS["mono_index"], default=1,
                              doc="the TCSPC monochromator in the ICL's device list"),
    }

    def __init__(self, resource: str = "ws://127.0.0.1:25010", *, clock: Clock | None = None, **options: Any):
        values, errors = validate_options(self.OPTIONS, options)
        if errors:
            raise errors[0]
        super().__init__(resource, clock=clock, **values)
        self.host, self.port = _parse_resource(resource)
        self._lt: _LoopThread | None = None
        self.dm: Any = None
        self.mono: Any = None
        self.mono_config: dict[str, Any] = {}
        self._grating = 0

    def connect(self) -> None:
        self._open_icl("horiba-sdk-tcspc-mono", bin_mode=False)
        monos = self.dm.monochromators
        i = self.options["mono_index"]
        if len(monos) <= i:
            self.close()
            raise DriverError(f"ICL found {len(monos)} monochromator(s); the TCSPC monochromator is #{i}")
        self._open_mono(monos[i])
        self._home_mono()
        if self.options["grating"] is not None:
            self.set_grating(self.options["grating"])
        log.info("Horiba TCSPC monochromator connected: %s", self.mono_config.get("monoModel"))

    def close(self) -> None:
        self._close_session(*(d for d in (self.mono,) if d is not None))

    @property
    def gratings_lpmm(self) -> list[float]:
        gs = sorted(self.mono_config.get("gratings", []), key=lambda g: g.get("positionIndex", 0))
        return [float(g.get("grooveDensity", 0)) for g in gs] or [150.0]

    @property
    def grating_lpmm(self) -> float:
        return self.gratings_lpmm[self._grating]

    def max_nm(self, grating: int | None = None) -> float:
        g = self.gratings_lpmm[self._grating if grating is None else grating]
        return self.options["range_nm_at_1200"] * 1200.0 / g if g > 0 else self.options["range_nm_at_1200"]

    def set_grating(self, grating: int) -> None:
        from horiba_sdk.devices.single_devices.monochromator import Monochromator

        n = len(self.gratings_lpmm)
        if isinstance(grating, bool) or not isinstance(grating, int) or not 0 <= grating < n:
            raise OptionError("grating", grating, f"must be a turret position 0..{n - 1}")
        if self.wavelength_nm > self.max_nm(grating):
            raise OptionError("grating", grating, "cannot take the mono where it is; move first")
        self._run(self.mono.set_turret_grating(Monochromator.Grating(grating)))
        self._wait_mono()
        self._grating = grating

    @property
    def wavelength_nm(self) -> float:
        return float(self._run(self.mono.get_current_wavelength()))

    def move_to(self, wavelength_nm: float) -> None:
        nm = Option(float, min=0.0, max=self.max_nm(), unit="nm",
                    max_reason=f"is beyond the {self.max_nm():g} nm range of the {self.grating_lpmm:g} gr/mm "
                               "grating").check("wavelength_nm", wavelength_nm)
        self._run(self.mono.move_to_target_wavelength(nm), timeout=200.0)
        self._wait_mono()

    @property
    def slit_um(self) -> float:
        from horiba_sdk.devices.single_devices.monochromator import Monochromator

        return 1000.0 * float(self._run(self.mono.get_slit_position_in_mm(Monochromator.Slit.A)))

    def set_slits_um(self, width_um: float) -> None:
        from horiba_sdk.devices.single_devices.monochromator import Monochromator

        w = Option(float, min=self.options["min_slit_um"], max=self.options["max_slit_um"],
                   unit="µm").check("slit_um", width_um)
        for slit in (Monochromator.Slit.A, Monochromator.Slit.B):
            self._run(self.mono.set_slit_position(slit, w / 1000.0))
        self._wait_mono()

    def open_shutter(self) -> None:
        self._run(self.mono.open_shutter())

    def close_shutter(self) -> None:
        if self._lt is None:
            return
        self._run(self.mono.close_shutter())

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(mono=self.mono_config.get("monoModel"), serial=self.mono_config.get("serialNumber"),
                 gratings_lpmm=self.gratings_lpmm, icl=getattr(self, "icl_info", {}))
        return d
