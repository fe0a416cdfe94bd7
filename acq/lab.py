"""The lab: every role's driver, connected from a validated configuration.

``Lab.from_config(config, clock)`` instantiates the backend named for each role (see
:data:`BACKENDS`), passing its resource string and options. Vendor layers that cannot be named in a
TOML file (the emulated PHLib table, the emulated Time Tagger module) are injected by ``acq.cli``
through ``inject={role: {kwarg: object}}`` — that is how the simulated lab is wired in without
``acq`` importing ``simulators``.

``make_safe_all()`` is the engine's backstop: it visits every connected role in
:data:`SAFETY_ORDER` (X-ray first), never stops at a failure, and reports what happened per role.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, Literal, overload

from drivers.attenuator import Attenuator
from drivers.base import Clock, Role
from drivers.cryostat import TemperatureController
from drivers.tcspc import TCSPC
from drivers.xray import XRaySource

from .plugins import load_object

log = logging.getLogger(__name__)

__all__ = ["Lab", "BACKENDS", "ROLES", "SAFETY_ORDER", "backend_class"]

#: every role sflab knows, in the order they are connected
ROLES = ("cryostat", "xray", "spectrometer", "tcspc", "tcspc_mono", "attenuator", "powermeter", "white_light",
         "sample_stage")
#: the order of the backstop: the X-ray first (dose), then the laser path, then the heater; the white-light
#: lamp's shutter after the detectors; the sample stage last (it has no unsafe state)
SAFETY_ORDER = ("xray", "attenuator", "cryostat", "spectrometer", "tcspc", "tcspc_mono", "powermeter", "white_light",
                "sample_stage")

#: role -> backend name -> "module:Class". ``fake`` backends are the in-memory fakes of acq.fakes.
BACKENDS: dict[str, dict[str, str]] = {
    "cryostat": {"fake": "acq.fakes:FakeCryostat", "lakeshore336": "drivers.lakeshore336:LakeShore336Controller"},
    "xray": {"fake": "acq.fakes:FakeXRay", "spellman": "drivers.spellman:SpellmanXRaySource"},
    "spectrometer": {"fake": "acq.fakes:FakeSpectrometer", "horiba": "drivers.horiba:HoribaSpectrometer"},
    "tcspc": {"fake": "acq.fakes:FakeTCSPC", "picoharp300": "drivers.picoharp300:PicoHarp300",
              "swabian": "drivers.swabian:SwabianTimeTagger"},
    # the monochromator in front of the TCSPC detector(s): band-resolved decays (issue 15)
    "tcspc_mono": {"fake": "drivers.monochromator:ManualMonochromator",
                   "manual": "drivers.monochromator:ManualMonochromator",
                   "cornerstone": "drivers.cornerstone:CornerstoneMonochromator",
                   "horiba": "drivers.horiba:HoribaMonochromator"},
    "attenuator": {"fake": "acq.fakes:FakeAttenuator", "conex": "drivers.conex:ConexNDAttenuator"},
    "powermeter": {"fake": "acq.fakes:FakePowerMeter", "pm100d": "drivers.pm100d:PM100DPowerMeter"},
    # the in-situ transmission's lamp, gated by a Thorlabs SC10 (physics.md P6)
    "white_light": {"fake": "drivers.white_light:FakeWhiteLight", "sc10": "drivers.white_light:SC10WhiteLight"},
    # superlattice, isolated-NC reference film and blank side by side (physics.md P1 step 1, P6)
    "sample_stage": {"fake": "drivers.sample_stage:ManualSampleStage",
                     "manual": "drivers.sample_stage:ManualSampleStage",
                     "conex": "drivers.sample_stage:ConexSampleStage"},
}


def backend_class(role: str, backend: str) -> type[Role]:
    """Import the class for ``role``/``backend``; raises KeyError/ImportError with a clear text."""
    if role not in BACKENDS:
        raise KeyError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    target = BACKENDS[role].get(backend)
    if target is None:
        raise KeyError(f"unknown {role} backend {backend!r}; backends: {', '.join(sorted(BACKENDS[role]))}")
    mod, _, cls = target.partition(":")
    try:
        klass: type[Role] = load_object(mod, cls)
        return klass
    except (ImportError, AttributeError) as exc:
        raise ImportError(f"{role} backend {backend!r} ({target}) is not available: {exc}") from exc


class Lab:
    """The connected instruments of one setup. Holds role name -> driver (a ``drivers.base.Role``)."""

    def __init__(self, roles: Mapping[str, Role], *, clock: Clock, config: Any = None) -> None:
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise KeyError(f"unknown roles {sorted(unknown)}; roles: {', '.join(ROLES)}")
        self.roles: dict[str, Role] = dict(roles)
        self.clock = clock
        self.config = config
        self.connected: set[str] = set()

    @classmethod
    def from_config(cls, config: Any, clock: Clock, *, inject: Mapping[str, Mapping[str, Any]] | None = None) -> Lab:
        """Instantiate (not connect) every role of a validated ``acq.config.LabConfig``."""
        roles: dict[str, Role] = {}
        for role, rc in config.roles.items():
            klass = backend_class(role, rc.backend)
            kwargs = dict(rc.options)
            kwargs.update((inject or {}).get(role, {}))
            roles[role] = klass(rc.resource, clock=clock, **kwargs)
        return cls(roles, clock=clock, config=config)

    def __getattr__(self, name: str) -> Role:
        roles = self.__dict__.get("roles", {})
        if name in roles:
            return roles[name]
        raise AttributeError(f"lab has no role {name!r} (roles: {', '.join(roles)})")

    def __contains__(self, role: str) -> bool:
        return role in self.roles

    @overload
    def get(self, role: Literal["xray"]) -> XRaySource | None: ...
    @overload
    def get(self, role: Literal["tcspc"]) -> TCSPC | None: ...
    @overload
    def get(self, role: Literal["cryostat"]) -> TemperatureController | None: ...
    @overload
    def get(self, role: Literal["attenuator"]) -> Attenuator | None: ...
    @overload
    def get(self, role: str) -> Role | None: ...

    def get(self, role: str) -> Role | None:
        """The driver of ``role`` (typed as its role interface for the roles the engine drives itself)."""
        return self.roles.get(role)

    def connect(self, roles: Iterable[str] | None = None) -> None:
        wanted = list(self.roles) if roles is None else list(roles)
        missing = [r for r in wanted if r not in self.roles]
        if missing:
            raise KeyError(f"the lab configuration has no {', '.join(missing)} "
                           f"(configured: {', '.join(self.roles) or 'nothing'})")
        for r in sorted(wanted, key=ROLES.index):
            if r not in self.connected:
                log.info("connecting %s (%s)", r, type(self.roles[r]).__name__)
                self.roles[r].connect()
                self.connected.add(r)

    def readbacks(self, roles: Iterable[str] | None = None) -> dict[str, dict[str, float]]:
        """Scalar readbacks of the connected roles; a failing role reads NaN (and is logged)."""
        out: dict[str, dict[str, float]] = {}
        for r in roles if roles is not None else sorted(self.connected, key=ROLES.index):
            drv = self.roles[r]
            try:
                out[r] = {k: float(v) for k, v in drv.readback().items()}
            except Exception as exc:
                log.warning("readback of %s failed: %s", r, exc)
                out[r] = {k: float("nan") for k in drv.READBACKS}
        return out

    def readback_units(self, roles: Iterable[str] | None = None) -> dict[str, dict[str, str]]:
        names = roles if roles is not None else sorted(self.connected, key=ROLES.index)
        return {r: dict(self.roles[r].READBACKS) for r in names}

    def make_safe_all(self, roles: Iterable[str] | None = None, *,
                      on_escalate: Any = None) -> dict[str, str]:
        """Backstop: every role (default: every connected role) to its safe state, X-ray first, each
        confirmed by a readback and retried with link resynchronisation (``acq.backstop``). Never
        raises; returns ``{role: "ok" | "failed: <error>"}``; ``self.backstop_report`` has the details."""
        from .backstop import BackstopReport, insist_safe

        if on_escalate is None:
            on_escalate = _stop_own_keepalive(self)
        result, self.backstop_report = insist_safe(self, SAFETY_ORDER, roles, on_escalate=on_escalate)
        assert isinstance(self.backstop_report, BackstopReport)
        return result

    backstop_report: Any = None

    def close(self) -> None:
        for r in list(self.connected):
            try:
                self.roles[r].close()
            except Exception as exc:  # pragma: no cover - logged only
                log.warning("closing %s: %s", r, exc)
            self.connected.discard(r)

    def describe(self) -> dict[str, Any]:
        out = {}
        for r, d in self.roles.items():
            try:
                out[r] = d.describe()
            except Exception as exc:
                out[r] = {"backend": type(d).__name__, "error": str(exc)}
        return out


def _stop_own_keepalive(lab: Lab) -> Any:
    """Default escalation: a driver that runs its own keep-alive (``stop_keepalive()``) stops it, so
    the X-ray generator's watchdog drops HV by itself."""
    def esc(role: str) -> str:
        drv = lab.roles.get(role)
        stop = getattr(drv, "stop_keepalive", None)
        if role == "xray" and callable(stop):
            stop()
            return "keep-alive stopped: the generator's watchdog drops HV"
        return ""
    return esc
