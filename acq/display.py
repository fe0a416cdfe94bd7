"""What ``sflab`` prints: verdicts, checklists, campaigns and configurations as rich tables.

Nothing here computes; it renders what :mod:`acq.pipeline`, :mod:`acq.campaign` and :mod:`acq.config`
produced. Paths are printed with ``soft_wrap`` so piped output never splits them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from .campaign import Campaign
from .config import LabConfig
from .pipeline import AnalysisResult

__all__ = ["cell", "print_summary", "print_analysis", "print_campaign", "print_config", "print_info",
           "print_export", "task_progress", "why",
           "console", "err_console", "fail"]

#: the command line's two consoles (stdout for results, stderr for errors and progress)
console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)


def fail(*lines: str, code: int = 2) -> NoReturn:
    """Print ``lines`` as errors (never wrapping a path) and end the command with ``code`` (2: bad input)."""
    for line in lines:
        err_console.print(line, style="red", soft_wrap=True, markup=False, highlight=False)
    raise typer.Exit(code)


def cell(v: Any) -> str:
    """One table cell: ``value ± error`` for a measured value, short forms for lists and tables."""
    if isinstance(v, dict) and "value" in v:
        e = v.get("error")
        return f"{v['value']:.4g} ± {e:.2g}" if isinstance(e, (int, float)) and isinstance(v["value"], (int, float)) \
            else str(v["value"])
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(cell(x) for x in v[:4]) + (" …" if len(v) > 4 else "")
    if isinstance(v, dict):
        return ", ".join(f"{k}={cell(x)}" for k, x in list(v.items())[:4])
    return str(v)


def print_summary(console: Console, name: str, sm: dict[str, Any], n_runs: int | None) -> None:
    """Verdict first, then the checklist, then the scalar numbers; long tables are left to --json."""
    v = sm.get("verdict", "?")
    style = {"SF": "bold green", "not SF": "bold red"}.get(str(v), "bold yellow")
    head = f"{name}: " + (f"{n_runs} run files — " if n_runs else "")
    console.print(head, end="", highlight=False, markup=False, soft_wrap=True)
    console.print(f"verdict {v}", style=style, end="", markup=False)
    extra = sm.get("confuser")
    console.print(f" (likely {extra})" if extra else "", highlight=False, markup=False)
    if sm.get("headline"):
        console.print(f"  {sm['headline']}", highlight=False, markup=False)
    rl = sm.get("rl")
    if isinstance(rl, dict) and rl.get("verdict"):   # the RL series' own verdict (pooled beside the PL one)
        console.print(f"  RL series: verdict {rl['verdict']}" + (f" (likely {rl['confuser']})" if rl.get("confuser")
                                                                 else "")
                      + (f" — {rl['headline']}" if rl.get("headline") else ""), highlight=False, markup=False)
    items = sm.get("checklist")
    if isinstance(items, list) and items and isinstance(items[0], dict):
        t = Table(show_header=True, title="checklist (physics.md §6.2)")
        for col in ("#", "check", "result", "detail"):
            t.add_column(col)
        for it in items:
            t.add_row(str(it.get("number", "")), str(it.get("title", it.get("key", ""))), str(it.get("status", "")),
                      str(it.get("detail", ""))[:90])
        console.print(t)
    t = Table(show_header=True)
    t.add_column("quantity")
    t.add_column("value")
    for k, x in sm.items():
        if k in ("verdict", "confuser", "headline", "checklist", "rl") or x is None:
            continue
        if isinstance(x, list) and len(x) > 3 and isinstance(x[0], dict):
            t.add_row(str(k), f"{len(x)} rows (see --json)")
        elif isinstance(x, dict) and len(x) > 4 and k != "truth":
            t.add_row(str(k), f"{len(x)} entries (see --json)")
        else:
            t.add_row(str(k), cell(x))
    console.print(t)


def print_analysis(console: Console, err_console: Console, res: AnalysisResult, *, as_json: bool = False,
                   quiet: bool = False) -> int:
    """Unreadable files on ``err_console``; then the JSON, or the campaign verdict, (unless ``quiet``) each
    run's and where the report is. Returns the exit code: 2 if a file could not be read, else 0."""
    for b in res.bad:
        err_console.print(b, style="red", markup=False, soft_wrap=True)
    if not res.runs:
        if not res.bad:
            err_console.print("no run files given", style="red")
        return 2
    if res.report_error:
        err_console.print(f"report not written: {res.report_error}", style="red", markup=False)
    if as_json:
        print(json.dumps(res.to_json(), default=str, allow_nan=True))
        return 2 if res.bad else 0
    if res.campaign is not None:
        print_summary(console, "campaign", res.campaign, len(res.runs))
    if not quiet or res.campaign is None:
        for name, sm in res.per_run.items():
            print_summary(console, name, sm, None)
    if res.report:
        console.print(f"report: {res.report}", highlight=False, markup=False, soft_wrap=True)
    return 2 if res.bad else 0


