"""The simulated lab: the independent oracle sflab is tested against.

``start_lab(clock=…, sample=…, faults=…, seed=…)`` builds one :class:`simulators.world.World` (sample
physics, cryostat, X-ray tube, laser) on the caller's clock and starts, on loopback only,

* the protocol servers of the message instruments (Lake Shore 336, Spellman, SC10 shutters of the X-rays,
  the laser and the white-light lamp, CONEX-AGP (ND wheel), CONEX-CC (sample stage), PM100D, Cornerstone
  260) — they speak the real bytes, so pymeasure's own drivers work against them unchanged;
* the emulated vendor layers of the SDK instruments (an ICL-compatible WebSocket server for
  ``horiba-sdk``; a PHLib-compatible function table; a TimeTagger-API module).

The returned :class:`SimLab` says how to reach each role (``resources``: the lab.toml entries) and
which vendor objects the SDK backends need (``inject``). ``serve(...)`` runs the same lab for other
programs (``sflab sim serve``). Nothing here imports another sflab package (DESIGN.md layers).
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from dataclasses import dataclass, field
from typing import Any

from .paced_clock import serve_clock
from .servers import DEFAULT_PORTS as _SERVER_PORTS

log = logging.getLogger(__name__)

__all__ = ["start_lab", "SimLab", "serve", "serve_clock", "DEFAULT_PORTS", "TCSPC_WIRINGS", "TCSPC_BACKENDS",
           "TCSPC_MONOS"]

#: the two ways the time tagger is cabled (SimLab.tcspc_wiring)
TCSPC_WIRINGS = ("tcspc", "hbt")

#: default loopback ports (DESIGN.md: Lake Shore 7777, Spellman 50001; ICL 25010): each protocol server's own
#: DEFAULT_PORT, and the emulated ICL's (simulators.icl_server.DEFAULT_PORT, not imported here: it pulls numpy
#: and the CCD into every import of the package; tests/simulators check the two agree)
DEFAULT_PORTS = {**_SERVER_PORTS, "spectrometer": 25010}
#: the TCSPC monochromators a simulated lab can have in front of its TCSPC detector (``start_lab(tcspc_mono=)``)
TCSPC_MONOS = ("cornerstone", "horiba")
#: the emulated time taggers (``start_lab(tcspc_backend=)``)
TCSPC_BACKENDS = ("picoharp300", "swabian")


@dataclass
class SimLab:
    world: Any
    servers: dict[str, Any]
    vendor: dict[str, Any]
    sample_name: str
    tcspc_backend: str = "picoharp300"
    faults: str | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        """lab.toml role tables: ``{role: {"backend": …, "resource": …, **options}}``."""
        from .icl_server import test_sheet as icl_test_sheet

        s = self.servers
        out: dict[str, dict[str, Any]] = {
            "cryostat": {"backend": "lakeshore336", "resource": s["cryostat"].resource},
            "xray": {"backend": "spellman", "resource": s["xray"].resource,
                     "shutter_resource": s["shutter"].resource},
            "attenuator": {"backend": "conex", "resource": s["attenuator"].resource, **self.world.laser.lab_toml(),
                           **({"shutter_resource": s["laser_shutter"].resource} if "laser_shutter" in s else {})},
            "powermeter": {"backend": "pm100d", "resource": s["powermeter"].resource},
            "spectrometer": {"backend": "horiba", "resource": self.vendor["spectrometer"].url,
                             "icl_settle_s": 0.0, "center_nm": 515.0, **icl_test_sheet()},
            "tcspc": {"backend": self.tcspc_backend, "resource": "emulated"},
        }
        if "sample_stage" in s:
            st = self.world.sample_stage
            out["sample_stage"] = {"backend": "conex", "resource": s["sample_stage"].resource,
                                   "positions": st.holder.positions(), "min_mm": st.lo, "max_mm": st.hi}
        if "lamp_shutter" in s:
            out["white_light"] = {"backend": "sc10", "resource": s["lamp_shutter"].resource,
                                  "lamp": f"halogen, {self.world.lamp.T_lamp_K:g} K blackbody (simulated)"}
        mono = getattr(self.world, "tcspc_mono", None)
        if mono == "cornerstone" and "tcspc_mono" in s:
            out["tcspc_mono"] = {"backend": "cornerstone", "resource": s["tcspc_mono"].resource}
        elif mono == "horiba":
            out["tcspc_mono"] = {"backend": "horiba", "resource": self.vendor["spectrometer"].url,
                                 "mono_index": 1, "icl_settle_s": 0.0}
        return out

    @property
    def inject(self) -> dict[str, dict[str, Any]]:
        """Objects the SDK backends take instead of the vendor DLL / module (``Lab.from_config(inject=)``)."""
        t = self.vendor["tcspc"]
        if self.tcspc_backend == "picoharp300":
            return {"tcspc": {"phlib": t["phlib"]}}
        return {"tcspc": {"tagger_module": t["tagger_module"]}}

    @property
    def tcspc_wiring(self) -> str:
        """How the emulated time tagger is cabled: ``"tcspc"`` (laser sync + detector) or ``"hbt"`` (two
        detectors, no sync). Setting it re-cables both emulated taggers; like on the bench, it takes effect
        when the device is next opened (the driver must be closed and re-opened)."""
        t = self.vendor["tcspc"]
        return str(t["phlib"].wiring if self.tcspc_backend == "picoharp300" else t["tagger_module"].WIRING)

    @tcspc_wiring.setter
    def tcspc_wiring(self, wiring: str) -> None:
        if wiring not in TCSPC_WIRINGS:
            raise ValueError(f"tcspc_wiring {wiring!r}: allowed {', '.join(map(repr, TCSPC_WIRINGS))}")
        t = self.vendor["tcspc"]
        t["phlib"].wiring = wiring
        t["tagger_module"].WIRING = wiring

    def endpoints(self) -> dict[str, dict[str, Any]]:
        """Role → host, port, resource (what ``sflab sim serve`` prints)."""
        out = {}
        for role, srv in self.servers.items():
            out[role] = {"host": "127.0.0.1", "port": srv.port, "resource": srv.resource}
            if hasattr(srv, "hislip_resource"):   # PM100D: the same instrument with USBTMC-like framing
                out[role]["hislip_resource"] = srv.hislip_resource
        icl = self.vendor["spectrometer"]
        out["spectrometer"] = {"host": "127.0.0.1", "port": icl.port, "resource": icl.url}
        return out

    def sample_info(self) -> dict[str, Any]:
        """Name and full parameter truth of the virtual sample (for the run file)."""
        s = self.world.sample
        params = getattr(s, "params", {})
        return {"name": self.sample_name, "truth": {"preset": self.sample_name, "params": params,
                                                      "seed": self.world.seed, "faults": self.faults}}

    def truth(self) -> dict[str, Any]:
        """Truth at the present conditions (SF fraction, τ_SF, … at the current T and fluence)."""
        return self.world.sample.truth(self.world.conditions())

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        from .servers import stop_servers

        stop_servers(self.servers)
        icl = self.vendor.get("spectrometer")
        if icl is not None:
            icl.stop()
        self.world.stop()

    def __enter__(self) -> SimLab:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_lab(*, clock: Any, sample: Any = "milano-2d-sl", faults: Any = None, seed: int = 0,
              ports: dict[str, int | None] | None = None, host: str = "127.0.0.1",
              tcspc_backend: str = "picoharp300", tcspc_wiring: str = "tcspc", tcspc_mono: str | None = "cornerstone",
              reference_sample: Any = "isolated-ncs", **world_options: Any) -> SimLab:
    """Start a simulated lab on ``clock``. ``ports`` overrides per role (0 = any free port; the default
    is 0 for every role so several labs can run side by side; ``serve`` uses the fixed defaults).
    ``tcspc_wiring``: how the time tagger is cabled at start (:attr:`SimLab.tcspc_wiring`).
    ``tcspc_mono``: the TCSPC monochromator in front of the TCSPC detector — ``"cornerstone"`` (the Oriel
    Cornerstone 260 server, [000] PL TCSPC; the default), ``"horiba"`` (the emulated ICL's second device, a
    MicroHR, [000] TR-RL) or None (none: the detector sees all light). Both controllers answer either
    way; only the one named is in the beam and in :attr:`SimLab.resources`. ``reference_sample``: the
    isolated-NC reference film on the sample holder (a preset or sample TOML file; default ``isolated-ncs``),
    at the sample stage's ``reference`` position next to the sample (``sample``) and bare substrate
    (``blank``); a stage's port mapped to None leaves the sample in the beam (no stage)."""
    from .sample import Sample
    from .servers import start_servers
    from .vendor import start_vendor_layers
    from .world import World

    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"simulators bind loopback only, not {host!r}")
    if tcspc_backend not in TCSPC_BACKENDS:
        raise ValueError(f"tcspc_backend {tcspc_backend!r}: allowed {', '.join(map(repr, TCSPC_BACKENDS))}")
    if tcspc_wiring not in TCSPC_WIRINGS:
        raise ValueError(f"tcspc_wiring {tcspc_wiring!r}: allowed {', '.join(map(repr, TCSPC_WIRINGS))}")
    if tcspc_mono not in (None, *TCSPC_MONOS):
        raise ValueError(f"tcspc_mono {tcspc_mono!r}: allowed None, {', '.join(map(repr, TCSPC_MONOS))}")
    name = sample if isinstance(sample, str) else getattr(sample, "name", "custom")
    if isinstance(sample, str):
        sample = Sample.from_toml(sample, seed=seed) if sample.endswith(".toml") else Sample.preset(sample, seed=seed)
    ports = {role: 0 for role in DEFAULT_PORTS} | dict(ports or {})
    world = World(clock, sample=sample, faults=faults, seed=seed, tcspc_mono=tcspc_mono,
                  reference_sample=reference_sample, **world_options)
    servers = start_servers(world, host=host, ports={k: v for k, v in ports.items() if k != "spectrometer"})
    try:
        vendor = start_vendor_layers(world, host=host, ports={"spectrometer": ports.get("spectrometer", 0)},
                                     tcspc_mode=tcspc_wiring)
    except BaseException:
        from .servers import stop_servers

        stop_servers(servers)
        raise
    lab = SimLab(world, servers, vendor, str(name), tcspc_backend,
                 faults if isinstance(faults, str) or faults is None else repr(faults))
    log.info("simulated lab up: %s", lab.endpoints())
    return lab


