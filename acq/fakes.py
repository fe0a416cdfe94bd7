"""In-memory fake roles for engine tests and the engine check.

Every fake records each command it receives in a shared :class:`CommandLog`, so tests can assert
the exact order of safe-state commands and that *nothing* was sent before validation finished.
They share one :class:`FakeWorld` (sample temperature relaxing toward the setpoint on the lab
clock, X-ray state, attenuator transmission) so readbacks and data are consistent with each other.
They are deliberately simple physics — the faithful simulator is ``simulators/`` — but they are
not canned: spectra and decays follow the fake world's temperature and fluence, with Poisson noise.

``fail`` lets a test make any method raise: ``FakeXRay(log, world, fail={"make_safe": "HV stuck"})``.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from drivers.attenuator import Attenuator
from drivers.base import Clock, DriverError, SafetyError
from drivers.cryostat import TemperatureController
from drivers.powermeter import PowerMeter
from drivers.spectrometer import Spectrometer, Spectrum
from drivers.tcspc import TCSPC, Correlation, DecayHistogram, TagStream
from drivers.xray import XRaySource

__all__ = ["CommandLog", "FakeWorld", "FakeCryostat", "FakeXRay", "FakeSpectrometer", "FakeTCSPC",
           "FakeAttenuator", "FakePowerMeter", "fake_lab_roles"]


@dataclass
class CommandLog:
    entries: list[tuple[str, str, tuple]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, role: str, cmd: str, *args: Any) -> None:
        with self._lock:
            self.entries.append((role, cmd, args))

    def commands(self, role: str | None = None) -> list[str]:
        return [c for r, c, _ in self.entries if role is None or r == role]

    def __len__(self) -> int:
        return len(self.entries)

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()


@dataclass
class FakeWorld:
    clock: Clock
    T0: float = 295.0
    tau_s: float = 120.0           # thermal time constant of the fake stage
    setpoint: float = 295.0
    heater_range: int = 0
    interlock_closed: bool = True
    hv_on: bool = False
    kV: float = 0.0
    mA: float = 0.0
    shutter_open: bool = False
    transmission: float = 1e-4
    count_rate: float = 2.0e4      # per channel, 1/s
    seed: int = 0
    _T: float = 295.0
    _t: float = 0.0

    def __post_init__(self) -> None:
        self._T = self.T0
        self._t = self.clock.monotonic()
        self.rng = np.random.default_rng(self.seed)

    @property
    def T(self) -> float:
        now = self.clock.monotonic()
        dt = now - self._t
        if dt > 0:
            target = self.setpoint if self.heater_range > 0 or self.setpoint < self._T else self._T
            self._T = target + (self._T - target) * math.exp(-dt / self.tau_s)
            self._t = now
        return self._T


class _Fake:
    def _init_fake(self, log: CommandLog, world: FakeWorld, fail: dict[str, str] | None) -> None:
        self.log, self.world, self.fail = log, world, dict(fail or {})

    def _cmd(self, cmd: str, *args: Any) -> None:
        self.log.add(self.ROLE, cmd, *args)  # type: ignore[attr-defined]
        if cmd in self.fail:
            raise DriverError(f"{self.ROLE}: {cmd} failed: {self.fail[cmd]}")  # type: ignore[attr-defined]

    def connect(self) -> None:
        self._cmd("connect")

    def close(self) -> None:
        self.log.add(self.ROLE, "close")  # type: ignore[attr-defined]


class FakeCryostat(_Fake, TemperatureController):
    def __init__(self, resource: str = "fake", *, clock: Clock | None = None, log: CommandLog, world: FakeWorld,
                 fail: dict[str, str] | None = None, safe_heater_range: int = 0) -> None:
        TemperatureController.__init__(self, resource, clock=clock)
        self._init_fake(log, world, fail)
        self.safe_heater_range = safe_heater_range

    @property
    def temperature(self) -> float:
        self._cmd("temperature?")
        return self.world.T

    def set_temperature(self, kelvin: float, *, ramp_K_per_min: float | None = None) -> None:
        self._cmd("set_temperature", kelvin)
        _ = self.world.T  # advance the model to now before changing it
        self.world.setpoint = kelvin
        self.world.heater_range = 3

    def wait_stable(self, kelvin: float, *, band_K: float = 0.1, hold_s: float = 60.0,
                    timeout_s: float = 3600.0, poll_s: float = 1.0) -> float:
        self._cmd("wait_stable", kelvin, band_K, hold_s)
        t0 = self.clock.monotonic()
        held = 0.0
        while held < hold_s:
            if self.clock.monotonic() - t0 > timeout_s:
                raise TimeoutError(f"cryostat: T = {self.world.T:.3f} K not within ±{band_K} K of "
                                   f"{kelvin} K after {timeout_s:.0f} s")
            self.wait(poll_s)
            held = held + poll_s if abs(self.world.T - kelvin) < band_K else 0.0
        return self.clock.monotonic() - t0

    def make_safe(self) -> None:
        self._cmd("heater_range", self.safe_heater_range)
        _ = self.world.T
        self.world.heater_range = self.safe_heater_range

    def readback(self) -> dict[str, float]:
        T = self.world.T
        return {"T_sample": T, "T_sensor": T, "setpoint": self.world.setpoint,
                "heater": 10.0 * self.world.heater_range}


class FakeXRay(_Fake, XRaySource):
    KEEPALIVE_S = 1.0

    def __init__(self, resource: str = "fake", *, clock: Clock | None = None, log: CommandLog, world: FakeWorld,
                 fail: dict[str, str] | None = None, max_kV: float = 50.0, max_W: float = 50.0) -> None:
        XRaySource.__init__(self, resource, clock=clock)
        self._init_fake(log, world, fail)
        self.max_kV, self.max_W = max_kV, max_W
        self.keepalives = 0
        self._expect_hv = False

    @property
    def interlock_closed(self) -> bool:
        return self.world.interlock_closed

    @property
    def hv_on(self) -> bool:
        return self.world.hv_on

    def on(self, kV: float, mA: float) -> None:
        if kV > self.max_kV or kV * mA > self.max_W:
            raise SafetyError(f"xray: {kV} kV x {mA} mA exceeds the rating ({self.max_kV} kV, {self.max_W} W)")
        if not self.world.interlock_closed:
            self.log.add(self.ROLE, "refused:interlock_open")
            raise SafetyError("xray: interlock open, HV on refused")
        self._cmd("hv_on")
        self.world.hv_on, self.world.kV, self.world.mA = True, kV, mA
        self._expect_hv = True
        self._cmd("shutter_open")
        self.world.shutter_open = True

    def off(self) -> None:
        self._cmd("shutter_close")
        self.world.shutter_open = False
        self._cmd("ramp_down")
        self.world.kV = self.world.mA = 0.0
        self._cmd("hv_off")
        self.world.hv_on = False
        self._expect_hv = False

    def keepalive(self) -> None:
        """Like the Spellman's: a status poll that notices HV dropped behind our back."""
        self.keepalives += 1
        self.log.add(self.ROLE, "keepalive")
        if self._expect_hv and not self.world.hv_on:
            self._expect_hv = False
            cause = "interlock opened" if not self.world.interlock_closed else "generator fault"
            raise SafetyError(f"X-ray HV dropped: {cause}")

    def readback(self) -> dict[str, float]:
        w = self.world
        return {"kV": w.kV, "mA": w.mA, "hv_on": float(w.hv_on), "shutter_open": float(w.shutter_open),
                "interlock_closed": float(w.interlock_closed)}


