"""Plans: what an overnight campaign measures, validated as a whole before anything moves.

A plan is a TOML file — a sample name and an ordered list of steps, each a procedure run with its
parameters or a wait on the lab clock — or a Python script for logic TOML cannot say. Example::

    sample = "milano-2d-sl"                 # the sample (for --sim also the virtual-sample preset)
    title = "PL temperature x fluence"

    [defaults]                              # applied to every run whose procedure has the parameter
    exposure = 1.0

    [[step]]
    procedure = "PLTemperatureSeries"
    title = "PL cool-down"
    temperatures = {start = 300, stop = 20, num = 15}     # a range table expands into a list
    fluences = {start = 0.5, stop = 50, num = 5, log = true}

    [[step]]
    wait_s = 1800                           # wait 30 min of lab time (no instrument command)
    note = "let the cold finger settle"

    [[step]]
    procedure = "FluenceSeries"
    loop = {temperature = [20, 80, 160]}    # one run per value (several keys: nested loops, in order)

    [[step]]                                # P1 step 7: after the series, warm to RT, cool, repeat 90/20 K
    procedure = "PLTemperatureSeries"
    temperatures = [295, 150, 90, 20]
    reversibility = {repeat = [90, 20], warm_K = 295}   # queues a second run at [295, 90, 20] (acq.reversibility)

Python plan scripts define ``plan(p)`` and call ``p.sample(name)``, ``p.run(procedure, title=…,
**parameters)`` (``reversibility={"repeat": [...]}`` as in TOML) and ``p.wait(seconds, note=…)``; the
script only *builds* the list (it is given the lab configuration to read limits from, never an instrument).

:func:`check_plan` validates everything — unknown keys (with "did you mean"), unknown procedures,
parameter values (:func:`acq.procedure.validate_parameters`, errors as ``file:line: key = value …
allowed …``) and the procedures' cross-checks against the lab configuration (their optional
``validate(lab_config)`` hook: T below the cryostat's minimum, fluence above the laser's maximum, kV
above the tube rating) — and estimates lab time and disk space (``Procedure.estimate()``). Nothing in
this module contacts an instrument.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import logging
import math
import re
import runpy
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import ConfigError, LabConfig, read_text_input
from .procedure import Issue, ParameterError, Procedure, validate_parameters
from .registry import UnknownProcedure, procedure_class

log = logging.getLogger(__name__)

__all__ = ["PlannedRun", "Plan", "PlanBuilder", "load_plan", "check_plan", "check_command", "expand_range",
           "validate_run", "MAX_RUNS", "SCRIPT_TIMEOUT_S",
           "WAIT", "instantiate", "cross_check", "generic_limits", "max_fluence", "format_duration", "format_bytes",
           "PLAN_KEYS", "STEP_KEYS"]

#: the procedure name of a wait step (the queue runs it as a wait on the lab clock, no run file)
WAIT = "wait"
PLAN_KEYS = ("sample", "title", "description", "defaults", "step")
STEP_KEYS = ("procedure", "title", "loop", "wait_s", "note", "reversibility")
_RANGE_KEYS = {"start", "stop", "num", "step", "log"}
#: a plan may hold at most this many runs (a loop of 10⁶ runs is a mistake, not a campaign)
MAX_RUNS = 10_000
#: a Python plan script must build its list within this many seconds (wall) …
SCRIPT_TIMEOUT_S = 5.0
#: … and queue at most MAX_RUNS steps


class PlanScriptError(Exception):
    """A Python plan script broke a rule (time or size bound)."""


@dataclass
class PlannedRun:
    """One step of a plan after loops are expanded: a procedure run (or a wait)."""

    procedure: str
    parameters: dict[str, Any]
    title: str = ""
    line: int = 0
    estimate_s: float = math.nan
    estimate_bytes: float = math.nan
    n_points: int | None = None

    @property
    def is_wait(self) -> bool:
        return self.procedure == WAIT


@dataclass
class Plan:
    path: Path
    sample: str = ""
    title: str = ""
    runs: list[PlannedRun] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sha256: str = ""
    #: the plan's text as read (what a campaign keeps a copy of)
    source: bytes = b""
    #: where the runs so far leave the cryostat (K; the last point's ``T`` of the latest run that has one),
    #: None while unknown: each run's estimate starts from it (``Procedure.start_K``)
    end_K: float | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def lab_seconds(self) -> float:
        return sum(r.estimate_s for r in self.runs)

    @property
    def bytes(self) -> float:
        return sum(r.estimate_bytes for r in self.runs if not r.is_wait)

    @property
    def n_points(self) -> int | None:
        pts = [r.n_points for r in self.runs if not r.is_wait]
        counted = [p for p in pts if p is not None]
        return sum(counted) if len(counted) == len(pts) else None


# ---------------------------------------------------------------------------------------------- helpers
def expand_range(spec: Mapping[str, Any]) -> list[float]:
    """``{start, stop, num[, log]}`` or ``{start, stop, step}`` → the list of values (stop included)."""
    unknown = set(spec) - _RANGE_KEYS
    if unknown:
        raise ValueError(f"unknown range key(s) {sorted(unknown)}; a range has start, stop and num (log = true "
                         "for logarithmic spacing) or step")
    if "start" not in spec or "stop" not in spec:
        raise ValueError("a range needs start and stop")
    a, b = float(spec["start"]), float(spec["stop"])
    if "num" in spec:
        n = spec["num"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1 or n > 100_000:
            raise ValueError(f"num = {n!r} must be an integer 1..100000")
        if n == 1:
            return [a]
        if spec.get("log"):
            if a <= 0 or b <= 0:
                raise ValueError("a logarithmic range needs start and stop > 0")
            return [float(round(math.exp(math.log(a) + (math.log(b) - math.log(a)) * i / (n - 1)), 12))
                    for i in range(n)]
        return [float(round(a + (b - a) * i / (n - 1), 12)) for i in range(n)]
    if "step" in spec:
        s = float(spec["step"])
        if s == 0 or (b - a) * s < 0:
            raise ValueError(f"step = {s:g} does not lead from {a:g} to {b:g}")
        n = int(math.floor((b - a) / s + 1e-9)) + 1
        if n > 100_000:
            raise ValueError("the range has more than 100000 values")
        return [float(round(a + i * s, 12)) for i in range(n)]
    raise ValueError("a range needs num or step")


def _expand_values(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (expand_range(v) if isinstance(v, dict) else v) for k, v in params.items()}


def format_duration(s: float | None, unknown: str = "unknown") -> str:
    """``42 s``, ``12.5 min``, ``3.25 h``; ``unknown`` for None or a non-finite estimate."""
    if s is None or not math.isfinite(s):
        return unknown
    s = max(s, 0.0)
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.2f} h"


def format_bytes(b: float) -> str:
    if b is None or not math.isfinite(b):
        return "unknown"
    for unit in ("B", "kB", "MB", "GB"):
        if b < 1000:
            return f"{b:.0f} {unit}" if unit == "B" else f"{b:.1f} {unit}"
        b /= 1000
    return f"{b:.1f} TB"


class _Lines:
    """Line numbers of ``[[step]]`` blocks and of keys in them (TOML itself forgets lines)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.headers = [i for i, ln in enumerate(self.lines) if re.match(r"^\s*\[\[\s*step\s*\]\]", ln)]

    def block(self, n: int) -> tuple[int, int]:
        if n >= len(self.headers):
            return 0, len(self.lines)
        start = self.headers[n]
        end = self.headers[n + 1] if n + 1 < len(self.headers) else len(self.lines)
        return start, end

    def step(self, n: int) -> int:
        return self.headers[n] + 1 if n < len(self.headers) else 0

    def key(self, n: int, key: str) -> int:
        a, b = self.block(n)
        pat = re.compile(r"^\s*(\"?)" + re.escape(key) + r"\1\s*=")
        inline = re.compile(r"[{,]\s*(\"?)" + re.escape(key) + r"\1\s*=")
        for i in range(a, b):
            if pat.match(self.lines[i]):
                return i + 1
        for i in range(a, b):
            if inline.search(self.lines[i]):
                return i + 1
        return self.step(n)

    def top(self, key: str) -> int:
        pat = re.compile(r"^\s*(\"?)" + re.escape(key) + r"\1\s*=")
        hdr = re.compile(r"^\s*\[+\s*" + re.escape(key) + r"\s*\]+")
        for i, ln in enumerate(self.lines):
            if re.match(r"^\s*\[", ln) and not hdr.match(ln):
                break
            if pat.match(ln) or hdr.match(ln):
                return i + 1
        for i, ln in enumerate(self.lines):
            if hdr.match(ln):
                return i + 1
        return 1

    def table_key(self, table: str, key: str) -> int:
        hdr = re.compile(r"^\s*\[\s*" + re.escape(table) + r"\s*\]")
        pat = re.compile(r"^\s*(\"?)" + re.escape(key) + r"\1\s*=")
        start = next((i for i, ln in enumerate(self.lines) if hdr.match(ln)), None)
        if start is None:
            return self.top(table)
        for i in range(start + 1, len(self.lines)):
            if re.match(r"^\s*\[", self.lines[i]):
                break
            if pat.match(self.lines[i]):
                return i + 1
        return start + 1


