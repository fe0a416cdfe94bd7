"""The Swabian ``TimeTagger`` package name, served by sflab's emulation on a simulated lab.

See :mod:`simulators.shims` for the switches (environment variables). Everything the emulated
module exports (``createTimeTagger``, ``Correlation``, ``Histogram``, ``TimeDifferences``,
``Countrate``, ``Counter``, ``TimeTagStream``, ``getVersion``, …) is re-exported here.

The measurements are drawn from the photon statistics (:mod:`simulators.timetagger`, statistical
mode); ``SFLAB_SIM_STATISTICS=0`` in the environment, or ``TimeTagger.STATISTICS = False`` before
``createTimeTagger()``, makes the tagger list every tag instead (the way the real library computes
them; a 1 s capture then takes the CPU time of generating 1 s of tags).
"""

from __future__ import annotations

import os
import time
from types import SimpleNamespace
from typing import Any


class _ScriptClock:
    """Lab time for one in-process script: it moves when the script waits on the tagger
    (``waitUntilFinished``, or ``SFLAB_LAB.clock.sleep``), as on the instrument, where the capture
    takes that long — never while the script computes."""

    afap = True
    speed = float("inf")

    def __init__(self) -> None:
        self._t = 0.0
        self._start = time.time()

    def monotonic(self) -> float:
        return self._t

    def now(self) -> float:
        return self._start + self._t

    def sleep(self, seconds: float) -> None:
        if seconds and seconds > 0:
            self._t += float(seconds)

    advance = sleep

    def call_every(self, interval: float, fn: Any, *, name: str = "") -> Any:
        raise RuntimeError("the script clock runs no periodic callbacks")


def _build() -> tuple[Any, Any]:
    from simulators import timetagger
    from simulators.sample import Sample
    from simulators.vendor import PhysicsFeed
    from simulators.world import World

    name = os.environ.get("SFLAB_SIM_SAMPLE", "milano-2d-sl")
    seed = int(os.environ.get("SFLAB_SIM_SEED", "0"))
    wiring = os.environ.get("SFLAB_SIM_WIRING", "hbt")
    if wiring not in ("hbt", "tcspc"):
        raise ValueError(f"SFLAB_SIM_WIRING={wiring!r}: allowed 'hbt', 'tcspc'")
    T_K = float(os.environ.get("SFLAB_SIM_T_K", "20"))
    try:
        kV, mA = (float(x) for x in os.environ.get("SFLAB_SIM_XRAY", "20,1").split(","))
    except ValueError:
        raise ValueError(f"SFLAB_SIM_XRAY={os.environ.get('SFLAB_SIM_XRAY')!r}: expected 'kV,mA', "
                         "e.g. '20,1' or '0,0'") from None
    sample = Sample.from_toml(name, seed=seed) if name.endswith(".toml") else Sample.preset(name, seed=seed)
    laser_W = float(os.environ.get("SFLAB_SIM_LASER_W", "0"))
    clock = _ScriptClock()
    # the tube's watchdog is off: no generator client keeps it alive in this setting
    world = World(clock, sample=sample, seed=seed, T0_K=T_K, xray_watchdog_s=1e12, laser_power_W=laser_W)
    cr = world.cryostat
    cr.target[1] = cr.setpoint[1] = T_K
    cr.range[1] = 3
    if kV > 0 and mA > 0:
        tube = world.tube
        tube.set_kV(kV)
        tube.set_mA(mA)
        why = tube.request_hv(True, world.now())
        if why is not None:
            raise RuntimeError(f"simulated X-ray tube refuses HV: {why}")
        tube.shutter_enabled = True
        clock.sleep(max(kV / tube.kV_ramp_per_s, mA / tube.mA_ramp_per_s) + 1.0)   # ramps done
    module = timetagger.make_module(lambda: PhysicsFeed(world, mode="tcspc"), clock=clock,
                                    hbt_feed=lambda: PhysicsFeed(world, mode="hbt"))
    module.WIRING = wiring
    module.STATISTICS = os.environ.get("SFLAB_SIM_STATISTICS", "1").strip().lower() not in ("0", "false", "no", "off")
    return module, SimpleNamespace(world=world, clock=clock, sample=name, wiring=wiring, T_K=T_K,
                                   xray=(kV, mA), laser_W=laser_W)


_module, SFLAB_LAB = _build()
for _name in dir(_module):
    if not _name.startswith("__"):
        globals()[_name] = getattr(_module, _name)
__version__ = _module.getVersion()
del _name


def createTimeTagger(*args: Any, **kwargs: Any) -> Any:
    """The emulated ``createTimeTagger``; honours ``TimeTagger.STATISTICS`` set on this module."""
    _module.STATISTICS = bool(globals().get("STATISTICS", True))
    return _module.createTimeTagger(*args, **kwargs)
