"""The simulated lab: one :class:`World` holds every piece of lab state on one shared clock.

``World(clock, sample=None, faults=None, seed=0, **options)``

* ``clock``: any object with ``now() / monotonic() / sleep(s) / call_every(interval, fn, name=)``
  (``acq.clock.SimClock`` in sflab; this package never imports ``acq``).
* ``sample``: a ``simulators.sample.Sample``, a preset name (loaded lazily through
  ``Sample.preset(name, seed=seed)``) or None.
* ``faults``: a :class:`~simulators.faults.Faults`, its text form (``"timeout=0.01,arc=0.001/s"``),
  a dict, or None.
* options (all optional):

  ``cryostat`` ("he" | "ln2"), ``T0_K`` (start temperature; default: base),
  ``cryostat_<arg>`` for any :class:`~simulators.cryostat.CryostatModel` keyword,
  ``xray_watchdog_s``, ``xray_<arg>`` for any :class:`~simulators.xray_tube.XRayTubeModel`
  keyword, ``laser_<arg>`` for any :class:`~simulators.laser.LaserModel` keyword,
  ``spot_diameter_um`` (sets the laser spot area), ``tcspc_mono`` (which TCSPC monochromator is in front
  of the TCSPC detector: ``"cornerstone"`` — the Oriel Cornerstone 260 of :mod:`.servers.cornerstone` —,
  ``"horiba"`` — the emulated ICL's second device, a MicroHR — or None, the default: no monochromator,
  the detectors see all light), ``reference_sample`` (the isolated-NC reference film on the sample
  holder: a preset name, default ``"isolated-ncs"``, or a ``Sample``), ``lamp_<arg>`` for any
  :class:`~simulators.lamp.LampModel` keyword, ``tick_s`` (period of the background
  advance that lets the watchdog and interlock act while nobody talks; 0 = off; default 1 lab s,
  off for an AFAP clock, where lab time only moves inside somebody's sleep and every observer goes
  through :meth:`advance` anyway).

The sample holder (:mod:`simulators.stage`): the sample at ``sample`` (0 mm), the reference film at
``reference`` (12.5 mm), bare substrate at ``blank`` (25 mm) on a CONEX-CC linear stage. Once its controller's
server is started (``world.sample_stage.installed``) every model of the light sees what is in the beam at the
stage's position (:meth:`World.sample_in_beam`: the sample, the reference, or nothing on the substrate or the
frame between pads); without it the sample is in the beam, as before the stage existed. The white-light lamp
(:mod:`simulators.lamp`) shines through the same place (:meth:`World.transmission_in_beam`).

The models are advanced lazily: :meth:`advance` brings them to ``clock.monotonic()`` (protocol
servers call it on every message), so the lab behaves the same at any clock speed, AFAP included.
State faults (arc, interlock opening, temperature excursion, count-rate overload) are applied
at their own lab times on the way.
"""

from __future__ import annotations

import inspect
import logging
import math
import threading
from typing import Any

from . import TCSPC_MONOS
from .cryostat import CryostatModel
from .faults import Faults
from .lamp import LampModel
from .laser import LaserModel
from .optics import ScanningMonochromator
from .stage import LinearStageModel
from .xray_tube import XRayTubeModel

log = logging.getLogger(__name__)

__all__ = ["World", "TCSPC_MONOS"]



def _kwargs_of(cls: type) -> set[str]:
    return {p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "t0", "seed")}