def _did_you_mean(word: str, options: Sequence[str]) -> str:
    m = difflib.get_close_matches(word, list(options), n=1)
    return f" — did you mean {m[0]!r}?" if m else ""


def instantiate(cls: type[Procedure], parameters: Mapping[str, Any]) -> Procedure:
    """A procedure object with these (already validated) parameters; touches no instrument."""
    return cls(**dict(parameters))


def cross_check(proc: Procedure, lab_config: LabConfig | None) -> list[str]:
    """Limits of this lab: the procedure's own ``validate(lab_config)`` hook; for a procedure without
    one, :func:`generic_limits` (temperatures, fluences, kV and mA by parameter name)."""
    if lab_config is None:
        return []
    hook = getattr(proc, "validate", None)
    if callable(hook):
        return [str(e) for e in (hook(lab_config) or [])]
    return generic_limits(proc, lab_config)


def _role_opts(cfg: LabConfig, role: str) -> dict[str, Any]:
    rc = cfg.roles.get(role)
    if rc is None:
        return {}
    try:
        from .lab import backend_class

        defaults = {k: o.default for k, o in (getattr(backend_class(role, rc.backend), "OPTIONS", {}) or {}).items()}
    except Exception:
        defaults = {}
    return defaults | dict(rc.options)


def max_fluence(cfg: LabConfig) -> float | None:
    """Highest fluence (µJ/cm²) the configured laser path gives (transmission 1), None if unknown."""
    o = _role_opts(cfg, "attenuator")
    P, f, a = o.get("full_power_W"), o.get("rep_rate_Hz"), o.get("spot_area_cm2")
    if not P or not f or not a:
        return None
    return float(P) / float(f) / float(a) * 1e6


