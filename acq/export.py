"""Exports of a run file for other tools: PicoQuant PTU, Photon-HDF5, plain-text columns.

* **PTU** (:func:`write_ptu`, :func:`export_ptu`): each point's raw time tags (its Photon-HDF5 sidecar) as a
  PicoQuant unified TTTR file that PicoQuant's software, ``ptufile`` and ``tttrlib`` read. HBT sidecars
  (absolute photon times, no sync) become **T2** records, TCSPC sidecars recorded in T3 (macrotime in sync
  periods + nanotime) become **T3** records; record format HydraHarp 2 (``rtHydraHarp2T2`` 0x01010204 /
  ``rtHydraHarp2T3`` 0x01010304, PicoQuant's TTTR record description): bit 31 special, bits 30..25 channel,
  T2 bits 24..0 time tag (wrap 2^25), T3 bits 24..10 dtime and 9..0 nsync (wrap 1024); overflow records are
  special with channel 63 and carry the number of wraps. The header tags are encoded with ptufile's own ``encode_tag``.
  The sidecar's detector ids are the PTU record channels as they are (the interface numbering the tags were
  recorded in), so ``ptufile``/``tttrlib`` report the same channel numbers as the sidecar.
* **Photon-HDF5** (:func:`export_photon_hdf5`): the sidecars already are Photon-HDF5 0.5 (phconvert-valid);
  they are copied next to the export with the run's identity.
* **Text** (:func:`export_text`): every stream (spectra, decays, g2, scalars) as tab-separated columns with
  a ``#`` header — run, procedure, sample, temperature, fluence, column names and units — that Origin
  ("Import ASCII") and Igor ("Load Delimited Text", "#" as comment) read directly.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import re
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .store import RunData, open_run

log = logging.getLogger(__name__)

__all__ = ["write_ptu", "read_sidecar_tags", "export_ptu", "export_photon_hdf5", "export_text", "export_run",
           "FORMATS", "ExportError", "RT_HYDRAHARP2_T2", "RT_HYDRAHARP2_T3"]

RT_HYDRAHARP2_T2 = 0x01010204
RT_HYDRAHARP2_T3 = 0x01010304
_T2_WRAP = 1 << 25
_T3_WRAP = 1 << 10
_OVF = np.uint32((1 << 31) | (63 << 25))
FORMATS = ("ptu", "photon-hdf5", "text")


class ExportError(ValueError):
    """An export that cannot be done faithfully (the message says what and why)."""


# ====================================================================== PTU
def _interleave(word: np.ndarray, wraps: np.ndarray, max_count: int) -> np.ndarray:
    """Photon records ``word`` (one per photon) with overflow records inserted so that a reader's running
    sum of overflow counts before photon *i* equals ``wraps[i]`` (each record counts 1..``max_count``)."""
    if word.size == 0:
        return word.astype(np.uint32)
    need = np.diff(np.concatenate(([0], wraps)))           # new wraps right before each photon
    if np.any(need < 0):
        raise ExportError("time tags are not in time order")
    idx = np.flatnonzero(need)
    cnt = need[idx]
    nrec = -(-cnt // max_count)                             # records per gap
    at = np.repeat(idx, nrec)
    first = np.repeat(np.cumsum(nrec) - nrec, nrec)
    j = np.arange(at.size) - first                          # record number within its gap
    last = j == np.repeat(nrec, nrec) - 1
    val = np.where(last, np.repeat(cnt, nrec) - j * max_count, max_count)
    return np.insert(word.astype(np.uint32), at, (_OVF | val.astype(np.uint32)).astype(np.uint32))


def write_ptu(path: str | Path, times: np.ndarray, channels: np.ndarray, *, global_resolution_s: float,
              nanotimes: np.ndarray | None = None, tcspc_resolution_s: float | None = None,
              acquisition_s: float | None = None, comment: str = "", tags: Mapping[str, Any] | None = None) -> Path:
    """Write a PTU file: T2 when ``nanotimes`` is None, else T3.

    ``times`` are integer macrotimes in units of ``global_resolution_s`` (T2: photon times, typically 1 ps;
    T3: sync counts, the global resolution being the sync period), time ordered; ``channels`` are the
    0-based input channels (0..62); ``nanotimes`` the T3 dtime (0..32767) in ``tcspc_resolution_s`` units.
    """
    from ptufile.ptufile import encode_tag

    path = Path(path)
    t = np.asarray(times, np.int64)
    ch = np.asarray(channels, np.int64)
    if t.shape != ch.shape or t.ndim != 1:
        raise ExportError(f"times {t.shape} and channels {ch.shape} must be 1-D and of one length")
    if t.size and (t.min() < 0 or np.any(np.diff(t) < 0)):
        raise ExportError("times must be non-negative and in time order")
    if ch.size and (ch.min() < 0 or ch.max() > 62):
        raise ExportError(f"channels must be 0..62 (PTU HydraHarp 2 records), got {ch.min()}..{ch.max()}")
    t3 = nanotimes is not None
    if t3:
        dt = np.asarray(nanotimes, np.int64)
        if dt.shape != t.shape:
            raise ExportError("nanotimes must have one entry per photon")
        if dt.size and (dt.min() < 0 or dt.max() >= 1 << 15):
            raise ExportError(f"T3 nanotimes must be 0..32767 bins, got {dt.min()}..{dt.max()}")
        if not tcspc_resolution_s:
            raise ExportError("T3 export needs the TCSPC bin width (tcspc_resolution_s)")
        wraps, low = np.divmod(t, _T3_WRAP)
        word = ((ch << 25) | (dt << 10) | low).astype(np.uint32)
        recs = _interleave(word, wraps, _T3_WRAP - 1)
        rectype, mode = RT_HYDRAHARP2_T3, 3
    else:
        wraps, low = np.divmod(t, _T2_WRAP)
        word = ((ch << 25) | low).astype(np.uint32)
        recs = _interleave(word, wraps, _T2_WRAP - 1)
        rectype, mode = RT_HYDRAHARP2_T2, 2
    n_inputs = int(ch.max()) + 1 if ch.size else 1
    hdr: dict[str, Any] = {
        "File_GUID": f"{{{uuid.uuid4()}}}",
        "File_Comment": comment or "exported by sflab",
        "File_CreatingTime": _dt.datetime.now(),
        "CreatorSW_Name": "sflab",
        "CreatorSW_Version": _version(),
        "Measurement_Mode": mode,
        "Measurement_SubMode": 0,
        "MeasDesc_GlobalResolution": float(global_resolution_s),
        "MeasDesc_Resolution": float((tcspc_resolution_s if t3 else None) or global_resolution_s),
        "MeasDesc_BinningFactor": 1,
        "MeasDesc_AcquisitionTime": int(round(1e3 * (acquisition_s if acquisition_s is not None else
                                                     (t[-1] if t.size else 0) * global_resolution_s))),
        "HW_Type": "HydraHarp",
        "HW_InpChannels": n_inputs + 1,
        "TTResult_SyncRate": int(round(1.0 / global_resolution_s)) if t3 else 0,
        "TTResult_NumberOfRecords": int(recs.size),
        "TTResultFormat_TTTRRecType": rectype,
        "TTResultFormat_BitsPerRecord": 32,
    }
    for k, v in (tags or {}).items():
        if k not in hdr or k.startswith(("File_Comment", "UsrHeadName")):
            hdr[k] = v
    head = [b"PQTTTR\x00\x001.0.00\x00\x00"]
    head += [encode_tag(k, v) for k, v in hdr.items()]
    head.append(encode_tag("Header_End", None))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "xb") as fh:
        fh.write(b"".join(head))
        fh.write(recs.astype("<u4").tobytes())
    return path


def read_sidecar_tags(path: str | Path) -> dict[str, Any]:
    """Photons of a Photon-HDF5 sidecar: ``times_ps``, ``detectors``, ``nanotimes`` (or None),
    ``tcspc_unit_s``, ``sync_period_ps`` (or None), ``duration_s``."""
    with h5py.File(path, "r") as f:
        pd = f["photon_data"]
        unit = float(pd["timestamps_specs/timestamps_unit"][()])
        t = pd["timestamps"][()].astype(np.int64)
        det = pd["detectors"][()].astype(np.int64) if "detectors" in pd else \
            np.full(t.size, int(f["setup/detectors/id"][0]) if "setup/detectors/id" in f else 1, np.int64)
        nt = pd["nanotimes"][()].astype(np.int64) if "nanotimes" in pd else None
        tunit = float(pd["nanotimes_specs/tcspc_unit"][()]) if nt is not None else None
        period = None
        if nt is not None:
            sp = f.get("user/sflab/sync_period_ps")
            period = float(sp[()]) if sp is not None and float(sp[()]) > 0 else \
                1e12 / float(pd["measurement_specs/laser_repetition_rate"][()])
        mode = f.get("user/sflab/tag_mode")
        dur = float(f["acquisition_duration"][()]) if "acquisition_duration" in f else float("nan")
        return {"times_ps": np.rint(t * unit / 1e-12).astype(np.int64), "detectors": det, "nanotimes": nt,
                "tcspc_unit_s": tunit, "sync_period_ps": period, "duration_s": dur,
                "tag_mode": (mode[()].decode() if isinstance(mode[()], bytes) else str(mode[()])) if mode else ""}


def sidecar_to_ptu(sidecar: str | Path, out: str | Path, *, comment: str = "") -> Path:
    """One Photon-HDF5 sidecar → one PTU file (T2 for HBT tags, T3 for TCSPC tags recorded in T3)."""
    tags = read_sidecar_tags(sidecar)
    ch = tags["detectors"]
    if tags["nanotimes"] is None:
        return write_ptu(out, tags["times_ps"], ch, global_resolution_s=1e-12, acquisition_s=tags["duration_s"],
                         comment=comment)
    period = float(tags["sync_period_ps"])
    unit_ps = float(tags["tcspc_unit_s"]) * 1e12
    # photon time = nsync * period + nanotime * bin (rounded to 1 ps, drivers/picoharp300.py); T3 needs the sync
    # count back exactly — a sidecar converted from T2 (nanotime truncated to bins) has no exact T3 form
    nsync = np.rint((tags["times_ps"] - tags["nanotimes"] * unit_ps) / period).astype(np.int64)
    if np.any(np.abs(nsync * period + tags["nanotimes"] * unit_ps - tags["times_ps"]) > 0.5 + 1e-6):
        raise ExportError(f"{sidecar}: its TCSPC photon times are not sync time + nanotime (converted from T2), "
                          "so they have no exact T3 form; export the original T2 recording instead")
    return write_ptu(out, nsync, ch, global_resolution_s=period * 1e-12, nanotimes=tags["nanotimes"],
                     tcspc_resolution_s=tags["tcspc_unit_s"], acquisition_s=tags["duration_s"], comment=comment)


def _sidecars(run: RunData) -> list[tuple[str, int, Path]]:
    out = []
    for stream, files in run.sidecars.items():
        for i, s in enumerate(files):
            if s:
                p = Path(s)
                out.append((stream, i, p if p.is_absolute() else run.path.parent / p))
    return out


def export_ptu(runfile: str | Path, out_dir: str | Path) -> list[Path]:
    """Every point's raw tags of a run file as ``<run>.<stream>.p<point>.ptu`` in ``out_dir``."""
    run = open_run(runfile)
    todo = _sidecars(run)
    if not todo:
        raise ExportError(f"{runfile}: no raw time tags in this run (no Photon-HDF5 sidecars) — PTU needs "
                          "photon records; use --format text for its histograms")
    out = []
    for stream, i, side in todo:
        if not side.exists():
            raise ExportError(f"{runfile}: sidecar {side} of point {i} is missing")
        dst = Path(out_dir) / f"{run.path.stem}.{stream}.p{i:05d}.ptu"
        out.append(sidecar_to_ptu(side, dst, comment=f"sflab run {run.run_uid} ({run.procedure}), point {i}, "
                                                      f"stream {stream}, sample {run.sample_name}"))
    return out


