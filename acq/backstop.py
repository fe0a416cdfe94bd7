"""The backstop that insists: every role to its safe state, confirmed by a readback, or escalated.

:func:`insist_safe` visits the roles in :data:`acq.lab.SAFETY_ORDER` (X-ray first). For each role it
sends the safe-state command (``make_safe()``) and then re-queries the state (``readback()``) to
confirm it; if the command fails, or the readback does not show the safe state, the role's links are
resynchronised (stale replies discarded, see ``drivers/_link.py``) and the whole step is tried again —
until the readback confirms it or ``max_attempts`` / ``max_s`` (wall seconds) are used up. A role that
is still not safe then is **escalated**: ``on_escalate(role)`` is called (for the X-ray the runner
stops the keep-alive, so the generator's own watchdog drops HV without us), and the escalation is
recorded. A failing role never stops the others.

The result keeps the engine's format ``{role: "ok" | "failed: …"}``; :class:`BackstopReport` adds the
attempts, the errors of every attempt and the escalations (the runner writes it to the event log).

Confirmation by readback (names from each role's ``READBACKS``): X-ray ``hv_on == 0`` and
``shutter_open == 0``; cryostat ``heater`` ≈ 0 % when its safe heater range is off (the default);
attenuator with a laser shutter: the shutter reads back closed (``laser_blocked()``); a role that declares
``SAFE_READBACKS`` ({name: value}): those values (the white-light lamp: ``lamp_open == 0``); the other roles
have no readback that shows their safe state, so a command that returned without error and a readback
that answers are taken as confirmation.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["insist_safe", "BackstopReport", "confirm_safe"]

#: wall-clock bound on the attempts for one role
MAX_S = 20.0
MAX_ATTEMPTS = 5


@dataclass
class BackstopReport:
    attempts: dict[str, int] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    escalations: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"attempts": dict(self.attempts), "errors": {k: list(v) for k, v in self.errors.items()},
                "escalations": dict(self.escalations)}


def confirm_safe(role_name: str, drv: Any, rb: dict[str, Any]) -> str | None:
    """None if the readback ``rb`` shows the safe state, else what is not safe."""
    def val(k: str) -> float:
        try:
            return float(rb[k])
        except (KeyError, TypeError, ValueError):
            return math.nan

    if role_name == "xray":
        bad = [k for k in ("hv_on", "shutter_open") if k in rb and not val(k) == 0.0]
        return f"readback {', '.join(f'{k}={rb[k]!r}' for k in bad)}" if bad else None
    if role_name == "cryostat" and "heater" in rb:
        opts = getattr(drv, "opts", None)
        safe_range = opts.get("safe_range", 0) if isinstance(opts, dict) else getattr(drv, "safe_heater_range", 0)
        if safe_range == 0 and not val("heater") <= 1.0:
            return f"heater still at {rb['heater']!r} % after the heater was switched off"
    if role_name == "attenuator" and getattr(drv, "shutter", None) is not None:
        try:
            if not drv.laser_blocked():
                return "laser shutter still open"
        except Exception as exc:  # an unreadable shutter is not a confirmed one
            return f"laser shutter unreadable ({exc})"
    # a role may declare the readbacks its safe state has (``SAFE_READBACKS``, e.g. the lamp shutter closed)
    wrong = [k for k, want in (getattr(drv, "SAFE_READBACKS", None) or {}).items() if k in rb and val(k) != want]
    if wrong:
        return f"readback {', '.join(f'{k}={rb[k]!r}' for k in wrong)}"
    nonfinite = [k for k, v in rb.items() if isinstance(v, float) and math.isnan(v)]
    if nonfinite and role_name == "xray":
        return f"readback unreadable ({', '.join(nonfinite)})"
    return None


def _links(drv: Any) -> list[Any]:
    """The message links of a driver (``drv.link``, ``drv.shutter.link``, …) — anything with ``resync``."""
    out = []
    for obj in (drv, *vars(drv).values()):
        for cand in (obj, getattr(obj, "link", None)):
            if cand is not None and callable(getattr(cand, "resync", None)) and cand is not drv and cand not in out:
                out.append(cand)
    return out


def _resync(drv: Any) -> None:
    for link in _links(drv):
        try:
            link.resync()
        except Exception as e:  # noqa: BLE001 - resync is best effort
            log.warning("backstop: resync of %r failed: %s", link, e)


def insist_safe(lab: Any, order: Sequence[str], roles: Iterable[str] | None = None, *,
                on_escalate: Callable[[str], str] | None = None,
                max_attempts: int = MAX_ATTEMPTS, max_s: float = MAX_S) -> tuple[dict[str, str], BackstopReport]:
    """See the module docstring (``order``: the lab's safety order). Never raises."""
    todo = set(lab.connected if roles is None else roles)
    result: dict[str, str] = {}
    report = BackstopReport()
    for r in order:
        if r not in todo or r not in lab.roles:
            continue
        drv = lab.roles[r]
        t0 = time.monotonic()
        errs: list[str] = []
        ok = False
        n = 0
        while n < max_attempts and (n == 0 or time.monotonic() - t0 < max_s):
            n += 1
            if n > 1:
                _resync(drv)          # drain stale replies before asking again
            try:
                drv.make_safe()
                rb = drv.readback()   # re-query the state: does it show the safe state?
                why = confirm_safe(r, drv, rb)
                if why is None:
                    ok = True
                    break
                errs.append(f"attempt {n}: not confirmed: {why}")
            except BaseException as exc:  # noqa: BLE001 - a failed role must not stop the others
                errs.append(f"attempt {n}: {type(exc).__name__}: {exc}")
                log.warning("backstop: %s attempt %d failed: %r", r, n, exc)
        report.attempts[r] = n
        if errs:
            report.errors[r] = errs
        if ok:
            result[r] = "ok"
            if n > 1:
                log.warning("backstop: %s safe after %d attempts", r, n)
            continue
        last = errs[-1].split(": ", 1)[-1] if errs else "unknown"
        msg = f"failed: {last} ({n} attempts in {time.monotonic() - t0:.1f} s)"
        if on_escalate is not None:
            try:
                esc = on_escalate(r)
            except Exception as exc:  # noqa: BLE001
                esc = f"escalation failed: {exc}"
            if esc:
                report.escalations[r] = esc
                msg += f"; escalation: {esc}"
        log.error("backstop: %s %s", r, msg)
        result[r] = msg
    return result, report