def generic_limits(proc: Procedure, cfg: LabConfig) -> list[str]:
    """Parameters checked by name against the lab configuration: ``temperature*``/``T`` against the
    cryostat's ``min_K``/``max_K``, ``fluence*`` against the laser's maximum, ``kV``/``mA`` against the
    X-ray generator's ``max_kV``/``max_mA``. Messages start with ``key = value``."""
    out: list[str] = []
    values = proc.parameter_values() if hasattr(proc, "parameter_values") else {}
    cryo, xray = _role_opts(cfg, "cryostat"), _role_opts(cfg, "xray")
    fmax = max_fluence(cfg)
    uses_xray = bool(getattr(proc, "xray", True)) and "xray" in getattr(proc, "ROLES", ("xray",))
    for key, v in values.items():
        vals = v if isinstance(v, (list, tuple)) else [v]
        try:
            nums = [float(x) for x in vals if not isinstance(x, bool)]
        except (TypeError, ValueError):
            continue
        if not nums:
            continue
        k = key.lower()
        if (k.startswith("temperature") or k in ("t", "t_k")) and cryo:
            lo, hi = cryo.get("min_K"), cryo.get("max_K")
            if lo is not None and min(nums) < lo:
                out.append(f"{key} = {v!r} goes below the cryostat's lowest setpoint {lo:g} K (cryostat.min_K)")
            if hi is not None and max(nums) > hi:
                out.append(f"{key} = {v!r} goes above the cryostat's highest setpoint {hi:g} K (cryostat.max_K)")
        elif k.startswith("fluence") and fmax is not None and max(nums) > fmax * (1 + 1e-9):
            out.append(f"{key} = {v!r} is above the laser's maximum {fmax:.3g} µJ/cm² at the sample "
                       "(attenuator full_power_W / rep_rate_Hz / spot_area_cm2)")
        elif k in ("kv", "kv_max") and xray and uses_xray and max(nums) > xray.get("max_kV", float("inf")):
            out.append(f"{key} = {v!r} is above the X-ray tube rating {xray['max_kV']:g} kV (xray.max_kV)")
        elif k in ("ma",) and xray and uses_xray and max(nums) > xray.get("max_mA", float("inf")):
            out.append(f"{key} = {v!r} is above the X-ray tube rating {xray['max_mA']:g} mA (xray.max_mA)")
    return out


