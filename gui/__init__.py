"""sflab desktop GUI (qtpy + PySide6 + pyqtgraph). Entry point: :func:`gui.app.main`.

Importing the package applies :func:`gui._pyside_fix.protect_none` (a PySide6 6.12 reference-count
bug on CPython < 3.12 that would otherwise crash a long-running GUI).
"""

from ._pyside_fix import protect_none

protect_none()
