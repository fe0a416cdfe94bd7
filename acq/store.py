"""The run file: one NeXus HDF5 file per run, written in SWMR mode, read back with :func:`open_run`.

Layout (DESIGN.md §Run files)::

    /  @default=entry
    /entry (NXentry) @default=<main stream>
        start_time end_time exit_status run_uid procedure parameters(JSON) title
        instrument (NXinstrument)/<role> (NXcollection)/<readback>[n]      units on every dataset
        sample (NXsample)/ name, truth (JSON)
        <stream> (NXdata) @signal @axes @<axis>_indices /<field>[n, ...]     one group per stream
        scan (NXcollection)/ point_id[n] timestamp[n] completed[n] resumed_at[k]
        provenance (NXnote)/ config software event_log[m] suspensions[j] backstop
        analysis (NXcollection)   filled after the run (not under SWMR)

Write protocol: the whole skeleton is created before SWMR starts (SWMR cannot add objects); each
point extends every per-point dataset by one row (chunk = one point), the file is flushed, and only
then ``scan/point_id``, ``scan/timestamp`` and ``scan/completed`` are extended and flushed. A reader
therefore trusts a row only when ``completed`` says so; a writer killed between two points leaves
a file whose completed points are all intact (tests/acq/test_store_sigkill.py proves it with a
real ``kill -9``).

A file whose writer died keeps HDF5's "open for SWMR write" flag. :func:`open_run` opens every file
normally first (HDF5 then refuses a truncated file at once) and uses ``swmr=True`` only for such flagged
files; anything that is not a complete run file raises :class:`RunFileError` naming the file and the
problem. ``sflab resume`` and :func:`repair` share one crash-safe copy path (:func:`copy_run` beside the
file, :func:`swap_in` with an atomic rename; the original kept as a backup) —
docs/decisions/0008-crash-safe-resume-and-readers.md, docs/run-files.md.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from . import crashpoints

log = logging.getLogger(__name__)

__all__ = ["Field", "Stream", "RunWriter", "RunData", "RunFileError", "open_run", "open_h5", "is_run_file",
           "repair", "software_versions", "post_run_update", "copy_completed", "copy_run", "swap_in",
           "backups_of", "find_source", "set_aside", "streams_of", "ascii_units", "set_units", "units_from_name",
           "EXIT_STATUSES"]

EXIT_STATUSES = ("running", "success", "aborted", "failed", "interrupted")
_STR = h5py.string_dtype("utf-8")
_STATUS_LEN = 16


@dataclass(frozen=True)
class Field:
    """One per-point dataset of a stream: ``shape`` is the per-point shape (``()`` for scalars)."""

    name: str
    shape: tuple[int, ...] = ()
    dtype: str = "f8"
    units: str = ""
    long_name: str = ""

    @property
    def fill(self) -> Any:
        kind = np.dtype(self.dtype).kind
        return np.nan if kind in "fc" else 0


@dataclass(frozen=True)
class Stream:
    """A named NXdata group. ``axes`` has one entry per signal dimension *including* the point
    dimension: a per-point field name, a static axis name, or ``"."``. ``static`` holds axes known
    before the run: ``{name: (values, units)}``."""

    name: str
    fields: tuple[Field, ...]
    signal: str
    axes: tuple[str, ...] = ()
    static: Mapping[str, tuple[Any, str]] = field(default_factory=dict)
    sidecar: bool = False       # points may carry a Photon-HDF5 sidecar file (external link)
    long_name: str = ""

    def __post_init__(self) -> None:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"stream {self.name!r} has duplicate fields")
        if self.signal not in names:
            raise ValueError(f"stream {self.name!r}: signal {self.signal!r} is not one of its fields {names}")
        sig = self.field(self.signal)
        if self.axes and len(self.axes) != 1 + len(sig.shape):
            raise ValueError(f"stream {self.name!r}: axes {self.axes} must have {1 + len(sig.shape)} "
                             f"entries (points + signal dims {sig.shape})")
        for a in self.axes:
            if a != "." and a not in names and a not in self.static:
                raise ValueError(f"stream {self.name!r}: axis {a!r} is neither a field nor a static axis")
        for k, (vals, _u) in self.static.items():
            if k in names:
                raise ValueError(f"stream {self.name!r}: static axis {k!r} clashes with a field")
            if np.ndim(vals) != 1:
                raise ValueError(f"stream {self.name!r}: static axis {k!r} must be 1-D")

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"stream {self.name!r} has no field {name!r} (fields: {[f.name for f in self.fields]})")


def software_versions() -> dict[str, str]:
    from .plugins import distribution_version

    out = {"python": sys.version.split()[0], "platform": platform.platform(),
           "hdf5": h5py.version.hdf5_version}
    for dist in ("sflab", "numpy", "h5py", "PyMeasure", "PyVISA", "PyVISA-py", "horiba-sdk", "scipy",
                 "numba", "iminuit"):
        out[dist] = distribution_version(dist) or "not installed"
    return out


def _json(obj: Any) -> str:
    return json.dumps(obj, default=_json_default, sort_keys=True)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return repr(o)


# ---------------------------------------------------------------- units (NeXus: ASCII @units on every numeric
# dataset, "" when dimensionless; the pretty form, when it differs, goes into @long_name)
_ASCII = (("µ", "u"), ("μ", "u"), ("⁻¹", "^-1"), ("⁻²", "^-2"), ("²", "^2"), ("³", "^3"), ("°C", "degC"),
          ("°", "deg"), ("Å", "Angstrom"), ("Ω", "Ohm"), ("·", "*"), ("×", "*"), ("−", "-"))


def ascii_units(units: str) -> str:
    """``µJ/cm²`` → ``uJ/cm^2`` (NeXus unit strings are ASCII); raises on a character it cannot map."""
    out = units
    for a, b in _ASCII:
        out = out.replace(a, b)
    if not out.isascii():
        raise ValueError(f"unit {units!r}: no ASCII form for {[c for c in out if not c.isascii()]}; "
                         "write it in ASCII (e.g. uJ/cm^2, degC, Angstrom)")
    return out


def set_units(d: h5py.Dataset | h5py.Group, units: str, long_name: str = "") -> None:
    """``@units`` (ASCII) and ``@long_name``; a non-ASCII unit's pretty form is kept in the long name."""
    u = ascii_units(units or "")
    d.attrs["units"] = u
    if u != (units or ""):
        base = long_name or d.name.rsplit("/", 1)[-1]
        long_name = f"{base} ({units})"
    if long_name:
        d.attrs["long_name"] = long_name


