"""Stop latency on the simulated lab, real drivers over loopback, clock at real speed (1 lab s per
wall s, as at the setup): each kind of long wait × each control (abort, pause, MAKE SAFE, GUI
close, SIGTERM, suspender), lab and wall seconds from the control to its effect (the run leaving
the wait; paused; suspended) and the exit status recorded. The baseline is the poll period
``drivers.base.POLL_S``, so the ratio column is latency / one poll. The table of docs/engine.md
comes from this (``python -m benchmarks stop_latency``, ≈ 2–3 min).
"""

from __future__ import annotations

import math
import os
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from acq.procedure import Procedure
from acq.runner import RunState, handle_signals
from acq.store import Field, Stream
from drivers.base import POLL_S

T0 = 1.5        # lab s into the wait (after the lab connected and the point began) when the control fires
LONG = 600.0


def _temperature(p: Any) -> None:
    p.lab.cryostat.set_temperature(200.0)
    p.lab.cryostat.wait_stable(200.0, band_K=1e-4, hold_s=LONG, timeout_s=10 * LONG)


WAITS = {
    "temperature stability (Lake Shore 336)": _temperature,
    "X-ray ramp (Spellman, 5 kV/s to 40 kV)": lambda p: p.lab.xray.on(40.0, 0.2),
    "CCD exposure (Horiba ICL)": lambda p: p.lab.spectrometer.acquire(LONG),
    "TCSPC histogram (PicoHarp 300)": lambda p: p.lab.tcspc.histogram(LONG),
    "g2 correlation (PicoHarp 300 T2)": lambda p: p.lab.tcspc.correlation(LONG),
    "g2 start-stop (PicoHarp 300 histogram mode)": lambda p: p.lab.tcspc.hbt_correlation(LONG, binwidth_ps=8.0,
                                                                                         n_bins=500),
    "procedure sleep / plan wait": lambda p: p.sleep(LONG),
}
CONTROLS = ("abort", "pause", "MAKE SAFE", "close", "SIGTERM", "suspender")


class OneWait(Procedure):
    ROLES = ("cryostat", "xray", "spectrometer", "tcspc", "attenuator")
    DEFAULT_STREAM = "s"
    kind = ""

    def points(self) -> list[dict[str, Any]]:
        return [{}]

    def streams(self) -> list[Stream]:
        return [Stream("s", (Field("x", (), "f8"),), "x", ("x",))]

    started: threading.Event

    def measure_point(self, index: int, point: Any) -> None:
        self.started.set()   # the control fires T0 after the wait begins, not while the lab connects
        WAITS[self.kind](self)
        self.emit("s", x=1.0)


def one(session: Any, folder: Path, kind: str, control: str) -> tuple[float, float, str]:
    from acq.runner import interlock_open

    clock = session.clock
    p = OneWait()
    p.kind = kind
    p.started = threading.Event()
    susp = [interlock_open(settle_s=5.0, poll_s=1.0)] if control == "suspender" else []
    r = session.make_runner(p, folder / f"{abs(hash((kind, control)))}.h5", suspenders=susp)
    r.analyze = False
    marks: dict[str, float] = {}

    def shutdown() -> None:
        marks.setdefault("lab", clock.monotonic())
        marks.setdefault("wall", time.monotonic())

    p.shutdown = shutdown  # type: ignore[method-assign]

    def watch(state: RunState) -> None:
        while r.state != state and r.state != RunState.FINISHED:
            time.sleep(0.001)
        marks.setdefault("lab", clock.monotonic())
        marks.setdefault("wall", time.monotonic())
        r.abort("benchmark over", by="benchmark")

    def fire() -> None:
        if not p.started.wait(120.0):
            return   # the run ended (or hangs) before its wait began: reported below
        time.sleep(T0)
        if r.state in (RunState.STOPPING, RunState.FINISHED):
            return   # the wait failed on its own before the control (a SIGTERM now would hit the benchmark)
        marks["lab0"], marks["wall0"] = clock.monotonic(), time.monotonic()
        if control == "abort":
            r.abort("aborted by the user")
        elif control == "MAKE SAFE":
            r.abort("MAKE SAFE pressed", by="MAKE SAFE")
            session.make_safe()
        elif control == "close":
            r.abort("the GUI was closed", status="interrupted", by="GUI close")
        elif control == "SIGTERM":
            os.kill(os.getpid(), signal.SIGTERM)
        elif control == "pause":
            threading.Thread(target=watch, args=(RunState.PAUSED,), daemon=True).start()
            r.pause()
        elif control == "suspender":
            threading.Thread(target=watch, args=(RunState.SUSPENDED,), daemon=True).start()
            session.sim.world.tube.open_interlock(clock.monotonic(), 3.0)

    threading.Thread(target=fire, daemon=True).start()
    with handle_signals(r):
        res = r.run()
    if control == "suspender":
        time.sleep(3.5)   # the interlock opened for 3 s: closed again before the next case turns HV on
    if "lab0" not in marks:   # the run ended before the control fired: report why, do not invent a latency
        return math.nan, math.nan, f"{res.exit_status} before the control ({res.error})"
    return marks["lab"] - marks["lab0"], marks["wall"] - marks["wall0"], res.exit_status


def main() -> None:
    from acq.cli import open_lab

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        session = open_lab(None, sim=True, speed="1", data_dir=Path(tmp))
        try:
            for kind in WAITS:
                for control in CONTROLS:
                    lab_s, wall_s, status = one(session, Path(tmp), kind, control)
                    rows.append((kind, control, lab_s, wall_s, status))
                    print(f"{kind:42s} {control:10s} lab {lab_s:6.3f} s  wall {wall_s:6.3f} s  "
                          f"({lab_s / POLL_S:4.2f} polls)  {status}", flush=True)
        finally:
            session.close()
    done = [r for r in rows if math.isfinite(r[3])]
    worst = max(done, key=lambda r: r[3])
    print(f"\nbaseline: one poll = {POLL_S} lab s; worst wall latency {worst[3]:.3f} s ({worst[0]}, {worst[1]}); "
          f"worst lab latency {max(r[2] for r in done):.3f} s")
    print("\n| wait | " + " | ".join(CONTROLS) + " |\n|---|" + "---|" * len(CONTROLS))
    for kind in WAITS:
        cells = [f"{r[2]:.2f} / {r[3]:.2f} s, {r[4]}" for r in rows if r[0] == kind]
        print(f"| {kind} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