# ---------------------------------------------------------------------------------------------- builder
class PlanBuilder:
    """What a Python plan script's ``plan(p)`` receives."""

    def __init__(self, path: Path, lab_config: LabConfig | None) -> None:
        self.path = path
        self.lab_config = lab_config
        self.sample_name = ""
        self.title = ""
        self.steps: list[tuple[dict[str, Any], int]] = []

    def _line(self) -> int:
        import inspect

        for fr in inspect.stack()[2:]:
            if Path(fr.filename).resolve() == self.path.resolve():
                return fr.lineno
        return 0

    def sample(self, name: str) -> None:
        self.sample_name = str(name)

    def run(self, procedure: str, *, title: str = "", **parameters: Any) -> None:
        """Queue one run of ``procedure`` with ``parameters`` (lists or range dicts allowed)."""
        self._bound()
        self.steps.append(({"procedure": procedure, "title": title, **parameters}, self._line()))

    def _bound(self) -> None:
        if len(self.steps) >= MAX_RUNS:
            raise PlanScriptError(f"the plan script queued more than {MAX_RUNS} steps (the limit of a plan)")

    def wait(self, seconds: float, *, note: str = "") -> None:
        """Wait this many lab seconds between runs (no instrument command)."""
        self._bound()
        self.steps.append(({"wait_s": seconds, "note": note}, self._line()))

    @staticmethod
    def range(start: float, stop: float, num: int | None = None, *, step: float | None = None,
              log: bool = False) -> list[float]:
        d: dict[str, Any] = {"start": start, "stop": stop}
        if num is not None:
            d["num"] = num
        if step is not None:
            d["step"] = step
        if log:
            d["log"] = True
        return expand_range(d)


# ---------------------------------------------------------------------------------------------- loading
def load_plan(path: str | Path, lab_config: LabConfig | None = None, *, text: str | None = None) -> Plan:
    """Read and validate a plan (TOML or .py). Errors are collected in ``plan.errors``, never raised.
    ``text``: a TOML plan held in memory (``path`` then only names it in messages; nothing is read)."""
    path = Path(path)
    plan = Plan(path, end_K=getattr(lab_config, "start_K", None))   # the first run starts where the lab is
    if text is None and not path.exists():
        plan.errors.append(f"{path}:0: no such plan file")
        return plan
    if text is not None and path.suffix == ".py":
        plan.errors.append(f"{path}: a plan given as text must be TOML")
        return plan
    if text is None:
        try:
            text = read_text_input(path, "plan")
        except ConfigError as exc:
            plan.errors.extend(exc.errors)
            return plan
    raw_bytes = text.encode("utf-8")
    plan.sha256 = hashlib.sha256(raw_bytes).hexdigest()
    plan.source = raw_bytes
    if path.suffix == ".py":
        steps, defaults = _load_script(path, plan, lab_config)
        lines: _Lines | None = None
    else:
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            m = re.search(r"line (\d+)", str(exc))
            plan.errors.append(f"{path}:{m.group(1) if m else 0}: not valid TOML: {exc}")
            return plan
        lines = _Lines(text)
        for k in raw:
            if k not in PLAN_KEYS:
                plan.errors.append(f"{path}:{lines.top(k)}: {k} = {raw[k]!r} is not a plan key (allowed: "
                                   f"{', '.join(PLAN_KEYS)}){_did_you_mean(k, PLAN_KEYS)}")
        for k in ("sample", "title", "description"):
            if k in raw and not isinstance(raw[k], str):
                plan.errors.append(f"{path}:{lines.top(k)}: {k} = {raw[k]!r} must be a string")
        plan.sample = str(raw.get("sample", ""))
        plan.title = str(raw.get("title", ""))
        defaults = raw.get("defaults", {})
        if not isinstance(defaults, dict):
            plan.errors.append(f"{path}:{lines.top('defaults')}: defaults must be a table")
            defaults = {}
        st = raw.get("step", [])
        if not isinstance(st, list):
            plan.errors.append(f"{path}:{lines.top('step')}: steps are written as [[step]] tables")
            st = []
        steps = [(s, lines.step(i)) for i, s in enumerate(st)]
        if not steps and not plan.errors:
            plan.errors.append(f"{path}:1: the plan has no [[step]] (nothing to run)")
        _check_defaults(plan, defaults, steps, lines)
    _check_sample(plan, lines)
    for n, (step, line) in enumerate(steps):
        if len(plan.runs) > MAX_RUNS:
            plan.errors.append(f"{path}:{line}: the plan expands to more than {MAX_RUNS} runs (the limit of a plan)")
            break
        _check_step(plan, n, step, line, defaults, lines, lab_config)
    if not plan.errors:
        _check_calibrations(plan, lab_config)
    if not plan.errors:
        log.info("plan %s: %d runs, %s lab time", path, len(plan.runs), format_duration(plan.lab_seconds))
    return plan


