"""File names sflab makes from user text (sample names, procedure names): one sanitiser for all of them."""

from __future__ import annotations

import re
import time

__all__ = ["safe_name", "run_filename"]


def safe_name(s: str) -> str:
    """``s`` with every run of characters outside ``A-Za-z0-9._-`` replaced by ``-`` (no leading or
    trailing ``-``): safe in file names on every platform sflab runs on."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", s).strip("-")


def run_filename(procedure: str, *, sample: str = "", when: float | None = None, index: int | None = None) -> str:
    """``20261121-153800_PLTemperatureSeries_milano-2d-sl.h5`` (safe characters only)."""
    t = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    parts = [t] + ([f"{index:03d}"] if index is not None else []) + [procedure] + ([sample] if sample else [])
    return safe_name("_".join(parts)) + ".h5"
