"""The one home of lab composition: how a :class:`~acq.session.LabSession` is built from options.

* :class:`LabOptions` — how a lab is opened (real ``lab.toml`` or the simulated lab, sample, clock,
  faults, seed, time tagger, TCSPC monochromator); what ``campaign.json`` records under ``"lab"`` so that
  ``sflab resume`` reopens the same lab. :func:`check_sim_choices` checks the simulated time tagger and
  TCSPC monochromator against :data:`SIM_TCSPC_BACKENDS` / :data:`SIM_TCSPC_MONOS` (``--tcspc``,
  ``--tcspc-mono``).
* :func:`open_lab` — the real lab from a configuration, or the simulated lab (``simulators.start_lab``)
  reached through the same drivers over loopback, on an accelerated clock.
* :func:`sim_check_config` — the simulated lab's configuration as ``sflab check`` sees it (nothing started).
* :func:`sample_presets`, :func:`resolve_sample` — the virtual samples.
* :func:`prepare_tcspc` — the session's ``before_run`` hook: the time tagger cabled as the next procedure
  declares (:meth:`acq.procedure.Procedure.tcspc_wiring`), through the simulated lab's typed
  ``tcspc_wiring`` option.

Besides ``acq.cli`` this is the only module of ``acq`` that imports ``simulators``
(docs/decisions/0004-thin-cli-and-composition-module.md; the import-linter contract names both).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from simulators import TCSPC_BACKENDS, TCSPC_MONOS

from .clock import RealClock, make_clock
from .config import ConfigError, LabConfig, load_config, sim_config
from .events import EventBus
from .lab import Lab
from .registry import UnknownProcedure, procedure_class
from .session import LabSession

__all__ = ["LabOptions", "open_lab", "sim_check_config", "sample_presets", "resolve_sample", "prepare_tcspc",
           "serve_simulated_lab", "run_sim_script", "check_sim_choices",
           "DEFAULT_SAMPLE", "SIM_TCSPC_BACKENDS", "SIM_TCSPC_MONOS"]

DEFAULT_SAMPLE = "milano-2d-sl"
#: the simulated time taggers (``--tcspc``)
SIM_TCSPC_BACKENDS: tuple[str, ...] = TCSPC_BACKENDS
#: the simulated lab's TCSPC monochromators (``--tcspc-mono``); "none": no monochromator, the detector sees all light
SIM_TCSPC_MONOS: tuple[str, ...] = (*TCSPC_MONOS, "none")


def check_sim_choices(*, tcspc: str | None = None, tcspc_mono: str | None = None) -> None:
    """ValueError (one line, with the allowed values) unless ``tcspc`` / ``tcspc_mono`` (None: not given)
    name a simulated time tagger / TCSPC monochromator."""
    for flag, value, allowed in (("--tcspc", tcspc, SIM_TCSPC_BACKENDS), ("--tcspc-mono", tcspc_mono, SIM_TCSPC_MONOS)):
        if value is not None and value not in allowed:
            raise ValueError(f"{flag} {value!r}: allowed {', '.join(allowed)}")


@dataclass(frozen=True)
class LabOptions:
    """How a lab is opened. ``config``: a lab.toml (real lab; for a simulated one its [safety] applies)."""

    sim: bool = True
    config: str | None = None
    sample: str = DEFAULT_SAMPLE
    speed: str = "max"
    faults: str | None = None
    seed: int = 0
    tcspc: str = "picoharp300"
    #: the simulated lab's TCSPC monochromator: "cornerstone", "horiba" or "none" (:data:`SIM_TCSPC_MONOS`)
    tcspc_mono: str = "cornerstone"

    def __post_init__(self) -> None:
        check_sim_choices(tcspc=self.tcspc, tcspc_mono=self.tcspc_mono)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LabOptions:
        """From ``campaign.json``'s ``"lab"`` (missing or empty entries take the defaults)."""
        return cls(sim=bool(d.get("sim", True)), config=d.get("config") or None,
                   sample=str(d.get("sample") or DEFAULT_SAMPLE), speed=str(d.get("speed") or "max"),
                   faults=d.get("faults") or None, seed=int(d.get("seed") or 0),
                   tcspc=str(d.get("tcspc") or "picoharp300"),
                   tcspc_mono=str(d.get("tcspc_mono") or "cornerstone"))

    @classmethod
    def choose(cls, lab: Path | None, sim: bool | None, **kw: Any) -> LabOptions:
        """``--lab``/``--sim``: simulated unless a lab.toml is given (or ``sim`` says otherwise)."""
        simulate = sim if sim is not None else lab is None
        return cls(sim=bool(simulate), config=str(lab.resolve()) if lab else None,
                   **{k: v for k, v in kw.items() if v is not None})

    def override(self, *, lab: Path | None = None, sim: bool | None = None, **kw: Any) -> LabOptions:
        """These options with the command line's: ``--lab`` (real unless ``--sim``), ``--sim/--real`` and
        any of sample, speed, faults, seed that is not None (``sflab resume`` on a recorded campaign)."""
        o = self.to_dict()
        if lab is not None:
            o["config"], o["sim"] = str(lab.resolve()), bool(sim)
        elif sim is not None:
            o["sim"] = sim
        return replace(self, **{**o, **{k: v for k, v in kw.items() if v is not None}})

    def open(self, data_dir: Path, *, bus: EventBus | None = None, replay: Path | None = None) -> LabSession:
        return open_lab(Path(self.config) if self.config else None, sim=self.sim, sample=self.sample,
                        speed=self.speed, faults=self.faults, seed=self.seed, tcspc=self.tcspc,
                        tcspc_mono=self.tcspc_mono, data_dir=data_dir, bus=bus, replay=replay)


