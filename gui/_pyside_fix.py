"""Work around a reference-count bug of PySide6 6.12 on CPython < 3.12.

Measured here (PySide6 6.12.0, CPython 3.11): every call of a Qt method that returns ``void``
(``QLabel.setText``, ``QApplication.processEvents``, …) *decrements* the reference count of ``None``
once without having incremented it — the binding assumes ``None`` is immortal, which it is only
from Python 3.12 (PEP 683). A GUI makes thousands of such calls per second, so after a few minutes
``None``'s count reaches zero and CPython aborts with "Fatal Python error: none_dealloc".

:func:`protect_none` probes for the leak (100 ``setObjectName`` calls) and, only if it is there,
raises ``None``'s count by 2**40 once, which outlasts any session (one leaked reference per call).
The same happens to ``True``/``False`` (seen as "Fatal Python error: bool_dealloc" at exit after a
long session, from Python overrides of virtuals returning a bool), so when the leak is detected the
other non-immortal singletons a binding returns — ``True``, ``False`` and the cached small ints — are
protected the same way. On Python ≥ 3.12 or a fixed PySide6 it does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

__all__ = ["protect_none"]

_applied = False


def protect_none() -> int:
    """Returns the number of references 100 void Qt calls leaked (0 when there is no leak)."""
    global _applied
    if sys.version_info >= (3, 12) or _applied:
        return 0
    from qtpy import QtCore

    probe = QtCore.QObject()
    before = sys.getrefcount(None)
    for _ in range(100):
        probe.setObjectName("probe")
    leaked = before - sys.getrefcount(None)
    if leaked >= 50:
        for obj in (None, True, False, *range(-5, 257)):
            ctypes.c_ssize_t.from_address(id(obj)).value += 1 << 40
        _applied = True
        log.info("PySide6 leaks a reference to None per void call (%d in 100 calls); None protected", leaked)
    return leaked
