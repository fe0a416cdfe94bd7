"""Replay of recorded time tags through the emulated vendor layers.

``open_recording(path)`` reads a PicoQuant PTU file (with ``ptufile``) or a Photon-HDF5 file (with
``h5py``) into a :class:`simulators.feeds.TagFeed`; ``replay_phlib(path)`` and
``replay_tagger_module(path)`` put it behind the emulated PHLib / Time Tagger module, so the real
backends (``drivers.picoharp300``, ``drivers.swabian``) play the recording at the lab clock's pace.

Channel mapping (interface numbering, 0 = sync, 1.. = detectors):

* PicoHarp 300 T2 PTU: the record channel *is* the input (0 = sync input, 1 = detector input);
* every other PTU (HydraHarp / TimeHarp / generic T2 and all T3): ptufile's 0-based detector
  channel ``c`` becomes ``c + 1``;
* Photon-HDF5: the distinct detector ids, in ascending order, become 1, 2, … (ids listed as
  ``non_photon_id`` are dropped).

T3 recordings keep their sync count and micro time exactly (``TagChunk.nsync``/``dtime_ps``), with
the sync times on a grid of the recorded sync period; one sync tag (channel 0) is synthesised per
sync that has photons (a T3 file does not hold the others), so start-stop histograms against the
sync are exact while the sync count rate is taken from the file header.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from .feeds import TagChunk, TagFeed

log = logging.getLogger(__name__)

__all__ = ["RecordedT2", "RecordedT3", "open_recording", "load_ptu", "load_photon_hdf5",
           "replay_phlib", "replay_tagger_module"]

PH300_T2 = 0x00010203


def _to_ps(values: np.ndarray, unit_ps: float) -> np.ndarray:
    k = round(unit_ps)
    if k >= 1 and abs(unit_ps - k) < 1e-6 * k:
        return np.asarray(values, np.int64) * np.int64(k)
    return np.rint(np.asarray(values, np.float64) * unit_ps).astype(np.int64)


class RecordedT2(TagFeed):
    """Absolute time tags (sync on channel 0 when recorded)."""

    kind = "t2"

    def __init__(self, channel: np.ndarray, time_ps: np.ndarray, *, duration_ps: int | None = None,
                 description: str = "", resolution_ps: float = 1.0, meta: dict | None = None,
                 loop: bool = False):
        order = np.argsort(time_ps, kind="stable")
        self.channel = np.asarray(channel, np.int16)[order]
        self.time_ps = np.asarray(time_ps, np.int64)[order]
        last = int(self.time_ps[-1]) + 1 if self.time_ps.size else 0
        self.end_ps = max(int(duration_ps or 0), last)
        self.description = description
        self.resolution_ps = float(resolution_ps)
        self.meta = dict(meta or {})
        self.loop = loop
        self.n_detectors = int(max(1, np.max(self.channel, initial=1)))

    def _read(self, t0_ps: int, t1_ps: int) -> TagChunk:
        i0, i1 = np.searchsorted(self.time_ps, [t0_ps, t1_ps], side="left")
        return TagChunk(self.channel[i0:i1], self.time_ps[i0:i1])

    def rates(self) -> dict[int, float]:
        dur = max(self.end_ps, 1) * 1e-12
        values, counts = np.unique(self.channel, return_counts=True)
        return {int(v): float(c) / dur for v, c in zip(values, counts, strict=True)}


class RecordedT3(TagFeed):
    """T3 recording: per photon the sync count and the micro time (start-stop time)."""

    kind = "t3"

    def __init__(self, channel: np.ndarray, nsync: np.ndarray, dtime_ps: np.ndarray, *,
                 sync_period_ps: float, resolution_ps: float, n_bins: int | None = None,
                 duration_ps: int | None = None, sync_rate_hz: float | None = None,
                 description: str = "", meta: dict | None = None, loop: bool = False):
        nsync = np.asarray(nsync, np.int64)
        dtime_ps = np.asarray(dtime_ps, np.int64)
        t = np.rint(nsync * float(sync_period_ps)).astype(np.int64) + dtime_ps
        order = np.argsort(t, kind="stable")
        self.channel = np.asarray(channel, np.int16)[order]
        self.nsync = nsync[order]
        self.dtime_ps = dtime_ps[order]
        self.time_ps = t[order]
        self.sync_period_ps = float(sync_period_ps)
        self.resolution_ps = float(resolution_ps)
        self.n_bins = n_bins
        last = int(self.time_ps[-1]) + 1 if self.time_ps.size else 0
        self.end_ps = max(int(duration_ps or 0), last)
        self.sync_rate_hz = sync_rate_hz if sync_rate_hz else 1e12 / self.sync_period_ps
        self.description = description
        self.meta = dict(meta or {})
        self.loop = loop
        self.n_detectors = int(max(1, np.max(self.channel, initial=1)))

    def _read(self, t0_ps: int, t1_ps: int) -> TagChunk:
        i0, i1 = np.searchsorted(self.time_ps, [t0_ps, t1_ps], side="left")
        ch, ns, dt, t = self.channel[i0:i1], self.nsync[i0:i1], self.dtime_ps[i0:i1], self.time_ps[i0:i1]
        if ch.size == 0:
            return TagChunk.empty(t3=True)
        # one synthesised sync tag before the photons of each sync that has photons
        first = np.concatenate(([True], ns[1:] != ns[:-1]))
        s_ns = ns[first]
        s_t = np.rint(s_ns * self.sync_period_ps).astype(np.int64)
        keep = s_t >= t0_ps  # a sync that fell in the previous window was sent then
        s_ns, s_t = s_ns[keep], s_t[keep]
        all_t = np.concatenate([s_t, t])
        order = np.argsort(all_t, kind="stable")  # syncs first on ties (listed first)
        return TagChunk(
            np.concatenate([np.zeros(s_t.size, np.int16), ch])[order],
            all_t[order],
            np.concatenate([s_ns, ns])[order],
            np.concatenate([np.zeros(s_t.size, np.int64), dt])[order],
        )

    def rates(self) -> dict[int, float]:
        dur = max(self.end_ps, 1) * 1e-12
        values, counts = np.unique(self.channel, return_counts=True)
        out = {int(v): float(c) / dur for v, c in zip(values, counts, strict=True)}
        out[0] = float(self.sync_rate_hz)
        return out

    def histogram(self, channel: int | None = None, n_bins: int | None = None) -> np.ndarray:
        """Micro-time histogram in recorded bins (for checks)."""
        sel = self.channel >= 1 if channel is None else self.channel == channel
        b = np.rint(self.dtime_ps[sel] / self.resolution_ps).astype(np.int64)
        return np.bincount(b, minlength=n_bins or self.n_bins or 0)


def load_ptu(path: str | os.PathLike, *, loop: bool = False) -> TagFeed:
    """A PTU file (any PicoQuant T2/T3 record type that ptufile decodes) as a feed."""
    import ptufile

    path = Path(path)
    with ptufile.PtuFile(path) as ptu:
        rec = ptu.decode_records()
        mode = int(ptu.measurement_mode)
        rectype = int(ptu.record_type)
        tags = dict(ptu.tags)
        gres_ps = float(ptu.global_resolution) * 1e12
        sync_rate = float(ptu.syncrate or 0)
        stop_after_ms = tags.get("TTResult_StopAfter") or tags.get("MeasDesc_AcquisitionTime")
        nbins = None
        if mode == 3:
            try:
                nbins = int(ptu.number_bins_in_period)
            except Exception:  # pragma: no cover - depends on header
                nbins = None
            tres_ps = float(ptu.tcspc_resolution) * 1e12
    photon = rec["channel"] >= 0
    meta = {"source": str(path), "record_type": hex(rectype), "measurement_mode": mode,
            "hw_type": tags.get("HW_Type"), "hw_serial": tags.get("HW_SerialNo")}
    duration_ps = int(float(stop_after_ms) * 1e9) if stop_after_ms else None
    if mode == 2:
        ch = rec["channel"][photon].astype(np.int16)
        if rectype != PH300_T2:
            ch = ch + 1
        t = _to_ps(rec["time"][photon], gres_ps)
        log.info("replay %s: T2, %d tags", path.name, t.size)
        return RecordedT2(ch, t, duration_ps=duration_ps, description=f"PTU {path.name}",
                          resolution_ps=gres_ps, meta=meta, loop=loop)
    if mode == 3:
        ch = rec["channel"][photon].astype(np.int16) + 1
        nsync = rec["time"][photon].astype(np.int64)
        dtime_ps = _to_ps(rec["dtime"][photon], tres_ps)
        log.info("replay %s: T3, %d photons, sync %.1f ps, bin %.3f ps", path.name, ch.size, gres_ps, tres_ps)
        return RecordedT3(ch, nsync, dtime_ps, sync_period_ps=gres_ps, resolution_ps=tres_ps, n_bins=nbins,
                          duration_ps=duration_ps, sync_rate_hz=sync_rate or None,
                          description=f"PTU {path.name}", meta=meta, loop=loop)
    raise ValueError(f"{path}: measurement mode {mode} is not T2 or T3; cannot replay it")


def load_photon_hdf5(path: str | os.PathLike, *, loop: bool = False) -> TagFeed:
    """A single-spot Photon-HDF5 file (v0.4/0.5) as a feed (TCSPC when it has nanotimes)."""
    import h5py

    path = Path(path)
    with h5py.File(path, "r") as f:
        pd = f["photon_data"]
        ts = pd["timestamps"][()]
        unit_ps = float(pd["timestamps_specs/timestamps_unit"][()]) * 1e12
        det = pd["detectors"][()] if "detectors" in pd else np.zeros(ts.size, np.uint8)
        non_photon: set[int] = set()
        ms = pd.get("measurement_specs")
        rep = None
        if ms is not None:
            ds = ms.get("detectors_specs")
            if ds is not None:
                for k in ds:
                    if k.startswith("non_photon_id"):
                        non_photon.update(int(x) for x in np.atleast_1d(ds[k][()]))
            if "laser_repetition_rate" in ms:
                rep = float(np.atleast_1d(ms["laser_repetition_rate"][()])[0])
        nanot = pd["nanotimes"][()] if "nanotimes" in pd else None
        tcspc_unit_ps = nbins = None
        if nanot is not None:
            tcspc_unit_ps = float(pd["nanotimes_specs/tcspc_unit"][()]) * 1e12
            nbins = int(pd["nanotimes_specs/tcspc_num_bins"][()])
        duration_s = float(f["acquisition_duration"][()]) if "acquisition_duration" in f else None
    keep = ~np.isin(det, list(non_photon)) if non_photon else np.ones(ts.size, bool)
    ts, det = ts[keep], det[keep]
    ids = np.unique(det)
    ch = (np.searchsorted(ids, det) + 1).astype(np.int16)
    t_ps = _to_ps(ts, unit_ps)
    meta = {"source": str(path), "detector_ids": [int(i) for i in ids]}
    dur_ps = int(duration_s * 1e12) if duration_s else None
    if nanot is not None and rep:
        period = 1e12 / rep
        nsync = np.floor(t_ps / period + 1e-6).astype(np.int64)
        dtime_ps = _to_ps(nanot[keep], tcspc_unit_ps)
        return RecordedT3(ch, nsync, dtime_ps, sync_period_ps=period, resolution_ps=tcspc_unit_ps,
                          n_bins=nbins, duration_ps=dur_ps, description=f"Photon-HDF5 {path.name}",
                          meta=meta, loop=loop)
    return RecordedT2(ch, t_ps, duration_ps=dur_ps, description=f"Photon-HDF5 {path.name}",
                      resolution_ps=unit_ps, meta=meta, loop=loop)


def open_recording(path: str | os.PathLike, *, loop: bool = False) -> TagFeed:
    """PTU (``.ptu``) or Photon-HDF5 (``.h5``/``.hdf5``) recording as a feed."""
    suffix = Path(path).suffix.lower()
    if suffix == ".ptu":
        return load_ptu(path, loop=loop)
    if suffix in (".h5", ".hdf5", ".hdf"):
        return load_photon_hdf5(path, loop=loop)
    raise ValueError(f"cannot replay {path}: expected a .ptu or Photon-HDF5 (.h5/.hdf5) file")


def replay_phlib(path: str | os.PathLike, *, clock: Any = None, loop: bool = False, **kw: Any) -> Any:
    """An emulated PHLib (PicoHarp 300) that plays ``path``."""
    from .phlib import EmulatedPHLib

    feed = open_recording(path, loop=loop)
    return EmulatedPHLib(feed, clock=clock, **kw)


def replay_tagger_module(path: str | os.PathLike, *, clock: Any = None, loop: bool = False) -> Any:
    """An emulated TimeTagger module whose ``createTimeTagger()`` plays ``path``."""
    from .timetagger import make_module

    feed = open_recording(path, loop=loop)
    return make_module(lambda: feed, clock=clock, open_recording=open_recording)