def _load_script(path: Path, plan: Plan, lab_config: LabConfig | None) -> tuple[list, dict]:
    b = PlanBuilder(path, lab_config)
    outcome: dict[str, Any] = {}

    def body() -> None:
        ns = runpy.run_path(str(path), run_name="sflab_plan")
        fn = ns.get("plan")
        if not callable(fn):
            outcome["missing"] = True
            return
        fn(b)

    _run_bounded(body, outcome, path, SCRIPT_TIMEOUT_S)
    exc = outcome.get("error")
    if outcome.get("timeout"):
        plan.errors.append(f"{path}:{outcome.get('line', 0)}: the plan script did not finish within "
                           f"{SCRIPT_TIMEOUT_S:g} s of CPU (a plan script only builds the list of runs; "
                           "an endless loop?)")
        return [], {}
    if outcome.get("missing"):
        plan.errors.append(f"{path}:1: a Python plan defines plan(p) (p.run(...), p.wait(...), p.sample(...))")
        return [], {}
    if exc is not None:  # the script is the user's: report where it failed
        import traceback

        tb = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve() == path.resolve()]
        ln = tb[-1].lineno if tb else (getattr(exc, "lineno", 0) or 0)
        if isinstance(exc, SystemExit):
            plan.errors.append(f"{path}:{ln}: the plan script called sys.exit({exc.code!r}); a plan script only "
                               "builds the list of runs (it must not end the program)")
        elif isinstance(exc, PlanScriptError):
            plan.errors.append(f"{path}:{ln}: {exc}")
        else:
            plan.errors.append(f"{path}:{ln}: the plan script raised {type(exc).__name__}: {exc}")
        return [], {}
    plan.sample = b.sample_name
    plan.title = b.title or path.stem
    if not b.steps:
        plan.errors.append(f"{path}:1: the plan script queued nothing")
    return b.steps, {}


class _ScriptTimeout(BaseException):
    """Raised inside a plan script by the tracer when its time is up."""


def _run_bounded(body: Callable[[], None], outcome: dict[str, Any], path: Path, timeout_s: float) -> None:
    """Run a plan script's ``body`` on a daemon thread under a line tracer that stops it after
    ``timeout_s`` of the thread's own CPU time (an endless loop), so a loaded machine never cuts a
    script that is only slow to be scheduled (a wall bound of 5 s did, at load 10); a script blocked in
    C code (a long ``time.sleep``, using no CPU) is abandoned after 4 × the bound of wall time.
    ``outcome`` gets ``error`` (the exception), ``timeout`` and the script ``line`` reached."""
    target = str(path.resolve())
    cpu0: list[float] = []

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if not cpu0:
            cpu0.append(time.thread_time())
        if time.thread_time() - cpu0[0] > timeout_s:
            if frame.f_code.co_filename == target or Path(frame.f_code.co_filename).resolve() == path.resolve():
                outcome["line"] = frame.f_lineno
            raise _ScriptTimeout
        return tracer

    def run() -> None:
        sys.settrace(tracer)
        try:
            body()
        except _ScriptTimeout:
            outcome["timeout"] = True
        except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt … are the script's errors
            outcome["error"] = exc
        finally:
            sys.settrace(None)

    t = threading.Thread(target=run, name="sflab-plan-script", daemon=True)
    t.start()
    t.join(4.0 * timeout_s + 1.0)
    if t.is_alive():
        outcome["timeout"] = True


def _check_defaults(plan: Plan, defaults: Mapping[str, Any], steps: Sequence[tuple[Any, int]],
                    lines: _Lines | None) -> None:
    """A ``[defaults]`` key that no step's procedure has is a typo, not a default: refuse it."""
    if not defaults:
        return
    known: set[str] = set()
    for step, _ln in steps:
        name = step.get("procedure") if isinstance(step, dict) else None
        if isinstance(name, str):
            try:
                known |= set(procedure_class(name).parameter_objects_cls())
            except UnknownProcedure:
                pass
    for k, v in defaults.items():
        if k not in known:
            line = lines.table_key("defaults", k) if lines is not None else 0
            plan.errors.append(f"{plan.path}:{line}: defaults.{k} = {v!r} is not a parameter of any procedure in "
                               f"this plan{_did_you_mean(k, sorted(known))}")


def _check_sample(plan: Plan, lines: _Lines | None) -> None:
    """A sample given as a file (a path, or a name ending .toml / .json) must exist."""
    s = plan.sample
    if s and ("/" in s or "\\" in s or s.endswith((".toml", ".json"))):
        p = Path(s) if Path(s).is_absolute() else plan.path.parent / s
        if not p.is_file():
            line = lines.top("sample") if lines is not None else 1
            plan.errors.append(f"{plan.path}:{line}: sample = {s!r}: no such sample file ({p})")


