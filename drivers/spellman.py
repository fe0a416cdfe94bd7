"""Spellman XRV/DXM HV generator + Thorlabs SC10 shutter + interlock (role ``xray``).

:class:`SpellmanXRVLimited` extends pymeasure's ``SpellmanXRV`` (STX/ETX frames, checksum on serial
and none on TCP, ``$`` acknowledgements, 12-bit scaling from ``28``, ``StatusCode``/``ErrorCode``
IntFlags) with error replies turned into :class:`~drivers._link.ReplyError` (code and meaning)
instead of a bare ``ValueError``, and the monitor readbacks in kV/mA.

:class:`SpellmanXRaySource` is the ``XRaySource`` backend. It enforces the configured kV, mA and
power (kV·mA) limits before anything is sent, and runs the safe sequence of instruments.md §2.4:

* **on(kV, mA)**: interlock closed and fault register clear (else :class:`~drivers.base.SafetyError`)
  → shutter closed → setpoints 0 → HV on → ramp kV, then mA, in software steps on the lab clock →
  wait until the monitors reach the setpoints → open the shutter. Any failure after HV-on runs
  :meth:`make_safe` before the error is raised.
* **off()**: close the shutter first → ramp mA, then kV down → HV off → check HV is off.
* **make_safe()**: as off(), but every step is attempted even if an earlier one failed, and HV off
  is always sent; raises DriverError listing what failed.
* **keepalive()**: a status poll that satisfies the generator's watchdog; it also notices when HV
  dropped behind our back (arc, interlock, watchdog) and raises SafetyError naming the cause.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from pymeasure.instruments.spellmanhv.spellmanXRV import ErrorCode, SpellmanXRV, StatusCode

from ._link import LINK_OPTIONS, GarbageReply, LimitError, Link, ReplyError, check_range
from .base import Clock, DriverError, Option, SafetyError
from .shutter import SC10, SC10Shutter
from .xray import XRaySource

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

__all__ = ["SpellmanXRVLimited", "SpellmanXRaySource", "ERROR_REPLIES"]

ERROR_REPLIES = {"1": "bad packet format", "2": "invalid command", "3": "parameter out of range",
                 "4": "packet overrun", "5": "flash programming error", "7": "boot loader active",
                 "E#1": "out of range", "E#2": "interlock open", "E#3": "fault register not clear"}


class SpellmanXRVLimited(SpellmanXRV):
    """pymeasure's SpellmanXRV with explicit error replies and kV/mA monitors (module docstring)."""

    def __init__(self, adapter: Any, name: str = "Spellman XRV HV Power Supply", **kwargs: Any):
        super().__init__(adapter, name=name, **kwargs)

    def check_set_errors(self) -> list[str]:
        """Read the reply to a set command; raise :class:`~drivers._link.ReplyError` unless ``$``."""
        got = self.read()
        if got == "$":
            return []
        code = got.strip().rstrip(",")
        if code not in ERROR_REPLIES:   # neither "$" nor an error the manual lists: a garbled reply
            raise GarbageReply(f"garbage reply to a set command: {got!r}")
        raise ReplyError(f"Spellman refused: error {code} ({ERROR_REPLIES.get(code, 'unknown code')})", code=code)

    @property
    def monitors_kV_mA(self) -> tuple[float, float]:
        """Measure the output (kV, mA) from the analog monitors (tuple of float)."""
        mon = self.analog_monitor
        return mon["voltage"] / 1000.0, mon["current"] * 1000.0