def _writer_id() -> str:
    return json.dumps({"host": platform.node(), "pid": os.getpid()})


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - not every filesystem allows it
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e6):06d}Z"


class _Slot:
    """One extendible dataset, written one row at a time through h5py's low-level API."""

    __slots__ = ("dsid", "shape", "dtype", "mspace", "vlen", "count")

    def __init__(self, ds: h5py.Dataset) -> None:
        self.dsid = ds.id
        self.shape = tuple(ds.shape[1:])
        self.dtype = ds.dtype
        self.vlen = h5py.check_string_dtype(ds.dtype) is not None
        self.count = (1, *self.shape)
        self.mspace = h5py.h5s.create_simple(self.count)

    def put(self, i: int, value: Any, label: str = "") -> None:
        self.dsid.set_extent((i + 1, *self.shape))
        if value is None:
            return  # the fill value (NaN / 0 / "") stands
        if self.vlen:
            arr = np.array([value], dtype=self.dtype)
        else:
            arr = np.asarray(value)
            if arr.shape != self.shape:
                raise ValueError(f"{label}: got shape {arr.shape}, declared {self.shape}")
            arr = np.ascontiguousarray(arr, dtype=self.dtype).reshape(self.count)
        fs = self.dsid.get_space()
        fs.select_hyperslab((i, *(0,) * len(self.shape)), self.count)
        self.dsid.write(self.mspace, fs, arr)


