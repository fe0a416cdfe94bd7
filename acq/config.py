"""``lab.toml``: which backend, resource and options each role uses — validated before anything moves.

Layout (see ``lab.example.toml``)::

    [lab]            name, data_dir
    [safety]         max_count_rate, temperature_band_K, settle_s, ...
    [cryostat]       backend = "lakeshore336", resource = "TCPIP::…::7777::SOCKET", <options>
    [xray]           backend = "spellman", …, max_kV = 50
    [spectrometer] [tcspc] [tcspc_mono] [attenuator] [powermeter] [white_light] [sample_stage]

Every error names the file, the line, the key, the bad value and what is allowed, e.g.
``lab.toml:12: xray.max_kV = 80 is above the generator's 50 kV rating``. All errors of a file are
reported together (:class:`ConfigError`), and none of this contacts an instrument.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivers.base import Option, validate_options

from .lab import BACKENDS, ROLES, backend_class

__all__ = ["ConfigError", "RoleConfig", "LabConfig", "load_config", "parse_config", "locate", "read_text_input",
           "resource_problem",
           "SAFETY_OPTIONS", "LAB_OPTIONS", "sim_config"]


class ConfigError(ValueError):
    """One or more invalid entries; ``errors`` holds one ``file:line: message`` string each."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("\n".join(errors))


SAFETY_OPTIONS: dict[str, Option] = {
    "max_count_rate": Option(float, 5.0e6, min=1.0, max=1e9, unit="1/s",
                             doc="suspend (X-ray safe) while any detector channel counts faster"),
    "temperature_band_K": Option(float, 2.0, min=0.001, max=50.0, unit="K",
                                 doc="suspend while the sample leaves its setpoint by more than this"),
    "settle_s": Option(float, 60.0, min=0.0, max=3600.0, unit="s", doc="wait after a condition clears"),
    "poll_s": Option(float, 1.0, min=0.01, max=600.0, unit="s",
                     doc="how often the count-rate and interlock suspenders are checked"),
    "temperature_poll_s": Option(float, 5.0, min=0.01, max=600.0, unit="s",
                                 doc="how often the temperature band is checked (decision 0015)"),
    "interlock": Option(bool, True, doc="suspend while the X-ray interlock is open"),
    "max_suspension_s": Option(float, 3600.0, min=1.0, max=7 * 86400.0, unit="s",
                               doc="a suspension lasting longer fails the run with its reason"),
}
LAB_OPTIONS: dict[str, Option] = {
    "name": Option(str, "sflab setup"),
    "data_dir": Option(str, "runs", doc="where run files go (relative to the working directory)"),
    "operator": Option(str, ""),
}
_RESERVED = ("backend", "resource")


def resource_problem(resource: str) -> str | None:
    """Why a VISA / host:port resource cannot be right (a port outside 1–65535, an empty host), or
    None. Other resource kinds (library paths, URLs of vendor servers, 'emulated') are not judged."""
    r = resource.strip()
    m = re.fullmatch(r"TCPIP\d*::([^:]*)::([^:]*)::SOCKET", r, re.IGNORECASE)
    hp = re.fullmatch(r"([A-Za-z0-9_.\-]*):(\d+|[^/:]*)", r) if m is None and "://" not in r else None
    wsm = re.fullmatch(r"wss?://([^:/]*):([^/]*)(/.*)?", r) if m is None and hp is None else None
    got = m or hp or wsm
    if got is None:
        return None
    host, port = got.group(1), got.group(2)
    if not host:
        return f"resource {resource!r} has no host"
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        return f"resource {resource!r}: port {port!r} is not a TCP port (1–65535)"
    return None


def _suggest(word: str, options: list[str]) -> str:
    import difflib

    m = difflib.get_close_matches(word, options, n=1)
    return f" — did you mean {m[0]!r}?" if m else ""


def locate(text: str, table: str, key: str | None = None) -> int:
    """1-based line of ``key`` inside ``[table]`` (or of the table header); 0 if not found."""
    lines = text.splitlines()
    header = re.compile(r"^\s*\[\s*" + re.escape(table) + r"\s*\]\s*(#.*)?$")
    any_header = re.compile(r"^\s*\[")
    start = None
    for i, ln in enumerate(lines):
        if header.match(ln):
            start = i
            break
    if start is None:
        if key is not None:  # dotted key at top level: table.key = …
            pat = re.compile(r"^\s*" + re.escape(f"{table}.{key}") + r"\s*=")
            for i, ln in enumerate(lines):
                if pat.match(ln):
                    return i + 1
        return 0
    if key is None:
        return start + 1
    pat = re.compile(r"^\s*(\"?)" + re.escape(key) + r"\1\s*=")
    for i in range(start + 1, len(lines)):
        if any_header.match(lines[i]):
            break
        if pat.match(lines[i]):
            return i + 1
    return start + 1


@dataclass
class RoleConfig:
    role: str
    backend: str
    resource: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    line: int = 0


@dataclass
class LabConfig:
    path: str
    lab: dict[str, Any]
    safety: dict[str, Any]
    roles: dict[str, RoleConfig]
    sample: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    simulated: bool = False
    #: the cryostat's temperature (K) when a plan starts, when known without contacting anything (the simulated
    #: lab: its cryostat's start temperature); plan estimates start there (``acq.plans``), None: room temperature
    start_K: float | None = None

    def snapshot(self) -> dict[str, Any]:
        """JSON-able copy for the run file's provenance."""
        return {"path": self.path, "simulated": self.simulated, "lab": self.lab, "safety": self.safety,
                "sample": self.sample,
                "roles": {r: {"backend": c.backend, "resource": c.resource, "options": c.options}
                          for r, c in self.roles.items()}}

    def where(self, table: str, key: str | None = None) -> str:
        return f"{self.path}:{locate(self.text, table, key)}"