def _check_calibrations(plan: Plan, lab_config: LabConfig | None) -> None:
    """A run whose fluences come from the latest calibration needs one: a FluenceCalibration step
    earlier in the plan, or a successful calibration run in the lab's data folder."""
    have = False
    folder = (getattr(lab_config, "lab", None) or {}).get("data_dir") if lab_config is not None else None
    for r in plan.runs:
        if r.procedure == "FluenceCalibration":
            have = True
            continue
        if r.is_wait or str(r.parameters.get("calibration", "")) != "latest":
            continue
        if "calibration" not in procedure_class(r.procedure).parameter_objects_cls() or have:
            continue
        if folder and Path(folder).is_dir():
            from .plugins import load_object  # acq may not import procedures: the documented plugin point

            try:
                finder = load_object("procedures._common", "find_latest_calibration")
            except (ImportError, AttributeError):
                finder = None
            if finder is None or finder(folder) is not None:
                have = True
                continue
        plan.errors.append(f"{plan.path}:{r.line}: {r.procedure}: calibration = 'latest' but no FluenceCalibration "
                           f"runs before it in this plan{f' and {folder} holds none' if folder else ''}; add a "
                           "FluenceCalibration step first, or give calibration = <run file> or 'config'")


def _check_step(plan: Plan, n: int, step: Any, line: int, defaults: Mapping[str, Any], lines: _Lines | None,
                lab_config: LabConfig | None) -> None:
    path = plan.path

    def where_key(key: str) -> str:
        return f"{path}:{lines.key(n, key) if lines is not None else line}"

    if not isinstance(step, dict):
        plan.errors.append(f"{path}:{line}: step {n + 1} must be a table")
        return
    if "wait_s" in step:
        extra = [k for k in step if k not in ("wait_s", "note", "title")]
        for k in extra:
            plan.errors.append(f"{where_key(k)}: {k} = {step[k]!r} is not allowed in a wait step (allowed: wait_s, "
                               "note)")
        w = step["wait_s"]
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 <= w <= 7 * 86400:
            plan.errors.append(f"{where_key('wait_s')}: wait_s = {w!r} must be between 0 and 604800 s")
            return
        if "procedure" not in step:
            plan.runs.append(PlannedRun(WAIT, {"seconds": float(w)}, str(step.get("note", "") or "wait"), line,
                                        float(w), 0.0, 0))
            return
    name = step.get("procedure")
    if not isinstance(name, str) or not name:
        plan.errors.append(f"{path}:{line}: step {n + 1} needs procedure = \"…\" (or wait_s = … for a wait)")
        return
    try:
        cls = procedure_class(name)
    except UnknownProcedure as exc:
        plan.errors.append(f"{where_key('procedure')}: procedure = {name!r}: {exc}")
        return
    params = {k: v for k, v in step.items() if k not in STEP_KEYS}
    schema = cls.parameter_objects_cls()
    # defaults apply only where the procedure has the parameter (one [defaults] for a mixed plan)
    merged = {k: v for k, v in defaults.items() if k in schema} | params
    try:
        merged = _expand_values(merged)
    except ValueError as exc:
        bad = next((k for k, v in merged.items() if isinstance(v, dict)), "")
        plan.errors.append(f"{where_key(bad)}: {bad} = {params.get(bad, defaults.get(bad))!r}: {exc}")
        return
    loop = step.get("loop", {})
    if not isinstance(loop, dict):
        plan.errors.append(f"{where_key('loop')}: loop = {loop!r} must be a table {{parameter = [values]}}")
        return
    loop_vals: dict[str, list[Any]] = {}
    for k, v in loop.items():
        try:
            vals = expand_range(v) if isinstance(v, dict) else (list(v) if isinstance(v, list) else [v])
        except ValueError as exc:
            plan.errors.append(f"{where_key('loop')}: loop.{k} = {v!r}: {exc}")
            return
        if k not in schema:
            plan.errors.append(f"{where_key('loop')}: loop.{k} is not a parameter of {cls.__name__} (parameters: "
                               f"{', '.join(sorted(schema))}){_did_you_mean(k, sorted(schema))}")
            return
        if not vals:
            plan.errors.append(f"{where_key('loop')}: loop.{k} is empty")
            return
        loop_vals[k] = vals
    n_combos = math.prod(len(v) for v in loop_vals.values()) if loop_vals else 1
    if n_combos + len(plan.runs) > MAX_RUNS:
        plan.errors.append(f"{where_key('loop')}: loop gives {n_combos} runs; a plan holds at most {MAX_RUNS} runs")
        return
    combos = list(itertools.product(*loop_vals.values())) if loop_vals else [()]
    base_title = str(step.get("title", "") or name)
    # checked before the runs so that its errors are reported with the parameters' own
    rev = _reversibility(plan, step, merged, schema, loop_vals, where_key) if "reversibility" in step else None
    for combo in combos:
        values = dict(merged)
        values.update(dict(zip(loop_vals, combo, strict=True)))
        converted, errs = validate_parameters(cls, values, where=lambda key: where_key(key if key in params else
                                                                                        ("loop" if key in loop_vals
                                                                                         else key)))
        if errs:
            for e in errs:
                plan.errors.append(_with_hint(e, schema))
            return  # the other loop values would repeat the same error
        label = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in
                          zip(loop_vals, combo, strict=True))
        title = f"{base_title} ({label})" if label else base_title
        try:
            proc = instantiate(cls, converted)
        except Exception as exc:
            plan.errors.append(f"{path}:{line}: {name}: cannot set these parameters: {exc}")
            return
        problems = cross_check(proc, lab_config)
        if problems:
            for p in problems:
                loc = _locate_problem(p, where_key, line, path, [*params, *loop_vals])
                plan.errors.append(p if p.startswith(str(path)) else f"{loc}: {p}")
            return
        est = _estimate(proc, plan)
        from analysis import to_jsonable  # lazily: the analysis package loads numba

        plan.runs.append(PlannedRun(name, to_jsonable(dict(converted)), title, line, est[0], est[1], _n_points(proc)))
    if rev is not None:
        _repeat_run(plan, name, cls, merged, rev, base_title, line, lab_config, where_key)


