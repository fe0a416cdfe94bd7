"""The one plugin point of ``acq``: code and distributions found by name at run time — the only module of
``acq`` that uses ``importlib``.

* :func:`load_object` — ``module:Class`` targets: the measurement procedures (``procedures.PROCEDURES``,
  found by :mod:`acq.registry`, because ``procedures`` imports ``acq``), your own procedures named
  ``module:Class`` in a plan, and the backends of :data:`acq.lab.BACKENDS` (imported only when a lab
  configuration names them). docs/decisions/0001-layers-and-composition-root.md.
* :func:`distribution_version` — installed versions, for the run file's provenance.

It imports nothing of ``acq``, so every module may use it without an import cycle.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import Any

__all__ = ["load_object", "distribution_version"]


def load_object(module: str, name: str) -> Any:
    """``module.name``, imported on demand (ImportError / AttributeError when it is not there)."""
    return getattr(importlib.import_module(module), name)


def distribution_version(dist: str) -> str | None:
    """The installed version of distribution ``dist``, or None when it is not installed."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
