"""Bluesky event-model documents for sflab runs.

A run becomes the usual Bluesky document stream, built with ``event_model``'s own composers (which
validate every document against its JSON schema):

``start``        uid, time, sflab metadata (run_uid, procedure, parameters, sample, path, plan_name, …)
``descriptor``   one per run-file stream (``spectrum``, ``decay``, ``g2`` …, named as in the file),
                 data keys = the stream's per-point fields with dtype/shape/units; the stream's static
                 axes (wavelength, t, tau) as the descriptor's ``configuration``; plus one ``readbacks``
                 descriptor with the instrument readbacks (``<role>_<name>``)
``event``        one per point and descriptor: the point's values as stored in the file (declared dtype,
                 fill values for fields the point did not emit) and ``time``/``timestamps`` = the file's
                 ``scan/timestamp`` of that point; ``seq_num`` = point index + 1
``stop``         exit status mapped to Bluesky's (success → success, aborted/interrupted → abort,
                 failed → fail) with sflab's own status and error in ``reason``/``sflab_exit_status``

Two sources give the same documents:

* :func:`documents_from_file` — any run file, finished, still written (SWMR) or interrupted;
* :func:`subscribe` — live, from a runner's :class:`acq.events.EventBus`: a subscriber thread turns the
  bus's ``run.start``/``point``/``run.stop`` records into documents and hands each ``(name, doc)`` to
  the user's callbacks — any Bluesky consumer (databroker/Tiled writers, ``bluesky.callbacks``
  live plots, Kafka producers) — without sflab knowing them. The runner never waits for a consumer;
  points the bus had to drop for a slow consumer are read back from the run file, so the stream stays
  complete.
"""

from __future__ import annotations

import calendar
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .events import Event, EventBus, Subscription
from .store import RunData, Stream, open_run, streams_of

log = logging.getLogger(__name__)

__all__ = ["documents_from_file", "subscribe", "DocumentStream", "RunComposer", "validate_document",
           "BLUESKY_EXIT_STATUS", "READBACKS"]

Callback = Callable[[str, Any], Any]   # (name, document), as Bluesky consumers take them

READBACKS = "readbacks"
BLUESKY_EXIT_STATUS = {"success": "success", "aborted": "abort", "interrupted": "abort", "failed": "fail"}


def validate_document(name: str, doc: Mapping[str, Any]) -> None:
    """Validate one document with event-model's schema for ``name`` (raises jsonschema.ValidationError)."""
    import event_model

    event_model.schema_validators[event_model.DocumentNames[name]].validate(doc)


def _iso_to_posix(s: str) -> float | None:
    try:
        base, _, frac = s.rstrip("Z").partition(".")
        t = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
        return t + (float("0." + frac) if frac else 0.0)
    except ValueError:
        return None


def _json_type(dtype: np.dtype, shape: Sequence[int]) -> str:
    if shape:
        return "array"
    k = np.dtype(dtype).kind
    return {"f": "number", "i": "integer", "u": "integer", "b": "boolean", "S": "string", "U": "string",
            "O": "string"}.get(k, "number")


def _py(v: Any) -> Any:
    """Scalars as Python numbers (JSON-able, schema 'number'); arrays stay NumPy arrays."""
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v[()]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return v