class World:
    """One simulated lab (see module docstring). All public methods are thread-safe."""

    def __init__(self, clock: Any, sample: Any = None, faults: Any = None, seed: int = 0,
                 **options: Any) -> None:
        self.clock = clock
        self.seed = seed
        self.rng_seed = seed
        self.lock = threading.RLock()
        self.faults = faults if isinstance(faults, Faults) else Faults(faults, seed=seed)
        self._sample = sample
        self.options = dict(options)
        t0 = clock.monotonic()
        self.t = t0

        cryo_kw: dict[str, Any] = {}
        tube_kw: dict[str, Any] = {}
        laser_kw: dict[str, Any] = {}
        lamp_kw: dict[str, Any] = {}
        reference: Any = "isolated-ncs"
        kind = "he"
        mono: str | None = None
        tick_s = 0.0 if getattr(clock, "afap", False) else 1.0
        known = {"cryostat": CryostatModel, "xray": XRayTubeModel, "laser": LaserModel, "lamp": LampModel}
        for key, val in options.items():
            if key == "cryostat":
                kind = str(val)
            elif key == "T0_K":
                cryo_kw["T0"] = float(val)
            elif key == "tick_s":
                tick_s = float(val)
            elif key == "tcspc_mono":
                if val not in (None, *TCSPC_MONOS):
                    raise ValueError(f"World option tcspc_mono={val!r}: allowed None, "
                                     f"{', '.join(map(repr, TCSPC_MONOS))}")
                mono = val
            elif key == "reference_sample":
                reference = val
            elif key == "spot_diameter_um":
                laser_kw["spot_area_cm2"] = math.pi * (float(val) * 1e-4 / 2) ** 2
            else:
                prefix, _, arg = key.partition("_")
                if prefix in known and arg in _kwargs_of(known[prefix]):
                    {"cryostat": cryo_kw, "xray": tube_kw, "laser": laser_kw, "lamp": lamp_kw}[prefix][arg] = val
                else:
                    allowed = ["cryostat", "T0_K", "tick_s", "spot_diameter_um", "tcspc_mono", "reference_sample"] + [
                        f"{p}_{a}" for p, c in known.items() for a in sorted(_kwargs_of(c))]
                    raise ValueError(f"World option {key!r} is unknown; allowed: {', '.join(allowed)}")
        self.cryostat = CryostatModel(kind, t0=t0, seed=seed, **cryo_kw)
        self.tube = XRayTubeModel(t0=t0, **tube_kw)
        self.laser = LaserModel(t0=t0, seed=seed, **laser_kw)
        self.lamp = LampModel(**lamp_kw)
        self.sample_stage = LinearStageModel(t0=t0)
        self._reference = reference
        # both TCSPC monochromators exist (their controllers answer); ``tcspc_mono`` says which is in the beam
        self.tcspc_monos = {"horiba": ScanningMonochromator.microhr(),
                            "cornerstone": ScanningMonochromator.cornerstone260()}
        self.tcspc_mono: str | None = mono
        self._detectors: Any = None
        self._ticker = None
        if tick_s > 0:
            self._ticker = clock.call_every(tick_s, self.advance, name="world-tick")

    # -- sample --------------------------------------------------------------------------
    @property
    def sample(self) -> Any:
        if isinstance(self._sample, str):
            from .sample import Sample  # lazily: written in parallel, optional for lab dynamics

            self._sample = Sample.preset(self._sample, seed=self.seed)
        return self._sample

    @sample.setter
    def sample(self, value: Any) -> None:
        self._sample = value

    @property
    def reference_sample(self) -> Any:
        """The reference film on the holder (``Sample``; loaded lazily like ``sample``)."""
        if isinstance(self._reference, str):
            from .sample import Sample

            r = self._reference
            self._reference = (Sample.from_toml(r, seed=self.seed) if r.endswith(".toml")
                               else Sample.preset(r, seed=self.seed))
        return self._reference

    def _pad_in_beam(self) -> str:
        """What the beam falls on: "sample", "reference", "substrate" or "frame" (between pads)."""
        st = self.sample_stage
        if not st.installed:
            return "sample"
        with self.lock:
            self.advance()
            pad = st.pad()
        return pad.what if pad is not None else "frame"

    def sample_in_beam(self) -> Any:
        """The ``Sample`` the laser, the X-rays and the collection optics see now, None when nothing emits
        there (bare substrate, or the holder's frame between pads)."""
        what = self._pad_in_beam()
        if what == "sample":
            return self.sample
        if what == "reference":
            return self.reference_sample
        return None

    def transmission_in_beam(self, wavelength_nm: Any, cond: Any) -> Any:
        """Fraction of the lamp's light passing the holder where the beam is: substrate × 10^(−absorbance)
        of the film there (``Sample.absorbance``), the substrate alone at ``blank``, 0 on the frame. Without
        a sample stage: the sample's 10^(−absorbance)."""
        import numpy as np

        lam = np.asarray(wavelength_nm, float)
        what = self._pad_in_beam()
        if what == "frame":
            return np.zeros_like(lam)
        t_sub = self.sample_stage.holder.substrate_transmission if self.sample_stage.installed else 1.0
        if what == "substrate":
            return np.full_like(lam, t_sub)
        film = self.sample if what == "sample" else self.reference_sample
        return t_sub * 10.0 ** (-np.asarray(film.absorbance(lam, cond), float))

    def collected_spectrum(self, wavelength_nm: Any, cond: Any = None) -> Any:
        """Photons/s/nm at the collection optics' output: the emission of what is in the beam plus the
        white-light lamp through the holder (what the spectrometer is given)."""
        import numpy as np

        lam = np.asarray(wavelength_nm, float)
        cond = self.conditions() if cond is None else cond
        s = self.sample_in_beam()
        out = np.zeros_like(lam) if s is None else np.asarray(s.emission_spectrum(lam, cond), float)
        if self.lamp.installed and self.lamp.shutter_open:
            out = out + self.lamp.spectrum(lam) * self.transmission_in_beam(lam, cond)
        return out

    # -- the TCSPC detector's light path ------------------------------------------------------------
    @property
    def detectors(self) -> Any:
        """The detector chain (``simulators.detectors``) the time-tagger emulations are built with: the
        default chain, its TCSPC arm behind :meth:`tcspc_passband`."""
        if self._detectors is None:
            from .detectors import default_detectors

            self._detectors = default_detectors().with_passband(self.tcspc_passband)
        return self._detectors

    @detectors.setter
    def detectors(self, value: Any) -> None:
        self._detectors = value

    def tcspc_passband(self) -> Any:
        """The ``simulators.optics.Passband`` of the TCSPC monochromator in the beam (None: none, or at
        zero order — all light)."""
        if self.tcspc_mono is None:
            return None
        with self.lock:
            return self.tcspc_monos[self.tcspc_mono].passband()

    # -- time ----------------------------------------------------------------------------
    def now(self) -> float:
        """Lab time (``clock.monotonic()``) — the time base of every model."""
        return self.clock.monotonic()

    def advance(self) -> float:
        """Bring every model to the clock's present lab time, applying state faults at their own
        times on the way. Returns that time."""
        with self.lock:
            t = self.clock.monotonic()
            if t < self.t:
                return self.t
            for ev in self.faults.events_between(self.t, t):
                self._advance_models(ev.t)
                self._apply(ev)
            self._advance_models(t)
            self.t = t
            return t

    def _advance_models(self, t: float) -> None:
        self.cryostat.advance_to(t)
        self.tube.advance_to(t)
        self.laser.advance_to(t)
        self.sample_stage.advance_to(t)

    def _apply(self, ev: Any) -> None:
        if ev.name == "arc":
            if self.tube.hv_on:
                self.tube.trip(ev.t, "ANODE_ARC")
        elif ev.name == "interlock_open":
            self.tube.open_interlock(ev.t, ev.duration_s)
        elif ev.name == "temperature_excursion":
            self.cryostat.heat_pulse(ev.t, ev.duration_s, ev.power_W)
        # count_rate_overload: only a flag, read through count_rate_overload()

    # -- views ---------------------------------------------------------------------------
    def count_rate_overload(self) -> bool:
        """Whether the detectors are being overloaded now (fault ``count_rate_overload``): a flag for
        the detector/time-tagger simulators to read (what an overload does is theirs to model)."""
        t = self.advance()
        return self.faults.active("count_rate_overload", t)

    def conditions(self) -> Any:
        """What the lab imposes on the sample now, as ``simulators.sample.Conditions``."""
        from .sample import Conditions  # lazily (see ``sample``)

        return Conditions(**self.conditions_dict())

    def conditions_dict(self) -> dict[str, float]:
        """The same as :meth:`conditions`, as a plain dict (does not need ``simulators.sample``)."""
        with self.lock:
            self.advance()
            kV, mA = self.tube.xrays_on_sample()
            return {"T_K": self.cryostat.T_sample, "fluence_uJcm2": self.laser.fluence_uJcm2(),
                    "rep_rate_Hz": self.laser.rep_rate_Hz, "photon_eV": self.laser.photon_eV,
                    "xray_kV": kV, "xray_mA": mA}

    def snapshot(self) -> dict[str, Any]:
        """Every model's state, for logs and run-file truth."""
        with self.lock:
            t = self.advance()
            return {"t": t, "cryostat": self.cryostat.state(), "xray": self.tube.state(),
                    "laser": self.laser.state(), "faults": self.faults.describe(),
                    "sample_stage": self.sample_stage.state() if self.sample_stage.installed else None,
                    "lamp": self.lamp.state() if self.lamp.installed else None,
                    "tcspc_mono": (self.tcspc_monos[self.tcspc_mono].state() if self.tcspc_mono else None),
                    "count_rate_overload": self.faults.active("count_rate_overload", t)}

    def stop(self) -> None:
        """Stop the background tick."""
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
