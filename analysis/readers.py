"""Readers for time-tag files from other labs: PicoQuant PTU (via ``ptufile``) and Photon-HDF5
(via h5py), plus a vectorised NumPy decoder for raw PicoQuant T2/T3 records (the same uint32 words
PHLib's FIFO delivers), used to cross-check ``ptufile`` and for streams that never touch a file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ._common import ResultMixin

__all__ = ["TimeTags", "read_ptu", "read_photon_hdf5", "decode_records", "RECORD_TYPES"]

log = logging.getLogger(__name__)

# record type id -> (name, mode, wrap)
RECORD_TYPES: dict[int, tuple[str, str, int]] = {
    0x00010203: ("PicoHarpT2", "T2", 210698240),
    0x00010303: ("PicoHarpT3", "T3", 65536),
    0x00010204: ("HydraHarpT2", "T2", 33552000),
    0x01010204: ("HydraHarp2T2", "T2", 33554432),
    0x00010205: ("TimeHarp260NT2", "T2", 33554432),
    0x00010206: ("TimeHarp260PT2", "T2", 33554432),
    0x00010207: ("GenericT2", "T2", 33554432),
    0x00010304: ("HydraHarpT3", "T3", 1024),
    0x01010304: ("HydraHarp2T3", "T3", 1024),
    0x00010305: ("TimeHarp260NT3", "T3", 1024),
    0x00010306: ("TimeHarp260PT3", "T3", 1024),
    0x00010307: ("GenericT3", "T3", 1024),
}


@dataclass(frozen=True)
class TimeTags(ResultMixin):
    """Photon time tags.  ``times_ps`` are absolute arrival times (T2) or sync times (T3) in ps;
    ``channels`` the detector/routing channel; ``nanotimes`` the T3 micro time in units of
    ``nanotime_unit_ps`` (None for T2).  ``markers`` holds (time_ps, marker bits) of marker records."""

    times_ps: np.ndarray
    channels: np.ndarray
    nanotimes: np.ndarray | None
    time_unit_ps: float
    nanotime_unit_ps: float | None
    mode: str
    record_type: str
    duration_ps: float
    meta: dict[str, Any] = field(default_factory=dict)
    markers: np.ndarray | None = field(default=None, repr=False)
    _array_fields = ("times_ps", "channels", "nanotimes", "markers")

    def channel(self, ch: int) -> np.ndarray:
        """Times (ps) of the photons on one channel."""
        return self.times_ps[self.channels == ch]


def decode_records(records: np.ndarray, record_type: int) -> dict[str, np.ndarray]:
    """Decode raw 32-bit PicoQuant TTTR records.

    Returns ``time`` (macro time in units of the global resolution, overflow-corrected, int64),
    ``channel`` (int16; photons ≥ 0, −1 for markers), ``dtime`` (T3 micro time or −1) and ``marker``.
    Overflow records are removed.  Channel numbering follows ptufile: for HydraHarp-family T2 files
    a sync record is reported as channel 0 and a photon on input c as channel c.
    """
    if record_type not in RECORD_TYPES:
        raise ValueError(f"unsupported record type 0x{record_type:08x}")
    name, mode, wrap = RECORD_TYPES[record_type]
    r = np.asarray(records, dtype=np.uint32)
    if record_type == 0x00010203:  # PicoHarp T2
        ch = (r >> 28).astype(np.int16)
        tm = (r & 0x0FFFFFFF).astype(np.int64)
        special = ch == 15
        ovf = special & ((tm & 0xF) == 0)
        marker = np.where(special & ~ovf, tm & 0xF, 0).astype(np.uint8)
        nov = ovf.astype(np.int64)
        dtime = np.full(r.size, -1, dtype=np.int16)
    elif record_type == 0x00010303:  # PicoHarp T3
        ch = (r >> 28).astype(np.int16)
        dt = ((r >> 16) & 0xFFF).astype(np.int16)
        tm = (r & 0xFFFF).astype(np.int64)
        special = ch == 15
        ovf = special & (dt == 0)
        marker = np.where(special & ~ovf, dt & 0xF, 0).astype(np.uint8)
        nov = ovf.astype(np.int64)
        dtime = np.where(special, -1, dt).astype(np.int16)
    else:
        sp = (r >> 31).astype(bool)
        c6 = ((r >> 25) & 0x3F).astype(np.int16)
        if mode == "T2":
            tm = (r & 0x1FFFFFF).astype(np.int64)
            dtime = np.full(r.size, -1, dtype=np.int16)
        else:
            tm = (r & 0x3FF).astype(np.int64)
            dtime = ((r >> 10) & 0x7FFF).astype(np.int16)
        ovf = sp & (c6 == 0x3F)
        if record_type in (0x00010204, 0x00010304):  # HydraHarp v1: one overflow per record
            nov = ovf.astype(np.int64)
        else:
            nov = np.where(ovf, np.where(tm == 0, 1, tm), 0).astype(np.int64)
        marker = np.where(sp & ~ovf & (c6 >= 1) & (c6 <= 15), c6, 0).astype(np.uint8)
        if mode == "T2":
            ch = np.where(sp, np.where(c6 == 0, 0, -1), c6).astype(np.int16)
            special = sp & ~((c6 == 0) & ~ovf)
        else:
            ch = np.where(sp, -1, c6).astype(np.int16)
            special = sp
            dtime = np.where(sp, -1, dtime).astype(np.int16)
    offset = np.cumsum(nov) * wrap
    t = tm + offset
    keep = ~ovf
    is_marker = special & ~ovf
    ch = np.where(is_marker, -1, ch)
    return {
        "time": t[keep],
        "channel": ch[keep].astype(np.int16),
        "dtime": dtime[keep],
        "marker": np.where(is_marker, marker, 0)[keep].astype(np.uint8),
    }


def read_ptu(path: str | Path, *, decoder: str = "ptufile") -> TimeTags:
    """Read a PicoQuant PTU file (T2 or T3) into :class:`TimeTags` (photons only).

    ``decoder="ptufile"`` decodes with ``ptufile`` (the reference); ``decoder="numpy"`` reads the
    header with ptufile and decodes the records with :func:`decode_records`.
    """
    import ptufile

    path = Path(path)
    with ptufile.PtuFile(path) as ptu:
        rectype = int(ptu.record_type)
        tags = dict(ptu.tags)
        gres = float(ptu.global_resolution)
        tres = float(ptu.tcspc_resolution) if ptu.tcspc_resolution else None
        if rectype not in RECORD_TYPES:
            raise ValueError(f"{path}: unsupported record type 0x{rectype:08x}")
        name, mode, _ = RECORD_TYPES[rectype]
        if decoder == "ptufile":
            rec = ptu.decode_records()
            t = rec["time"].astype(np.int64)
            ch = rec["channel"].astype(np.int16)
            mk = rec["marker"].astype(np.uint8)
            dtime = rec["dtime"].astype(np.int16) if mode == "T3" else None
        elif decoder == "numpy":
            d = decode_records(ptu.read_records(), rectype)
            t, ch, mk = d["time"], d["channel"], d["marker"]
            dtime = d["dtime"] if mode == "T3" else None
        else:
            raise ValueError("decoder must be 'ptufile' or 'numpy'")
    photons = ch >= 0
    unit_ps = gres * 1e12
    times_ps = np.round(t[photons] * unit_ps).astype(np.int64)
    is_mk = (~photons) & (mk > 0)
    markers = np.stack([np.round(t[is_mk] * unit_ps), mk[is_mk]], axis=1) if np.any(is_mk) else None
    stop_after = tags.get("TTResult_StopAfter")
    acq = tags.get("MeasDesc_AcquisitionTime")
    dur_ms = stop_after if stop_after else acq
    duration_ps = (
        float(dur_ms) * 1e9 if dur_ms else float(times_ps[-1] - times_ps[0]) if times_ps.size else 0.0
    )
    meta = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in tags.items()}
    meta["source_file"] = str(path)
    return TimeTags(
        times_ps=times_ps,
        channels=ch[photons],
        nanotimes=None if dtime is None else dtime[photons],
        time_unit_ps=unit_ps,
        nanotime_unit_ps=None if tres is None else tres * 1e12,
        mode=mode,
        record_type=name,
        duration_ps=duration_ps,
        meta=meta,
        markers=markers,
    )


def read_photon_hdf5(path: str | Path, *, spot: int = 0) -> TimeTags:
    """Read a Photon-HDF5 (v0.3–0.5) file with h5py: ``/photon_data/timestamps`` (+ unit),
    ``detectors`` and ``nanotimes`` if present.  Non-photon ids listed in
    ``measurement_specs/detectors_specs/non_photon_id*`` are dropped."""
    path = Path(path)
    with h5py.File(path, "r") as f:
        grp_name = "photon_data" if "photon_data" in f else f"photon_data{spot}"
        g = f[grp_name]
        ts = g["timestamps"][()].astype(np.int64)
        unit_s = float(g["timestamps_specs/timestamps_unit"][()])
        det = g["detectors"][()].astype(np.int16) if "detectors" in g else np.zeros(ts.size, np.int16)
        nt = g["nanotimes"][()].astype(np.int16) if "nanotimes" in g else None
        nt_unit = None
        if nt is not None:
            if "nanotimes_specs/tcspc_unit" in g:
                nt_unit = float(g["nanotimes_specs/tcspc_unit"][()]) * 1e12
        keep = np.ones(ts.size, bool)
        ds = g.get("measurement_specs/detectors_specs")
        if ds is not None:
            for k in ds:
                if k.startswith("non_photon_id"):
                    ids = np.atleast_1d(ds[k][()])
                    keep &= ~np.isin(det, ids)
        dur = (
            float(f["acquisition_duration"][()]) * 1e12
            if "acquisition_duration" in f
            else _span_ps(ts, unit_s)
        )
        meta: dict[str, Any] = {"source_file": str(path)}
        if "description" in f:
            v = f["description"][()]
            meta["description"] = v.decode() if isinstance(v, bytes) else str(v)
        mtype = g.get("measurement_specs/measurement_type")
        if mtype is not None:
            v = mtype[()]
            meta["measurement_type"] = v.decode() if isinstance(v, bytes) else str(v)
    unit_ps = unit_s * 1e12
    return TimeTags(
        times_ps=np.round(ts[keep] * unit_ps).astype(np.int64),
        channels=det[keep],
        nanotimes=None if nt is None else nt[keep],
        time_unit_ps=unit_ps,
        nanotime_unit_ps=nt_unit,
        mode="T3" if nt is not None else "T2",
        record_type="Photon-HDF5",
        duration_ps=dur,
        meta=meta,
    )


def _span_ps(ts: np.ndarray, unit_s: float) -> float:
    """Span of the timestamps in ps (fallback when no acquisition duration is stored)."""
    return float(ts[-1] - ts[0]) * unit_s * 1e12 if ts.size else 0.0