class RunComposer:
    """Builds the documents of one run from its stream declarations; feed it points in order.

    ``emit(name, doc)`` receives every document as soon as it is composed."""

    def __init__(self, streams: Sequence[Stream], readbacks: Mapping[str, Mapping[str, str]],
                 emit: Callback, *, metadata: Mapping[str, Any], start_time: float, uid: str | None = None) -> None:
        import event_model

        self.streams = list(streams)
        self.readbacks = {r: dict(v) for r, v in readbacks.items()}
        self._emit = emit
        self.n_points = 0
        self.bundle = event_model.compose_run(uid=uid or str(uuid.uuid4()), time=float(start_time),
                                              metadata=dict(metadata))
        self.start = self.bundle.start_doc
        emit("start", self.start)
        self._desc: dict[str, Any] = {}
        for st in self.streams:
            keys: dict[str, Any] = {}
            for fl in st.fields:
                keys[fl.name] = {"dtype": _json_type(np.dtype(fl.dtype), fl.shape), "shape": list(fl.shape),
                                 "dtype_numpy": np.dtype(fl.dtype).str, "source": f"sflab:{st.name}/{fl.name}",
                                 "units": fl.units, "object_name": st.name}
                if fl.long_name:
                    keys[fl.name]["long_name"] = fl.long_name
                if st.axes and fl.name == st.signal and fl.shape:
                    keys[fl.name]["dims"] = [a if a != "." else f"dim_{i}" for i, a in enumerate(st.axes[1:])]
            if st.sidecar:
                keys["sidecar"] = {"dtype": "string", "shape": [], "source": f"sflab:{st.name}/sidecar",
                                   "units": "", "object_name": st.name,
                                   "description": "Photon-HDF5 file with this point's raw time tags"}
            static = {k: np.asarray(v).tolist() for k, (v, _u) in st.static.items()}
            config = {st.name: {"data": static, "timestamps": {k: float(start_time) for k in static},
                                "data_keys": {k: {"dtype": "array", "shape": [int(np.size(v))],
                                                  "source": f"sflab:{st.name}/{k}", "units": u}
                                              for k, (v, u) in st.static.items()}}}
            hints = {st.name: {"fields": [st.signal]}}
            b = self.bundle.compose_descriptor(name=st.name, data_keys=keys, configuration=config,
                                               object_keys={st.name: list(keys)}, hints=hints,
                                               time=float(start_time))
            self._desc[st.name] = b
            emit("descriptor", b.descriptor_doc)
        if self.readbacks:
            keys = {f"{role}_{name}": {"dtype": "number", "shape": [], "dtype_numpy": "<f8",
                                       "source": f"sflab:instrument/{role}/{name}", "units": unit,
                                       "object_name": role}
                    for role, names in self.readbacks.items() for name, unit in names.items()}
            obj = {role: [f"{role}_{n}" for n in names] for role, names in self.readbacks.items()}
            b = self.bundle.compose_descriptor(name=READBACKS, data_keys=keys, object_keys=obj,
                                               time=float(start_time))
            self._desc[READBACKS] = b
            emit("descriptor", b.descriptor_doc)

    def point(self, streams: Mapping[str, Mapping[str, Any]], readbacks: Mapping[str, Mapping[str, Any]],
              timestamp: float, sidecars: Mapping[str, str] | None = None) -> None:
        """One point: emits one event per descriptor, values cast to the declared dtypes (missing → fill)."""
        t = float(timestamp)
        seq = self.n_points + 1
        for st in self.streams:
            vals = streams.get(st.name, {})
            data: dict[str, Any] = {}
            for fl in st.fields:
                v = vals.get(fl.name)
                if v is None:
                    v = np.full(fl.shape, fl.fill, dtype=fl.dtype)
                data[fl.name] = _py(np.asarray(v, dtype=fl.dtype).reshape(fl.shape))
            if st.sidecar:
                data["sidecar"] = str((sidecars or {}).get(st.name, ""))
            ev = self._desc[st.name].compose_event(data=data, timestamps={k: t for k in data}, seq_num=seq, time=t)
            self._emit("event", ev)
        if self.readbacks:
            data = {}
            for role, names in self.readbacks.items():
                rv = readbacks.get(role, {})
                for name in names:
                    v = rv.get(name)
                    data[f"{role}_{name}"] = float(np.nan if v is None else v)
            ev = self._desc[READBACKS].compose_event(data=data, timestamps={k: t for k in data}, seq_num=seq, time=t)
            self._emit("event", ev)
        self.n_points += 1

    def stop(self, exit_status: str, *, reason: str = "", end_time: float | None = None) -> dict[str, Any]:
        status = BLUESKY_EXIT_STATUS.get(exit_status, "fail")
        why = reason or ("" if exit_status == "success" else exit_status)
        doc: dict[str, Any] = dict(self.bundle.compose_stop(
            exit_status=status, reason=why,
            time=float(time.time() if end_time is None else end_time)))
        doc["sflab_exit_status"] = exit_status
        doc["sflab_n_points"] = self.n_points
        validate_document("stop", doc)
        self._emit("stop", doc)
        return doc


def _metadata(run: RunData | None, *, procedure: str, parameters: Mapping[str, Any], path: Path,
              run_uid: str, sample_name: str = "", resume_from: int = 0) -> dict[str, Any]:
    md: dict[str, Any] = {"plan_name": procedure, "procedure": procedure, "run_uid": run_uid,
                          "run_file": str(path), "parameters": dict(parameters), "sample": sample_name,
                          "facility": "sflab"}
    if resume_from:
        md["resumed_at"] = int(resume_from)
    if run is not None:
        md["sample"] = run.sample_name
        md["start_time_iso"] = run.start_time
    return md


