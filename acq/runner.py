"""The run engine: runs one procedure, owns safety, writes the run file.

Lifecycle: validate → connect → startup → (file) → execute → shutdown → **backstop** → close file
→ analysis.

* **Backstop.** Whatever ends a run — success, exception, abort, Ctrl-C, SIGTERM, GUI close — the
  runner calls ``lab.make_safe_all()``: every connected role to its safe state, X-ray first
  (shutter closed, HV off), then attenuator (maximum attenuation), heater (safe range), CCD and
  tagger — each retried with link resynchronisation until a readback confirms it (``acq.backstop``).
  A role that fails does not stop the others; a role still not safe is escalated (X-ray: the
  keep-alive stops, the generator's watchdog drops HV); all of it is recorded in
  ``/entry/provenance/backstop`` and the event log. Procedures add cleanup in ``shutdown()``;
  they cannot skip the backstop (it is not theirs). SIGINT/SIGTERM are deferred while it runs.
* **Keep-alive.** While the X-ray role is connected, ``xray.keepalive()`` runs every
  ``KEEPALIVE_S`` of lab time (``clock.call_every``), so a live engine satisfies the generator's
  watchdog and a dead one lets HV drop.
* **One cancellation mechanism.** Every long wait — a driver's (temperature stability, ramps, CCD
  exposures, TCSPC/g2 acquisitions, X-ray ramps: each polls its role's
  :class:`drivers.base.CancelToken`), the procedure's ``sleep()``, pause, suspensions and their
  settle times — polls the runner at least every ``drivers.base.POLL_S`` (0.25 lab s). So abort,
  pause, MAKE SAFE, suspenders and signals act within one poll wherever the run is (pause and
  suspenders from the procedure's first point; while connecting, abort only). A pause *inside* a
  point (mid-exposure, mid-wait), or a suspension inside a point without X-rays, discards what that
  point had emitted and retakes it after the resume (:class:`RetakePoint`), logged in the event log;
  a suspension inside an X-ray point keeps it, flagged in ``scan/flag`` (its dose is not repeated).
* **Exit status tells the truth.** Once an abort was asked for (operator, MAKE SAFE, window close,
  SIGTERM), whatever exception ends the run records the abort's status (``aborted`` with who and
  why, or ``interrupted``), never ``failed``; ``failed`` means something went wrong on its own, and
  its error names the role whose driver raised it (``RunResult.role``).
* **Pause / resume / abort** take effect at ``checkpoint()`` and at every poll of a wait. Paused,
  the X-ray is made safe (unless the procedure says ``SAFE_ON_PAUSE = False``) and restored on resume.
* **Suspenders** are conditions polled at checkpoints and in every wait (at most every ``poll_s``). When
  one trips, the run is suspended: X-ray safe, poll until every condition clears, wait
  ``settle_s`` (re-checking), restore the X-ray, continue. Each suspension is written to
  ``/entry/provenance/suspensions``; one longer than ``max_suspension_s`` fails the run with its reason.
* **Watcher.** Every keep-alive period, during a point under X-rays: an HV drop (the keep-alive's status
  poll; an opening interlock drops HV) or a count-rate overload (``Suspender.continuous``) is written at
  once as a ``condition`` event, the point is flagged (``scan/flag``) and the run suspends at its next
  checkpoint, where the between-point checks (interlock, temperature band) run as before.
* **Resume** (``Runner(..., resume=True)``): the most complete readable version of the run (the file
  or a backup) is copied beside the file and swapped in atomically (the original is kept as
  ``*.interrupted.h5``), reopened, and the procedure continues at the first incomplete point;
  ``/entry/scan/resumed_at`` + the event log say so. A run with no readable version is re-taken only
  with ``retake=True`` (the operator's explicit request), recorded in the new file.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import math
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from drivers.base import POLL_S, CancelToken, DriverError, Role, SafetyError
from drivers.cryostat import TemperatureController

from . import crashpoints
from .clock import Clock, RealClock
from .events import EventBus
from .lab import Lab
from .procedure import Procedure, RetakePoint
from .store import (
    RunData,
    RunWriter,
    _staging_name,
    copy_run,
    find_source,
    open_run,
    post_run_update,
    set_aside,
    swap_in,
)

log = logging.getLogger(__name__)

__all__ = ["Runner", "RunResult", "RunState", "Suspender", "SuspensionTimeout", "AbortRun", "Interrupted",
           "ValidationError", "RetakePoint", "failing_role",
           "temperature_band", "interlock_open", "count_rate_above", "handle_signals"]


class AbortRun(Exception):
    """Raised at a checkpoint when the run was aborted."""


class Interrupted(BaseException):
    """Raised in the main thread by SIGTERM (like KeyboardInterrupt for SIGINT)."""


class ValidationError(ValueError):
    """The procedure or lab refused the run before any instrument command."""

    def __init__(self, errors: Sequence[str]):
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


class RunState(enum.StrEnum):
    IDLE = "idle"
    VALIDATING = "validating"
    CONNECTING = "connecting"
    RUNNING = "running"
    PAUSED = "paused"
    SUSPENDED = "suspended"
    STOPPING = "stopping"
    FINISHED = "finished"


@dataclass
class Suspender:
    """``check(lab)`` returns a reason string while the condition holds, else None."""

    name: str
    check: Callable[[Lab], str | None]
    settle_s: float = 30.0
    poll_s: float = 1.0
    #: also checked continuously during a point (every keep-alive period), not only between points
    continuous: bool = False


class SuspensionTimeout(RuntimeError):
    """A suspension lasted longer than the run's ``max_suspension_s``: the run fails with the reason."""