class FakeSpectrometer(_Fake, Spectrometer):
    """Two Gaussian bands: 'uncoupled' at 515 nm and a red-shifted band that grows below 100 K."""

    def __init__(self, resource: str = "fake", *, clock: Clock | None = None, log: CommandLog, world: FakeWorld,
                 fail: dict[str, str] | None = None, n_pixels: int = 1024) -> None:
        Spectrometer.__init__(self, resource, clock=clock)
        self._init_fake(log, world, fail)
        self.n_pixels = n_pixels
        self._center = 520.0
        self.exposure_s = 1.0

    @property
    def center_nm(self) -> float:
        return self._center

    def move_to(self, center_nm: float) -> None:
        if not 200.0 <= center_nm <= 1500.0:
            raise ValueError(f"center_nm {center_nm} outside 200..1500 nm")
        self._cmd("move_to", center_nm)
        self._center = float(center_nm)

    @property
    def ccd_temperature(self) -> float:
        return -70.0

    def wavelength_axis(self) -> np.ndarray:
        return self._center + np.linspace(-40.0, 40.0, self.n_pixels)

    def _spectrum(self, exposure_s: float, dark: bool) -> Spectrum:
        wl = self.wavelength_axis()
        T = self.world.T
        red = 1.0 / (1.0 + math.exp((T - 100.0) / 10.0))
        signal = 0.0 if dark else self.world.transmission * 1e6 + (self.world.kV * self.world.mA * 1e3)
        shape = ((1 - red) * np.exp(-0.5 * ((wl - 515.0) / 6.0) ** 2)
                 + red * np.exp(-0.5 * ((wl - 525.0) / 3.0) ** 2))
        lam = 600.0 + exposure_s * signal * shape
        return Spectrum(wl, self.world.rng.poisson(lam).astype(np.float32), exposure_s, self._center, 300.0, 0.1,
                        self.ccd_temperature, dark=dark)

    def acquire(self, exposure_s: float | None = None) -> Spectrum:
        exposure_s = self.exposure_s if exposure_s is None else exposure_s
        self._cmd("acquire", exposure_s)
        self.wait(exposure_s)
        return self._spectrum(exposure_s, False)

    def dark_frame(self, exposure_s: float | None = None) -> Spectrum:
        exposure_s = self.exposure_s if exposure_s is None else exposure_s
        self._cmd("dark_frame", exposure_s)
        self.wait(exposure_s)
        return self._spectrum(exposure_s, True)

    def make_safe(self) -> None:
        self._cmd("shutter_close")


