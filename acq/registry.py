"""Names to code: procedures by name (plans, ``sflab resume``, the GUI), backends by ``module:Class``, and
installed distributions' versions — the one plugin point of ``acq`` (the only use of ``importlib``).

``acq`` does not import ``procedures`` statically (procedures import ``acq``); the measurement
package is found at run time, as pymeasure's ``Results.load`` finds a procedure class by name.
Built in: ``EngineCheck`` (acq.enginecheck). ``procedures.PROCEDURES`` (a dict name → class) adds the
measurements; your own procedure is named ``module:Class`` (or ``module.Class``) in a plan, and a backend
class ``module:Class`` in :data:`acq.lab.BACKENDS` (docs/decisions/0001-layers-and-composition-root.md).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import logging
from typing import Any

from .procedure import Procedure

log = logging.getLogger(__name__)

__all__ = ["procedures", "procedure_class", "UnknownProcedure", "load_object", "distribution_version"]


class UnknownProcedure(KeyError):
    def __init__(self, name: str, known: list[str]):
        self.name, self.known = name, known
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" — did you mean {close[0]!r}?" if close else ""
        super().__init__(f"unknown procedure {name!r}{hint} (known: {', '.join(known)})")

    def __str__(self) -> str:
        return self.args[0]


def load_object(module: str, name: str) -> Any:
    """``module.name``, imported on demand (ImportError / AttributeError when it is not there)."""
    return getattr(importlib.import_module(module), name)


def distribution_version(dist: str) -> str | None:
    """The installed version of distribution ``dist``, or None when it is not installed."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def procedures() -> dict[str, type[Procedure]]:
    from .enginecheck import EngineCheck

    out: dict[str, type[Procedure]] = {"EngineCheck": EngineCheck}
    out.update(load_object("procedures", "PROCEDURES"))
    return out


def procedure_class(name: str) -> type[Procedure]:
    """Class for ``name`` (class name, or ``module:Class`` / ``module.Class`` for your own)."""
    known = procedures()
    if name in known:
        return known[name]
    for sep in (":", "."):
        if sep in name:
            mod, _, cls = name.rpartition(sep)
            try:
                k = load_object(mod, cls)
            except (ImportError, AttributeError):
                continue
            if isinstance(k, type) and issubclass(k, Procedure):
                return k
    raise UnknownProcedure(name, sorted(known))
