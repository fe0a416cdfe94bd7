"""Procedures by name, for plans, ``sflab resume`` and the GUI (through :mod:`acq.plugins`).

``acq`` does not import ``procedures`` statically (procedures import ``acq``); the measurement
package is found at run time, as pymeasure's ``Results.load`` finds a procedure class by name.
Built in: ``EngineCheck`` (acq.enginecheck). ``procedures.PROCEDURES`` (a dict name → class) adds the
measurements; your own procedure is named ``module:Class`` (or ``module.Class``) in a plan, and a backend
class ``module:Class`` in :data:`acq.lab.BACKENDS` (docs/decisions/0001-layers-and-composition-root.md).
"""

from __future__ import annotations

import difflib
import logging

from .plugins import load_object
from .procedure import Procedure

log = logging.getLogger(__name__)

__all__ = ["procedures", "procedure_class", "UnknownProcedure"]


class UnknownProcedure(KeyError):
    def __init__(self, name: str, known: list[str]):
        self.name, self.known = name, known
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" — did you mean {close[0]!r}?" if close else ""
        super().__init__(f"unknown procedure {name!r}{hint} (known: {', '.join(known)})")

    def __str__(self) -> str:
        return self.args[0]


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