@contextmanager
def task_progress(err_console: Console, title: str) -> Iterator[Callable[[int, int, str], None]]:
    """A transient progress bar on stderr for work reported as ``progress(done, total, name)`` (the Dask
    analysis); shown only once the first report arrives."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn(title), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=err_console, transient=True) as bar:
        task = None

        def progress(done: int, total: int, name: str) -> None:
            nonlocal task
            if task is None:
                task = bar.add_task("", total=total)
            bar.update(task, completed=done, description=name)

        yield progress


def print_export(console: Console, res: dict[str, Any], dest: Path) -> int:
    """``sflab export``'s report, per format; the number of files written."""
    wrote = 0
    for fmt, r in res.items():
        if isinstance(r, dict):
            console.print(f"{fmt}: skipped — {r['skipped']}", highlight=False, markup=False, soft_wrap=True)
        else:
            wrote += len(r)
            console.print(f"{fmt}: {len(r)} file(s) in {dest}", highlight=False, markup=False, soft_wrap=True)
    return wrote


def why(res: Any) -> str:
    """`` — error (role r): …`` / `` — aborted by who: why`` for a run (``RunResult``) that did not succeed."""
    if res.exit_status == "success" or not res.error:
        return ""
    if res.exit_status == "failed":
        return f" — error (role {res.role}): {res.error}" if res.role else f" — error: {res.error}"
    return f" — {res.exit_status}" + (f" by {res.stopped_by}" if res.stopped_by else "") + f": {res.error}"


def print_info(info: dict[str, Any], *, as_json: bool = False) -> None:
    """``sflab inspect``: the human summary of :func:`acq.runinfo.describe`, or all of it as JSON. Plain
    ``print``: piped output never wraps a path."""
    from .runinfo import summary_lines

    if as_json:
        print(json.dumps(info, default=str))
        return
    for line in summary_lines(info):
        print(line)


def print_campaign(console: Console, campaign: Campaign) -> None:
    t = Table(title=f"campaign {campaign.folder}")
    for col in ("#", "procedure", "title", "status", "points", "run file"):
        t.add_column(col)
    for i, it in enumerate(campaign.queue.items, 1):
        t.add_row(str(i), it.procedure, it.title, it.status, "" if it.n_points is None else str(it.n_points),
                  Path(it.run_file).name if it.run_file else "")
    console.print(t)
    for i, it in enumerate(campaign.queue.items, 1):
        if it.status in ("failed", "aborted", "interrupted") and it.error:
            console.print(f"#{i} {it.procedure} {it.status}: {it.error}", style="red" if it.status == "failed"
                          else "yellow", markup=False, highlight=False, soft_wrap=True)
    console.print(f"index: {campaign.index_path}   queue: {campaign.queue.path}", markup=False, highlight=False,
                  soft_wrap=True)


def print_config(console: Console, file: Path, cfg: LabConfig) -> None:
    console.print(f"[green]{file}: valid lab configuration[/green] ({cfg.lab['name']})", soft_wrap=True)
    t = Table()
    for col in ("role", "backend", "resource", "options"):
        t.add_column(col)
    for r, c in cfg.roles.items():
        t.add_row(r, c.backend, c.resource, ", ".join(f"{k}={v}" for k, v in c.options.items()))
    console.print(t)
