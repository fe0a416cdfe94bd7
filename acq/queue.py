"""The run queue: procedure runs waiting their turn, persisted so that a crash loses nothing.

``RunQueue(path)`` is a list of :class:`QueueItem` kept in a JSON file, rewritten atomically (temp file,
fsync, rename) on every change, so a crash, a power cut or ``kill -9`` leaves either the old or the new
queue — never half of one. ``QueueWorker(session, queue)`` runs the queued items one by one in a
background thread on a :class:`~acq.session.LabSession`; the GUI and ``sflab run`` both use it.

Status of an item: ``queued`` → ``running`` → ``done`` | ``failed`` | ``aborted`` | ``interrupted``.
An item's ``run_file`` is written into the queue *before* its run starts, so after a crash the queue
says which file to resume (``sflab resume``): an item found ``running`` or ``interrupted`` is resumed at
its first incomplete point (``Runner(resume=True)``) — points already taken are never re-taken.

Events on ``session.bus``: ``queue.changed`` (items), ``queue.item`` (id, status, run_file, error),
``queue.state`` (state of the worker: idle, running, paused, stopping, finished), ``queue.note`` (id,
note: something the queue did on its own before an item).

Between runs, a fault the X-ray generator latched because its watchdog timed out (the host went silent
with HV on: a stall, a crash) would refuse HV to every later run. Before an item that uses the
generator the queue clears it — only that fault, only with HV off, the output monitors at zero and the
shutter closed — with the generator's fault reset, which does not switch HV on (Spellman command
``31``), and records it in the item's ``notes`` (queue.json), the log and ``queue.note``
(:func:`clear_watchdog_trip`). Any other latched fault is left for the operator.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from drivers.base import POLL_S

from .procedure import validate_parameters
from .registry import procedure_class
from .store import backups_of, find_source

log = logging.getLogger(__name__)

__all__ = ["QueueItem", "RunQueue", "QueueWorker", "STATUSES", "FINAL_STATUSES", "WAIT", "clear_watchdog_trip"]

STATUSES = ("queued", "running", "done", "failed", "aborted", "interrupted")
FINAL_STATUSES = ("done", "failed", "aborted")
#: procedure name of a wait item (``parameters = {"seconds": s}``): a wait on the lab clock, no run file
WAIT = "wait"
_RUN_STATUS = {"success": "done", "failed": "failed", "aborted": "aborted", "interrupted": "interrupted"}


@dataclass
class QueueItem:
    id: str
    procedure: str
    parameters: dict[str, Any] = field(default_factory=dict)
    title: str = ""
    status: str = "queued"
    run_file: str | None = None
    estimate_s: float | None = None
    error: str | None = None
    n_points: int | None = None
    started: float | None = None    # lab time (POSIX s)
    finished: float | None = None
    #: the operator asked to re-take the points of an unreadable run file (``sflab resume --retake``)
    retake: bool = False
    #: what the queue did on its own before this item (e.g. a watchdog trip cleared), for the record
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> QueueItem:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:  # pragma: no cover - not every filesystem allows it
        pass


class RunQueue:
    """A persisted, thread-safe list of :class:`QueueItem`. Every change is saved at once."""

    def __init__(self, path: str | os.PathLike, *, meta: Mapping[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.items: list[QueueItem] = []
        self.meta: dict[str, Any] = dict(meta or {})
        self._lock = threading.RLock()
        self.on_change: list[Callable[[RunQueue], None]] = []
        if self.path.exists():
            self.load()

    # ------------------------------------------------------------------ persistence
    def load(self) -> None:
        with self._lock:
            d = json.loads(self.path.read_text(encoding="utf-8"))
            self.items = [QueueItem.from_dict(x) for x in d.get("items", [])]
            self.meta = dict(d.get("meta", {})) | {k: v for k, v in self.meta.items() if k not in d.get("meta", {})}

    def save(self) -> None:
        with self._lock:
            d = {"version": 1, "saved": time.time(), "meta": self.meta, "items": [i.to_dict() for i in self.items]}
            _atomic_write(self.path, json.dumps(d, indent=1, default=str))
            cbs = list(self.on_change)
        for cb in cbs:
            try:
                cb(self)
            except Exception as exc:  # pragma: no cover - a listener must not break the queue
                log.warning("queue listener failed: %s", exc)

    # ------------------------------------------------------------------ editing
    def add(self, procedure: str, parameters: Mapping[str, Any] | None = None, title: str = "", *,
            estimate_s: float | None = None, n_points: int | None = None) -> QueueItem:
        if estimate_s is None and procedure != WAIT:
            estimate_s = _estimate(procedure, dict(parameters or {}))
        elif procedure == WAIT:
            estimate_s = float((parameters or {}).get("seconds", 0.0))
        item = QueueItem(uuid.uuid4().hex[:8], procedure, dict(parameters or {}), title or procedure,
                         estimate_s=estimate_s, n_points=n_points)
        with self._lock:
            self.items.append(item)
            self.save()
        return item

    def get(self, id: str) -> QueueItem:
        with self._lock:
            for it in self.items:
                if it.id == id:
                    return it
        raise KeyError(f"no queue item {id!r}")

    def remove(self, id: str) -> QueueItem:
        """Remove a waiting (or finished) item; a running one must be aborted first."""
        with self._lock:
            it = self.get(id)
            if it.status == "running":
                raise ValueError(f"item {id} is running; abort it first")
            self.items.remove(it)
            self.save()
            return it

    def move(self, id: str, index: int) -> None:
        with self._lock:
            it = self.get(id)
            self.items.remove(it)
            index = max(0, min(int(index), len(self.items)))
            self.items.insert(index, it)
            self.save()

    def next_queued(self) -> QueueItem | None:
        """The next item to run: an interrupted/running one first (crash recovery), else the first queued."""
        with self._lock:
            for it in self.items:
                if it.status in ("running", "interrupted"):
                    return it
            for it in self.items:
                if it.status == "queued":
                    return it
        return None

    def mark(self, id: str, status: str, run_file: str | os.PathLike | None = None, *,
             error: str | None = None, **fields: Any) -> QueueItem:
        if status not in STATUSES:
            raise ValueError(f"status {status!r} not in {STATUSES}")
        with self._lock:
            it = self.get(id)
            it.status = status
            if run_file is not None:
                it.run_file = str(run_file)
            if error is not None or status in ("queued", "running", "done"):
                it.error = error
            for k, v in fields.items():
                setattr(it, k, v)
            self.save()
            return it

    def note(self, id: str, text: str) -> QueueItem:
        """Append a note to an item (something the queue did on its own), persisted at once."""
        with self._lock:
            it = self.get(id)
            it.notes.append(str(text))
            self.save()
            return it

    def requeue(self, id: str) -> QueueItem:
        """Put a failed/aborted item back (a fresh run file will be written)."""
        with self._lock:
            it = self.get(id)
            it.status, it.run_file, it.error = "queued", None, None
            self.save()
            return it

    def clear_done(self) -> int:
        with self._lock:
            n = len(self.items)
            self.items = [i for i in self.items if i.status != "done"]
            self.save()
            return n - len(self.items)

    # ------------------------------------------------------------------ views
    @property
    def pending(self) -> list[QueueItem]:
        with self._lock:
            return [i for i in self.items if i.status in ("queued", "running", "interrupted")]

    @property
    def finished(self) -> bool:
        return not self.pending

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        with self._lock:
            return iter(list(self.items))


class QueueWorker:
    """Runs the queue's items one by one on ``session`` in a background thread.

    ``start()``; ``pause()`` / ``resume()`` (the current run pauses at its next checkpoint, X-ray safe);
    ``abort()`` (the current run stops at its next checkpoint, status ``aborted``; the worker stops, the
    remaining items stay queued); ``stop_after_current()``; ``interrupt()`` (like abort, but the item is
    left ``interrupted`` so that ``sflab resume`` continues it). ``current_runner`` is the Runner of the
    item being run (None between items), ``state`` one of idle, running, paused, stopping, finished.
    """

    def __init__(self, session: Any, queue: RunQueue, *, out_dir: str | os.PathLike | None = None,
                 filename: Callable[[QueueItem, int], str] | None = None,
                 before_item: Callable[[QueueItem], None] | None = None) -> None:
        self.session = session
        self.queue = queue
        self.out_dir = Path(out_dir) if out_dir is not None else Path(session.data_dir)
        self.filename = filename or self._default_name
        #: called before each run (``sflab`` uses it to cable the simulated time tagger for HBT or TCSPC)
        #: default: the session's declared ``before_run(item)`` hook (``acq.composition.open_lab`` sets it)
        self.before_item = before_item or getattr(session, "before_run", None)
        self.current_runner: Any = None
        self.current_item: QueueItem | None = None
        self.state = "idle"
        self.results: list[Any] = []
        self.error: str | None = None
        self._thread: threading.Thread | None = None
        self._stop_after = threading.Event()
        self._abort = threading.Event()
        self._paused = threading.Event()
        self._abort_status = "aborted"
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("the queue worker is already running")
        self._abort.clear()
        self._stop_after.clear()
        self._thread = threading.Thread(target=self._loop, name="sflab-queue", daemon=True)
        self._set_state("running")
        self._thread.start()

    def run_here(self) -> None:
        """Run the queue in the calling thread (``sflab run`` does this, so Ctrl-C/SIGTERM reach it)."""
        self._abort.clear()
        self._set_state("running")
        self._loop()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def pause(self) -> None:
        self._paused.set()
        r = self.current_runner
        if r is not None:
            r.pause()
        self._set_state("paused")

    def resume(self) -> None:
        self._paused.clear()
        r = self.current_runner
        if r is not None:
            r.resume()
        self._set_state("running" if self._alive() else self.state)

    def abort(self, reason: str = "aborted by the user", status: str = "aborted", *, by: str = "operator") -> None:
        """Stop the current run within one poll (backstop runs) and start no further item.
        ``status="interrupted"`` leaves the item resumable by ``sflab resume``; ``by`` says who."""
        if status not in ("aborted", "interrupted"):
            raise ValueError(f"status {status!r}: allowed 'aborted', 'interrupted'")
        self._abort_status = status
        self._abort.set()
        self._paused.clear()
        self._abort_reason, self._abort_by = reason, by
        r = self.current_runner
        if r is not None:
            r.abort(reason, status=status, by=by)
        self._set_state("stopping")

    def interrupt(self, reason: str = "interrupted") -> None:
        """Stop now but leave the current item resumable (status ``interrupted``)."""
        self.abort(reason, status="interrupted")

    def stop_after_current(self) -> None:
        self._stop_after.set()
        self._set_state("stopping")

    # ------------------------------------------------------------------ internals
    def _alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _set_state(self, state: str) -> None:
        self.state = state
        self.session.bus.publish("queue.state", {"state": state,
                                                 "item": self.current_item.id if self.current_item else None})

    def _publish_item(self, it: QueueItem) -> None:
        self.session.bus.publish("queue.item", {"id": it.id, "procedure": it.procedure, "title": it.title,
                                                "status": it.status, "run_file": it.run_file, "error": it.error})

    def _default_name(self, it: QueueItem, index: int) -> str:
        from .names import run_filename

        return run_filename(it.procedure, sample=self.session.sample.get("name", ""), index=index)

    def _loop(self) -> None:
        try:
            while not self._abort.is_set():
                if self._stop_after.is_set():
                    break
                while self._paused.is_set() and not self._abort.is_set():
                    time.sleep(0.05)
                it = self.queue.next_queued()
                if it is None:
                    break
                self._run_item(it)
        except BaseException as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, Exception):
                raise
            log.error("queue worker failed:\n%s", traceback.format_exc())
        finally:
            self.current_runner = None
            self.current_item = None
            self._set_state("finished" if self.queue.finished else "idle")

    def _run_item(self, it: QueueItem) -> None:
        self.current_item = it
        if it.procedure == WAIT:
            self._wait(it)
            return
        from .runner import ValidationError

        index = self.queue.items.index(it)
        resume = False
        src = None
        path = Path(it.run_file) if it.run_file else self.out_dir / self.filename(it, index)
        if it.run_file and (path.exists() or backups_of(path)):
            # crash recovery: continue from the most complete readable version (the file or a backup);
            # an unreadable file is never taken for "nothing measured"
            src, cands = find_source(path)
            if src is not None and src.exit_status == "success" and src.path == path and not src.swmr_flagged:
                self.queue.mark(it.id, "done", n_points=src.n_points)  # the crash came before the queue said so
                self._publish_item(it)
                return
            if src is not None:
                resume = True
            elif not (it.retake or not _is_xray(it.procedure)):
                tried = "; ".join(f"{c.path.name}: {c.problem}" for c in cands)
                self.queue.mark(it.id, "failed", error=f"{path}: no readable version ({tried}); its points may "
                                "have been taken under X-ray dose — re-take them only on purpose "
                                "(sflab resume --retake)")
                self._publish_item(it)
                return
        self._clear_watchdog_trip(it)
        try:
            from .plans import validate_run

            cls = procedure_class(it.procedure)
            # the checks of `sflab check` (types, ranges, the lab's limits), again on start
            values, errs = validate_run(it.procedure, it.parameters, getattr(self.session, "config", None))
            if errs:
                raise ValidationError([str(e) for e in errs])
            proc = cls(**values)
            if self.before_item is not None:
                self.before_item(it)
            runner = self.session.make_runner(proc, path, resume=resume, title=it.title,
                                              suspenders=self.session.suspenders())
            # a file with no readable version and no X-ray dose (or an explicit --retake): start afresh,
            # the unreadable file kept beside (the new file says so)
            runner.retake = it.retake or (not resume and path.exists())
            runner.resume_source = src if resume else None
        except Exception as exc:
            why = str(exc) if isinstance(exc, ValidationError) else f"{type(exc).__name__}: {exc}"
            self.queue.mark(it.id, "failed", error=f"not started: {why}")
            self._publish_item(it)
            log.error("queue item %s (%s) not started: %s", it.id, it.procedure, why)
            return
        self.queue.mark(it.id, "running", str(path), started=self.session.clock.now())
        self._publish_item(it)
        with self._lock:
            self.current_runner = runner
        if self._paused.is_set():
            runner.pause()
        if self._abort.is_set():
            runner.abort(getattr(self, "_abort_reason", "aborted before start"), status=self._abort_status,
                         by=getattr(self, "_abort_by", "operator"))
        try:
            res = runner.run()
        except ValidationError as exc:
            self.queue.mark(it.id, "failed", error=str(exc))
            self._publish_item(it)
            return
        except BaseException:
            # Ctrl-C / SIGTERM in run_here: the runner recorded 'interrupted'; leave the item resumable
            self.queue.mark(it.id, "interrupted", error="interrupted")
            self._publish_item(it)
            raise
        finally:
            with self._lock:
                self.current_runner = None
        self.results.append(res)
        status = _RUN_STATUS.get(res.exit_status, "failed")
        self.queue.mark(it.id, status, str(path), error=res.error, n_points=res.n_points,
                        finished=self.session.clock.now())
        self._publish_item(it)
        if status == "interrupted":
            self._abort.set()

    def _clear_watchdog_trip(self, it: QueueItem) -> None:
        """Before an item: a generator fault latched by its watchdog alone is cleared, and said so in the
        queue (the item's ``notes``, the log, ``queue.note`` on the bus) — see :func:`clear_watchdog_trip`."""
        lab = getattr(self.session, "lab", None)
        if lab is None or lab.get("xray") is None:
            return
        if "xray" not in lab.connected and not _is_xray(it.procedure):
            return   # the generator is not in use and this item will not use it
        try:
            note = clear_watchdog_trip(lab)
        except Exception as exc:  # noqa: BLE001 - the check is best effort; the run reports a real fault itself
            log.warning("X-ray generator fault check before %s failed: %s", it.procedure, exc)
            return
        if note is None:
            return
        text = f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(self.session.clock.now()))} {note}"
        self.queue.note(it.id, text)
        log.warning("queue, before %s (%s): %s", it.id, it.procedure, note)
        self.session.bus.publish("queue.note", {"id": it.id, "procedure": it.procedure, "note": note})

    def _wait(self, it: QueueItem) -> None:
        seconds = float(it.parameters.get("seconds", 0.0))
        self.queue.mark(it.id, "running", started=self.session.clock.now())
        self._publish_item(it)
        clock = self.session.clock
        end = clock.monotonic() + seconds
        while clock.monotonic() < end:
            if self._abort.is_set():
                self.queue.mark(it.id, self._abort_status)
                self._publish_item(it)
                return
            clock.sleep(min(POLL_S, end - clock.monotonic()))   # an abort acts within one poll
        self.queue.mark(it.id, "done", finished=clock.now())
        self._publish_item(it)


