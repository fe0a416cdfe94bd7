"""What a run file holds, for ``sflab inspect``: a short human summary, or the full record as JSON.

:func:`describe` reads a file with :func:`acq.store.open_run` (so it never hangs and any damaged file
raises :class:`~acq.store.RunFileError`) and returns plain data; :func:`summary_lines` turns it into
the lines ``sflab inspect`` prints: status, points, streams, suspensions, last error, and whether the
writer is alive or the file needs ``sflab repair`` / ``sflab resume``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .store import RunData, backups_of, open_run

__all__ = ["describe", "summary_lines"]

_ERROR_KINDS = ("error", "failed", "interrupted", "aborted", "escalation", "condition")


def _last_error(d: RunData) -> str:
    for ev in reversed(d.events):
        if ev.get("kind") in _ERROR_KINDS:
            return f"{ev.get('kind')}: {ev.get('message', '')}"
    return ""


def _advice(d: RunData, writer: str) -> str:
    if writer == "alive":
        return "being written (writer alive); readers see its completed points"
    if writer == "dead":
        return (f"its writer died: continue it with `sflab resume {d.path}` or make it a clean closed file "
                f"with `sflab repair {d.path}`")
    if writer == "unknown":
        return (f"open for writing on host {d.writer.get('host', '?')} (pid {d.writer.get('pid', '?')}); "
                "if that program is gone, `sflab repair` or `sflab resume` it")
    if d.exit_status in ("interrupted", "running"):
        return f"closed, not finished: `sflab resume {d.path}` continues it"
    return "closed"


def _data_quality(d: RunData) -> dict[str, Any]:
    from .summary import data_quality

    try:
        return data_quality(d)
    except (KeyError, ValueError, TypeError) as exc:  # an odd or partial file: say so, do not fail
        return {"error": str(exc)}


def _quality_line(q: dict[str, Any]) -> str:
    """The data-quality facts worth a human's attention (empty when there are none)."""
    if "error" in q:
        return f"data quality: unreadable ({q['error']})"
    bits = []
    dq = q.get("decays") or {}
    if dq.get("clipped"):
        bits.append(f"{dq['clipped']} of {dq['n']} decays clipped")
    if dq.get("stopped_at_stop_count"):
        bits.append(f"{dq['stopped_at_stop_count']} of {dq['n']} decays stopped at the stop count"
                    + (f" (shortest {dq['elapsed_s_min']:.3g} s of {dq['requested_s']:.3g} s)"
                       if dq.get("elapsed_s_min") is not None and dq.get("requested_s") is not None else ""))
    if dq.get("pileup_max") is not None:
        bits.append(f"pile-up ≤ {100 * dq['pileup_max']:.2g} % of sync")
    if dq.get("dead_time_fraction_max"):
        bits.append(f"dead time ≤ {100 * dq['dead_time_fraction_max']:.2g} %")
    if dq.get("lost_records"):
        bits.append(f"{dq['lost_records']} FIFO records lost")
    sq = q.get("spectra") or {}
    if sq.get("with_saturated_pixels"):
        bits.append(f"{sq['with_saturated_pixels']} of {sq['n']} spectra with saturated pixels")
    return "data quality: " + "; ".join(bits) if bits else ""


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """Everything ``sflab inspect --json`` prints (plain JSON-able data)."""
    d = open_run(path)
    writer = d.writer_state()
    flagged = [int(d.point_id[i]) for i in np.flatnonzero(d.flags)] if d.n_points else []
    return {
        "path": str(d.path), "procedure": d.procedure, "title": d.title, "exit_status": d.exit_status,
        "run_uid": d.run_uid, "start_time": d.start_time, "end_time": d.end_time,
        "completed_points": d.n_points, "flagged_points": flagged,
        "streams": {k: {f: list(v.shape) for f, v in s.items()} for k, s in d.streams.items()},
        "readbacks": {r: sorted(v) for r, v in d.readbacks.items()},
        "resumed_at": d.resumed_at, "suspensions": d.suspensions, "backstop": d.backstop,
        "writer": {**d.writer, "state": writer}, "advice": _advice(d, writer), "last_error": _last_error(d),
        "sample": d.sample_name, "parameters": d.parameters, "events": len(d.events),
        "backups": [p.name for p in backups_of(d.path)], "data_quality": _data_quality(d), "analysis": d.analysis,
        "attrs": {k: {a: (v.tolist() if isinstance(v, np.ndarray | np.generic) else
                          v.decode() if isinstance(v, bytes) else v) for a, v in at.items()}
                  for k, at in d.attrs.items()},
    }


def summary_lines(info: dict[str, Any]) -> list[str]:
    """The human summary of :func:`describe`'s output (one fact per line, paths never split)."""
    pts = info["completed_points"]
    fl = info["flagged_points"]
    out = [f"{info['path']}",
           f"  {info['procedure']} — {info['title']}" if info["title"] and info["title"] != info["procedure"]
           else f"  {info['procedure']}",
           f"  status: {info['exit_status']}   points: {pts} completed"
           + (f", {len(fl)} flagged ({', '.join(map(str, fl[:10]))}{' …' if len(fl) > 10 else ''})" if fl else ""),
           f"  started {info['start_time']}" + (f", ended {info['end_time']}" if info["end_time"] else ""),
           "  streams: " + (", ".join(f"{k} ({', '.join(s)})" for k, s in info["streams"].items()) or "none")]
    if info["resumed_at"]:
        out.append(f"  resumed at point(s): {', '.join(map(str, info['resumed_at']))}")
    if info["suspensions"]:
        longest = max(float(s.get("duration_s", 0.0)) for s in info["suspensions"])
        out.append(f"  suspensions: {len(info['suspensions'])} (longest {longest:.0f} s); last: "
                   f"{info['suspensions'][-1].get('reason', '')}")
    bs = info["backstop"]
    if bs:
        bad = {k: v for k, v in bs.items() if v != "ok"}
        out.append("  backstop: " + ("every role safe" if not bad else
                                     "; ".join(f"{k} {v}" for k, v in bad.items())))
    ql = _quality_line(info.get("data_quality") or {})
    if ql:
        out.append(f"  {ql}")
    if info["last_error"]:
        out.append(f"  last error: {info['last_error']}")
    out.append(f"  file: {info['advice']}")
    if info["backups"]:
        out.append(f"  earlier versions kept: {', '.join(info['backups'])}")
    out.append(f"  full record: sflab inspect --json {info['path']}")
    return out


