"""A lab session: the connected lab, its clock, bus and configuration, shared by CLI, GUI and scripts.

``acq.composition.open_lab(...)`` builds one (real ``lab.toml`` or the simulated lab); the GUI receives
it from the CLI (``gui`` never imports ``simulators``). ``make_runner`` builds a :class:`~acq.runner.Runner`
with the configuration's suspenders, the session's bus and the sample truth.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import LabConfig
from .events import EventBus
from .lab import Lab
from .names import run_filename
from .procedure import Procedure
from .runner import Runner, Suspender, count_rate_above, interlock_open, temperature_band

if TYPE_CHECKING:
    from .clock import Clock
    from .queue import QueueItem

log = logging.getLogger(__name__)

__all__ = ["LabSession", "run_filename"]


@dataclass
class LabSession:
    lab: Lab
    clock: Clock
    config: LabConfig
    bus: EventBus
    data_dir: Path
    sim: Any = None                       # simulators.SimLab when simulated
    sample: dict[str, Any] = field(default_factory=dict)   # {"name":…, "truth":…} for the run file
    on_close: list[Callable[[], None]] = field(default_factory=list)
    #: called by the queue worker before each queued run (the GUI's queue too); the simulated lab's
    #: composition sets it to cable the emulated time tagger as the procedure declares
    before_run: Callable[[QueueItem], None] | None = None
    #: the front end that answers the drivers' prompts to the operator (``Runner.operator``): the CLI on a
    #: terminal, the GUI's dialog; None in scripts and overnight runs without a terminal
    operator: Callable[[str], threading.Event] | None = None

    @property
    def simulated(self) -> bool:
        return self.sim is not None

    def suspenders(self) -> list[Suspender]:
        s = self.config.safety
        out = [temperature_band(s["temperature_band_K"], settle_s=s["settle_s"],
                                poll_s=s["temperature_poll_s"]),
               count_rate_above(s["max_count_rate"], settle_s=min(s["settle_s"], 10.0), poll_s=s["poll_s"])]
        if s.get("interlock", True):
            out.append(interlock_open(settle_s=min(s["settle_s"], 10.0), poll_s=s["poll_s"]))
        return out

    def make_runner(self, procedure: Procedure, path: str | os.PathLike | None = None, *, resume: bool = False,
                    title: str = "", suspenders: list[Suspender] | None = None) -> Runner:
        if path is None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path = self.data_dir / run_filename(type(procedure).__name__, sample=self.sample.get("name", ""))
            stem, n = path.stem, 2
            while path.exists():   # a second run of the same procedure within the same second
                path, n = path.with_name(f"{stem}-{n}.h5"), n + 1
        return Runner(procedure, self.lab, path, clock=self.clock, bus=self.bus,
                      suspenders=self.suspenders() if suspenders is None else suspenders,
                      config_snapshot=self.config.snapshot(), sample=self.sample, resume=resume, title=title,
                      max_suspension_s=float(self.config.safety.get("max_suspension_s", 3600.0)),
                      operator=self.operator)

    def make_safe(self) -> dict[str, str]:
        """The "make safe" button: every connected role to its safe state (same as the backstop)."""
        return self.lab.make_safe_all()

    def close(self) -> None:
        try:
            self.lab.make_safe_all()
        finally:
            self.lab.close()
            for fn in reversed(self.on_close):
                try:
                    fn()
                except Exception as exc:  # pragma: no cover - logged only
                    log.warning("closing the session: %s", exc)
            close = getattr(self.clock, "close", None)
            if callable(close):
                close()

    def __enter__(self) -> LabSession:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