def open_lab(config: Path | None = None, *, sim: bool | None = None, sample: str = DEFAULT_SAMPLE,
             speed: str = "max", faults: str | None = None, seed: int = 0, tcspc: str = "picoharp300",
             data_dir: Path | None = None, bus: EventBus | None = None,
             replay: Path | None = None, tcspc_wiring: str = "tcspc", tcspc_mono: str | None = "cornerstone"
             ) -> LabSession:
    """A connected-on-demand lab: the real one from ``config`` (``lab.toml``), or — with no config or
    ``sim=True`` — the simulated lab (``simulators.start_lab``) reached through the same drivers over
    loopback, on an accelerated clock. ``replay`` (simulated only): the time tagger plays this PTU /
    Photon-HDF5 recording instead of the sample physics. ``tcspc_wiring`` (simulated only): how the time
    tagger is cabled until a queued procedure asks for another (``"tcspc"`` or ``"hbt"``). ``tcspc_mono``
    (simulated only): the monochromator in front of the TCSPC detector, ``"cornerstone"`` (Oriel
    Cornerstone 260), ``"horiba"`` (the ICL's second device) or ``"none"``/None (all light). Raises
    ConfigError on a bad configuration (nothing contacted)."""
    simulate = sim if sim is not None else config is None
    if not simulate:
        if config is None:
            raise ConfigError(["the real lab needs its configuration: --lab lab.toml (or --sim for the simulated lab)"])
        cfg = load_config(config)
        real = RealClock()
        lab = Lab.from_config(cfg, real)
        d = data_dir or Path(cfg.lab["data_dir"])
        return LabSession(lab, real, cfg, bus or EventBus(real), d,
                          sample={"name": str(cfg.sample.get("name", "")), "truth": {}})
    import simulators

    clock = make_clock(speed)
    simlab = simulators.start_lab(clock=clock, sample=sample, faults=faults, seed=seed, tcspc_backend=tcspc,
                                  tcspc_wiring=tcspc_wiring,
                                  tcspc_mono=None if tcspc_mono in (None, "", "none") else tcspc_mono)
    try:
        safety = load_config(config).safety if config is not None else None  # [safety] applies to a sim run
        cfg = sim_config(simlab.resources, sample={"name": simlab.sample_name}, safety=safety)
        inject = simlab.inject
        if replay is not None:
            from simulators.replay import replay_phlib, replay_tagger_module

            inject = dict(inject)
            inject["tcspc"] = ({"phlib": replay_phlib(replay, clock=clock, loop=True)} if tcspc == "picoharp300"
                               else {"tagger_module": replay_tagger_module(replay, clock=clock, loop=True)})
        lab = Lab.from_config(cfg, clock, inject=inject)
    except BaseException:
        simlab.stop()
        raise
    info = simlab.sample_info()
    if replay is not None:
        info["truth"] = dict(info.get("truth", {})) | {"replay": str(replay)}
    session = LabSession(lab, clock, cfg, bus or EventBus(clock), data_dir or Path("runs"), sim=simlab,
                         sample=info)
    session.on_close.append(simlab.stop)
    session.before_run = lambda it: prepare_tcspc(session, it.procedure, it.parameters)
    return session


def prepare_tcspc(session: LabSession, procedure: str, parameters: Mapping[str, Any]) -> None:
    """In the simulated lab, cable the emulated time tagger as the next procedure declares
    (:meth:`~acq.procedure.Procedure.tcspc_wiring`): HBT (two detectors) for a g2 measurement, TCSPC
    (laser sync + detector) otherwise — what the physicist does with the cables. On the real lab the
    cabling is the physicist's; nothing is done."""
    if session.sim is None:
        return
    try:
        wiring = procedure_class(procedure).tcspc_wiring(parameters)
    except UnknownProcedure:
        return   # the queue reports the unknown procedure itself
    if session.sim.tcspc_wiring == wiring:
        return
    if "tcspc" in session.lab.connected:  # the device reads its wiring when it is opened: re-open it
        try:
            session.lab.roles["tcspc"].close()
        finally:
            session.lab.connected.discard("tcspc")
    session.sim.tcspc_wiring = wiring


