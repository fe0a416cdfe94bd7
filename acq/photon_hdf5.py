"""Photon-HDF5 (v0.5) sidecar files for the raw time tags of one point.

The run engine writes one sidecar per point that has raw tags (``TCSPC.stream()``), next to the
run file, and links it from the run file (external link). ``phconvert`` (and FRETBursts-style
tools) read and validate it. Two layouts (tcspc.md §3):

* **HBT** (two detectors, CW X-ray or any excitation without a sync): ``measurement_type =
  "generic"``, ``num_pixels = 2``, ``num_split_ch = 2`` with ``split_ch1``/``split_ch2``, no
  nanotimes, ``excitation_cw = [True]``;
* **TCSPC** (decay against a pulsed sync): ``lifetime = True``, ``nanotimes`` with
  ``tcspc_unit``/``tcspc_num_bins``/``tcspc_range``, ``laser_repetition_rate`` from the sync period,
  ``excitation_cw = [False]``. A T2 stream with sync tags is converted (nanotime = time since the
  last sync); a T3 stream is written as recorded.

The writer uses ``phconvert.hdf5.save_photon_hdf5`` (which writes the official field descriptions
and validates), so what it writes is what phconvert accepts. sflab's own metadata (run uid, point,
X-ray settings, sample truth) goes under ``/user/sflab``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from drivers.tcspc import TagStream

from .plugins import without_modules

log = logging.getLogger(__name__)

__all__ = ["write_sidecar", "sidecar_path", "validate_sidecar", "tcspc_from_t2", "phconvert_hdf5"]


def phconvert_hdf5() -> Any:
    """``phconvert.hdf5``, imported without phconvert's PicoQuant reader compiling its numba kernels.

    ``import phconvert`` imports ``phconvert.pqreader``, which compiles four numba functions eagerly
    (explicit signatures, no cache) when numba is installed: 16 s of every process that writes or
    checks a sidecar (profile of ``sflab demo``, December 2026), for a reader sflab never uses (PTU
    files are read with ptufile). While phconvert is first imported, ``import numba`` is made to fail,
    so pqreader takes its documented pure-NumPy path; ``numba`` itself is untouched for everyone else.
    """
    import sys

    if "phconvert.hdf5" not in sys.modules:
        with without_modules("numba"):   # pqreader takes its pure-NumPy path
            import phconvert  # noqa: F401
    from phconvert import hdf5

    return hdf5


def sidecar_path(run_file: str | os.PathLike, point_id: int, stream: str = "tags") -> Path:
    """``<run>.<stream>.p<point>.h5`` next to the run file."""
    run = Path(run_file)
    return run.with_name(f"{run.stem}.{stream}.p{int(point_id):05d}.h5")


def tcspc_from_t2(stream: TagStream, *, sync_channel: int = 0, unit_ps: float | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """(timestamps_ps, detectors, nanotimes, unit_ps, sync_period_ps) from a T2 stream with syncs."""
    t = np.asarray(stream.time_ps, np.int64)
    ch = np.asarray(stream.channel)
    sync = t[ch == sync_channel]
    if sync.size < 2:
        raise ValueError("a TCSPC sidecar from a T2 stream needs sync tags on channel 0")
    period = float(np.median(np.diff(sync)))
    det = ch != sync_channel
    k = np.searchsorted(sync, t[det], side="right") - 1
    ok = k >= 0
    ts, dets = t[det][ok], ch[det][ok]
    u = float(unit_ps or stream.time_unit_ps or 1.0)
    nanot = ((ts - sync[k[ok]]) / u).astype(np.int64)
    return ts, dets, nanot, u, period


def write_sidecar(path: str | os.PathLike, stream: TagStream, *, kind: str | None = None,
                  description: str = "", sample_name: str = "", author: str = "",
                  excitation_wavelength_nm: float | None = None,
                  detection_wavelength_nm: float | None = None,
                  user: Mapping[str, Any] | None = None, validate: bool = True) -> Path:
    """Write ``stream`` as a Photon-HDF5 0.5 file; returns the path.

    ``kind`` is ``"hbt"`` or ``"tcspc"`` (default: ``"tcspc"`` for T3 streams or T2 streams with
    sync tags and a sync period, else ``"hbt"``). ``user`` is stored under ``/user/sflab``
    (values that are not numbers, strings or arrays are stored as JSON text).
    """
    ph5 = phconvert_hdf5()

    path = Path(path)
    ch = np.asarray(stream.channel)
    if kind is None:
        kind = "tcspc" if (stream.nanotime is not None or (np.any(ch == 0) and stream.sync_period_ps)) else "hbt"
    if kind not in ("hbt", "tcspc"):
        raise ValueError(f"kind must be 'hbt' or 'tcspc', not {kind!r}")
    duration = float(stream.duration_s)
    photon_data: dict[str, Any] = {}
    setup: dict[str, Any] = {"num_spots": 1, "num_spectral_ch": 1, "num_polarization_ch": 1,
                             "modulated_excitation": False, "excitation_alternated": [False]}
    if kind == "tcspc":
        if stream.nanotime is not None:
            ts = np.asarray(stream.time_ps, np.int64)
            dets = ch
            nanot = np.asarray(stream.nanotime, np.int64)
            unit_ps = float(stream.nanotime_unit_ps or 1.0)
            nbins = int(stream.nanotime_bins or (nanot.max(initial=0) + 1))
            period = float(stream.sync_period_ps or nbins * unit_ps)
        else:
            ts, dets, nanot, unit_ps, period = tcspc_from_t2(stream)
            nbins = int(np.ceil(period / unit_ps))
        det_ids = sorted(int(d) for d in np.unique(dets)) or [1]
        rep = 1e12 / period
        photon_data["nanotimes"] = nanot.astype(np.uint16 if nbins <= 65536 else np.uint32)
        photon_data["nanotimes_specs"] = {"tcspc_unit": unit_ps * 1e-12, "tcspc_num_bins": nbins,
                                          "tcspc_range": nbins * unit_ps * 1e-12}
        specs: dict[str, Any] = {"measurement_type": "generic", "laser_repetition_rate": rep}
        setup.update(lifetime=True, excitation_cw=[False], laser_repetition_rates=[rep])
    else:
        ts = np.asarray(stream.time_ps, np.int64)
        dets = ch
        det_ids = sorted(int(d) for d in np.unique(dets))
        if len(det_ids) > 2:
            raise ValueError(f"an HBT sidecar takes two detectors, the stream has channels {det_ids}")
        while len(det_ids) < 2:  # an arm without counts still is a detector of the setup
            det_ids.append(max(det_ids, default=0) + 1)
        specs = {"measurement_type": "generic"}
        setup.update(lifetime=False, excitation_cw=[True])
    n_det = len(det_ids)
    setup["num_pixels"] = n_det
    setup["num_split_ch"] = n_det
    if n_det > 1:
        specs["detectors_specs"] = {f"split_ch{i + 1}": np.array([d], np.uint8) for i, d in enumerate(det_ids)}
        setup["detection_split_ch_ratios"] = [1.0 / n_det] * n_det
    if excitation_wavelength_nm:
        setup["excitation_wavelengths"] = [excitation_wavelength_nm * 1e-9]
    if detection_wavelength_nm:
        setup["detection_wavelengths"] = [detection_wavelength_nm * 1e-9]
    counts = [int(np.count_nonzero(dets == d)) for d in det_ids]
    setup["detectors"] = {"id": np.array(det_ids, np.uint8), "id_hardware": np.array(det_ids, np.uint8),
                          "counts": np.array(counts, np.int64),
                          "label": [f"detector {d}" for d in det_ids]}
    photon_data["timestamps"] = ts.astype(np.int64)
    photon_data["timestamps_specs"] = {"timestamps_unit": 1e-12}
    if n_det > 1:  # with one detector the array is optional, and phconvert then wants no detectors_specs
        photon_data["detectors"] = np.asarray(dets, np.uint8)
    photon_data["measurement_specs"] = specs
    identity = {"software": "sflab", "software_version": _version()}
    if author:
        identity["author"] = author
    data: dict[str, Any] = {
        "description": description or f"sflab {kind.upper()} raw time tags ({stream.meta.get('device', '')})",
        "acquisition_duration": duration,
        "photon_data": photon_data,
        "setup": setup,
        "identity": identity,
    }
    if sample_name:
        data["sample"] = {"sample_name": sample_name}
    udata = {"tag_mode": stream.mode, "sync_period_ps": float(stream.sync_period_ps or 0.0)}
    for k, v in {**{k: v for k, v in stream.meta.items() if k != "nsync"}, **dict(user or {})}.items():
        udata[str(k)] = _user_value(v)
    data["user"] = {"sflab": udata}
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.redirect_stdout(io.StringIO()):  # phconvert prints "Saving: <file>"
        ph5.save_photon_hdf5(data, h5_fname=str(path), overwrite=True, close=True, validate=validate,
                             warnings=False)
    import h5py

    with h5py.File(path, "a") as f:
        # the run file links this root (raw/point_NNNNNN): a NeXus class keeps nxcheck from flagging it as an
        # unclassed group; Photon-HDF5 validation ignores extra root attributes (tests/acq/test_photon_hdf5.py)
        f.attrs["NX_class"] = "NXcollection"
    log.info("Photon-HDF5 sidecar %s: %s, %d photons", path.name, kind, ts.size)
    return path


def validate_sidecar(path: str | os.PathLike) -> None:
    """Raise ``phconvert.hdf5.Invalid_PhotonHDF5`` if the file is not valid Photon-HDF5."""
    import tables

    ph5 = phconvert_hdf5()
    with tables.open_file(str(path)) as f:
        ph5.assert_valid_photon_hdf5(f, warnings=False)


def _user_value(v: Any) -> Any:
    if isinstance(v, bool | int | float | str | np.ndarray | np.integer | np.floating):
        return v
    try:
        return json.dumps(v, default=str)
    except TypeError:
        return str(v)


def _version() -> str:
    from .plugins import distribution_version

    return distribution_version("sflab") or "0"   # "0": not installed as a distribution