class FakeTCSPC(_Fake, TCSPC):
    def __init__(self, resource: str = "fake", *, clock: Clock | None = None, log: CommandLog, world: FakeWorld,
                 fail: dict[str, str] | None = None) -> None:
        TCSPC.__init__(self, resource, clock=clock)
        self._init_fake(log, world, fail)

    def _apply_settings(self, settings: dict[str, Any]) -> None:
        self._cmd("configure", settings)

    def count_rates(self) -> dict[str, float]:
        r = self.world.count_rate
        return {"rate_ch0": r, "rate_ch1": r}

    def histogram(self, duration_s: float, *, channel: int | None = None, binwidth_ps: float | None = None,
                  n_bins: int | None = None) -> DecayHistogram:
        self._cmd("histogram", duration_s)
        self.wait(duration_s)
        bw, n_bins = binwidth_ps or 16.0, n_bins or 4096
        t = np.arange(n_bins) * bw
        tau = 200.0 + 2000.0 / (1.0 + math.exp(-(self.world.T - 80.0) / 20.0))
        shape = np.exp(-np.clip(t - 1000.0, 0, None) / tau) * (t >= 1000.0)
        n = self.world.count_rate * duration_s
        lam = 1.0 + n * shape / max(shape.sum(), 1e-12)
        counts = self.world.rng.poisson(lam).astype(np.uint32)
        return DecayHistogram(t, counts, bw, duration_s, channel, channel_counts={1: int(counts.sum())})

    def correlation(self, duration_s: float, ch1: int = 1, ch2: int = 2, binwidth_ps: float = 10.0,
                    n_bins: int = 2000) -> Correlation:
        self._cmd("correlation", duration_s)
        self.wait(duration_s)
        lag = (np.arange(n_bins) - n_bins // 2 + 0.5) * binwidth_ps
        r = self.world.count_rate
        flat = r * r * duration_s * binwidth_ps * 1e-12
        lam = flat * (1.0 + 0.3 * np.exp(-np.abs(lag) / 100.0))
        n = int(r * duration_s)
        return Correlation(lag, self.world.rng.poisson(lam).astype(np.uint32), binwidth_ps, duration_s, ch1, ch2,
                           n, n)

    def stream(self, duration_s: float) -> TagStream:
        self._cmd("stream", duration_s)
        self.wait(duration_s)
        n = self.world.rng.poisson(self.world.count_rate * duration_s, size=2)
        t = [np.sort(self.world.rng.integers(0, int(duration_s * 1e12), k)) for k in n]
        ch = np.concatenate([np.full(n[0], 1), np.full(n[1], 2)]).astype(np.uint8)
        tt = np.concatenate(t).astype(np.int64)
        order = np.argsort(tt, kind="stable")
        return TagStream(tt[order], ch[order], duration_s)

    def stop(self) -> None:
        self._cmd("stop")


class FakeAttenuator(_Fake, Attenuator):
    def __init__(self, resource: str = "fake", *, clock: Clock | None = None, log: CommandLog, world: FakeWorld,
                 fail: dict[str, str] | None = None) -> None:
        Attenuator.__init__(self, resource, clock=clock)
        self._init_fake(log, world, fail)

    def set_transmission(self, transmission: float) -> None:
        if not 1e-4 <= transmission <= 1.0:
            raise ValueError(f"transmission {transmission} outside 1e-4..1")
        self._cmd("set_transmission", transmission)
        self.world.transmission = transmission

    @property
    def transmission(self) -> float:
        return self.world.transmission

    def set_max_attenuation(self) -> None:
        self._cmd("max_attenuation")
        self.world.transmission = 1e-4

    def readback(self) -> dict[str, float]:
        return {"angle": 270.0 * (1 + math.log10(self.world.transmission) / 4), "transmission": self.world.transmission}


class FakePowerMeter(_Fake, PowerMeter):
    def __init__(self, resource: str = "fake", *, clock: Clock | None = None, log: CommandLog, world: FakeWorld,
                 fail: dict[str, str] | None = None) -> None:
        PowerMeter.__init__(self, resource, clock=clock)
        self._init_fake(log, world, fail)

    @property
    def power(self) -> float:
        self._cmd("power?")
        return 0.05 * self.world.transmission

    def make_safe(self) -> None:
        self.log.add(self.ROLE, "make_safe")

    def readback(self) -> dict[str, float]:
        return {"power": 0.05 * self.world.transmission}


def fake_lab_roles(clock: Clock, *, log: CommandLog | None = None, world: FakeWorld | None = None,
                   fail: dict[str, dict[str, str]] | None = None, roles: tuple[str, ...] | None = None
                   ) -> tuple[dict[str, Any], CommandLog, FakeWorld]:
    """Every fake role sharing one log and world: ``roles, log, world``."""
    log = log or CommandLog()
    world = world or FakeWorld(clock)
    fail = fail or {}
    classes = {"cryostat": FakeCryostat, "xray": FakeXRay, "spectrometer": FakeSpectrometer,
               "tcspc": FakeTCSPC, "attenuator": FakeAttenuator, "powermeter": FakePowerMeter}
    out = {r: c("fake", clock=clock, log=log, world=world, fail=fail.get(r))
           for r, c in classes.items() if roles is None or r in roles}
    return out, log, world