def temperature_band(band_K: float, *, settle_s: float = 60.0, poll_s: float = 1.0) -> Suspender:
    """Trips while |T_sample − setpoint| > band. Armed once the sample has reached its setpoint;
    a new setpoint (a deliberate change) disarms it until the sample is within the band again."""
    state: dict[str, Any] = {"armed": False, "setpoint": None}

    def check(lab: Lab) -> str | None:
        cryo: Any = lab.get("cryostat")
        if cryo is None or "cryostat" not in lab.connected:
            return None
        if isinstance(cryo, TemperatureController):   # one exchange on a Lake Shore, not all of readback()
            T, sp = cryo.temperature_and_setpoint()
            rb = {"T_sample": T, "setpoint": sp}
        else:
            rb = cryo.readback()
        dev = abs(rb["T_sample"] - rb["setpoint"])
        if rb["setpoint"] != state["setpoint"]:
            state["setpoint"], state["armed"] = rb["setpoint"], False
        if not state["armed"]:
            if dev <= band_K:
                state["armed"] = True
            return None
        if dev > band_K:
            return (f"T = {rb['T_sample']:.2f} K is {dev:.2f} K from the setpoint {rb['setpoint']:.2f} K "
                    f"(band ±{band_K} K)")
        return None

    return Suspender("temperature_band", check, settle_s, poll_s)


def interlock_open(*, settle_s: float = 10.0, poll_s: float = 1.0) -> Suspender:
    def check(lab: Lab) -> str | None:
        x = lab.get("xray")
        if x is not None and "xray" in lab.connected and not x.interlock_closed:
            return "X-ray interlock open"
        return None

    # not polled continuously: during a point the generator drops HV when the interlock opens, and the
    # keep-alive's status poll reports that drop ("interlock opened") without an extra query
    return Suspender("interlock_open", check, settle_s, poll_s)


def count_rate_above(limit_per_s: float, *, settle_s: float = 5.0, poll_s: float = 1.0,
                     sync_channels: tuple[str, ...] = ("rate_ch0",)) -> Suspender:
    """Trips while a *detector* channel counts faster than ``limit_per_s``. The sync input
    (channel 0 in the TCSPC role's numbering: the laser's 76 MHz, not photons) is not a detector."""

    def check(lab: Lab) -> str | None:
        t: Any = lab.get("tcspc")
        if t is None or "tcspc" not in lab.connected or getattr(t, "mode", "") is None:
            return None   # a device not yet initialised is not counting (and must not be initialised here)
        rates = t.count_rates()
        hot = {k: v for k, v in rates.items() if k not in sync_channels and v > limit_per_s}
        if hot:
            return "count rate above the detector's safe limit " + \
                   ", ".join(f"{k}={v:.3g}/s" for k, v in hot.items()) + f" (limit {limit_per_s:.3g}/s)"
        return None

    return Suspender("count_rate_above", check, settle_s, poll_s, continuous=True)


@dataclass
class RunResult:
    path: Path | None
    exit_status: str
    n_points: int
    run_uid: str = ""
    error: str | None = None
    backstop: dict[str, str] = field(default_factory=dict)
    analysis: dict[str, Any] | None = None
    #: the role whose driver raised the error of a failed run ("" if not a driver's)
    role: str = ""
    #: who stopped an aborted / interrupted run (operator, MAKE SAFE, GUI close, signal)
    stopped_by: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_status == "success"


@contextlib.contextmanager
def _deferred_signals() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while the backstop runs (main thread only), then re-deliver them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        old[sig] = signal.getsignal(sig)
        signal.signal(sig, lambda s, _f: pending.append(s))
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
        if pending:
            log.warning("signal %s arrived during the backstop; delivered after it", pending)
            os.kill(os.getpid(), pending[0])