class RunWriter:
    """Creates and fills one run file. Not thread-safe: one writer thread (the runner's)."""

    def __init__(self, path: str | os.PathLike, *, procedure: str, parameters: Mapping[str, Any],
                 streams: Sequence[Stream], readbacks: Mapping[str, Mapping[str, str]] | None = None,
                 config: Mapping[str, Any] | None = None, sample: Mapping[str, Any] | None = None,
                 run_uid: str | None = None, start_time: float | str | None = None, title: str = "",
                 default_stream: str | None = None, swmr: bool = True,
                 attrs: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            raise FileExistsError(f"{self.path} exists; sflab never overwrites a run file")
        self.run_uid = run_uid or uuid.uuid4().hex
        self.streams = {s.name: s for s in streams}
        if len(self.streams) != len(streams):
            raise ValueError("stream names must be unique")
        self.readbacks = {r: dict(v) for r, v in (readbacks or {}).items()}
        self.n = 0
        self._lock = threading.Lock()
        self._closed = False
        t0: float | str = time.time() if start_time is None else start_time
        self._f = h5py.File(self.path, "w", libver="latest")
        try:
            self._build(procedure, parameters, config or {}, sample or {}, t0, title, default_stream)
            for where, values in (attrs or {}).items():  # a copy keeps every attribute of its original
                obj = self._f[where]
                for k, v in values.items():
                    obj.attrs[k] = v
        except Exception:
            self._f.close()
            self.path.unlink(missing_ok=True)
            raise
        self._f.flush()
        self.swmr = swmr
        if swmr:
            self._f.swmr_mode = True
        log.info("run file %s created (%d streams)", self.path, len(self.streams))

    # ------------------------------------------------------------------ skeleton
    def _build(self, procedure: str, parameters: Mapping[str, Any], config: Mapping[str, Any],
               sample: Mapping[str, Any], t0: float | str, title: str, default_stream: str | None) -> None:
        f = self._f
        f.attrs["default"] = "entry"
        f.attrs["creator"] = "sflab"
        f.attrs["NX_class"] = "NXroot"
        f.attrs["HDF5_Version"] = h5py.version.hdf5_version
        e = f.create_group("entry")
        e.attrs["NX_class"] = "NXentry"
        main = default_stream or (next(iter(self.streams)) if self.streams else None)
        if main is not None:
            if main not in self.streams:
                raise ValueError(f"default stream {main!r} is not declared")
            e.attrs["default"] = main
        e.create_dataset("title", data=title or procedure, dtype=_STR)
        e.create_dataset("start_time", data=t0 if isinstance(t0, str) else _iso(t0), dtype=_STR)
        # fixed-size so they can be overwritten under SWMR
        e.create_dataset("end_time", data=np.bytes_(" " * 32), dtype="S32")
        e.create_dataset("exit_status", data=np.bytes_("running"), dtype=f"S{_STATUS_LEN}")
        e.create_dataset("run_uid", data=self.run_uid, dtype=_STR)
        e.create_dataset("procedure", data=procedure, dtype=_STR)
        e.create_dataset("parameters", data=_json(parameters), dtype=_STR)
        ins = e.create_group("instrument")
        ins.attrs["NX_class"] = "NXinstrument"
        for role, names in self.readbacks.items():
            g = ins.create_group(role)
            g.attrs["NX_class"] = "NXcollection"
            for name, unit in names.items():
                d = g.create_dataset(name, (0,), maxshape=(None,), chunks=(256,), dtype="f8",
                                     fillvalue=np.nan)
                set_units(d, unit)
        s = e.create_group("sample")
        s.attrs["NX_class"] = "NXsample"
        s.create_dataset("name", data=str(sample.get("name", "")), dtype=_STR)
        s.create_dataset("truth", data=_json(sample.get("truth", {})), dtype=_STR)
        s["truth"].attrs["description"] = "virtual-sample truth for simulated runs ({} at the setup)"
        for sname, st in self.streams.items():
            g = e.create_group(sname)
            g.attrs["NX_class"] = "NXdata"
            g.attrs["signal"] = st.signal
            if st.long_name:
                g.attrs["title"] = st.long_name
            sig = st.field(st.signal)
            axes = list(st.axes) if st.axes else ["."] * (1 + len(sig.shape))
            g.attrs["axes"] = np.array(axes, dtype=h5py.string_dtype("utf-8"))
            for fl in st.fields:
                chunk = (1, *fl.shape) if fl.shape else (256,)
                d = g.create_dataset(fl.name, (0, *fl.shape), maxshape=(None, *fl.shape), chunks=chunk,
                                     dtype=fl.dtype, fillvalue=fl.fill)
                if np.dtype(fl.dtype).kind in "biufc":
                    set_units(d, fl.units, fl.long_name)
                elif fl.long_name:
                    d.attrs["long_name"] = fl.long_name
                if len(fl.shape) == 1 and fl.name == st.signal:
                    d.attrs["interpretation"] = "spectrum"
            for name, (vals, unit) in st.static.items():
                d = g.create_dataset(name, data=np.asarray(vals))
                set_units(d, unit)
            for pos, a in enumerate(axes):
                if a == ".":
                    continue
                if a in st.static:
                    g.attrs[f"{a}_indices"] = pos
                else:
                    fl = st.field(a)
                    g.attrs[f"{a}_indices"] = 0 if not fl.shape else [0, pos]
            if st.sidecar:
                d = g.create_dataset("sidecar", (0,), maxshape=(None,), chunks=(256,), dtype=_STR)
                d.attrs["description"] = "Photon-HDF5 file with this point's raw time tags (relative path)"
        sc = e.create_group("scan")
        sc.attrs["NX_class"] = "NXcollection"
        for name, dt, unit in (("point_id", "i8", ""), ("timestamp", "f8", "s"), ("flag", "u1", ""),
                               ("completed", "u1", "")):
            d = sc.create_dataset(name, (0,), maxshape=(None,), chunks=(1024,), dtype=dt)
            set_units(d, unit)
        sc["timestamp"].attrs["description"] = "lab time (POSIX s) when the point was completed"
        sc["flag"].attrs["description"] = ("0: good; 1: a condition tripped during the point (HV drop, "
                                           "interlock, count-rate overload) — the event log says which")
        set_units(sc.create_dataset("resumed_at", (0,), maxshape=(None,), chunks=(16,), dtype="i8"), "")
        sc["resumed_at"].attrs["description"] = "point index at which a resumed run continued"
        p = e.create_group("provenance")
        p.attrs["NX_class"] = "NXnote"
        p.create_dataset("config", data=_json(config), dtype=_STR)
        p.create_dataset("software", data=_json(software_versions()), dtype=_STR)
        p.create_dataset("host", data=platform.node(), dtype=_STR)
        for name in ("event_log", "suspensions"):
            p.create_dataset(name, (0,), maxshape=(None,), chunks=(64,), dtype=_STR)
        p.create_dataset("backstop", data=np.bytes_(" " * 4096), dtype="S4096")
        p.create_dataset("writer", data=np.bytes_(_writer_id().ljust(256)), dtype="S256")
        p["writer"].attrs["description"] = "host and process id of the program writing this file (JSON)"

    # ------------------------------------------------------------------ per point
    def _slots(self) -> None:
        """Cache low-level handles of every per-point dataset (the hot path avoids h5py's
        high-level lookups and selections: ~25 µs per dataset instead of ~100 µs)."""
        e = self._f["entry"]
        self._stream_slots: dict[str, list[tuple[str, _Slot]]] = {}
        for sname, st in self.streams.items():
            g = e[sname]
            self._stream_slots[sname] = [(fl.name, _Slot(g[fl.name])) for fl in st.fields]
            if st.sidecar:
                self._stream_slots[sname].append(("sidecar", _Slot(g["sidecar"])))
        self._rb_slots = {role: [(name, _Slot(e["instrument"][role][name])) for name in names]
                          for role, names in self.readbacks.items()}
        sc = e["scan"]
        self._scan_slots = [_Slot(sc["point_id"]), _Slot(sc["timestamp"]),
                            _Slot(sc["flag"]) if "flag" in sc else None, _Slot(sc["completed"])]

    def append(self, streams: Mapping[str, Mapping[str, Any]],
               readbacks: Mapping[str, Mapping[str, float]] | None = None, *,
               point_id: int | None = None, timestamp: float | None = None,
               sidecars: Mapping[str, str] | None = None, flag: int = 0) -> int:
        """Write one point. ``streams[stream][field] = value``; missing fields/streams are filled
        (NaN or 0). Returns the point index. The point counts only once ``completed`` is written."""
        with self._lock:
            if self._closed:
                raise RuntimeError("run file is closed")
            if not hasattr(self, "_stream_slots"):
                self._slots()
            for sname, vals in streams.items():
                st = self.streams.get(sname)
                if st is None:
                    raise KeyError(f"stream {sname!r} was not declared (declared: {list(self.streams)})")
                names = {f.name for f in st.fields}
                for key in vals:
                    if key not in names:
                        raise KeyError(f"stream {sname!r} has no per-point field {key!r} (fields: {sorted(names)})")
            i = self.n
            for sname, slots in self._stream_slots.items():
                vals = streams.get(sname, {})
                for name, slot in slots:
                    if name == "sidecar":
                        slot.put(i, (sidecars or {}).get(sname, ""))
                    else:
                        slot.put(i, vals.get(name), f"{sname}/{name}")
            for role, slots in self._rb_slots.items():
                rv = (readbacks or {}).get(role, {})
                for name, slot in slots:
                    slot.put(i, rv.get(name))
            self._f.flush()
            pid, ts, fl, done = self._scan_slots
            assert pid is not None and ts is not None and done is not None
            pid.put(i, i if point_id is None else point_id)
            ts.put(i, time.time() if timestamp is None else timestamp)
            if fl is not None:
                fl.put(i, int(flag))
            done.put(i, 1)
            self._f.flush()
            self.n = i + 1
            return i

    def log_event(self, kind: str, message: str, *, t: float | None = None, **data: Any) -> None:
        rec = {"t": time.time() if t is None else t, "kind": kind, "message": message, **data}
        self._append_str("event_log", _json(rec))

    def log_suspension(self, record: Mapping[str, Any]) -> None:
        self._append_str("suspensions", _json(record))

    def add_resumed_at(self, at_point: int) -> None:
        with self._lock:
            d = self._f["entry/scan/resumed_at"]
            d.resize(d.shape[0] + 1, axis=0)
            d[-1] = at_point
            self._f.flush()

    def mark_resumed(self, at_point: int, note: str, *, t: float | None = None, **data: Any) -> None:
        self.add_resumed_at(at_point)
        self.log_event("resume", note, t=t, point=at_point, **data)

    def _append_str(self, name: str, s: str) -> None:
        with self._lock:
            if self._closed:
                return
            d = self._f["entry/provenance"][name]
            d.resize(d.shape[0] + 1, axis=0)
            d[-1] = s
            self._f.flush()

    # ------------------------------------------------------------------ end
    def finish(self, exit_status: str, *, end_time: float | str | None = None,
               backstop: Mapping[str, Any] | None = None) -> None:
        if exit_status not in EXIT_STATUSES[1:]:
            raise ValueError(f"exit_status {exit_status!r} not in {EXIT_STATUSES[1:]}")
        with self._lock:
            if self._closed:
                return
            e = self._f["entry"]
            e["exit_status"][()] = np.bytes_(exit_status)
            end = end_time if isinstance(end_time, str) else _iso(time.time() if end_time is None else end_time)
            e["end_time"][()] = np.bytes_(end[:32])
            if backstop is not None:
                b = _json(backstop).encode()
                if len(b) > 4096:
                    b = b[:4093] + b"..."
                e["provenance/backstop"][()] = np.bytes_(b)
            self._f.flush()

    def close(self) -> None:
        """Close the file and make it durable (fsync), so a rename that follows cannot expose a
        file whose contents are still in the page cache."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._f.close()
                _fsync(self.path)

    @classmethod
    def reopen(cls, path: str | os.PathLike, *, swmr: bool = True) -> RunWriter:
        """Continue writing a closed run file (``sflab resume`` after its copy was swapped in): the
        streams and readbacks are those recorded in the file, the point count is its completed points,
        ``exit_status`` goes back to ``running`` and the writer id is this process."""
        self = cls.__new__(cls)
        self.path = Path(path)
        self._lock = threading.Lock()
        self._closed = False
        self._f = h5py.File(self.path, "a", libver="latest")
        try:
            e = self._f["entry"]
            decl, rb, _default = _declarations(e)
            self.streams = {st.name: st for st in decl}
            self.readbacks = rb
            self.run_uid = _s(e["run_uid"][()])
            done = e["scan/completed"][()]
            bad = np.flatnonzero(done != 1)
            self.n = int(bad[0]) if bad.size else int(done.shape[0])
            for name in ("point_id", "timestamp", "completed"):
                e["scan"][name].resize(self.n, axis=0)   # drop a half-written tail row, if any
            e["exit_status"][()] = np.bytes_("running")
            e["end_time"][()] = np.bytes_(" " * 32)
            if "writer" in e["provenance"]:
                e["provenance/writer"][()] = np.bytes_(_writer_id().ljust(256))
            self._f.flush()
        except Exception:
            self._f.close()
            raise
        self.swmr = swmr
        if swmr:
            self._f.swmr_mode = True
        return self

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def post_run_update(path: str | os.PathLike, *, analysis: Mapping[str, Any] | None = None,
                    sidecar_links: bool = True) -> None:
    """After the writer closed: add ``/entry/analysis`` (JSON summary) and external links to the
    per-point sidecar files (objects cannot be added under SWMR, so this happens here)."""
    with h5py.File(path, "a", libver="latest") as f:
        e = f["entry"]
        if analysis is not None:
            if "analysis" in e:
                del e["analysis"]
            g = e.create_group("analysis")
            g.attrs["NX_class"] = "NXcollection"
            # keep the summary's own key order (verdict first), unlike the sorted provenance JSON
            g.create_dataset("summary", data=json.dumps(analysis, default=_json_default), dtype=_STR)
            for k, v in analysis.items():
                if k != "summary" and isinstance(v, (int, float, str, np.number)) and not isinstance(v, bool):
                    d = g.create_dataset(k, data=v)
                    if not isinstance(v, str):
                        set_units(d, units_from_name(k))
        if sidecar_links:
            for _name, g in e.items():
                if isinstance(g, h5py.Group) and g.attrs.get("NX_class") == "NXdata" and "sidecar" in g:
                    n = int(np.sum(e["scan/completed"][()] == 1))
                    links = g.require_group("raw")
                    links.attrs["NX_class"] = "NXcollection"
                    for i, s in enumerate(g["sidecar"][:n]):
                        s = s.decode() if isinstance(s, bytes) else s
                        key = f"point_{i:06d}"
                        if s and key not in links:
                            # the sidecar's root carries NX_class=NXcollection (acq.photon_hdf5), so NeXus
                            # tools see a classed group behind the link
                            links[key] = h5py.ExternalLink(s, "/")


_NAME_UNITS = (("_uJcm2", "uJ/cm^2"), ("_meV", "meV"), ("_nm", "nm"), ("_ps", "ps"), ("_ns", "ns"), ("_K", "K"),
               ("_s", "s"), ("_deg", "deg"), ("_mW", "mW"), ("_W", "W"), ("_Hz", "Hz"), ("_kV", "kV"), ("_mA", "mA"))


def units_from_name(key: str) -> str:
    """Units of an analysis scalar from sflab's naming convention (``tau_ps``, ``T_on_K``…); "" otherwise."""
    for suffix, unit in _NAME_UNITS:
        if key.endswith(suffix):
            return unit
    return ""


# ====================================================================== reading
class RunFileError(ValueError):
    """A file is not a readable sflab run file. ``str()`` names the file and what is wrong."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: superblock consistency flag: the file is (or was, when its writer died) open for SWMR writing
_SWMR_WRITE_FLAG = 0x04


def _superblock(path: Path) -> dict[str, int] | None:
    """Version, consistency flags and stored end-of-file of a version 2/3 superblock (what sflab writes;
    see the HDF5 file format specification, "Superblock"), or None for other versions."""
    import struct

    with open(path, "rb") as fh:
        head = fh.read(48)
    if len(head) < 12 or head[:8] != _SIGNATURE:
        return None
    version, size_o = head[8], head[9]
    if version not in (2, 3) or size_o != 8 or len(head) < 12 + 4 * 8:
        return {"version": version, "flags": 0, "eof": -1}
    _base, _ext, eof, _root = struct.unpack("<4Q", head[12:44])
    return {"version": version, "flags": head[11], "eof": eof}


def _check_file(path: Path) -> None:
    """What can be said about a path before HDF5 is asked: exists, is a file, not empty, HDF5."""
    if not path.exists():
        raise RunFileError(path, "no such file")
    if path.is_dir():
        raise RunFileError(path, "is a directory, not a run file")
    size = path.stat().st_size
    if size == 0:
        raise RunFileError(path, "is empty (0 bytes)")
    with open(path, "rb") as fh:
        sig = fh.read(8)
    if sig != _SIGNATURE:
        raise RunFileError(path, f"is not an HDF5 file (first bytes {sig[:8]!r}, {size} bytes)")


def open_h5(path: str | os.PathLike) -> tuple[h5py.File, bool]:
    """Open a run file for reading without ever hanging: ``(file, flagged)``.

    A normal open first: HDF5 compares the file's end-of-file with the one its superblock stores and
    refuses a truncated file at once (an SWMR open skips that check and then retries reads past the
    end for minutes). Only a file flagged "open for SWMR writing" — being written, or its writer died —
    is then opened with ``swmr=True``; ``flagged`` says so. Raises :class:`RunFileError`."""
    path = Path(path)
    _check_file(path)
    last = ""
    for attempt in range(3):
        try:
            return h5py.File(path, "r", libver="latest"), False
        except OSError as exc:
            last = str(exc)
        if "truncated file" in last:
            sb = _superblock(path) or {}
            if sb.get("flags", 0) & _SWMR_WRITE_FLAG and attempt < 2:
                time.sleep(0.05)   # a live writer may be between growing the file and writing into it
                continue
            size = path.stat().st_size
            stored = sb.get("eof", -1)
            of = f" of the {stored} bytes its superblock records" if stored > 0 else ""
            raise RunFileError(path, f"is truncated: {size} bytes{of} (a partial copy or a full disk?)")
        break
    if "already open for write" in last or "consistency flags" in last:
        try:
            return h5py.File(path, "r", libver="latest", swmr=True), True
        except OSError as exc:
            raise RunFileError(path, f"is damaged (open for SWMR writing, and unreadable: {exc})") from None
    raise RunFileError(path, f"is not a readable HDF5 file ({last})")


def _s(v: Any) -> str:
    if isinstance(v, np.ndarray):
        v = v[()]
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace").strip()
    return str(v).strip()


@dataclass
class RunData:
    """Completed points of a run file (also of one still being written)."""

    path: Path
    run_uid: str
    procedure: str
    parameters: dict[str, Any]
    exit_status: str
    start_time: str
    end_time: str
    n_points: int
    streams: dict[str, dict[str, np.ndarray]]
    static_axes: dict[str, dict[str, np.ndarray]]
    units: dict[str, dict[str, str]]
    readbacks: dict[str, dict[str, np.ndarray]]
    point_id: np.ndarray
    timestamp: np.ndarray
    sample_name: str
    truth: dict[str, Any]
    config: dict[str, Any]
    software: dict[str, Any]
    events: list[dict[str, Any]]
    suspensions: list[dict[str, Any]]
    resumed_at: list[int]
    backstop: dict[str, Any]
    analysis: dict[str, Any] | None
    sidecars: dict[str, list[str]]
    default_stream: str
    title: str = ""
    #: per-point quality: 0 good, else flagged (an event of the log says why)
    flags: np.ndarray = field(default_factory=lambda: np.zeros(0, "u1"))
    #: every attribute of ``/`` and ``/entry`` (a copy keeps them)
    attrs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the stream declarations, readback units and default stream recorded in the file
    declarations: list[Stream] = field(default_factory=list)
    readback_units: dict[str, dict[str, str]] = field(default_factory=dict)
    #: the file is flagged "open for SWMR writing" (a live writer, or one that died)
    swmr_flagged: bool = False
    #: ``{"host": …, "pid": …}`` of the program that wrote (or is writing) the file
    writer: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.exit_status != "running"

    def stream(self, name: str) -> dict[str, np.ndarray]:
        try:
            return self.streams[name]
        except KeyError:
            raise KeyError(f"{self.path}: no stream {name!r} (streams: {list(self.streams)})") from None

    def writer_state(self) -> str:
        """``alive`` (its writer is running on this host), ``dead`` (the file needs ``sflab repair`` or
        ``sflab resume``), ``closed`` (written to the end and closed), or ``unknown`` (another host)."""
        if not self.swmr_flagged:
            return "closed"
        host, pid = self.writer.get("host"), self.writer.get("pid")
        if host != platform.node() or not isinstance(pid, int):
            return "unknown"
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return "dead"
        except PermissionError:
            return "alive"
        return "dead" if pid == os.getpid() else "alive"


_REQUIRED = ("run_uid", "procedure", "parameters", "exit_status", "start_time", "end_time", "scan/point_id",
             "scan/timestamp", "scan/completed", "scan/resumed_at", "instrument", "sample/name",
             "sample/truth", "provenance/config", "provenance/software", "provenance/event_log",
             "provenance/suspensions", "provenance/backstop")


def _json_field(path: Path, e: h5py.Group, name: str, default: str = "") -> Any:
    text = _s(e[name][()]) or default
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunFileError(path, f"/entry/{name} is not valid JSON ({exc.msg} at character {exc.pos}: "
                                 f"{text[:60]!r})") from None


def _attrs(obj: h5py.HLObject) -> dict[str, Any]:
    return {k: obj.attrs[k] for k in obj.attrs}


def _declarations(e: h5py.Group) -> tuple[list[Stream], dict[str, dict[str, str]], str]:
    out: list[Stream] = []
    for name, g in e.items():
        if not (isinstance(g, h5py.Group) and _s(g.attrs.get("NX_class", "")) == "NXdata"):
            continue
        fields, static = [], {}
        for k, d in g.items():
            if not isinstance(d, h5py.Dataset) or k == "sidecar":
                continue
            u = _s(d.attrs.get("units", ""))
            if d.maxshape and d.maxshape[0] is None:
                fields.append(Field(k, tuple(d.shape[1:]), d.dtype.str, u, _s(d.attrs.get("long_name", ""))))
            else:
                static[k] = (d[()], u)
        axes = tuple(_s(a) for a in np.atleast_1d(g.attrs.get("axes", [])))
        out.append(Stream(name, tuple(fields), _s(g.attrs["signal"]), axes, static, "sidecar" in g,
                          _s(g.attrs.get("title", ""))))
    rb = {role: {k: _s(d.attrs.get("units", "")) for k, d in g.items()} for role, g in e["instrument"].items()}
    return out, rb, _s(e.attrs.get("default", ""))


def open_run(path: str | os.PathLike) -> RunData:
    """Read a run file: only points marked completed are returned. Works on finished files, on
    files another process is writing (SWMR), and on files whose writer was killed. Never hangs; any
    file that is not a complete sflab run file raises :class:`RunFileError` naming the file and what
    is wrong (truncated, empty, a directory, not HDF5, another program's HDF5, a missing dataset,
    unreadable JSON)."""
    path = Path(path)
    f, flagged = open_h5(path)
    try:
        with f:
            return _read(path, f, flagged)
    except RunFileError:
        raise
    except (KeyError, ValueError, TypeError, RuntimeError, OSError, IndexError, AttributeError) as exc:
        raise RunFileError(path, f"is damaged or incomplete ({type(exc).__name__}: {exc})") from None


def _read(path: Path, f: h5py.File, flagged: bool) -> RunData:
    if "entry" not in f or not isinstance(f["entry"], h5py.Group) or "scan" not in f["entry"]:
        raise RunFileError(path, "is HDF5 but not an sflab run file (no /entry/scan)")
    e = f["entry"]
    missing = [n for n in _REQUIRED if n not in e]
    if missing:
        raise RunFileError(path, "is not a complete sflab run file: missing " +
                           ", ".join(f"/entry/{n}" for n in missing))
    if flagged:
        for ds in ("scan/completed", "scan/point_id", "scan/timestamp"):
            e[ds].refresh()
    completed = e["scan/completed"][()]
    # trust the leading run of completed points (rows are written in order)
    bad = np.flatnonzero(completed != 1)
    n = int(bad[0]) if bad.size else int(completed.shape[0])
    n = min(n, e["scan/point_id"].shape[0], e["scan/timestamp"].shape[0])
    streams: dict[str, dict[str, np.ndarray]] = {}
    static: dict[str, dict[str, np.ndarray]] = {}
    units: dict[str, dict[str, str]] = {}
    sidecars: dict[str, list[str]] = {}
    for name, g in e.items():
        if not (isinstance(g, h5py.Group) and _s(g.attrs.get("NX_class", "")) == "NXdata"):
            continue
        streams[name], static[name], units[name] = {}, {}, {}
        for k, d in g.items():
            if not isinstance(d, h5py.Dataset):
                continue
            if flagged:
                d.refresh()
            units[name][k] = _s(d.attrs.get("units", ""))
            if k == "sidecar":
                sidecars[name] = [_s(x) for x in d[:n]]
            elif d.maxshape and d.maxshape[0] is None:
                if d.shape[0] < n:
                    raise RunFileError(path, f"/entry/{name}/{k} has {d.shape[0]} rows but {n} points are "
                                             "marked completed")
                streams[name][k] = d[:n]
            else:
                static[name][k] = d[()]
    readbacks: dict[str, dict[str, np.ndarray]] = {}
    for role, g in e["instrument"].items():
        readbacks[role] = {}
        for k, d in g.items():
            if flagged:
                d.refresh()
            readbacks[role][k] = d[:n]
            units.setdefault(f"instrument/{role}", {})[k] = _s(d.attrs.get("units", ""))
    prov = e["provenance"]
    if flagged:
        for k in ("event_log", "suspensions"):
            prov[k].refresh()
        for k in ("scan/resumed_at", "exit_status", "end_time"):
            e[k].refresh()
        if "scan/flag" in e:
            e["scan/flag"].refresh()
    analysis = None
    if "analysis" in e and "summary" in e["analysis"]:
        analysis = _json_field(path, e, "analysis/summary")
    backstop_s = _s(prov["backstop"][()])
    flags = np.zeros(n, "u1")
    if "scan/flag" in e:
        fl = e["scan/flag"][:n]
        flags[:len(fl)] = fl
    decl, rb_units, default = _declarations(e)

    def events(name: str) -> list[dict[str, Any]]:
        out = []
        for k, x in enumerate(prov[name][()]):
            try:
                out.append(json.loads(_s(x)))
            except json.JSONDecodeError as exc:
                raise RunFileError(path, f"/entry/provenance/{name}[{k}] is not valid JSON ({exc.msg})") from None
        return out

    writer: dict[str, Any] = {}
    if "writer" in prov:
        try:
            writer = json.loads(_s(prov["writer"][()]) or "{}")
        except json.JSONDecodeError:
            writer = {}
    return RunData(
        path=path,
        run_uid=_s(e["run_uid"][()]),
        procedure=_s(e["procedure"][()]),
        parameters=_json_field(path, e, "parameters"),
        exit_status=_s(e["exit_status"][()]),
        start_time=_s(e["start_time"][()]),
        end_time=_s(e["end_time"][()]),
        n_points=n,
        streams=streams,
        static_axes=static,
        units=units,
        readbacks=readbacks,
        point_id=e["scan/point_id"][:n],
        timestamp=e["scan/timestamp"][:n],
        sample_name=_s(e["sample/name"][()]),
        truth=_json_field(path, e, "sample/truth", "{}"),
        config=_json_field(path, e, "provenance/config", "{}"),
        software=_json_field(path, e, "provenance/software", "{}"),
        events=events("event_log"),
        suspensions=events("suspensions"),
        resumed_at=[int(x) for x in e["scan/resumed_at"][()]],
        backstop=_json_field(path, e, "provenance/backstop", "{}") if backstop_s else {},
        analysis=analysis,
        sidecars=sidecars,
        default_stream=default,
        title=_s(e["title"][()]) if "title" in e else "",
        flags=flags,
        attrs={"/": _attrs(f), "/entry": _attrs(e)},
        declarations=decl,
        readback_units=rb_units,
        swmr_flagged=flagged,
        writer=writer if isinstance(writer, dict) else {},
    )


def is_run_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an HDF5 file with sflab's ``/entry/scan`` (never hangs, never raises)."""
    try:
        f, _flagged = open_h5(path)
    except RunFileError:
        return False
    with f:
        return "entry" in f and isinstance(f["entry"], h5py.Group) and "scan" in f["entry"]


def recording_problem(path: str | os.PathLike) -> str:
    """For ``sflab replay``: what is wrong with an HDF5 input before any lab is started ("" if it is an
    sflab run file or a Photon-HDF5 recording; other suffixes are left to their own readers)."""
    path = Path(path)
    if path.is_dir():
        return "is a directory, not a recording or run file"
    if path.suffix.lower() not in (".h5", ".hdf5"):
        return "is empty (0 bytes)" if path.exists() and path.stat().st_size == 0 else ""
    try:
        f, _flagged = open_h5(path)
    except RunFileError as exc:
        return exc.problem
    with f:
        if "entry" in f and isinstance(f["entry"], h5py.Group) and "scan" in f["entry"]:
            return ""
        if "photon_data" in f or any(k.startswith("photon_data") for k in f):
            return ""
        return f"is HDF5 but neither an sflab run file (/entry/scan) nor a Photon-HDF5 recording (/photon_data); " \
               f"top-level objects: {', '.join(list(f)[:8]) or 'none'}"


def streams_of(path: str | os.PathLike) -> tuple[list[Stream], dict[str, dict[str, str]], str]:
    """Recover the stream declarations, readback names/units and default stream from a file."""
    d = open_run(path)
    return d.declarations, d.readback_units, d.default_stream


# ====================================================================== copy: resume and repair
def copy_completed(src: RunData, writer: RunWriter, streams: Iterable[Stream] | None = None) -> int:
    """Append every completed point of ``src`` to ``writer`` (their ids, timestamps and flags too)."""
    decl = {s.name: s for s in (streams if streams is not None else writer.streams.values())}
    for i in range(src.n_points):
        pts = {name: {k: v[i] for k, v in src.streams.get(name, {}).items() if k in
                      {f.name for f in st.fields}} for name, st in decl.items()}
        rb = {role: {k: v[i] for k, v in d.items()} for role, d in src.readbacks.items()}
        side = {name: src.sidecars[name][i] for name in src.sidecars if i < len(src.sidecars[name])}
        writer.append(pts, rb, point_id=int(src.point_id[i]), timestamp=float(src.timestamp[i]),
                      sidecars=side, flag=int(src.flags[i]) if i < len(src.flags) else 0)
        crashpoints.reached(f"copy:point:{i}")
    return src.n_points


def _staging_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.rebuild.h5")


def copy_run(src: RunData, dst: str | os.PathLike, *, status: str = "interrupted", note: str = "",
             note_kind: str = "copy") -> Path:
    """The one copy path of resume and repair: build ``dst`` (which must not exist) as a complete,
    closed and fsynced copy of ``src``'s completed points, keeping its run_uid, start_time, title,
    parameters, configuration, sample, every ``/`` and ``/entry`` attribute, stream declarations,
    point ids, timestamps, flags, event log, suspensions and earlier resume points.

    ``status`` is written as the copy's exit status (a copy is never left saying ``running``: a crash
    right after the swap must leave a truthful file). ``note`` is logged as a ``copy`` event."""
    dst = Path(dst)
    crashpoints.reached("copy:begin")
    w = RunWriter(dst, procedure=src.procedure, parameters=src.parameters, streams=src.declarations,
                  readbacks=src.readback_units, config=src.config,
                  sample={"name": src.sample_name, "truth": src.truth}, run_uid=src.run_uid,
                  start_time=src.start_time, title=src.title or src.procedure,
                  default_stream=src.default_stream or None, swmr=False, attrs=src.attrs)
    try:
        crashpoints.reached("copy:skeleton")
        copy_completed(src, w)
        for ev in src.events:
            w.log_event(str(ev.get("kind", "event")), str(ev.get("message", "")),
                        **{k: v for k, v in ev.items() if k not in ("kind", "message")})
        for s in src.suspensions:
            w.log_suspension(s)
        for k in src.resumed_at:
            w.add_resumed_at(k)
        if note:   # wall time, but never before what the file already records (a simulated run's lab
            # time runs ahead of the wall clock)
            times = [float(e["t"]) for e in src.events if isinstance(e.get("t"), int | float)]
            times += [float(src.timestamp[-1])] if src.n_points else []
            w.log_event(note_kind, note, t=max([time.time(), *times]))
        crashpoints.reached("copy:logged")
        w.finish(status if src.exit_status == "running" else src.exit_status, end_time=src.end_time or None,
                 backstop=src.backstop or None)
    except BaseException:
        w.close()
        raise
    w.close()   # closed and fsynced
    crashpoints.reached("copy:closed")
    return dst


def swap_in(staged: Path, path: Path) -> Path | None:
    """Put the complete, closed file ``staged`` at ``path`` with one atomic rename. The file that was at
    ``path`` is kept first as a backup (a hard link made and made durable *before* the rename, so at
    every instant ``path`` holds the old file or the new one, and the old one is never lost).
    Returns the backup's path (None if nothing was at ``path``)."""
    backup = None
    if path.exists():
        backup = _backup_name(path)
        try:
            os.link(path, backup)
        except OSError:   # a filesystem without hard links: a durable copy instead
            shutil.copy2(path, backup)
            _fsync(backup)
        _fsync_dir(path.parent)
        crashpoints.reached("swap:backup")
    os.replace(staged, path)
    _fsync_dir(path.parent)
    crashpoints.reached("swap:replaced")
    return backup


def backups_of(path: str | os.PathLike) -> list[Path]:
    """Earlier versions of a run file kept by resume and repair (``NAME.interrupted[-k].h5``, and
    ``NAME.unreadable.h5`` of older sflab versions), oldest first."""
    path = Path(path)
    found = [p for p in path.parent.glob(f"{path.stem}.interrupted*.h5")
             if p.stem == f"{path.stem}.interrupted" or p.stem.startswith(f"{path.stem}.interrupted-")]
    found += list(path.parent.glob(f"{path.stem}.unreadable*.h5"))
    return sorted(found, key=lambda p: (p.stat().st_mtime_ns, p.name))


@dataclass
class Candidate:
    path: Path
    data: RunData | None
    problem: str = ""


def find_source(path: str | os.PathLike) -> tuple[RunData | None, list[Candidate]]:
    """The most complete readable version of a run: the file itself or one of its backups.
    Returns (best or None, every candidate with what was wrong with it). Ties go to the file itself."""
    path = Path(path)
    cands: list[Candidate] = []
    if path.exists():
        try:
            # a readable file is the most complete version: every backup is an earlier state of it
            # (resume and repair only ever swap in a copy of the most complete version)
            return open_run(path), [Candidate(path, None)]
        except RunFileError as exc:
            cands.append(Candidate(path, None, exc.problem))
    else:
        cands.append(Candidate(path, None, "no such file"))
    for p in reversed(backups_of(path)):
        try:
            cands.append(Candidate(p, open_run(p)))
        except RunFileError as exc:
            cands.append(Candidate(p, None, exc.problem))
    readable = [(c.data, c) for c in cands if c.data is not None]
    if not readable:
        return None, cands
    best, _c = max(readable, key=lambda dc: dc[0].n_points)   # the first of ties: the newest backup
    return best, cands


def repair(path: str | os.PathLike, *, keep_original: bool = True) -> Path:
    """Turn a file whose writer died into a clean, closed file with its completed points.

    Built beside the original and swapped in atomically (:func:`copy_run`, :func:`swap_in`); the
    original is kept next to it as ``<name>.interrupted.h5`` (nothing recorded is lost). Returns the
    path of the clean file (the original path). Raises :class:`RunFileError` for a damaged file."""
    path = Path(path)
    src = open_run(path)
    staged = _staging_name(path)
    staged.unlink(missing_ok=True)
    copy_run(src, staged, note_kind="repair",
             note=f"repaired: {src.n_points} completed points copied into a clean file (the original is kept "
                  "beside it)")
    backup = swap_in(staged, path)
    if not keep_original and backup is not None:
        backup.unlink()
    return path


def set_aside(path: str | os.PathLike, tag: str = "unreadable") -> Path:
    """Keep an unreadable run file under ``NAME.<tag>[-k].h5`` (a durable hard link first, then the
    original name is removed), so that a fresh file can be written at ``path``. Nothing is deleted."""
    path = Path(path)
    cand = path.with_name(f"{path.stem}.{tag}.h5")
    k = 1
    while cand.exists():
        k += 1
        cand = path.with_name(f"{path.stem}.{tag}-{k}.h5")
    try:
        os.link(path, cand)
    except OSError:
        shutil.copy2(path, cand)
        _fsync(cand)
    _fsync_dir(path.parent)
    path.unlink()
    _fsync_dir(path.parent)
    return cand


def _backup_name(path: Path) -> Path:
    cand = path.with_name(path.stem + ".interrupted.h5")
    k = 1
    while cand.exists():
        k += 1
        cand = path.with_name(f"{path.stem}.interrupted-{k}.h5")
    return cand
