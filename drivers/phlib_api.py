"""PHLib v3.0 (PicoHarp 300) constants, library loading, checked calls and record decoding.

Constants from PicoQuant's ``phdefin.h`` / ``errorcodes.h`` (PH300-v3.x-Demos, PHLib 3.0.0.3). The
function table is either the vendor library loaded with ctypes (``phlib64.dll`` on Windows,
``libph300.so``/``phlib.so`` on Linux) or any object with the same ``PH_*`` functions (the emulated
table from ``simulators.phlib``) — :class:`PHLib` only calls attributes by name, passing ctypes
objects the way PicoQuant's own Python demos do.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
from typing import Any

import numpy as np

from .base import DriverError

log = logging.getLogger(__name__)

MAXDEVNUM = 8
MODE_HIST, MODE_T2, MODE_T3 = 0, 2, 3
HISTCHAN = 65536
TTREADMAX = 131072
BASE_RESOLUTION_PS = 4.0
BINSTEPSMAX = 8
SYNCDIVS = (1, 2, 4, 8)
CFD_LEVEL_MV = (0, 800)
CFD_ZC_MV = (0, 20)
OFFSET_PS = (0, 1_000_000_000)
SYNC_OFFSET_PS = (-99_999, 99_999)
ACQT_MS = (1, 360_000_000)
FLAG_OVERFLOW = 0x0040
FLAG_FIFOFULL = 0x0003
FLAG_SYSERROR = 0x0100
T2WRAPAROUND = 210_698_240
T3WRAPAROUND = 65_536
T3_DTIME_BINS = 4096

FLAG_NAMES = {FLAG_OVERFLOW: "histogram bin overflow", FLAG_FIFOFULL: "FIFO full (data lost)",
              FLAG_SYSERROR: "system error (contact PicoQuant support)"}

#: errorcodes.h, used when the library cannot be asked (or for the boundary tests)
ERROR_NAMES = {
    -1: "ERROR_DEVICE_OPEN_FAIL", -2: "ERROR_DEVICE_BUSY", -10: "ERROR_DEVICE_NOT_OPEN",
    -11: "ERROR_DEVICE_LOCKED", -16: "ERROR_INSTANCE_RUNNING", -17: "ERROR_INVALID_ARGUMENT",
    -18: "ERROR_INVALID_MODE", -19: "ERROR_INVALID_OPTION", -20: "ERROR_INVALID_MEMORY",
    -22: "ERROR_NOT_INITIALIZED", -23: "ERROR_NOT_CALIBRATED", -37: "ERROR_USB_BULKRD_FAIL",
}

LIBRARY_CANDIDATES = {
    "win32": ["phlib64.dll", "phlib.dll"],
    "linux": ["libph300.so", "phlib.so", "/usr/local/lib64/ph300/phlib.so", "/usr/local/lib/ph300/phlib.so"],
}


def load_library(path: str | None = None) -> Any:
    """Load the vendor PHLib with ctypes (``path`` or the platform's usual names)."""
    names = [path] if path else LIBRARY_CANDIDATES.get("win32" if sys.platform == "win32" else "linux", [])
    if not path:
        found = ctypes.util.find_library("ph300") or ctypes.util.find_library("phlib")
        if found:
            names.insert(0, found)
    errors = []
    for name in names:
        try:
            if sys.platform == "win32":  # pragma: no cover - Windows only
                return ctypes.WinDLL(name)
            return ctypes.CDLL(name)
        except OSError as exc:
            errors.append(f"{name}: {exc}")
    where = "; ".join(errors) or "no candidates"
    raise DriverError(f"PicoHarp 300 library (PHLib 3.0) not found ({where}). Install PicoQuant's PHLib "
                      f"or give its path as the 'library' option.")


class PHLib:
    """Checked calls into a PHLib function table: a negative return code raises :class:`DriverError`
    with the library's own error string."""

    def __init__(self, table: Any):
        self.table = table

    def __repr__(self) -> str:
        return f"PHLib({self.table!r})"

    def error_string(self, code: int) -> str:
        buf = ctypes.create_string_buffer(40)
        try:
            fn = self.table.PH_GetErrorString
            if fn(buf, ctypes.c_int(code)) >= 0 and buf.value:
                return buf.value.decode("ascii", "replace")
        except Exception:  # noqa: BLE001 - fall back to our own table
            pass
        return ERROR_NAMES.get(code, f"error {code}")

    def __call__(self, name: str, *args: Any) -> int:
        fn = getattr(self.table, name, None)
        if fn is None:
            raise DriverError(f"PHLib has no function {name} (library too old or not PHLib 3.x)")
        rc = int(fn(*args))
        if rc < 0:
            text = self.error_string(rc)
            log.debug("%s -> %d %s", name, rc, text)
            raise DriverError(f"PicoHarp {name} failed: {text} ({rc})")
        return rc


def decode_t2(records: np.ndarray, *, resolution_ps: float = BASE_RESOLUTION_PS
              ) -> tuple[np.ndarray, np.ndarray, int]:
    """PicoHarp 300 T2 records → (channel int16, time_ps int64, n_overflows). Markers are dropped."""
    rec = np.asarray(records, np.uint32)
    ch = (rec >> 28).astype(np.int16)
    t = (rec & 0x0FFFFFFF).astype(np.int64)
    special = ch == 15
    ovf = special & ((t & 0xF) == 0)
    wraps = np.cumsum(ovf, dtype=np.int64)
    photon = ~special
    ticks = t[photon] + wraps[photon] * T2WRAPAROUND
    k = round(resolution_ps)
    time_ps = ticks * np.int64(k) if abs(resolution_ps - k) < 1e-9 else np.rint(ticks * resolution_ps)
    return ch[photon], time_ps.astype(np.int64), int(ovf.sum())


def decode_t3(records: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """PicoHarp 300 T3 records → (channel int16, nsync int64, dtime int64, n_overflows)."""
    rec = np.asarray(records, np.uint32)
    ch = (rec >> 28).astype(np.int16)
    dtime = ((rec >> 16) & 0xFFF).astype(np.int64)
    nsync = (rec & 0xFFFF).astype(np.int64)
    special = ch == 15
    ovf = special & (dtime == 0)
    wraps = np.cumsum(ovf, dtype=np.int64)
    photon = ~special
    return ch[photon], nsync[photon] + wraps[photon] * T3WRAPAROUND, dtime[photon], int(ovf.sum())


def env_library_path() -> str | None:
    """``SFLAB_PHLIB`` environment variable (path to the vendor library), for hardware tests."""
    return os.environ.get("SFLAB_PHLIB") or None