def parse_config(text: str, path: str = "lab.toml", *, simulated: bool = False) -> LabConfig:
    """Parse and validate; raises :class:`ConfigError` listing every problem."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ConfigError([f"{path}:{m.group(1) if m else 0}: not valid TOML: {exc}"]) from None
    errors: list[str] = []

    def err(table: str, key: str | None, msg: str) -> None:
        errors.append(f"{path}:{locate(text, table, key)}: {msg}")

    known_tables = {"lab", "safety", "sample", *ROLES}
    for k in raw:
        if k not in known_tables:
            err(k, None, f"[{k}] is not a known section (known: {', '.join(sorted(known_tables))})"
                f"{_suggest(k, sorted(known_tables))}")
    sections: dict[str, dict[str, Any]] = {}
    for sec, schema in (("lab", LAB_OPTIONS), ("safety", SAFETY_OPTIONS)):
        tbl = raw.get(sec, {})
        if not isinstance(tbl, dict):
            err(sec, None, f"{sec} must be a table")
            tbl = {}
        vals, errs = validate_options(schema, tbl, prefix=f"{sec}.")
        for e in errs:
            err(sec, e.key.split(".", 1)[1], str(e))
        sections[sec] = vals
    roles: dict[str, RoleConfig] = {}
    for role in ROLES:
        tbl = raw.get(role)
        if tbl is None:
            continue
        if not isinstance(tbl, dict):
            err(role, None, f"{role} must be a table with backend = …")
            continue
        backend = tbl.get("backend")
        if not isinstance(backend, str):
            err(role, "backend", f"{role}.backend = {backend!r} is required; allowed: "
                f"{', '.join(sorted(BACKENDS[role]))}")
            continue
        if backend not in BACKENDS[role]:
            err(role, "backend", f"{role}.backend = {backend!r} is not a {role} backend; allowed: "
                f"{', '.join(sorted(BACKENDS[role]))}")
            continue
        resource = tbl.get("resource", "")
        if not isinstance(resource, str):
            err(role, "resource", f"{role}.resource = {resource!r} must be a string (a VISA resource, "
                "host:port or library path)")
            continue
        for rk in [k for k in tbl if k.endswith("resource")]:
            why = resource_problem(tbl[rk]) if isinstance(tbl[rk], str) else None
            if why:
                err(role, rk, f"{role}.{rk}: {why}")
        opts = {k: v for k, v in tbl.items() if k not in _RESERVED}
        try:
            klass = backend_class(role, backend)
        except ImportError as exc:
            err(role, "backend", f"{role}.backend = {backend!r}: {exc}")
            continue
        backend_schema: Mapping[str, Option] = getattr(klass, "OPTIONS", {}) or {}
        vals, errs = validate_options(backend_schema, opts, prefix=f"{role}.")
        for e in errs:   # a table option's entry (positions.blank) is located at its option's line
            err(role, e.key.split(".")[1], str(e))
        roles[role] = RoleConfig(role, backend, resource, vals, locate(text, role))
    sample = raw.get("sample", {})
    if not isinstance(sample, dict):
        err("sample", None, "sample must be a table")
        sample = {}
    if errors:
        raise ConfigError(errors)
    return LabConfig(path, sections["lab"], sections["safety"], roles, dict(sample), text, simulated)


def load_config(path: str | Path) -> LabConfig:
    p = Path(path)
    if not p.exists():
        raise ConfigError([f"{p}: no such lab configuration file"])
    return parse_config(read_text_input(p, "lab configuration"), str(p))


def read_text_input(path: str | Path, what: str = "file") -> str:
    """The text of a user's input file, or :class:`ConfigError` with one line saying why not
    (a directory, unreadable, not UTF-8 text, binary) — never a traceback."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError([f"{p}:0: is a directory, not a {what}"])
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{p}:0: cannot read the {what}: {exc.strerror or exc}"]) from None
    nul = raw.find(b"\x00")
    if nul >= 0:
        line = raw[:nul].count(b"\n") + 1
        raise ConfigError([f"{p}:{line}: is binary, not a {what} (a NUL byte at offset {nul})"])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError([f"{p}:{line}: is not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start}); "
                           f"a {what} is a text file"]) from None


def sim_config(roles: Mapping[str, Mapping[str, Any]], *, sample: Mapping[str, Any] | None = None,
               safety: Mapping[str, Any] | None = None, name: str = "simulated lab") -> LabConfig:
    """The built-in simulated configuration: ``roles[role] = {"backend":…, "resource":…, **options}``
    (as produced from ``simulators.start_lab(...).resources``). Validated like a file."""
    lines = [f'[lab]\nname = "{name}"\n']
    if safety:
        lines.append("[safety]")
        lines += [f"{k} = {toml_value(v)}" for k, v in safety.items()]
        lines.append("")
    for role, d in roles.items():
        lines.append(f"[{role}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in d.items()]
        lines.append("")
    if sample:
        lines.append("[sample]")
        lines += [f"{k} = {toml_value(v)}" for k, v in sample.items()]
    return parse_config("\n".join(lines), "<built-in simulated lab>", simulated=True)


def toml_value(v: Any) -> str:
    """One TOML value (bool, int, float, string, a list of them, or an inline table of them) — what sflab writes
    into configurations and plans (``sim_config``, the GUI's saved plans)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + "}"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
