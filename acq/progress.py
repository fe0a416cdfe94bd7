"""The one live progress display of the command line (rich), fed from the event bus.

:class:`Progress` runs a callable in the calling thread (so Ctrl-C and SIGTERM reach it) while one
ticker thread drains the bus ten times a second and updates the display: the current run (point, T,
fluence) and — for a queue — the campaign (points of all runs, lab time, lab time left). Used by
``sflab run``, ``resume``, ``demo`` (queues) and by ``resume FILE``, ``replay`` and the engine check
(single runs).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as _RichProgress

from .clock import Clock
from .events import EventBus
from .plans import format_duration
from .queue import WAIT, RunQueue

__all__ = ["Progress"]

T = TypeVar("T")


def _scalar(streams: dict[str, Any], *names: str) -> float | None:
    """The first finite scalar field of any stream whose name is (or starts with) one of ``names``."""
    for fields in streams.values():
        if not isinstance(fields, dict):
            continue
        for k, v in fields.items():
            if any(k == n or k.startswith(n) for n in names):
                try:
                    f = float(v)
                except (TypeError, ValueError):
                    continue
                if f == f:
                    return f
    return None


class Progress:
    """A live display of one run (``queue=None``) or of a queue of runs, on ``console``."""

    def __init__(self, bus: EventBus, console: Console, *, clock: Clock | None = None, queue: RunQueue | None = None,
                 current_item: Callable[[], Any] | None = None, title: str = "run", show: bool = True,
                 period_s: float = 0.1) -> None:
        self.bus, self.console, self.clock, self.queue = bus, console, clock, queue
        self.current_item = current_item or (lambda: None)
        self.title, self.show, self.period_s = title, show, period_s
        self._T: float | None = None
        self._F: float | None = None
        self._base = 0
        self._prog: _RichProgress | None = None

    # ------------------------------------------------------------------ queue bookkeeping
    def _items(self) -> list[Any]:
        return [it for it in self.queue.items if it.procedure != WAIT] if self.queue is not None else []

    def _done_points(self) -> int:
        return sum(it.n_points or 0 for it in self._items() if it.status == "done")

    def _remaining_lab(self) -> float:
        return sum(it.estimate_s or 0.0 for it in self._items() if it.status in ("queued", "running", "interrupted"))

    # ------------------------------------------------------------------ the display
    def run(self, fn: Callable[[], T]) -> T:
        """Call ``fn()`` here with the display live; returns what it returns."""
        pts = self.bus.subscribe("point", coalesce=True)
        evs = self.bus.subscribe("run.start", "run.stop", "queue.item", "suspend", "unsuspend", maxsize=10000)
        columns: list[Any] = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                              TextColumn("{task.fields[info]}"), TimeElapsedColumn()]
        if self.queue is not None:
            columns += [TextColumn("ETA"), TimeRemainingColumn()]
        with _RichProgress(*columns, console=self.console, transient=False, disable=not self.show) as prog:
            self._prog = prog
            t_all = None
            if self.queue is not None:
                items = self._items()
                total = sum(it.n_points or 0 for it in items) if all(it.n_points for it in items) else None
                t_all = prog.add_task("campaign", total=total, completed=self._done_points(), info="")
            t_run = prog.add_task(self.title, total=None, info="")

            def pump() -> None:
                for ev in evs.drain():
                    self._on_event(prog, t_run, ev)
                for ev in pts.drain():
                    rb = ev.data.get("readbacks", {})
                    streams = ev.data.get("streams", {})
                    T = rb.get("cryostat", {}).get("T_sample")
                    self._T = T if T is not None else _scalar(streams, "T")
                    self._F = _scalar(streams, "fluence") or rb.get("attenuator", {}).get("fluence")
                    i = ev.data["index"] + 1
                    prog.update(t_run, completed=i)
                    if t_all is not None:
                        prog.update(t_all, completed=self._base + i)
                parts = []
                if self._T is not None and self._T == self._T:
                    parts.append(f"T={self._T:.1f} K")
                if self._F is not None:
                    parts.append(f"F={self._F:.3g} µJ/cm²")
                prog.update(t_run, info=" ".join(parts))
                if t_all is not None and self.clock is not None:
                    prog.update(t_all, info=f"lab {self.clock.monotonic() / 3600:.2f} h, "
                                            f"≈{format_duration(self._remaining_lab())} lab left")

            stop = threading.Event()

            def ticker() -> None:
                while not stop.wait(self.period_s):
                    pump()

            th = threading.Thread(target=ticker, daemon=True, name="sflab-progress")
            th.start()
            try:
                return fn()
            finally:
                stop.set()
                th.join()
                pump()
                pts.close()
                evs.close()

    def operator(self, text: str) -> threading.Event:
        """The terminal's answer to a driver's prompt (``Runner.operator``; set by ``acq.workflows.run_campaign``
        when stdin is a terminal): the live display stops, the prompt waits for Enter, the display goes on.
        Ctrl-C interrupts the campaign as anywhere else (resumable)."""
        prog = self._prog
        if prog is not None:
            prog.stop()
        try:
            self.console.input(f"[bold yellow]operator:[/] {text} — press Enter when done ")
        except EOFError:   # Ctrl-D: taken as done, like Enter
            pass
        finally:
            if prog is not None:
                prog.start()
        done = threading.Event()
        done.set()
        return done

    def _on_event(self, prog: _RichProgress, t_run: Any, ev: Any) -> None:
        d = ev.data
        if ev.topic == "run.start":
            desc = self.title
            if self.queue is not None:
                it = self.current_item()
                items = self.queue.items
                idx = items.index(it) + 1 if it in items else 0
                desc = f"run {idx}/{len(items)} {it.title if it else d.get('procedure')}"[:60]
                self._base = self._done_points()
            prog.update(t_run, total=d.get("n_points"), completed=d.get("resume_from", 0), description=desc)
            if d.get("resume_from") and self.queue is not None:
                prog.console.print(f"resuming {d.get('path')} at point {d['resume_from']}", markup=False,
                                   highlight=False, soft_wrap=True)
        elif ev.topic == "queue.item" and d.get("status") in ("done", "failed", "aborted", "interrupted"):
            st = d["status"]
            prog.console.print(f"{st}: {d.get('title')} → {d.get('run_file') or '-'}"
                               + (f" ({d['error']})" if d.get("error") and st != "done" else ""),
                               style="green" if st == "done" else "red", markup=False, highlight=False,
                               soft_wrap=True)
        elif ev.topic == "suspend" and self.queue is not None:
            prog.console.print(f"suspended: {d.get('reason')}", style="yellow", markup=False, soft_wrap=True)