def documents_from_file(path: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """The document stream of a run file (completed points only; a file still being written ends without
    a stop document). The start uid is the file's ``run_uid`` as a UUID, so the stream is reproducible."""
    path = Path(path)
    run = open_run(path)
    streams, rb, _default = streams_of(path)
    out: list[tuple[str, dict[str, Any]]] = []
    t0 = _iso_to_posix(run.start_time) or (float(run.timestamp[0]) if run.n_points else 0.0)
    md = _metadata(run, procedure=run.procedure, parameters=run.parameters, path=path, run_uid=run.run_uid)
    md["resumed_at"] = run.resumed_at
    comp = RunComposer(streams, rb, lambda n, d: out.append((n, d)), metadata=md, start_time=t0,
                       uid=_uid_of(run.run_uid))
    yield from out
    for i in range(run.n_points):
        out.clear()
        pts = {s.name: {k: v[i] for k, v in run.streams.get(s.name, {}).items()} for s in streams}
        rbi = {role: {k: v[i] for k, v in d.items()} for role, d in run.readbacks.items()}
        side = {s: run.sidecars[s][i] for s in run.sidecars if i < len(run.sidecars[s])}
        comp.point(pts, rbi, float(run.timestamp[i]), side)
        yield from out
    if run.finished:
        out.clear()
        err = [e.get("message", "") for e in run.events if e.get("kind") in ("error", "aborted", "interrupted")]
        comp.stop(run.exit_status, reason="; ".join(err), end_time=_iso_to_posix(run.end_time))
        yield from out


def _uid_of(run_uid: str) -> str:
    try:
        return str(uuid.UUID(hex=run_uid))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sflab:{run_uid}"))


# ====================================================================== live, from the event bus
class DocumentStream:
    """Subscriber thread: bus records of every run on ``bus`` → documents → ``callbacks``.

    A callback that raises is logged and kept (one consumer's bug never stops the others or the run)."""

    def __init__(self, bus: EventBus, callbacks: Sequence[Callback], *, maxsize: int = 100_000) -> None:
        self.callbacks = list(callbacks)
        self.sub: Subscription = bus.subscribe("run.start", "point", "run.stop", maxsize=maxsize)
        self._comp: RunComposer | None = None
        self._path: Path | None = None
        self._expected = 0
        self._idle = threading.Condition()
        self._processed = 0
        self.errors: list[str] = []
        self.runs = 0
        self._thread = threading.Thread(target=self._loop, name="sflab-documents", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------
    def _emit(self, name: str, doc: dict[str, Any]) -> None:
        for cb in self.callbacks:
            try:
                cb(name, doc)
            except Exception as exc:  # noqa: BLE001 - a consumer's bug never stops the stream
                msg = f"document callback {cb!r} failed on {name}: {type(exc).__name__}: {exc}"
                log.error(msg)
                self.errors.append(msg)

    def _loop(self) -> None:
        while True:
            ev = self.sub.get()
            if ev is None:
                return
            try:
                self._handle(ev)
            except Exception as exc:  # noqa: BLE001 - logged; the next run starts clean
                log.error("document stream: %s on %s", exc, ev.topic, exc_info=True)
                self.errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                with self._idle:
                    self._processed += 1
                    self._idle.notify_all()

    def _handle(self, ev: Event) -> None:
        d = ev.data
        if ev.topic == "run.start":
            path = Path(d["path"])
            streams, rb, _ = streams_of(path)
            self._path = path
            resume_from = int(d.get("resume_from") or 0)
            md = _metadata(None, procedure=str(d.get("procedure", "")), parameters=d.get("parameters") or {},
                           path=path, run_uid=ev.run_uid, resume_from=resume_from)
            uid = _uid_of(ev.run_uid) if not resume_from else str(uuid.uuid4())
            self._comp = RunComposer(streams, rb, self._emit, metadata=md, start_time=ev.time, uid=uid)
            self._expected = 0
            self.runs += 1
            if resume_from:   # a resumed run: the points copied from the interrupted file come first
                self._catch_up(resume_from)
        elif ev.topic == "point" and self._comp is not None:
            i = int(d["index"])
            if i > self._expected:
                self._catch_up(i)     # the bus dropped records for us: read them back from the file
            if i == self._expected:
                self._comp.point(d.get("streams") or {}, d.get("readbacks") or {},
                                 float(d.get("timestamp", d.get("lab_time", ev.time))), d.get("sidecars") or {})
                self._expected += 1
        elif ev.topic == "run.stop" and self._comp is not None:
            n = int(d.get("n_points") or 0)
            if n > self._expected:
                self._catch_up(n)
            self._comp.stop(str(d.get("exit_status", "failed")), reason=str(d.get("error") or ""), end_time=ev.time)
            self._comp = None

    def _catch_up(self, upto: int) -> None:
        assert self._comp is not None and self._path is not None
        run = open_run(self._path)
        for i in range(self._expected, min(upto, run.n_points)):
            pts = {s.name: {k: v[i] for k, v in run.streams.get(s.name, {}).items()} for s in self._comp.streams}
            rbi = {role: {k: v[i] for k, v in dd.items()} for role, dd in run.readbacks.items()}
            side = {s: run.sidecars[s][i] for s in run.sidecars if i < len(run.sidecars[s])}
            self._comp.point(pts, rbi, float(run.timestamp[i]), side)
            self._expected = i + 1

    # ------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record published so far has been turned into documents."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._processed + self.sub.dropped < self.sub.received:
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._idle.wait(0.05 if left is None else min(left, 0.05))
        return True

    def close(self, timeout: float | None = 10.0) -> None:
        self.flush(timeout)
        self.sub.close()
        self._thread.join(timeout)


def subscribe(bus: EventBus, *callbacks: Callback) -> DocumentStream:
    """Hand every run on ``bus`` to ``callbacks`` as Bluesky documents: ``callback(name, doc)``.

    Example — a databroker/Tiled writer, a Bluesky live table or a Kafka producer all take this call::

        stream = documents.subscribe(runner.bus, my_consumer)
        runner.run()
        stream.close()
    """
    if not callbacks:
        raise ValueError("subscribe needs at least one callback(name, doc)")
    return DocumentStream(bus, callbacks)