def _reversibility(plan: Plan, step: Mapping[str, Any], merged: Mapping[str, Any], schema: Mapping[str, Any],
                   loop_vals: Mapping[str, Any], where_key: Callable[[str], str]) -> Any:
    """The step's ``reversibility`` table checked (:func:`acq.reversibility.parse_spec`), or None after
    adding its errors to the plan."""
    from .reversibility import parse_spec

    temps: list[float] | None = None
    if "temperatures" in schema and not loop_vals:
        t = merged.get("temperatures", getattr(schema["temperatures"], "default", None))
        try:
            temps = [float(x) for x in (t if isinstance(t, list) else [t])]
        except (TypeError, ValueError):
            temps = None   # validate_parameters reports the bad temperatures themselves
            if not isinstance(t, list):
                return None
    spec, errs = parse_spec(step["reversibility"], temps)
    for key, msg in errs:
        plan.errors.append(f"{where_key(key)}: {msg}")
    return spec


def _repeat_run(plan: Plan, name: str, cls: type[Procedure], merged: Mapping[str, Any], rev: Any, base_title: str,
                line: int, lab_config: LabConfig | None, where_key: Callable[[str], str]) -> None:
    """The run a ``reversibility`` step adds after its first pass: the same procedure and parameters at
    ``[warm_K, *repeat]`` (warm to RT, cool again through the repeated points)."""
    from analysis import to_jsonable

    values = dict(merged) | {"temperatures": rev.temperatures()}
    converted, errs = validate_parameters(cls, values, where=lambda key: where_key(
        "reversibility" if key == "temperatures" else key))
    if errs:
        plan.errors.extend(_with_hint(e, cls.parameter_objects_cls()) for e in errs)
        return
    proc = instantiate(cls, converted)
    problems = cross_check(proc, lab_config)
    for p in problems:
        plan.errors.append(f"{where_key('reversibility')}: {p} (reversibility warm_K / repeat)")
    if problems:
        return
    est = _estimate(proc, plan)
    title = (f"{base_title} — reversibility: warm to {rev.warm_K:g} K, repeat "
             f"{', '.join(f'{t:g}' for t in sorted(rev.repeat, reverse=True))} K")
    plan.runs.append(PlannedRun(name, to_jsonable(dict(converted)), title, line, est[0], est[1], _n_points(proc)))


def _locate_problem(msg: str, where_key: Callable[[str], str], line: int, path: Path,
                    keys: Sequence[str] = ()) -> str:
    """``file:line`` for a cross-check message: the line of the parameter it is about — from the
    record's ``key`` (an :class:`~acq.procedure.Issue`); only a hook that returns plain strings is
    located by searching its text."""
    key = getattr(msg, "key", "")
    if key:
        for k in keys:
            if k == key or k.lower() == key.lower():
                return where_key(k)
        return f"{path}:{line}"
    for k in keys:
        if re.search(r"(?<![A-Za-z0-9_])" + re.escape(k) + r"(?![A-Za-z0-9_])", msg):
            return where_key(k)
    aliases = ((r"(?<![A-Za-z])T = |\bK is (below|above)|cryostat", ("temperature", "t")),
               (r"fluence", ("fluence",)), (r"\bkV\b", ("kv",)), (r"\bmA\b", ("ma",)))
    for pattern, prefixes in aliases:
        if re.search(pattern, msg):
            for k in keys:
                if k.lower().startswith(prefixes):
                    return where_key(k)
    return f"{path}:{line}"