def export_photon_hdf5(runfile: str | Path, out_dir: str | Path) -> list[Path]:
    """Copies of the run's Photon-HDF5 sidecars (already phconvert-valid Photon-HDF5 0.5)."""
    run = open_run(runfile)
    todo = _sidecars(run)
    if not todo:
        raise ExportError(f"{runfile}: no raw time tags in this run (no Photon-HDF5 sidecars)")
    out = []
    for _stream, i, side in todo:
        if not side.exists():
            raise ExportError(f"{runfile}: sidecar {side} of point {i} is missing")
        dst = Path(out_dir) / side.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.resolve() != side.resolve():
            shutil.copy2(side, dst)
        out.append(dst)
    return out


# ====================================================================== text
_SAFE = re.compile(r"[^A-Za-z0-9_.+-]+")


def _col(stream: str, name: str, unit: str) -> str:
    return f"{name} ({unit})" if unit else name


def _scalar_cols(run: RunData, stream: str) -> dict[str, tuple[np.ndarray, str]]:
    d = run.streams.get(stream, {})
    return {k: (v, run.units.get(stream, {}).get(k, "")) for k, v in d.items() if v.ndim == 1}


def _point_label(run: RunData, i: int) -> dict[str, Any]:
    """Temperature and fluence of point *i*: from the stream fields, else the cryostat readback."""
    lab: dict[str, Any] = {}
    for s in run.streams.values():
        for k in ("T_K", "T", "temperature"):
            if k in s and s[k].ndim == 1 and i < s[k].size and "T (K)" not in lab:
                lab["T (K)"] = float(s[k][i])
        for k in ("fluence_measured", "fluence", "fluence_uJcm2"):
            if k in s and s[k].ndim == 1 and i < s[k].size and "fluence (uJ/cm^2)" not in lab:
                lab["fluence (uJ/cm^2)"] = float(s[k][i])
    if "T (K)" not in lab:
        for name, v in run.readbacks.get("cryostat", {}).items():
            if name.lower().startswith("t_sample") and i < v.size:
                lab["T (K)"] = float(v[i])
    return lab