def serve(*, clock: Any, sample: str = "milano-2d-sl", faults: Any = None, seed: int = 0,
          ports: dict[str, int | None] | None = None, out: Any = None,
          stop_event: threading.Event | None = None, tcspc_mono: str | None = "cornerstone") -> int:
    """Run a simulated lab until SIGINT/SIGTERM (or ``stop_event``); print one JSON line to ``out``
    mapping each role to host, port and resource first (``tcspc_mono``: as in :func:`start_lab`; the
    ``lab_toml`` tables name the one in the beam). Returns 0."""
    import sys

    p = dict(DEFAULT_PORTS)
    p.update(ports or {})
    lab = start_lab(clock=clock, sample=sample, faults=faults, seed=seed, ports=p, tcspc_mono=tcspc_mono)
    stop = stop_event or threading.Event()
    old = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, lambda *_a: stop.set())
    try:
        line = {"sample": lab.sample_name, "roles": lab.endpoints(), "lab_toml": lab.resources,
                "clock": repr(clock)}
        stream = out or sys.stdout
        stream.write(json.dumps(line) + "\n")
        stream.flush()
        while not stop.wait(0.2):
            pass
    finally:
        lab.stop()
        close = getattr(clock, "close", None)
        if close is not None:
            close()
        for sig, h in old.items():
            signal.signal(sig, h)
    return 0
