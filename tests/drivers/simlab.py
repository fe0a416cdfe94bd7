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