def _header(run: RunData, lines: list[str]) -> str:
    head = [f"sflab run file: {run.path.name}", f"run_uid: {run.run_uid}", f"procedure: {run.procedure}",
            f"sample: {run.sample_name}", f"start_time: {run.start_time}", f"exit_status: {run.exit_status}",
            f"parameters: {json.dumps(run.parameters, sort_keys=True, default=str)}", *lines]
    return "".join(f"# {h}\n" for h in head)


def _fmt(v: Any) -> str:
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    return f"{v:.9g}" if isinstance(v, float) else str(v)


def export_text(runfile: str | Path, out_dir: str | Path) -> list[Path]:
    """Each stream as tab-separated text (``#`` header with units, temperature and fluence):

    * 1-D per point (spectrum, decay, g2): ``<run>.<stream>.txt`` with the axis column (wavelength, t, tau)
      and one column per point, each named with its temperature and fluence; plus
    * every stream's per-point scalars: ``<run>.<stream>.points.txt`` (one row per point).
    """
    run = open_run(runfile)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    labels = [_point_label(run, i) for i in range(run.n_points)]
    for sname, fields in run.streams.items():
        units = run.units.get(sname, {})
        static = run.static_axes.get(sname, {})
        for fname, arr in fields.items():
            if arr.ndim != 2:
                continue
            axis_name, axis, axis_unit = "index", np.arange(arr.shape[1]), ""
            for an, av in static.items():
                if np.ndim(av) == 1 and len(av) == arr.shape[1]:
                    axis_name, axis, axis_unit = an, np.asarray(av), units.get(an, "")
                    break
            suffix = "" if fname == "counts" else f".{_SAFE.sub('_', fname)}"
            path = out_dir / f"{run.path.stem}.{sname}{suffix}.txt"
            cols = [_col(sname, axis_name, axis_unit)]
            meta = []
            for i in range(run.n_points):
                lab = labels[i]
                name = f"point {i}" + "".join(f", {k.split(' ')[0]}={_fmt(v)} {k.split(' ')[1].strip('()')}"
                                               for k, v in lab.items())
                cols.append(f"{name} [{units.get(fname, '') or '1'}]")
                meta.append(f"point {i}: " + ", ".join(f"{k} = {_fmt(v)}" for k, v in lab.items()))
            header = _header(run, [f"stream: {sname}/{fname}, {run.n_points} points, one column per point",
                                   f"units: {axis_name} in {axis_unit or '1'}, {fname} in "
                                   f"{units.get(fname, '') or '1 (dimensionless)'}", *meta])
            body = np.column_stack([axis, arr.T]) if run.n_points else axis[:, None]
            with open(path, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(header)
                fh.write("\t".join(cols) + "\n")
                np.savetxt(fh, body, delimiter="\t", fmt="%.9g")
            out.append(path)
        sc = _scalar_cols(run, sname)
        if sc and run.n_points:
            path = out_dir / f"{run.path.stem}.{sname}.points.txt"
            names = ["point", "timestamp (s)", *(_col(sname, k, u) for k, (_v, u) in sc.items())]
            rows = np.column_stack([np.arange(run.n_points), run.timestamp,
                                    *(v.astype(float) for v, _u in sc.values())])
            with open(path, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(_header(run, [f"stream: {sname}, per-point scalars, one row per point"]))
                fh.write("\t".join(names) + "\n")
                np.savetxt(fh, rows, delimiter="\t", fmt="%.12g")
            out.append(path)
    if not out:
        raise ExportError(f"{runfile}: no completed points to export")
    return out


def export_run(runfile: str | Path, out_dir: str | Path, formats: tuple[str, ...] = FORMATS) -> dict[str, Any]:
    """All requested formats; a format the run has no data for is reported, not failed."""
    res: dict[str, Any] = {}
    for fmt in formats:
        fn = {"ptu": export_ptu, "photon-hdf5": export_photon_hdf5, "text": export_text}.get(fmt)
        if fn is None:
            raise ExportError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
        try:
            res[fmt] = [str(p) for p in fn(runfile, out_dir)]
        except ExportError as exc:
            res[fmt] = {"skipped": str(exc)}
    return res


def _version() -> str:
    from .plugins import distribution_version  # the one plugin point (decision 0005)

    return distribution_version("sflab") or "0"