class SpellmanXRaySource(XRaySource):
    """Spellman generator + SC10 shutter behind the ``XRaySource`` role (see module docstring)."""

    OPTIONS = {
        "max_kV": Option(float, 50.0, min=0.0, max=50.0, unit="kV", doc="highest kV accepted",
                         max_reason="is above the generator's 50 kV rating"),
        "max_mA": Option(float, 0.6, min=0.0, max=1.0, unit="mA", doc="highest tube current accepted",
                         max_reason="is above the generator's 1 mA rating"),
        "max_power_W": Option(float, 30.0, min=0.0, max=50.0, unit="W", doc="tube power rating (kV·mA)",
                              max_reason="is above the generator's 50 W rating"),
        "ramp_kV_per_s": Option(float, 5.0, min=0.1, max=50.0, unit="kV/s", doc="software kV ramp"),
        "ramp_mA_per_s": Option(float, 0.2, min=0.001, max=1.0, unit="mA/s", doc="software mA ramp"),
        "ramp_step_s": Option(float, 0.5, min=0.01, max=10.0, unit="s", doc="time between ramp steps"),
        "settle_timeout_s": Option(float, 30.0, min=0.1, max=600.0, unit="s",
                                   doc="time allowed for the monitors to reach the setpoints"),
        "kV_tolerance": Option(float, 0.5, min=0.01, max=5.0, unit="kV"),
        "mA_tolerance": Option(float, 0.02, min=0.001, max=0.5, unit="mA"),
        "shutter_resource": Option(str, "", doc="pyvisa resource of the SC10 shutter controller "
                                               "('' = no remote shutter: X-rays reach the sample with HV)"),
        "keepalive_s": Option(float, 1.0, min=0.05, max=60.0, unit="s", doc="keep-alive period"),
        "query_delay_s": Option(float, 0.0, min=0.0, max=1.0, unit="s",
                                doc="delay between write and read (0.15 s is pymeasure's serial default)"),
        **LINK_OPTIONS,
    }

    def __init__(self, resource: str = "", *, clock: Clock | None = None, **options: Any) -> None:
        super().__init__(resource, clock=clock, **options)
        opts = self.opts = self.checked_options(options)
        self.KEEPALIVE_S = opts["keepalive_s"]
        self.link = Link("Spellman XRV", resource, self._open, timeout_s=opts["timeout_s"], retries=opts["retries"])
        self.shutter: SC10Shutter | None = None
        if opts["shutter_resource"]:
            self.shutter = SC10Shutter(Link("SC10 shutter", opts["shutter_resource"], self._open_shutter,
                                            timeout_s=opts["timeout_s"], retries=opts["retries"]))
        self._expect_hv = False
        self.watchdog_s: float | None = None
        self._keepalive_handle: Any = None

    @classmethod
    def attach(cls, inst: SpellmanXRVLimited, shutter: SC10 | None = None, *, clock: Clock | None = None,
               **options: Any) -> SpellmanXRaySource:
        """Wrap existing instruments (e.g. built by ``expected_protocol``)."""
        self = cls("<attached>", clock=clock, **options)
        self.link = Link.attach("Spellman XRV", inst)
        self.shutter = SC10Shutter(Link.attach("SC10 shutter", shutter)) if shutter is not None else None
        return self

    def _open(self) -> SpellmanXRVLimited:
        inst = SpellmanXRVLimited(self.resource, visa_library="@py", query_delay=self.opts["query_delay_s"])
        inst.adapter.connection.timeout = int(self.opts["timeout_s"] * 1000)
        return inst

    def _open_shutter(self) -> SC10:
        return SC10(self.opts["shutter_resource"], visa_library="@py", timeout=int(self.opts["timeout_s"] * 1000))

    # -- checks ---------------------------------------------------------------------------
    def check_setpoint(self, kV: float, mA: float) -> tuple[float, float]:
        """Validate (kV, mA) against the options; raises LimitError naming the allowed range."""
        o = self.opts
        kV = check_range("kV", kV, 0.0, o["max_kV"], "kV", "the max_kV option / generator rating")
        mA = check_range("mA", mA, 0.0, o["max_mA"], "mA", "the max_mA option")
        if kV * mA > o["max_power_W"] * (1 + 1e-9):
            raise LimitError(f"{kV:g} kV × {mA:g} mA = {kV * mA:g} W is above the tube's power rating "
                             f"max_power_W = {o['max_power_W']:g} W (at {kV:g} kV at most "
                             f"{o['max_power_W'] / kV if kV else math.inf:.3g} mA)")
        return kV, mA

    # -- plumbing -------------------------------------------------------------------------
    def connect(self) -> None:
        """Open the links, read the generator's scaling and watchdog, check the shutter answers."""
        scaling = self.link.call("28 (scaling)", lambda i: i.scaling)
        fs_kV = scaling["voltage"] / 1000.0
        if fs_kV < self.opts["max_kV"]:
            log.warning("generator full scale %.3g kV is below max_kV %.3g kV; using the full scale",
                        fs_kV, self.opts["max_kV"])
            self.opts["max_kV"] = fs_kV
        try:
            cfg = self.link.call("27 (configuration)", lambda i: i.configuration)
            self.watchdog_s = float(cfg["watchdog_timer"]) or None
        except DriverError as e:
            log.warning("could not read the generator configuration: %s", e)
        if self.watchdog_s and self.KEEPALIVE_S > self.watchdog_s / 2:
            log.warning("keep-alive every %.3g s is too slow for the %.3g s watchdog", self.KEEPALIVE_S,
                        self.watchdog_s)
        if self.shutter is not None:
            self.shutter.link.call("id?", lambda i: i.identity)

    def close(self) -> None:
        self.stop_keepalive()
        self.link.close()
        if self.shutter is not None:
            self.shutter.link.close()

    def _flags(self, cmd: str, n: int, flag_cls: type) -> Any:
        def read(i: Any) -> Any:
            vals = i.values(cmd, cast=str)
            if len(vals) == 1 and vals[0].strip() in ERROR_REPLIES:
                code = vals[0].strip()
                raise ReplyError(f"Spellman answered {cmd} with error {code} ({ERROR_REPLIES[code]})", code=code)
            if len(vals) != n or any(v.strip() not in ("0", "1") for v in vals):
                raise ValueError(f"expected {n} flags, got {vals!r}")
            return flag_cls(sum(1 << k for k, v in enumerate(vals) if v.strip() == "1"))

        return self.link.call(f"{cmd} ({flag_cls.__name__})", read)

    def status(self) -> StatusCode:
        """Measure the status register (``22``)."""
        return self._flags("22", 17, StatusCode)

    def faults(self) -> ErrorCode:
        """Measure the fault register (``68``)."""
        return self._flags("68", 27, ErrorCode)

    def reset_faults(self) -> None:
        """Clear the fault register (``31``); HV stays off until switched on again."""
        reply = self.link.call("31 (reset faults)", lambda i: i.ask("31").strip())
        if reply != "$":
            raise ReplyError(f"Spellman refused the fault reset: {reply!r} "
                             f"({ERROR_REPLIES.get(reply, 'unknown reply')})", code=reply)

    @property
    def interlock_closed(self) -> bool:
        """Measure whether the interlock chain is closed (both generator inputs, and the shutter
        controller's interlock input if there is one)."""
        st = self.status()
        closed = bool(st & StatusCode.INTERLOCK_1_CLOSED) and bool(st & StatusCode.INTERLOCK_2_CLOSED)
        if closed and self.shutter is not None:
            closed = not self.shutter.interlock_tripped
        return closed

    @property
    def hv_on(self) -> bool:
        """Measure whether high voltage is on."""
        return bool(self.status() & StatusCode.HV_ENABLED)

    @property
    def kV_mA(self) -> tuple[float, float]:
        """Measure the output kV and mA from the monitors."""
        return self.link.call("19 (monitors)", lambda i: i.monitors_kV_mA)

    @property
    def shutter_open(self) -> bool:
        """Measure whether the shutter is open (False if there is no remote shutter)."""
        return False if self.shutter is None else not self.shutter.is_closed

    def _set(self, kV: float | None = None, mA: float | None = None) -> None:
        def do(i: Any) -> None:
            if kV is not None:
                i.voltage_setpoint = kV * 1000.0
            if mA is not None:
                i.current_setpoint = mA / 1000.0

        self.link.call(f"setpoint {kV} kV {mA} mA", do)

    def _ramp(self, which: str, start: float, end: float) -> None:
        rate = self.opts["ramp_kV_per_s" if which == "kV" else "ramp_mA_per_s"]
        step_s = self.opts["ramp_step_s"]
        n = max(1, math.ceil(abs(end - start) / (rate * step_s)))
        for k in range(1, n + 1):
            v = start + (end - start) * k / n
            self._set(**{which: v})
            if k < n:
                self.wait(step_s)

    # -- role interface ------------------------------------------------------------------------
    def on(self, kV: float, mA: float) -> None:
        """Safe sequence to X-rays on (see module docstring)."""
        kV, mA = self.check_setpoint(kV, mA)
        if not self.interlock_closed:
            raise SafetyError("X-ray HV refused: the interlock is open (close the enclosure)")
        faults = self.faults()
        if faults:
            raise SafetyError(f"X-ray HV refused: generator fault register {faults!r}; check the cause, "
                              "call reset_faults() and switch on again")
        if self.shutter is not None:
            self.shutter.close()
        retries = self.opts["retries"]
        for attempt in range(retries + 1):
            self._set(kV=0.0, mA=0.0)
            try:
                self.link.call("98,1 (HV on)", lambda i: setattr(i, "output_enabled", True), retry=False)
                break
            except ReplyError as e:
                if e.code == "E#2":
                    raise SafetyError("X-ray HV refused by the generator: interlock open") from e
                raise SafetyError(f"X-ray HV refused by the generator: {e}") from e
            except DriverError as lost:
                # the reply was lost: HV may or may not be on — make sure it is off. Only once make_safe has
                # verified HV off (setpoints 0: no dose was given) does the sequence start again; HV on is
                # never re-sent on a generator whose state is unknown
                log.error("no acknowledgement of HV on; making safe")
                try:
                    self.make_safe()
                except DriverError as e:
                    log.error("make_safe after the lost HV-on acknowledgement failed too: %s", e)
                    raise lost from e
                if attempt == retries:
                    raise
                log.warning("HV on: acknowledgement lost, HV verified off; switching on again (%d of %d)",
                            attempt + 1, retries)
        self._expect_hv = True
        try:
            self._ramp("kV", 0.0, kV)
            self._ramp("mA", 0.0, mA)
            self._wait_at(kV, mA)
            if self.shutter is not None:
                self.shutter.open()
        except BaseException:
            log.error("X-ray on() failed after HV on; making safe")
            self._make_safe_quietly()
            raise
        log.info("X-rays on: %.3g kV, %.3g mA", kV, mA)

    def _make_safe_quietly(self) -> None:
        try:
            self.make_safe()
        except DriverError as e:
            log.error("make_safe after a failed on() also failed: %s", e)

    def _wait_at(self, kV: float, mA: float) -> None:
        t0 = self.clock.monotonic()
        while True:
            if not self.hv_on:
                # let the engine look first: an open interlock is a suspension, not a failure
                self.cancel.poll(urgent=True)
                if not self.interlock_closed:
                    raise SafetyError("X-ray HV dropped while ramping: interlock open")
                raise SafetyError(f"HV dropped while ramping (faults: {self.faults()!r})")
            mkV, mmA = self.kV_mA
            if abs(mkV - kV) <= self.opts["kV_tolerance"] and abs(mmA - mA) <= self.opts["mA_tolerance"]:
                return
            if self.clock.monotonic() - t0 > self.opts["settle_timeout_s"]:
                raise DriverError(f"generator did not reach {kV:g} kV / {mA:g} mA within "
                                  f"{self.opts['settle_timeout_s']:g} s (monitors {mkV:.3g} kV, {mmA:.3g} mA)")
            self.wait(min(0.2, self.opts["ramp_step_s"]))

    def off(self) -> None:
        """Safe sequence to off: shutter closed first, ramp mA then kV down, HV off, verified."""
        if self.shutter is not None:
            self.shutter.close()
        if self.hv_on:
            kV_now, mA_now = self.kV_mA
            self._ramp("mA", mA_now, 0.0)
            self._ramp("kV", kV_now, 0.0)
        self.link.call("98,0 (HV off)", lambda i: setattr(i, "output_enabled", False))
        self._expect_hv = False
        if self.hv_on:
            raise DriverError("HV still reported on after HV off")

    def make_safe(self) -> None:
        """Shutter closed, setpoints 0, HV off — each step attempted whatever failed before."""
        failures = []
        if self.shutter is not None:
            try:
                self.shutter.close()
            except Exception as e:
                failures.append(f"shutter close: {e}")
        try:
            self._set(kV=0.0, mA=0.0)
        except Exception as e:
            failures.append(f"setpoints to 0: {e}")
        try:
            self._hv_off_verified()
            self._expect_hv = False
        except Exception as e:
            failures.append(f"HV off: {e}")
        if failures:
            raise DriverError("X-ray make_safe incomplete: " + "; ".join(failures))

    def _hv_off_verified(self) -> None:
        """HV off, never repeated blindly: the command is sent once (``retry=False``); if it fails,
        the HV state is read back over a fresh connection and the command is sent again only while
        the generator still reports HV on — at most ``retries`` times; then the error is raised
        (the backstop's escalation takes over)."""
        try:
            self.link.call("98,0 (HV off)", lambda i: setattr(i, "output_enabled", False), retry=False)
            return
        except (ReplyError, DriverError) as e:
            last: Exception = e
        for k in range(self.opts["retries"]):
            try:
                if not self.hv_on:   # a query: retried by the link; HV already off, nothing to send
                    log.warning("HV off: reply lost, but the generator reports HV off (verified)")
                    return
                log.warning("HV off failed (%s); HV still reported on: sending HV off again (%d)", last, k + 1)
                self.link.call("98,0 (HV off)", lambda i: setattr(i, "output_enabled", False), retry=False)
                return
            except (ReplyError, DriverError) as e:
                last = e
        raise last

    def keepalive(self) -> None:
        """Poll the status (feeds the watchdog); raise SafetyError if HV dropped unexpectedly."""
        st = self.status()
        if self._expect_hv and not st & StatusCode.HV_ENABLED:
            self._expect_hv = False
            if not (st & StatusCode.INTERLOCK_1_CLOSED and st & StatusCode.INTERLOCK_2_CLOSED):
                cause = "interlock opened"
            else:
                cause = f"faults {self.faults()!r}"
            raise SafetyError(f"X-ray HV dropped: {cause}")

    def start_keepalive(self) -> Any:
        """Call :meth:`keepalive` every ``keepalive_s`` on the clock; returns the handle."""
        self.stop_keepalive()
        self._keepalive_handle = self.clock.call_every(self.KEEPALIVE_S, self.keepalive, name="xray-keepalive",
                                                         hold=True)
        return self._keepalive_handle

    def stop_keepalive(self) -> None:
        if self._keepalive_handle is not None:
            self._keepalive_handle.cancel()
            self._keepalive_handle = None

    def readback(self) -> dict[str, float]:
        st = self.status()
        kV, mA = self.kV_mA
        return {"kV": kV, "mA": mA, "hv_on": float(bool(st & StatusCode.HV_ENABLED)),
                "shutter_open": float(self.shutter_open),
                "interlock_closed": float(bool(st & StatusCode.INTERLOCK_1_CLOSED)
                                          and bool(st & StatusCode.INTERLOCK_2_CLOSED))}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "options": dict(self.opts), "watchdog_s": self.watchdog_s}
