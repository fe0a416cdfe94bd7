"""Test helper: a World with some protocol servers on ephemeral loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from acq.clock import SimClock
from simulators.servers import SERVER_CLASSES, start_servers, stop_servers
from simulators.world import World


@contextmanager
def sim_lab(*roles: str, clock: Any = None, faults: Any = None, **world_options: Any) -> Iterator[tuple]:
    """Yield (world, servers) with the servers of ``roles`` on port 0; stop them afterwards."""
    clock = clock if clock is not None else SimClock()
    world = World(clock, faults=faults, **world_options)
    ports = {r: (0 if r in roles else None) for r in SERVER_CLASSES}
    servers = start_servers(world, ports=ports)
    try:
        yield world, servers
    finally:
        stop_servers(servers)
        world.stop()


def open_laser_shutter(servers: dict) -> None:
    """Open the simulated laser shutter as a client of its SC10 would (the manual's bytes): ``ens?`` then,
    if the output is disabled, ``ens`` (a toggle). The SC10 powers up with its output disabled."""
    import socket

    def exchange(sock: socket.socket, cmd: bytes) -> bytes:
        sock.sendall(cmd + b"\r")
        buf = b""
        while not buf.endswith(b"> "):
            buf += sock.recv(256)
        return buf

    with socket.create_connection(("127.0.0.1", servers["laser_shutter"].port), timeout=5) as s:
        if exchange(s, b"ens?").split(b"\r")[1] == b"0":
            exchange(s, b"ens")
        assert exchange(s, b"closed?").split(b"\r")[1] == b"0", "laser shutter did not open"