def sim_check_config(safety: Mapping[str, Any] | None = None) -> LabConfig:
    """The simulated lab's configuration as ``sflab check`` sees it, without starting it: the backends
    and option defaults of ``simulators.start_lab``, and the simulated laser's power (so fluence limits
    are checked as at the setup), and where its cryostat starts (``start_K``: plan estimates start there).
    Contacts nothing."""
    from simulators.cryostat import CryostatModel
    from simulators.icl_server import test_sheet as icl_test_sheet
    from simulators.laser import LaserModel
    from simulators.stage import LinearStageModel

    stage = LinearStageModel()
    holder = stage.holder
    roles: dict[str, dict[str, Any]] = {
        "cryostat": {"backend": "lakeshore336", "resource": "TCPIP::127.0.0.1::7777::SOCKET"},
        "xray": {"backend": "spellman", "resource": "TCPIP::127.0.0.1::50001::SOCKET",
                 "shutter_resource": "TCPIP::127.0.0.1::50002::SOCKET"},
        "attenuator": {"backend": "conex", "resource": "TCPIP::127.0.0.1::7778::SOCKET",
                       **LaserModel().lab_toml()},   # as SimLab.resources: the same options check and run see
        "powermeter": {"backend": "pm100d", "resource": "TCPIP::127.0.0.1::7779::SOCKET"},
        "spectrometer": {"backend": "horiba", "resource": "ws://127.0.0.1:25010", "icl_settle_s": 0.0,
                         "center_nm": 515.0, **icl_test_sheet()},
        "tcspc": {"backend": "picoharp300", "resource": "emulated"},
        "tcspc_mono": {"backend": "cornerstone", "resource": "TCPIP::127.0.0.1::7780::SOCKET"},
        "white_light": {"backend": "sc10", "resource": "TCPIP::127.0.0.1::50004::SOCKET"},
        "sample_stage": {"backend": "conex", "resource": "TCPIP::127.0.0.1::7781::SOCKET",
                         "positions": holder.positions(), "min_mm": stage.lo, "max_mm": stage.hi},
    }
    cfg = sim_config(roles, safety=dict(safety) if safety is not None else None)
    cfg.start_K = CryostatModel().base_temperature()   # the simulated cryostat starts cold (World: T0_K = base)
    return cfg


def sample_presets() -> list[str]:
    """The virtual sample presets of the simulated lab."""
    import simulators

    return sorted(p.stem for p in (Path(simulators.__file__).parent / "presets").glob("*.toml"))


def resolve_sample(option: str | None, plan_sample: str = "") -> str:
    """The virtual sample: ``option`` (a preset or a sample TOML file; ValueError otherwise), else the
    plan's sample if it names one, else :data:`DEFAULT_SAMPLE`."""
    presets = sample_presets()
    if option:
        if option not in presets and not Path(option).exists():
            raise ValueError(f"--sample {option!r}: not a preset ({', '.join(presets)}) nor a sample file")
        return option
    if plan_sample and (plan_sample in presets or (plan_sample.endswith(".toml") and Path(plan_sample).exists())):
        return plan_sample
    return DEFAULT_SAMPLE


def serve_simulated_lab(*, speed: str, max_step: float, sample: str, faults: str | None, seed: int,
                        ports: Mapping[str, int | None], tcspc_mono: str = "cornerstone") -> int:
    """``sflab sim serve``: the simulated lab's protocol servers on loopback until Ctrl-C or SIGTERM, on the
    clock outside clients pace (``simulators.serve_clock``: ``max`` = as fast as the slowest client
    allows) or at ``speed`` lab s per wall s; ``tcspc_mono``: the monochromator in the TCSPC beam (one of
    :data:`SIM_TCSPC_MONOS`). Returns the exit code; ValueError / OSError on bad input (before anything starts)."""
    import simulators

    check_sim_choices(tcspc_mono=tcspc_mono)
    clock = simulators.serve_clock(speed, step_s=max_step) or make_clock(speed)
    return int(simulators.serve(clock=clock, sample=sample, faults=faults, seed=seed, ports=dict(ports),
                                tcspc_mono=None if tcspc_mono == "none" else tcspc_mono))


def run_sim_script(script: Path, args: list[str]) -> int:
    """``sflab sim python``: run ``script`` with ``import TimeTagger`` served by the emulated Swabian module
    on a simulated sample (``simulators.shims``). FileNotFoundError when the script is missing."""
    from simulators.shims import run_script

    return int(run_script(str(script), list(args)))