def _with_hint(e: ParameterError, schema: Mapping[str, Any]) -> str:
    s = str(e)
    if "is not a parameter of" in s:
        s += _did_you_mean(e.key, sorted(schema))
    return s


def _estimate(proc: Procedure, plan: Plan) -> tuple[float, float]:
    """Lab seconds and bytes of the next run of ``plan``, starting where the plan's runs so far leave the
    cryostat (``plan.end_K`` → ``proc.start_K``); then ``plan.end_K`` is where this run leaves it."""
    proc.start_K = plan.end_K
    try:
        est = proc.estimate() or {}
        out = float(est.get("lab_seconds", math.nan)), float(est.get("bytes", math.nan))
    except Exception as exc:
        log.warning("%s.estimate() failed: %s", type(proc).__name__, exc)
        out = math.nan, math.nan
    try:
        pts = proc.points() or []
        last = pts[-1].get("T") if pts else None
        if last is not None:
            plan.end_K = float(last)
    except Exception:  # points() may need a connected lab (then where the run ends is not known here)
        pass
    return out


def _n_points(proc: Procedure) -> int | None:
    try:
        pts = proc.points()
    except Exception:  # points() may need a connected lab; then the count is known at run time
        return None
    return None if pts is None else len(pts)


def validate_run(procedure: str, parameters: Mapping[str, Any],
                 lab_config: LabConfig | None = None) -> tuple[dict[str, Any], list[Issue]]:
    """The checks ``sflab check`` makes of one step, for one run given as data (the GUI queue on add
    and on start, ``acq.queue`` before a run): procedure name, every parameter's type and range,
    the lab's limits (:func:`cross_check`). Returns (converted parameters, problems); the messages
    are those of ``sflab check`` without the ``file:line:`` in front."""
    try:
        cls = procedure_class(procedure)
    except UnknownProcedure as exc:
        return {}, [Issue(f"procedure = {procedure!r}: {exc}", key="procedure", value=procedure)]
    converted, errs = validate_parameters(cls, dict(parameters))
    if errs:
        schema = cls.parameter_objects_cls()
        return converted, [Issue(_with_hint(e, schema), key=e.key, value=e.value, allowed=e.allowed) for e in errs]
    try:
        proc = instantiate(cls, converted)
    except Exception as exc:
        return converted, [Issue(f"{procedure}: cannot set these parameters: {exc}")]
    problems = [p if isinstance(p, Issue) else Issue(p) for p in cross_check(proc, lab_config)]
    return converted, problems


def check_plan(path: str | Path, lab_config: LabConfig | None = None) -> tuple[list[PlannedRun], list[str]]:
    """Validate a whole plan before anything moves: ``(runs, errors)``; errors are ``file:line: …``."""
    p = load_plan(path, lab_config)
    return p.runs, p.errors


# ---------------------------------------------------------------------------------------------- CLI
def check_command(file: Path, console: Any, err_console: Any, *, lab_config: LabConfig | None = None) -> int:
    """``sflab check PLAN``: print every error (exit 2) or the runs with their estimates (exit 0)."""
    from rich.table import Table

    plan = load_plan(file, lab_config)
    if plan.errors:
        for e in plan.errors:
            err_console.print(e, style="red", soft_wrap=True, markup=False, highlight=False)
        err_console.print(f"{file}: {len(plan.errors)} error(s); nothing was run", style="red", markup=False,
                          highlight=False, soft_wrap=True)
        return 2
    t = Table(title=f"{file}: {plan.title or 'plan'} — sample {plan.sample or '(not named)'}")
    for col, just in (("#", "right"), ("procedure", "left"), ("title", "left"), ("points", "right"),
                      ("lab time", "right"), ("disk", "right")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for i, r in enumerate(plan.runs, 1):
        t.add_row(str(i), r.procedure, r.title, "" if r.n_points is None else str(r.n_points),
                  format_duration(r.estimate_s), "" if r.is_wait else format_bytes(r.estimate_bytes))
    console.print(t)
    n_runs = sum(not r.is_wait for r in plan.runs)
    pts = plan.n_points
    console.print(f"valid plan: {n_runs} runs" + (f", {pts} points" if pts is not None else "")
                  + f"; estimated lab time {format_duration(plan.lab_seconds)}, disk {format_bytes(plan.bytes)}",
                  style="green", markup=False, highlight=False)
    return 0
