"""Protocol servers: the message-based instruments of the simulated lab on loopback TCP.

``start_servers(world, *, host="127.0.0.1", ports=None) -> dict[role, server]`` starts one server
per role; each has ``.port``, ``.resource`` (pyvisa-py string ``TCPIP::127.0.0.1::<port>::SOCKET``)
and ``.stop()``. Default ports (``DEFAULT_PORTS``): cryostat (Lake Shore 336) 7777, xray (Spellman)
50001, shutter (Thorlabs SC10, X-ray) 50002, laser_shutter (Thorlabs SC10, laser) 50003, attenuator
(Newport CONEX-AGP) 7778, powermeter (Thorlabs PM100D) 7779, tcspc_mono (Oriel Cornerstone 260, the TCSPC
monochromator) 7780, sample_stage (Newport CONEX-CC, the sample holder's linear stage) 7781, lamp_shutter
(Thorlabs SC10, the white-light lamp) 50004. ``ports`` overrides per role (0 = any free
port; a role mapped to None is not started).
"""

from __future__ import annotations

import logging
from typing import Any

from .base import ProtocolServer
from .conex import ConexCCServer, ConexServer
from .cornerstone import CornerstoneServer
from .lakeshore import LakeShore336Server
from .pm100d import PM100DServer
from .sc10 import LampShutterServer, LaserShutterServer, SC10Server
from .spellman import SpellmanServer

log = logging.getLogger(__name__)

__all__ = ["start_servers", "stop_servers", "SERVER_CLASSES", "DEFAULT_PORTS", "ProtocolServer",
           "LakeShore336Server", "SpellmanServer", "SC10Server", "LaserShutterServer", "ConexServer", "PM100DServer",
           "CornerstoneServer", "ConexCCServer", "LampShutterServer"]

SERVER_CLASSES: dict[str, type[ProtocolServer]] = {
    "cryostat": LakeShore336Server,
    "xray": SpellmanServer,
    "shutter": SC10Server,
    "laser_shutter": LaserShutterServer,
    "attenuator": ConexServer,
    "powermeter": PM100DServer,
    "tcspc_mono": CornerstoneServer,
    "sample_stage": ConexCCServer,
    "lamp_shutter": LampShutterServer,
}
DEFAULT_PORTS = {role: cls.DEFAULT_PORT for role, cls in SERVER_CLASSES.items()}


def start_servers(world: Any, *, host: str = "127.0.0.1",
                  ports: dict[str, int | None] | None = None) -> dict[str, ProtocolServer]:
    """Start every protocol server on ``world``. On any failure (e.g. a port in use) the servers
    already started are stopped and the error is raised, naming the role and port."""
    ports = dict(ports or {})
    unknown = set(ports) - set(SERVER_CLASSES)
    if unknown:
        raise ValueError(f"unknown server role(s) {sorted(unknown)}; known: {', '.join(SERVER_CLASSES)}")
    started: dict[str, ProtocolServer] = {}
    try:
        for role, cls in SERVER_CLASSES.items():
            port = ports.get(role, cls.DEFAULT_PORT)
            if port is None:
                continue
            srv = cls(world, host=host, port=port)
            try:
                srv.start()
            except OSError as e:
                raise OSError(f"cannot start the {role} server ({cls.NAME}) on {host}:{port}: {e}") from e
            started[role] = srv
    except BaseException:
        stop_servers(started)
        raise
    return started


def stop_servers(servers: dict[str, ProtocolServer]) -> None:
    """Stop every server in ``servers`` (never raises)."""
    for role, srv in servers.items():
        try:
            srv.stop()
        except Exception as e:  # pragma: no cover - best effort
            log.warning("stopping %s server failed: %s", role, e)
