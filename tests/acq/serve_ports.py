"""``sflab sim serve`` arguments putting every server on a free port (``--port-ROLE 0`` for each role in
``simulators.DEFAULT_PORTS``): a server left on its default port collides with any other simulated lab the
parallel suite runs at the same moment, and the subprocess exits before it prints its endpoints."""

from __future__ import annotations

from simulators import DEFAULT_PORTS


def any_free_port_args() -> list[str]:
    return [a for role in DEFAULT_PORTS for a in (f"--port-{role.replace('_', '-')}", "0")]
