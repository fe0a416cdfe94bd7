"""Instrument I/O off the GUI thread.

:class:`InstrumentIO` owns one worker thread. Every driver call the GUI makes — connecting roles,
polling readbacks, manual commands — is a job on that thread, so the event loop never waits on an
instrument and the GUI's own calls never run concurrently with each other. Results come back
through a queue drained by a GUI-thread timer, which then calls the job's callback.

Polling: every ``poll_s`` wall seconds (never more than one poll in flight, so a slow instrument
cannot build a backlog). While a run is active the runner owns the SDK instruments (CCD, time
tagger), whose readbacks then come with each point from the bus; the message instruments (which
serialise their links) keep being polled.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from qtpy import QtCore

log = logging.getLogger(__name__)

__all__ = ["InstrumentIO", "SDK_ROLES"]

#: roles read only between runs (their vendor SDKs are busy during acquisition)
SDK_ROLES = ("spectrometer", "tcspc")

Callback = Callable[[Any, BaseException | None], None]


class InstrumentIO(QtCore.QObject):
    readbacks = QtCore.Signal(object, float)     # {role: {name: value}}, lab time
    extras = QtCore.Signal(object)               # {role: {name: text}} (e.g. X-ray faults)
    connection = QtCore.Signal(str, str)         # role, "connected" | "error: …"

    def __init__(self, session: Any, *, poll_s: float = 1.0, run_active: Callable[[], bool] = lambda: False,
                 parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.lab = session.lab
        self.poll_s = poll_s
        self.run_active = run_active
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sflab-instrument-io")
        self._done: collections.deque = collections.deque()
        self._poll_busy = threading.Event()
        self._closed = False
        self.jobs_done = 0
        self._keepalive: Any = None
        self._drain = QtCore.QTimer(self)
        self._drain.setInterval(30)
        self._drain.timeout.connect(self._deliver)
        self._drain.start()
        self._poll = QtCore.QTimer(self)
        self._poll.setInterval(int(poll_s * 1000))
        self._poll.timeout.connect(self.poll)
        self._poll.start()

    # ------------------------------------------------------------------ jobs
    def submit(self, fn: Callable[[], Any], callback: Callback | None = None, *, what: str = "") -> None:
        if self._closed:
            return

        def job() -> None:
            try:
                res, err = fn(), None
            except BaseException as exc:  # noqa: BLE001 - reported to the GUI, never lost
                res, err = None, exc
                log.warning("%s failed: %s", what or getattr(fn, "__name__", "instrument job"), exc)
            self._done.append((callback, res, err))

        self._pool.submit(job)

    def _deliver(self) -> None:
        while self._done:
            cb, res, err = self._done.popleft()
            self.jobs_done += 1
            if cb is not None:
                try:
                    cb(res, err)
                except Exception:  # a broken callback must not kill the timer
                    log.exception("GUI callback failed")

    def idle(self) -> bool:
        """Nothing queued or running on the instrument thread (approximate; for tests and start-up)."""
        return self._pool._work_queue.qsize() == 0 and not self._poll_busy.is_set() and not self._done

    # ------------------------------------------------------------------ connect / poll
    def connect_all(self) -> None:
        for role in self.lab.roles:
            self.connect_role(role)

    def connect_role(self, role: str) -> None:
        def cb(_res: Any, err: BaseException | None) -> None:
            self.connection.emit(role, "connected" if err is None else f"error: {err}")

        self.connection.emit(role, "connecting…")
        self.submit(lambda: self.lab.connect([role]), cb, what=f"connecting {role}")

    def poll(self) -> None:
        if self._closed or self._poll_busy.is_set():
            return
        running = self.run_active()
        roles = [r for r in sorted(self.lab.connected) if not (running and r in SDK_ROLES)]
        if not roles:
            return
        self._poll_busy.set()

        def read() -> tuple[dict, dict, float]:
            try:
                rb = self.lab.readbacks(roles)
                ext: dict[str, dict[str, str]] = {}
                x = self.lab.get("xray")
                if "xray" in roles and x is not None and callable(getattr(x, "faults", None)):
                    try:
                        f = x.faults()
                        ext["xray"] = {"faults": "none" if not f else str(f)}
                    except Exception as exc:
                        ext["xray"] = {"faults": f"unreadable ({exc})"}
                return rb, ext, float(self.session.clock.now())
            finally:
                self._poll_busy.clear()

        def cb(res: Any, err: BaseException | None) -> None:
            if err is None and res is not None:
                rb, ext, t = res
                self.readbacks.emit(rb, t)
                if ext:
                    self.extras.emit(ext)

        self.submit(read, cb, what="polling readbacks")

    # ------------------------------------------------------------------ X-ray keep-alive for manual use
    def start_keepalive(self) -> None:
        x = self.lab.get("xray")
        if x is None or self._keepalive is not None:
            return
        self._keepalive = self.session.clock.call_every(getattr(x, "KEEPALIVE_S", 1.0), x.keepalive,
                                                        name="gui-xray-keepalive", hold=True)

    def stop_keepalive(self) -> None:
        k, self._keepalive = self._keepalive, None
        if k is not None:
            k.cancel()

    # ------------------------------------------------------------------ shutdown
    def close(self, timeout_s: float = 10.0) -> None:
        self._closed = True
        self._poll.stop()
        self._drain.stop()
        self.stop_keepalive()
        t0 = time.monotonic()
        self._pool.shutdown(wait=False, cancel_futures=True)
        while self._pool._threads and time.monotonic() - t0 < timeout_s:  # give a running job its time
            if all(not t.is_alive() for t in self._pool._threads):
                break
            time.sleep(0.02)