@contextlib.contextmanager
def handle_signals(runner: Runner | None = None) -> Iterator[None]:
    """In the main thread: SIGTERM raises :class:`Interrupted` (Ctrl-C already raises
    KeyboardInterrupt), so the runner records ``interrupted`` and runs the backstop."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(_s: int, _f: Any) -> None:
        raise Interrupted("SIGTERM")

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


class Runner:
    """Run ``procedure`` on ``lab`` and write ``path``.

    ``run()`` blocks (call it from a worker thread in the GUI); ``pause()``, ``resume()`` and
    ``abort()`` may be called from any thread.
    """

    def __init__(self, procedure: Procedure, lab: Lab, path: str | os.PathLike, *,
                 clock: Clock | None = None, bus: EventBus | None = None, suspenders: Sequence[Suspender] = (),
                 config_snapshot: Mapping[str, Any] | None = None,
                 sample: Mapping[str, Any] | None = None, resume: bool = False, analyze: bool = True,
                 title: str = "", sidecar_dir: str | os.PathLike | None = None, retake: bool = False,
                 max_suspension_s: float = 3600.0, operator: Callable[[str], threading.Event] | None = None
                 ) -> None:
        self.procedure = procedure
        #: who answers a driver's prompt to the operator (a manual sample holder: "move the holder to
        #: 'reference'"): called with the text, returns an event the front end sets when the operator is done
        #: (the CLI on a terminal, the GUI's dialog); None: nobody is there, the driver waits its ``wait_s``
        self.operator = operator
        self._own_ask: dict[int, Any] = {}
        self.lab = lab
        self.path = Path(path)
        self.clock = clock if clock is not None else lab.clock
        self.bus = bus if bus is not None else EventBus(self.clock)
        self.suspenders = list(suspenders)
        self.config_snapshot = dict(config_snapshot or {})
        self.sample = dict(sample or {})
        self.resume_mode = resume
        #: the operator asked explicitly to re-take points whose record is lost (never by default)
        self.retake = retake
        self._source: RunData | None = None
        #: resume: the version of the run to continue from, when the caller has already chosen it
        self.resume_source: RunData | None = None
        self._t_shift = 0.0
        self.analyze = analyze
        self.title = title
        self.sidecar_dir = Path(sidecar_dir) if sidecar_dir else self.path.with_suffix("")
        self.state = RunState.IDLE
        self.writer: RunWriter | None = None
        self.run_uid = ""
        self.index = 0
        self.n_planned: int | None = None
        self._buffer: dict[str, dict[str, Any]] = {}
        self._sidecars: dict[str, str] = {}
        self._abort = threading.Event()
        self._abort_status = "aborted"
        self._abort_reason = ""
        self._abort_by = ""
        #: polled by every driver wait of this run (see module docstring)
        self.cancel = CancelToken(self._wait_poll)
        self._in_poll = False
        self._in_point = False
        self.retakes = 0
        self._pause = threading.Event()
        self._resume_evt = threading.Event()
        self._last_poll: dict[str, float] = {}   # lab time each suspender was last checked, by name
        self._pauses = 0
        self._keepalive: Any = None
        self.suspension_count = 0
        #: a suspension longer than this (lab s) fails the run with its reason
        self.max_suspension_s = float(max_suspension_s)
        # conditions noticed by the watcher (keep-alive period) during a point: name -> reason
        self._cond_lock = threading.Lock()
        self._pending: dict[str, str] = {}      # not yet acted on (the next checkpoint suspends)
        self._point_conds: dict[str, str] = {}  # tripped during the current point (it is flagged)
        self._in_point = False

    # ------------------------------------------------------------------ control (any thread)
    def pause(self) -> None:
        self._resume_evt.clear()
        self._pause.set()
        self._publish("run.status", state="pause-requested")

    def resume(self) -> None:
        self._pause.clear()
        self._resume_evt.set()

    def abort(self, reason: str = "aborted by the user", *, status: str = "aborted", by: str = "operator") -> None:
        """Stop within one poll (in any wait); ``status`` is ``aborted`` or ``interrupted``;
        ``by`` says who (operator, MAKE SAFE, GUI close, SIGTERM…)."""
        if status not in ("aborted", "interrupted"):
            raise ValueError(f"abort status {status!r}: allowed 'aborted', 'interrupted'")
        if not self._abort.is_set():
            self._abort_reason = reason
            self._abort_status = status
            self._abort_by = by
        self._abort.set()
        self._resume_evt.set()

    def should_stop(self) -> bool:
        return self._abort.is_set()

    # ------------------------------------------------------------------ procedure API
    def _emit(self, stream: str, **data: Any) -> None:
        if self.writer is not None and stream not in self.writer.streams:
            raise KeyError(f"{type(self.procedure).__name__} emitted undeclared stream {stream!r} "
                           f"(declared: {list(self.writer.streams)})")
        sidecar = data.pop("sidecar", None)
        if sidecar is not None:
            self._sidecars[stream] = str(sidecar)
        self._buffer.setdefault(stream, {}).update(data)

    def _commit(self) -> int:
        assert self.writer is not None, "commit_point before the run file exists"
        roles = [r for r in self.procedure_roles() if r in self.lab.connected]
        rb = self.lab.readbacks(roles)
        with self._cond_lock:
            conds, self._point_conds = self._point_conds, {}
            self._in_point = False
        t = self._now()
        i = self.writer.append(self._buffer, rb, point_id=self.index, timestamp=t,
                               sidecars=self._sidecars, flag=1 if conds else 0)
        if conds:
            self._log("flag", f"point {self.index} flagged (kept, marked bad in scan/flag): "
                      + "; ".join(f"{k}: {v}" for k, v in conds.items())
                      + (" — not re-taken: it was under X-ray dose" if self.procedure.XRAY else ""),
                      point=self.index, conditions=sorted(conds))
        crashpoints.reached(f"run:point:{self.index}")
        summary = {s: {k: (v if np.ndim(v) == 0 else np.asarray(v)) for k, v in d.items()}
                   for s, d in self._buffer.items()}
        # subscriber point (acq.documents): `timestamp` is the file's scan/timestamp of this point, `sidecars`
        # its Photon-HDF5 files, so bus consumers see what the run file holds
        self._publish("point", point_id=self.index, index=i, n_points=self.n_planned, streams=summary,
                      readbacks=rb, lab_time=self.clock.now(), timestamp=t, sidecars=dict(self._sidecars))
        self._buffer, self._sidecars = {}, {}
        self.index += 1
        self._in_point = False
        return i

    def _sleep(self, seconds: float) -> None:
        """The procedure's ``sleep``: a wait that polls like a driver's (abort, pause, suspenders)."""
        self.cancel.sleep(self.clock, seconds)

    def _idle(self, seconds: float) -> None:
        """Sleep in slices of at most ``POLL_S``, raising :class:`AbortRun` as soon as one is asked
        (the waits of pause and suspension: nothing is measured, so nothing to retake)."""
        end = self.clock.monotonic() + seconds
        while True:
            if self._abort.is_set():
                raise AbortRun(self._abort_reason)
            left = end - self.clock.monotonic()
            if left <= 0:
                return
            self.clock.sleep(min(left, POLL_S))

    def _wait_poll(self, *, urgent: bool = False) -> None:
        """The hook of :attr:`cancel`: called by every wait at least every ``POLL_S``. Raises
        :class:`AbortRun` once an abort was asked; pauses or suspends here (then raises
        :class:`RetakePoint` if this was inside a point); ``urgent`` polls the suspenders now."""
        if self._abort.is_set():
            raise AbortRun(self._abort_reason)
        if self.state is not RunState.RUNNING:
            # connecting and the procedure's startup (homing a stage, the first cool-down): abort acts
            # here, pause and suspenders from the procedure's first point on — a condition of the set-up
            # before the run (say a count rate with the attenuator not yet in place) must not hold the
            # connection itself suspended (an HBT run waited for ever in the CONEX homing)
            return
        if self._in_poll:  # a wait inside the pause/suspend handling itself (restoring the X-ray)
            return
        self._in_poll = True
        try:
            n_susp, n_pause = self.suspension_count, self._pauses
            self._checkpoint(force=urgent, mid_point=True)
            suspended, paused = self.suspension_count != n_susp, self._pauses != n_pause
        finally:
            self._in_poll = False
        if suspended and not paused and self._in_point and self.procedure.XRAY:
            # under X-rays the point is kept, not retaken (that would repeat its dose: decision 0008);
            # the wait goes on after the suspension and the point is flagged in scan/flag (decision 0009)
            with self._cond_lock:
                self._point_conds.setdefault("suspended", "suspended during the point")
            return   # commit_point logs the flag (with the conditions) once
        if (suspended or paused) and self._in_point:
            self.retakes += 1
            self._buffer, self._sidecars = {}, {}
            with self._cond_lock:   # what the watcher saw belongs to the discarded attempt (events keep it)
                self._point_conds = {}
            self._log("retake", f"point {self.index} interrupted by a pause or suspension: its data so far are "
                                "discarded and it is measured again")
            raise RetakePoint(f"point {self.index} interrupted")

    def _checkpoint(self, force: bool = False, mid_point: bool = False) -> None:
        if self._abort.is_set():
            raise AbortRun(self._abort_reason)
        if not mid_point:
            self._in_point = True   # the procedure's checkpoint: a point (or its preparation) begins
        if self._pause.is_set():
            self._do_pause()
        with self._cond_lock:
            pending, self._pending = self._pending, {}
        if pending:   # noticed during the point by the watcher: suspend now, whatever holds still
            self._suspend(pending | self._tripped())
        if self.suspenders:
            # each suspender at its own period (decision 0015): a temperature band need not be read as
            # often as a detector's count rate
            now = self.clock.monotonic()
            due = [s for s in self.suspenders if force or now - self._last_poll.get(s.name, -math.inf) >= s.poll_s]
            if due:
                tripped = self._tripped(due)
                if tripped:
                    if mid_point and self._in_point:   # seen during a point: recorded as the watcher would
                        for name, why in tripped.items():
                            self._condition(name, why, suspend_later=False)
                    self._suspend(tripped)
        if self._abort.is_set():
            raise AbortRun(self._abort_reason)
        self._in_point = True

    def procedure_roles(self) -> list[str]:
        return list(self.procedure.ROLES) or list(self.lab.roles)

    # ------------------------------------------------------------------ pause & suspend
    def _xray_state(self) -> tuple[bool, float, float]:
        x = self.lab.get("xray")
        if x is None or "xray" not in self.lab.connected:
            return False, 0.0, 0.0
        rb = x.readback()
        return bool(rb.get("hv_on")) and bool(rb.get("shutter_open", 1)), rb.get("kV", 0.0), rb.get("mA", 0.0)

    def _make_xray_safe(self) -> None:
        x = self.lab.get("xray")
        if x is not None and "xray" in self.lab.connected:
            x.make_safe()

    def _restore_xray(self, state: tuple[bool, float, float]) -> None:
        on, kV, mA = state
        x = self.lab.get("xray")
        if on and x is not None:
            x.on(kV, mA)
            self._log("xray", f"X-ray restored to {kV:g} kV, {mA:g} mA")

    def _block_laser(self) -> bool:
        """Close the laser shutter if it is open; True if it was open (then :meth:`_restore_laser`
        opens it again). A lab without a laser shutter (or without the attenuator) has nothing to do."""
        att = self.lab.get("attenuator")
        if att is None or "attenuator" not in self.lab.connected or getattr(att, "shutter", None) is None:
            return False
        if att.laser_blocked():
            return False
        att.block()
        return True

    def _restore_laser(self, was_open: bool) -> None:
        att = self.lab.get("attenuator")
        if was_open and att is not None:
            att.unblock()
            self._log("laser", "laser shutter opened again")

    def _do_pause(self) -> None:
        xs = self._xray_state()
        if self.procedure.SAFE_ON_PAUSE and xs[0]:
            self._make_xray_safe()
        laser = self._block_laser()
        self.state = RunState.PAUSED
        self._pauses += 1
        self._log("pause", f"paused at point {self.index}" + (" (X-ray made safe)" if xs[0] else "")
                  + (" (laser blocked)" if laser else ""))
        self._publish("run.status", state="paused", point=self.index)
        while self._pause.is_set() and not self._abort.is_set():
            self._resume_evt.wait(0.1)
        if self._abort.is_set():
            return
        self.state = RunState.RUNNING
        if self.procedure.SAFE_ON_PAUSE:
            self._restore_xray(xs)
        self._restore_laser(laser)
        self._log("resume", f"resumed at point {self.index}")
        self._publish("run.status", state="running", point=self.index)

    def _tripped(self, which: Sequence[Suspender] | None = None) -> dict[str, str]:
        """Check the suspenders (``which``, default all) now: their reasons, by name, for those that trip."""
        out = {}
        now = self.clock.monotonic()
        for s in self.suspenders if which is None else which:
            self._last_poll[s.name] = now
            try:
                why = s.check(self.lab)
            except DriverError:
                # the role's link failed after its retries: a persistent fault, not a condition that
                # clears — the run fails (backstop, role named) instead of staying suspended for ever
                raise
            except Exception as exc:  # a broken check suspends rather than ignoring the condition
                why = f"check failed: {exc}"
            if why:
                out[s.name] = why
        return out

    def _suspend(self, tripped: dict[str, str]) -> None:
        t0 = self._now()
        xs = self._xray_state()
        self._make_xray_safe()
        laser = self._block_laser()
        self.state = RunState.SUSPENDED
        self.suspension_count += 1
        reason = "; ".join(f"{k}: {v}" for k, v in tripped.items())
        self._log("suspend", f"suspended before point {self.index}: {reason}" +
                  (" — X-ray made safe" if xs[0] else "") + (" — laser blocked" if laser else ""))
        self._publish("suspend", names=list(tripped), reason=reason, point=self.index)
        by_name = {s.name: s for s in self.suspenders}
        poll = min((s.poll_s for s in self.suspenders), default=1.0)
        m0 = self.clock.monotonic()

        def over() -> None:
            if self.clock.monotonic() - m0 > self.max_suspension_s:
                why = (f"suspended for more than {self.max_suspension_s:g} s (lab) before point {self.index}: "
                       f"{reason}" + (f"; still: {'; '.join(f'{k}: {v}' for k, v in tripped.items())}"
                                      if tripped else ""))
                self._record_suspension(t0, tripped, reason, timed_out=True)
                raise SuspensionTimeout(why)

        while True:
            while tripped:
                try:
                    self._idle(poll)
                except AbortRun:
                    self._record_suspension(t0, tripped, reason, aborted=True)
                    raise
                over()
                tripped = self._tripped()
            names = [n for n in reason_names(reason, by_name) if n in by_name]
            settle = max((by_name[n].settle_s for n in names), default=10.0)
            settle_end = self.clock.monotonic() + settle
            while self.clock.monotonic() < settle_end and not tripped:
                try:
                    self._idle(min(poll, settle_end - self.clock.monotonic()))
                except AbortRun:
                    self._record_suspension(t0, {}, reason, aborted=True)
                    raise
                tripped = self._tripped()
            if not tripped:
                break
            over()
        self._restore_xray(xs)
        self._restore_laser(laser)
        self.state = RunState.RUNNING
        dur = self._record_suspension(t0, {}, reason)
        self._publish("unsuspend", reason=reason, duration_s=dur, point=self.index)

    def _record_suspension(self, t0: float, _tripped: dict, reason: str, aborted: bool = False,
                           timed_out: bool = False) -> float:
        t1 = self._now()
        rec = {"start": t0, "end": t1, "duration_s": t1 - t0, "reason": reason, "before_point": self.index,
               "aborted": aborted, "timed_out": timed_out}
        if self.writer is not None:
            self.writer.log_suspension(rec)
        self._log("unsuspend", f"suspension over after {t1 - t0:.1f} s (lab): {reason}")
        return t1 - t0

    # ------------------------------------------------------------------ helpers
    def _publish(self, topic: str, **data: Any) -> None:
        self.bus.publish(topic, data, run_uid=self.run_uid)

    def _log(self, kind: str, message: str, **data: Any) -> None:
        log.info("%s: %s", kind, message)
        if self.writer is not None:
            self.writer.log_event(kind, message, t=self._now(), **data)
        self._publish("log", kind=kind, message=message)

    def _inject(self) -> None:
        p = self.procedure
        p.lab, p.clock = self.lab, self.clock
        p.emit = self._emit
        p.checkpoint = self._checkpoint
        p.should_stop = self.should_stop
        p.sleep = self._sleep
        p.commit_point = self._commit
        p.runner = self
        p.sidecar_dir = self.sidecar_dir

    def _now(self) -> float:
        """Lab time for the run file: the clock's, shifted on resume so that a simulated clock that
        restarted earlier than the recorded points never makes the file's timestamps go back."""
        return self.clock.now() + self._t_shift

    def _open_writer(self, streams: Sequence[Any]) -> None:
        params = self.procedure.parameter_values()
        common = dict(procedure=type(self.procedure).__qualname__, parameters=params, streams=streams,
                      readbacks=self.lab.readback_units([r for r in self.procedure_roles()
                                                         if r in self.lab.connected]),
                      config=self.config_snapshot, sample=self.sample, title=self.title,
                      default_stream=self.procedure.DEFAULT_STREAM if streams else None,
                      start_time=self.clock.now())
        if self.resume_mode and self._source is not None:
            self._resume_writer(self._source, streams)
            return
        note = ""
        if self.path.exists():   # only with retake (validate refuses otherwise): keep it, start afresh
            kept = set_aside(self.path)
            note = (f"the operator asked to re-take the run: the earlier file was unreadable and is kept as "
                    f"{kept.name}; its points (if any) are measured again"
                    + (" — under X-ray dose again" if self.procedure.XRAY else ""))
        self.writer = RunWriter(self.path, **common)
        self.run_uid = self.writer.run_uid
        if note:
            self._log("retake", note)

    def _resume_writer(self, src: RunData, streams: Sequence[Any]) -> None:
        """Crash-safe resume: copy ``src`` beside the run file, swap it in atomically (the original is
        kept as a backup), reopen it for writing and continue at the first incomplete point."""
        recorded = {st.name: st for st in src.declarations}
        for st in streams:
            have = recorded.get(st.name)
            if have is None:
                raise ValidationError([f"{src.path}: has no stream {st.name!r}; cannot resume it with this "
                                       f"version of {src.procedure}"])
            shapes = {f.name: f.shape for f in have.fields}
            for fl in st.fields:
                if shapes.get(fl.name) != fl.shape:
                    raise ValidationError([f"{src.path}: stream {st.name}/{fl.name} was recorded with shape "
                                           f"{shapes.get(fl.name)}, the procedure now declares {fl.shape}"])
        staged = _staging_name(self.path)
        staged.unlink(missing_ok=True)   # a copy left by a resume that died: rebuilt from scratch
        n = src.n_points
        t_copy = time.time()   # the copy's own event is stamped no earlier than this
        copy_run(src, staged, note=f"copied {n} completed points from {src.path.name} to resume the run")
        backup = swap_in(staged, self.path)
        self.writer = RunWriter.reopen(self.path)
        crashpoints.reached("resume:reopened")
        self.run_uid = src.run_uid
        times = [float(e["t"]) for e in src.events if isinstance(e.get("t"), int | float)] + [t_copy]
        if n:
            times.append(float(src.timestamp[-1]))
        last = max(times, default=0.0)
        shift_note = ""
        if self.clock.now() < last and not isinstance(self.clock, RealClock):
            self._t_shift = last - self.clock.now() + 1e-3
            shift_note = (f" The simulated lab clock restarted {self._t_shift:.1f} s before the last recorded "
                          "time; later timestamps are shifted by that much so that time never goes back.")
        self.index = n
        self.procedure.resume_from = n
        dose = (f" Points 0..{n - 1} were taken under X-ray dose and are not re-taken; point {n}, if it was "
                "in progress when the run stopped, is measured again." if self.procedure.XRAY and n else "")
        where = (f"copied from {src.path.name}, kept unchanged" if src.path != self.path
                 else f"the original is kept unchanged as {backup.name if backup else '?'}")
        self.writer.mark_resumed(n, f"resumed after '{src.exit_status}' at the first incomplete point {n} "
                                    f"({n} completed points; {where}).{dose}{shift_note}",
                                 t=self._now(), source=src.path.name, t_shift_s=self._t_shift)
        crashpoints.reached("resume:marked")

    # ------------------------------------------------------------------ the run
    def validate(self) -> None:
        """Procedure-level checks against the lab (no instrument command)."""
        errors: list[str] = []
        missing = [r for r in self.procedure.ROLES if r not in self.lab.roles]
        if missing:
            errors.append(f"{type(self.procedure).__name__} needs {', '.join(missing)}, which the lab "
                          f"configuration does not have")
        check = getattr(self.procedure, "validate", None)
        if callable(check):
            errors.extend(check(self.lab.config) or [])
        if self.resume_mode:
            errors.extend(self._choose_source())
        elif self.path.exists() and not self.retake:
            errors.append(f"{self.path} exists; sflab never overwrites a run file")
        if errors:
            raise ValidationError(errors)

    def _choose_source(self) -> list[str]:
        """Resume: the most complete readable version of the run (the file or one of its backups)."""
        src, cands = (self.resume_source, []) if self.resume_source is not None else find_source(self.path)
        if src is None:
            if self.retake:
                return []
            tried = "; ".join(f"{c.path.name}: {c.problem}" for c in cands)
            dose = " under X-ray dose" if self.procedure.XRAY else ""
            return [f"cannot resume {self.path}: no readable version of it ({tried}). Its points may have "
                    f"been taken{dose}; re-take them only on purpose (sflab resume --retake)"]
        if src.procedure != type(self.procedure).__qualname__:
            return [f"{src.path}: recorded by {src.procedure}, cannot resume it with "
                    f"{type(self.procedure).__qualname__}"]
        self._source = src
        return []

    def _install_cancel(self, on: bool) -> None:
        for drv in self.lab.roles.values():
            drv.cancel = self.cancel if on else Role.cancel
            if hasattr(drv, "ask"):   # a role that prompts the operator (drivers.sample_stage.ManualSampleStage)
                if on:
                    if drv.ask != self._ask_operator:
                        self._own_ask[id(drv)] = drv.ask   # what a program set is put back after the run
                    drv.ask = self._ask_operator
                else:
                    drv.ask = self._own_ask.pop(id(drv), None)

    def _ask_operator(self, text: str) -> bool:
        """A driver's prompt to the operator: written to the run file's event log, shown by the front end
        (:attr:`operator`), and waited for in wall time — the lab clock does not run ahead while a person
        works — with Abort acting at once. False when nobody is there to answer (the driver then waits its
        own ``wait_s``)."""
        self._log("operator", f"operator prompt before point {self.index}: {text}", point=self.index)
        self._publish("operator", prompt=text, point=self.index)
        if self.operator is None:
            return False
        done = self.operator(text)
        while not done.wait(0.1):
            if self._abort.is_set():
                raise AbortRun(self._abort_reason)
        self._log("operator", f"operator done: {text}", point=self.index)
        return True

    def run(self) -> RunResult:
        status, error, role = "failed", None, ""
        backstop: dict[str, str] = {}
        self.state = RunState.VALIDATING
        self.validate()   # raises before any instrument command
        self._inject()
        pts = None
        self._links0 = self._link_counts()
        try:
            self._install_cancel(True)
            self.state = RunState.CONNECTING
            self.lab.connect(self.procedure_roles())
            self._start_keepalive()
            self.procedure.startup()
            streams = self.procedure.streams()
            pts = self.procedure.points()
            self.n_planned = len(pts) if pts is not None else None
            self._open_writer(streams)
            self._log("start", f"{type(self.procedure).__name__} started"
                      + (f", {self.n_planned} points planned" if self.n_planned is not None else ""))
            self._publish("run.start", procedure=type(self.procedure).__name__, path=str(self.path),
                          parameters=self.procedure.parameter_values(), n_points=self.n_planned,
                          resume_from=self.index, streams=[s.name for s in streams])
            self.state = RunState.RUNNING
            self.procedure.execute()
            status = "success"
        except AbortRun as exc:
            status = self._abort_status
            error = str(exc) or self._abort_reason
        except (KeyboardInterrupt, Interrupted) as exc:
            status = "interrupted"
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            self._abort_by = self._abort_by or ("SIGTERM" if isinstance(exc, Interrupted) else "Ctrl-C")
        except ValidationError:
            raise
        except Exception as exc:
            if self._abort.is_set():
                # the operator stopped the run; what broke on the way out is a consequence, not the cause
                status = self._abort_status
                error = self._abort_reason
                log.info("run stopped (%s); the exception on the way out was %s: %s", error,
                         type(exc).__name__, exc)
            else:
                status = "failed"
                role = failing_role(exc)
                error = (f"{role}: " if role else "") + f"{type(exc).__name__}: {exc}"
                log.error("run failed:\n%s", traceback.format_exc())
        finally:
            self._install_cancel(False)   # the backstop's own waits are never cancelled
            self.state = RunState.STOPPING
            with _deferred_signals():
                try:
                    self.procedure.shutdown()
                except BaseException as exc:  # noqa: BLE001 - cleanup errors never skip the backstop
                    log.error("procedure shutdown failed: %r", exc)
                    if error is None:
                        error = f"shutdown: {type(exc).__name__}: {exc}"
                        status = "failed" if status == "success" else status
                backstop = self.lab.make_safe_all(on_escalate=self._escalate)
                if self._keepalive is not None:
                    self._keepalive.cancel()
                    self._keepalive = None
                self._finish_file(status, error, backstop, role)
        self.state = RunState.FINISHED
        analysis = self._analyze() if self.writer is not None else None
        n = self.index
        by = self._abort_by if status in ("aborted", "interrupted") else ""
        self._publish("run.stop", exit_status=status, path=str(self.path), n_points=n, error=error,
                      backstop=backstop, role=role, stopped_by=by)
        return RunResult(self.path if self.writer else None, status, n, self.run_uid, error, backstop, analysis,
                         role=role, stopped_by=by)

    def _escalate(self, role: str) -> str:
        """The backstop could not confirm ``role`` safe. For the X-ray: stop feeding the generator's
        watchdog (the engine's keep-alive and the driver's own), so the generator drops HV by itself."""
        if role != "xray":
            return ""
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
        x = self.lab.get("xray")
        stop = getattr(x, "stop_keepalive", None)
        if callable(stop):
            stop()
        wd = getattr(x, "watchdog_s", None)
        return ("keep-alive stopped: the generator's watchdog" + (f" ({wd:g} s)" if wd else "") +
                " drops HV without us")

    def _start_keepalive(self) -> None:
        """The keep-alive and the watcher: every ``KEEPALIVE_S`` of lab time, feed the generator's
        watchdog (its status poll notices an HV drop, e.g. when the interlock opens) and, during a
        point under X-rays, check the continuous conditions (count rate)."""
        if self._keepalive is not None:
            return
        x: Any = self.lab.get("xray")
        if x is None or "xray" not in self.lab.connected:
            return
        period = float(x.KEEPALIVE_S)
        self._keepalive = self.clock.call_every(period, self._watch, name="xray-keepalive", hold=True)

    def _watch(self) -> None:
        x: Any = self.lab.get("xray")
        if x is not None and "xray" in self.lab.connected:
            try:
                x.keepalive()
            except SafetyError as exc:   # HV dropped behind our back (arc, interlock, watchdog)
                self._condition("hv_drop", str(exc))
            except Exception as exc:  # noqa: BLE001 - the keep-alive must keep going
                log.warning("X-ray keep-alive failed: %s", exc)
        # the continuous checks run while the sample is under X-rays (the generator expects HV on): the
        # dose the issue is about, and the only time the instruments are not otherwise idle-safe to poll
        if not self._in_point or self.state is not RunState.RUNNING or not getattr(x, "_expect_hv", False):
            return
        for s in self.suspenders:
            if not s.continuous:
                continue
            try:
                why = s.check(self.lab)
            except Exception as exc:  # noqa: BLE001 - a failing check is for the checkpoint to judge
                log.debug("continuous check %s failed: %s", s.name, exc)
                continue
            if why:
                self._condition(s.name, why)

    def _condition(self, name: str, reason: str, *, suspend_later: bool = True) -> None:
        """A condition noticed during the run: recorded at once, the point flagged, the run suspended
        at its next checkpoint (``suspend_later=False``: the caller suspends now)."""
        with self._cond_lock:
            new = name not in self._pending and name not in self._point_conds
            if suspend_later:
                self._pending[name] = reason
            if self._in_point:
                self._point_conds[name] = reason
        if new:
            where = f"during point {self.index}" if self._in_point else f"before point {self.index}"
            self._log("condition", f"{name} {where}: {reason}", point=self.index, condition=name)
            self._publish("condition", name=name, reason=reason, point=self.index)

    def _finish_file(self, status: str, error: str | None, backstop: dict[str, str], role: str = "") -> None:
        if self.writer is None:
            # failed before the streams were known: still leave a record of what happened
            try:
                self.writer = RunWriter(self.path, procedure=type(self.procedure).__qualname__,
                                        parameters=self.procedure.parameter_values(), streams=[],
                                        config=self.config_snapshot, sample=self.sample,
                                        start_time=self.clock.now())
                self.run_uid = self.writer.run_uid
            except Exception as exc:
                log.error("could not create %s to record the failure: %s", self.path, exc)
                return
        try:
            failed = {r: v for r, v in backstop.items() if v != "ok"}
            rep = getattr(self.lab, "backstop_report", None)
            details = rep.as_dict() if rep is not None and hasattr(rep, "as_dict") else {}
            self._log("backstop", "all roles safe: " + ", ".join(backstop) if not failed else
                      "backstop FAILED for " + "; ".join(f"{r}: {v}" for r, v in failed.items()),
                      roles=backstop, **details)
            for r, esc in details.get("escalations", {}).items():
                self._log("escalation", f"{r} not confirmed safe by the backstop: {esc}", role=r)
            if error:
                if status == "failed":
                    self._log("error", error, role=role)
                else:
                    self._log(status, error, by=self._abort_by)
            self._log_link_faults()
            self._log("stop", f"exit status {status} after {self.index} points")
            self.writer.finish(status, end_time=self._now(), backstop=backstop)
        finally:
            self.writer.close()

    def _link_counts(self) -> dict[str, dict[str, int]]:
        """``{role: {"timeout": n, "garbage": n, "failed_timeout": n, …}}`` over the role's links."""
        out: dict[str, dict[str, int]] = {}
        for r, drv in self.lab.roles.items():
            links = [getattr(drv, "link", None), getattr(getattr(drv, "shutter", None), "link", None)]
            c: dict[str, int] = {}
            for ln in links:
                for k, v in (getattr(ln, "faults", None) or {}).items():
                    c[k] = c.get(k, 0) + int(v)
                for k, v in (getattr(ln, "failures", None) or {}).items():
                    c["failed_" + k] = c.get("failed_" + k, 0) + int(v)
            out[r] = c
        return out

    def _log_link_faults(self) -> None:
        """Transient link faults of this run (survived by a retry, or not), per role, in the event log."""
        now, before = self._link_counts(), getattr(self, "_links0", {})
        delta = {r: {k: v - before.get(r, {}).get(k, 0) for k, v in c.items() if v - before.get(r, {}).get(k, 0)}
                 for r, c in now.items()}
        delta = {r: c for r, c in delta.items() if c}
        if delta:
            text = "; ".join(f"{r}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())) for r, c in delta.items())
            self._log("link", f"transient link faults retried with reconnection: {text}", counts=delta)

    def _analyze(self) -> dict[str, Any] | None:
        if not self.analyze:
            return None
        summary: dict[str, Any] | None = None
        try:
            data = open_run(self.path)
            if data.n_points:
                summary = self.procedure.analyze(data)
        except Exception as exc:
            log.error("analysis of %s failed:\n%s", self.path, traceback.format_exc())
            summary = {"error": f"{type(exc).__name__}: {exc}"}
        try:
            post_run_update(self.path, analysis=summary)
        except Exception as exc:  # pragma: no cover - logged only
            log.error("could not store the analysis in %s: %s", self.path, exc)
        if summary is not None:
            self._publish("analysis", **summary)
        return summary


def reason_names(reason: str, by_name: Mapping[str, Suspender]) -> list[str]:
    names = [n for n in by_name if reason.startswith(n) or f"; {n}:" in reason]
    return names or list(by_name)


def failing_role(exc: BaseException) -> str:
    """The role whose driver raised ``exc``: the innermost traceback frame whose ``self`` is a
    :class:`drivers.base.Role` (or whose message names an instrument of a role); "" if none."""
    role = ""
    tb = exc.__traceback__
    while tb is not None:
        obj = tb.tb_frame.f_locals.get("self")
        if isinstance(obj, Role) and obj.ROLE:
            role = obj.ROLE
        tb = tb.tb_next
    if not role and exc.__cause__ is not None and exc.__cause__ is not exc:
        role = failing_role(exc.__cause__)
    return role
