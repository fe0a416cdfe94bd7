"""``sflab serve``: the lab's data folder over HTTP with Tiled, for colleagues' Tiled clients.

The tree mirrors the folder and is built on every request, so new campaigns, new run files and new points of
a run that is still being written (read with SWMR, completed points only) appear without a restart::

    /<campaign folder>/.../<run file stem>      metadata: run_uid, procedure, parameters, exit_status,
                                                n_points, start/end time, sample, analysis summary
        /<stream>/<field>                       arrays [n_points, ...]; metadata units, long_name
        /<stream>/<static axis>                 wavelength, t, tau ... with units
        /instrument/<role>/<readback>           per-point readbacks with units
        /scan/point_id, /scan/timestamp

Security: loopback (127.0.0.1) unless ``--host`` names another address *and* ``--expose`` says so; Tiled's
single-user API-key authentication is always on (the key from ``--api-key``, the environment variable
``SFLAB_SERVE_API_KEY``, or a fresh random one printed at start-up). The tree is read-only.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import re
import secrets
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from .store import open_run

log = logging.getLogger(__name__)

__all__ = ["build_tree", "build_app", "serve", "is_loopback", "RUN_FILE"]

RUN_FILE = re.compile(r"^(?!.*\.interrupted)(?!.*\.p\d{5}\.h5$).+\.h5$")
_FRESH = timedelta(seconds=0)


def _clean(obj: Any) -> Any:
    """JSON-able metadata (NaN/inf → None, NumPy → Python)."""
    def default(o: Any) -> Any:
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        return str(o)

    def fix(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {str(k): fix(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fix(x) for x in v]
        return v

    return fix(json.loads(json.dumps(obj, default=default)))


def _map(mapping: Mapping[str, Any], metadata: Mapping[str, Any] | None = None) -> Any:
    from tiled.adapters.mapping import MapAdapter

    return MapAdapter(mapping, metadata=_clean(dict(metadata or {})), entries_stale_after=_FRESH,
                      metadata_stale_after=_FRESH, must_revalidate=True)


def _array(arr: np.ndarray, units: str = "", **md: Any) -> Any:
    from tiled.adapters.array import ArrayAdapter

    return ArrayAdapter.from_array(np.ascontiguousarray(arr), metadata=_clean({"units": units, **md}))


def run_node(path: Path) -> Any:
    """The Tiled node of one run file (its completed points, read now)."""
    run = open_run(path)
    streams: dict[str, Any] = {}
    for sname, fields in run.streams.items():
        units = run.units.get(sname, {})
        items = {k: _array(v, units.get(k, "")) for k, v in fields.items() if v.dtype.kind in "biufc"}
        items.update({k: _array(np.asarray(v), units.get(k, ""), static=True)
                      for k, v in run.static_axes.get(sname, {}).items() if np.asarray(v).dtype.kind in "biufc"})
        md: dict[str, Any] = {"n_points": run.n_points}
        if sname in run.sidecars:
            md["sidecars"] = run.sidecars[sname]
        streams[sname] = _map(items, md)
    streams["instrument"] = _map({role: _map({k: _array(v, run.units.get(f"instrument/{role}", {}).get(k, ""))
                                              for k, v in d.items()}) for role, d in run.readbacks.items()})
    streams["scan"] = _map({"point_id": _array(run.point_id), "timestamp": _array(run.timestamp, "s")})
    meta: dict[str, Any] = {
        "run_uid": run.run_uid, "procedure": run.procedure, "parameters": run.parameters,
        "exit_status": run.exit_status, "n_points": run.n_points, "start_time": run.start_time,
        "end_time": run.end_time, "sample": run.sample_name, "default_stream": run.default_stream,
        "resumed_at": run.resumed_at, "analysis": run.analysis, "file": path.name}
    return _map(streams, meta)


class _Folder(Mapping[str, Any]):
    """A data folder, listed afresh on every access: sub-folders and run files (by stem)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _entries(self) -> dict[str, Path]:
        out: dict[str, Path] = {}
        try:
            children = sorted(self.root.iterdir())
        except OSError:
            return out
        for p in children:
            if p.name.startswith("."):
                continue
            if p.is_dir():
                out[p.name] = p
            elif RUN_FILE.match(p.name):
                out[p.stem] = p
        return out

    def __getitem__(self, key: str) -> Any:
        p = self._entries().get(key)
        if p is None:
            raise KeyError(key)
        if p.is_dir():
            return folder_node(p)
        try:
            return run_node(p)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("serve: %s is not a readable run file: %s", p, exc)
            raise KeyError(key) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries())

    def __len__(self) -> int:
        return len(self._entries())


def folder_node(root: Path) -> Any:
    md: dict[str, Any] = {"folder": root.name}
    idx = root / "campaign.json"
    if idx.exists():
        try:
            camp = json.loads(idx.read_text(encoding="utf-8"))
            md["campaign"] = {k: camp.get(k) for k in ("name", "created", "sample", "plan") if k in camp}
        except (OSError, ValueError):
            pass
    return _map(_Folder(root), md)


def build_tree(root: str | Path) -> Any:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no data folder at {root}")
    return _map(_Folder(root), {"sflab_data_folder": str(root.resolve())})


def build_app(root: str | Path, api_key: str) -> Any:
    from tiled.config import Authentication
    from tiled.server.app import build_app as tiled_app

    if not api_key or not api_key.isalnum():
        raise ValueError("the API key must be a non-empty string of letters and digits (e.g. secrets.token_hex(32))")
    return tiled_app(build_tree(root), Authentication(single_user_api_key=api_key, allow_anonymous_access=False))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_api_key() -> str:
    return secrets.token_hex(32)


def serve(root: str | Path, *, host: str = "127.0.0.1", port: int = 8000, api_key: str, expose: bool = False,
          ready: Any = None) -> None:
    """Run the server until interrupted. ``ready(url)`` is called once it listens."""
    import uvicorn

    if not is_loopback(host) and not expose:
        raise ValueError(f"--host {host} is not a loopback address: add --expose to serve the data folder to "
                         "the network (API key required, share it only with colleagues)")
    app = build_app(root, api_key)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    if ready is not None:
        orig = server.startup

        async def startup(sockets: Any = None) -> None:
            await orig(sockets=sockets)
            if server.started:
                ready(f"http://{host}:{port}")

        server.startup = startup
    server.run()
