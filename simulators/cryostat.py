"""Cryostat thermal model with a Lake Shore 336-style controller (PID, ramp, heater ranges).

Two thermal masses:

* the **stage** (copper cold finger with the control sensor, input A): heat capacity
  ``C(T) = m·c_Cu(T)`` (Debye-like T³ at low T, electronic term, ~0.385 J/g/K at room temperature),
  cooled by the cold head with a cooling power that grows with T − T_cold and saturates at the
  cold head's capacity, heated by the heater and a parasitic load (radiation, wiring);
* the **sample** (input B, a thermometer next to the sample): a small mass linked to the stage by
  a conductance that falls at low T, so the sample lags the sensor (seconds at 10 K, tens of
  seconds at 100 K).

Kinds: ``"he"`` closed-cycle He (T_cold 4.2 K, base ≈ 5 K) and ``"ln2"`` (T_cold 77.3 K, base ≈ 80 K).

Controller: closed-loop PID on output 1 (Lake Shore form ``out% = P·(e + I/1000·∫e dt + D·de/dt)``
with I in repeats per 1000 s and D in s), anti-windup, output as % of the range's power (heater
display "power"), ranges off/low/medium/high = 0, 1, 10, 100 W (50 Ω, 1.41 A); open-loop MOUT;
setpoint ramp (0.1–100 K/min) executed here. Everything is advanced lazily to the lab time asked
for (``advance_to``) with exponential steps (stable for the stiff low-T dynamics) at the 10 Hz
control rate; a settled loop is fast-forwarded in one jump so that hours of AFAP lab time cost
nothing.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass

log = logging.getLogger(__name__)

__all__ = ["CryostatModel", "CRYOSTAT_KINDS", "RANGE_POWER_W", "c_copper"]

#: heater range index -> full power in W (Lake Shore 336 output 1, 50 Ω heater, 1.41 A max)
RANGE_POWER_W = {0: 0.0, 1: 1.0, 2: 10.0, 3: 100.0}


@dataclass(frozen=True)
class CryostatKind:
    T_cold: float       # cold-head temperature reached with no load, K
    G0: float           # cooling conductance near the cold head, W/K
    T_s: float          # scale on which the cooling conductance grows with ΔT, K
    P_max: float        # cold-head capacity (cooling power saturates here), W
    P_parasitic: float  # parasitic load on the stage, W


CRYOSTAT_KINDS = {
    # closed-cycle He: base ≈ 5.0 K, ~1.4 W to hold 20 K, ~18 W to hold 80 K
    "he": CryostatKind(T_cold=4.2, G0=0.05, T_s=20.0, P_max=40.0, P_parasitic=0.04),
    # LN2 flow/bath stage: base ≈ 80 K
    "ln2": CryostatKind(T_cold=77.3, G0=0.8, T_s=50.0, P_max=60.0, P_parasitic=2.0),
}


def c_copper(T: float) -> float:
    """Specific heat of copper in J/(g·K): Debye-like T³ term saturating near room temperature plus
    the electronic term (within ~15 % of tabulated values from 4 K to 300 K)."""
    T = max(T, 0.1)
    x3 = T ** 3
    return 0.385 * x3 / (x3 + 75.0 ** 3) + 1.1e-5 * T


class CryostatModel:
    """Thermal state + controller. Not thread-safe by itself: the :class:`~simulators.world.World`
    serialises access. Lab time ``t`` is the clock's ``monotonic()``."""

    DT = 0.1  # control update period, s (Lake Shore 336 updates its loop at 10 Hz)

    def __init__(self, kind: str = "he", *, T0: float | None = None, t0: float = 0.0,
                 stage_mass_g: float = 400.0, sample_mass_g: float = 5.0,
                 link_W_per_K2: float = 0.002, link_max_W_per_K: float = 0.05,
                 noise_K: float = 0.002, T_max: float = 350.0, seed: int = 0) -> None:
        if kind not in CRYOSTAT_KINDS:
            raise ValueError(f"cryostat kind {kind!r} unknown; allowed: {', '.join(CRYOSTAT_KINDS)}")
        self.kind_name = kind
        self.kind = CRYOSTAT_KINDS[kind]
        self.stage_mass_g = stage_mass_g
        self.sample_mass_g = sample_mass_g
        self.link_W_per_K2 = link_W_per_K2
        self.link_max_W_per_K = link_max_W_per_K
        self.noise_K = noise_K
        self.T_max = T_max
        self._rng = random.Random(f"cryostat/{seed}")
        base = self.base_temperature()
        T0 = base if T0 is None else float(T0)
        self.T_stage = T0
        self.T_sample = T0
        self.t = t0
        # controller state (output 1 is the stage heater; outputs 2-4 keep settings only)
        self.setpoint = {o: T0 for o in (1, 2, 3, 4)}        # present (ramping) setpoint
        self.target = {o: T0 for o in (1, 2, 3, 4)}          # setpoint asked for
        self.ramp_on = {o: False for o in (1, 2, 3, 4)}
        self.ramp_rate = {o: 10.0 for o in (1, 2, 3, 4)}     # K/min
        self.range = {o: 0 for o in (1, 2, 3, 4)}
        self.pid = {o: (50.0, 20.0, 0.0) for o in (1, 2, 3, 4)}
        self.outmode = {o: (1, o if o <= 2 else 0, 0) for o in (1, 2, 3, 4)}  # mode, input, powerup
        self.mout = {o: 0.0 for o in (1, 2, 3, 4)}
        self.output_pct = 0.0
        self._integral = 0.0
        self._last_err: float | None = None
        self.extra_heat: list[tuple[float, float, float]] = []  # (t_start, t_end, watts)
        self.sensor_fault_until = -math.inf
        self.heater_fault_until = -math.inf
        self._quiet_s = 0.0

    # -- physics -------------------------------------------------------------------------
    def base_temperature(self) -> float:
        """Stage temperature with the heater off (solves P_cool(T) = P_parasitic)."""
        lo, hi = self.kind.T_cold, self.kind.T_cold + 200.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if self.cooling_power(mid) < self.kind.P_parasitic:
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)

    def cooling_power(self, T: float) -> float:
        k = self.kind
        dT = T - k.T_cold
        g = k.G0 * dT * (1.0 + abs(dT) / k.T_s)
        return k.P_max * math.tanh(g / k.P_max)

    def _cooling_conductance(self, T: float) -> float:
        h = 1e-3 * max(1.0, T)
        return max((self.cooling_power(T + h) - self.cooling_power(T - h)) / (2 * h), 1e-6)

    def stage_heat_capacity(self, T: float) -> float:
        return self.stage_mass_g * c_copper(T)

    def sample_time_constant(self, T: float) -> float:
        """Lag of the sample behind the stage, s."""
        G = min(self.link_W_per_K2 * max(T, 0.5), self.link_max_W_per_K)
        return self.sample_mass_g * c_copper(T) / G

    def heater_power(self) -> float:
        return self.output_pct / 100.0 * RANGE_POWER_W[self.range[1]]

    def _extra_power(self, t: float) -> float:
        return sum(w for (a, b, w) in self.extra_heat if a <= t < b)

    # -- controller ----------------------------------------------------------------------
    def _control(self, dt: float, t: float) -> None:
        mode = self.outmode[1][0]
        rng = self.range[1]
        # ramping setpoints
        for o in (1, 2, 3, 4):
            tgt, sp = self.target[o], self.setpoint[o]
            if sp != tgt:
                if self.ramp_on[o] and self.ramp_rate[o] > 0:
                    step = self.ramp_rate[o] / 60.0 * dt
                    sp = tgt if abs(tgt - sp) <= step else sp + math.copysign(step, tgt - sp)
                else:
                    sp = tgt
                self.setpoint[o] = sp
        if t < self.heater_fault_until or rng == 0 or mode == 0:
            self.output_pct = 0.0
            self._integral = 0.0
            self._last_err = None
            return
        if mode == 3:  # open loop
            self.output_pct = min(max(self.mout[1], 0.0), 100.0)
            return
        inp = self.outmode[1][1]
        T_meas = self.T_sample if inp == 2 else self.T_stage
        P, I, D = self.pid[1]
        err = self.setpoint[1] - T_meas
        deriv = 0.0 if self._last_err is None else (err - self._last_err) / dt
        self._last_err = err
        new_int = self._integral + err * dt
        out = P * (err + I / 1000.0 * new_int + D * deriv)
        if 0.0 < out < 100.0 or (out >= 100.0 and err < 0) or (out <= 0.0 and err > 0):
            self._integral = new_int  # anti-windup: integrate only when not pushing into a limit
        self.output_pct = min(max(out, 0.0), 100.0)

    def _step(self, dt: float, t: float) -> None:
        self._control(dt, t)
        P_in = self.heater_power() + self.kind.P_parasitic + self._extra_power(t)
        remaining = dt
        for _ in range(2000):
            if remaining <= 0:
                break
            T = self.T_stage
            C = self.stage_heat_capacity(T)
            G = self._cooling_conductance(T)
            # sub-step so that T moves at most ~0.2 K per step (C(T) varies steeply at low T)
            rate = abs(P_in - self.cooling_power(T)) / C
            h = remaining if rate * remaining <= 0.2 else max(0.2 / rate, remaining / 500)
            remaining -= h
            # linearised exponential step: dT/dt = (P_in - P_cool(T)) / C
            T_eq = T + (P_in - self.cooling_power(T)) / G
            T_new = T_eq + (T - T_eq) * math.exp(-h * G / C)
            self.T_stage = min(max(T_new, self.kind.T_cold), self.T_max * 1.2)
            tau = self.sample_time_constant(self.T_sample)
            self.T_sample = self.T_stage + (self.T_sample - self.T_stage) * math.exp(-h / tau)

    def _settled(self) -> bool:
        if any(self.setpoint[o] != self.target[o] for o in (1, 2, 3, 4)):
            return False
        return abs(self.T_sample - self.T_stage) < 1e-4

    def advance_to(self, t: float) -> None:
        """Integrate from the model's time to lab time ``t`` (no-op if t is not later)."""
        if t <= self.t:
            return
        dt_total = t - self.t
        n = int(dt_total / self.DT)
        for _ in range(n):
            t_prev = self.T_stage
            out_prev = self.output_pct
            self.t += self.DT
            self._step(self.DT, self.t)
            quiet = (abs(self.T_stage - t_prev) < 1e-6 and abs(self.output_pct - out_prev) < 1e-5
                     and self._settled() and not any(b > self.t for (_, b, _) in self.extra_heat)
                     and self.t >= self.heater_fault_until)
            self._quiet_s = self._quiet_s + self.DT if quiet else 0.0
            if self._quiet_s >= 30.0:
                # steady state: nothing changes any more until something is commanded (the integral
                # is left alone: either the error is ~0 or the output is saturated, where it must not wind up)
                self.t = t
                break
        rest = t - self.t
        if rest > 1e-9:
            self.t = t
            self._step(rest, t)
        self.extra_heat = [e for e in self.extra_heat if e[1] > self.t]

    def poke(self) -> None:
        """Something was commanded: leave fast-forward."""
        self._quiet_s = 0.0

    # -- readings ------------------------------------------------------------------------
    def reading(self, inp: str) -> float:
        """Temperature reading of input A (stage) or B (sample) with sensor noise, K."""
        T = self.T_stage if inp == "A" else self.T_sample
        return T + self._rng.gauss(0.0, self.noise_K)

    def reading_status(self, inp: str, t: float) -> int:
        """RDGST? bits: 1 invalid reading, 16 temperature under range, 32 over range."""
        if inp not in ("A", "B"):
            return 1
        if t < self.sensor_fault_until:
            return 1
        T = self.T_stage if inp == "A" else self.T_sample
        if T > self.T_max:
            return 32
        if T < 1.4:
            return 16
        return 0

    def heat_pulse(self, t: float, duration_s: float, watts: float) -> None:
        """A temperature excursion: ``watts`` extra on the stage for ``duration_s``."""
        self.extra_heat.append((t, t + duration_s, watts))
        self.poke()

    def state(self) -> dict:
        return {"kind": self.kind_name, "t": self.t, "T_stage": self.T_stage, "T_sample": self.T_sample,
                "setpoint": self.setpoint[1], "target": self.target[1], "ramping": self.ramping(1),
                "range": self.range[1], "heater_pct": self.output_pct, "heater_W": self.heater_power(),
                "pid": self.pid[1]}

    def ramping(self, out: int) -> bool:
        return self.ramp_on[out] and self.setpoint[out] != self.target[out]