def clear_watchdog_trip(lab: Any) -> str | None:
    """Clear the X-ray generator's fault register if, and only if, it holds the watchdog trip alone and
    the tube is confirmed off; returns what was done (None: nothing to clear, or not cleared — then the
    reason is logged and the next X-ray run refuses HV with the driver's message, as it should).

    Spellman semantics (drivers/spellman.py, simulators/xray_tube.py): a watchdog timeout drops HV and
    latches ``WATCH_DOG_FAULT``; HV-on is refused (``E#3``) until command ``31`` resets the faults, and
    the reset does not switch HV on. A watchdog trip means the host went silent, not that the tube
    misbehaved, so once HV is off, the output monitors read zero and the shutter is closed, clearing it
    is what the operator would do. Any other fault (arc, over-power, over-temperature, …) stays latched
    for the operator. Needs a backend with ``faults()`` / ``reset_faults()`` (the Spellman's)."""
    xray = lab.get("xray")
    if xray is None or not (hasattr(xray, "faults") and hasattr(xray, "reset_faults")):
        return None
    if "xray" not in lab.connected:
        lab.connect(["xray"])
    faults = xray.faults()
    if not faults:
        return None
    watchdog = getattr(type(faults), "WATCH_DOG_FAULT", None)
    if watchdog is None or faults != watchdog:
        log.warning("X-ray generator faults %r latched: not a watchdog trip alone, left for the operator", faults)
        return None
    hv = bool(xray.hv_on)
    kV, mA = xray.kV_mA if hasattr(xray, "kV_mA") else (0.0, 0.0)
    opts = getattr(xray, "opts", {}) or {}
    kV_tol, mA_tol = float(opts.get("kV_tolerance", 0.5)), float(opts.get("mA_tolerance", 0.02))
    shutter = bool(getattr(xray, "shutter_open", False))
    if hv or abs(kV) > kV_tol or abs(mA) > mA_tol or shutter:
        log.warning("X-ray generator watchdog trip not cleared: the tube is not confirmed off (HV %s, %.3g kV, "
                    "%.3g mA, shutter %s)", "on" if hv else "off", kV, mA, "open" if shutter else "closed")
        return None
    xray.reset_faults()
    left = xray.faults()
    if left:
        log.warning("X-ray generator fault reset did not clear %r", left)
        return None
    return (f"X-ray generator watchdog trip (fault register {faults!r}) cleared with a fault reset: HV off, "
            f"{kV:.2f} kV / {mA:.3f} mA, shutter closed; HV stays off until a run switches it on")


#: the role each engine suspender reads
SUSPENDER_ROLES = {"temperature_band": "cryostat", "count_rate_above": "tcspc", "interlock_open": "xray"}


def _estimate(procedure: str, parameters: dict[str, Any]) -> float | None:
    """Lab seconds from ``Procedure.estimate()``, None when unknown (an estimate is optional)."""
    try:
        cls = procedure_class(procedure)
        values, errs = validate_parameters(cls, parameters)
        if errs:
            return None
        v = float(cls(**values).estimate().get("lab_seconds", float("nan")))
        return v if v == v else None
    except Exception as exc:
        log.debug("no estimate for %s: %s", procedure, exc)
        return None


def _is_xray(procedure: str) -> bool:
    """Whether a procedure exposes the sample to X-rays (unknown: assume it does)."""
    try:
        cls = procedure_class(procedure)
    except Exception:
        return True
    x = getattr(cls, "XRAY", True)
    return x if isinstance(x, bool) else True   # a per-instance property: assume dose
