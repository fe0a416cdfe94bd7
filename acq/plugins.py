"""The one plugin point of ``acq``: code and distributions found by name at run time — the only module of
``acq`` that uses ``importlib``.

* :func:`load_object` — ``module:Class`` targets: the measurement procedures (``procedures.PROCEDURES``,
  found by :mod:`acq.registry`, because ``procedures`` imports ``acq``), your own procedures named
  ``module:Class`` in a plan, and the backends of :data:`acq.lab.BACKENDS` (imported only when a lab
  configuration names them). docs/decisions/0001-layers-and-composition-root.md.
* :func:`distribution_version` — installed versions, for the run file's provenance.
* :func:`without_modules` — import something while optional modules it would probe for are made to fail
  (the documented ``None`` entry in ``sys.modules``), for third-party imports that pull in heavy extras.

It imports nothing of ``acq``, so every module may use it without an import cycle.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import sys
from collections.abc import Iterator
from typing import Any

__all__ = ["load_object", "distribution_version", "without_modules"]


def load_object(module: str, name: str) -> Any:
    """``module.name``, imported on demand (ImportError / AttributeError when it is not there)."""
    return getattr(importlib.import_module(module), name)


def distribution_version(dist: str) -> str | None:
    """The installed version of distribution ``dist``, or None when it is not installed."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


@contextlib.contextmanager
def without_modules(*names: str) -> Iterator[None]:
    """Within the block, ``import <name>`` raises ImportError for each of ``names`` (a ``None`` entry in
    ``sys.modules``, even over a module imported already); afterwards each is as it was. For an optional
    probe guarded by ``except ImportError`` in a third-party module (pint's dask, pymeasure's IPython,
    phconvert's numba). Another thread importing one of ``names`` inside the block fails too: keep it short."""
    modules: dict[str, Any] = sys.modules   # a None entry is allowed at run time, not in typeshed
    saved = {n: modules.get(n) for n in names}
    for n in names:
        modules[n] = None
    try:
        yield
    finally:
        for n, m in saved.items():
            if m is None:
                modules.pop(n, None)
            else:
                modules[n] = m
