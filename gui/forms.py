"""Parameter forms generated from a procedure's pymeasure ``Parameter`` s.

One row per parameter: the name, an editor chosen by kind (check box for booleans, combo box for
choices, a text field for numbers and lists — spin boxes would clamp silently, hiding the mistake),
the units, and an inline message. Every edit is checked with :func:`acq.procedure.validate_parameters`,
the same function ``sflab check`` and plans use, so the GUI accepts exactly what the CLI accepts and
says why it refuses in the same words.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from qtpy import QtCore, QtWidgets

from acq.procedure import Procedure, parameter_schema, validate_parameters

log = logging.getLogger(__name__)

__all__ = ["ParameterForm", "format_value", "parse_text"]


def format_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def parse_text(kind: str, text: str) -> Any:
    """Text from an editor as the value the CLI/plan would pass (lists stay strings for the parameter)."""
    t = text.strip()
    if kind in ("FloatParameter",):
        try:
            return float(t.replace(",", "."))
        except ValueError:
            return t
    if kind in ("IntegerParameter",):
        try:
            return int(t)
        except ValueError:
            try:
                f = float(t)
                return int(f) if f.is_integer() else t
            except ValueError:
                return t
    if kind == "VectorParameter":
        try:
            return json.loads(t if t.startswith("[") else f"[{t}]")
        except ValueError:
            return t
    return t


class ParameterForm(QtWidgets.QWidget):
    """Editors for ``cls``'s parameters; ``values()``, ``errors()``, ``set_values()``."""

    changed = QtCore.Signal()

    def __init__(self, cls: type[Procedure], parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.cls = cls
        self.schema = parameter_schema(cls)
        self.editors: dict[str, QtWidgets.QWidget] = {}
        self.messages: dict[str, QtWidgets.QLabel] = {}
        grid = QtWidgets.QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setVerticalSpacing(2)
        grid.setColumnStretch(1, 1)
        grid.setColumnMinimumWidth(1, 110)
        row = 0
        for key, s in self.schema.items():
            label = QtWidgets.QLabel(s["name"])
            label.setWordWrap(True)
            label.setMaximumWidth(170)
            label.setToolTip(f"{key}: {s['allowed']}" + (f"\n{s['description']}" if s.get("description") else ""))
            ed = self._editor(key, s)
            ed.setObjectName(f"param_{key}")
            ed.setToolTip(s["allowed"])
            unit = QtWidgets.QLabel(s.get("units") or "")
            unit.setStyleSheet("color: #555")
            msg = QtWidgets.QLabel("")
            msg.setObjectName(f"msg_{key}")
            msg.setWordWrap(True)
            msg.setStyleSheet("color: #c62828")
            msg.hide()
            grid.addWidget(label, row, 0)
            grid.addWidget(ed, row, 1)
            grid.addWidget(unit, row, 2)
            grid.addWidget(msg, row + 1, 0, 1, 3)
            self.editors[key], self.messages[key] = ed, msg
            row += 2
        grid.setRowStretch(row, 1)
        self.validate()

    def _editor(self, key: str, s: dict[str, Any]) -> QtWidgets.QWidget:
        kind, default = s["kind"], s.get("default")
        if kind == "BooleanParameter":
            ed = QtWidgets.QCheckBox()
            ed.setChecked(bool(default))
            ed.toggled.connect(self._edited)
            return ed
        if s.get("choices"):
            ed = QtWidgets.QComboBox()
            for c in s["choices"]:
                ed.addItem(str(c), c)
            if default is not None:
                i = ed.findText(str(default))
                ed.setCurrentIndex(max(i, 0))
            ed.currentIndexChanged.connect(self._edited)
            return ed
        ed = QtWidgets.QLineEdit(format_value(default))
        ed.setPlaceholderText(s["allowed"])
        ed.textChanged.connect(self._edited)
        return ed

    def _edited(self, *_a: Any) -> None:
        self.validate()
        self.changed.emit()

    def raw_values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, ed in self.editors.items():
            kind = self.schema[key]["kind"]
            if isinstance(ed, QtWidgets.QCheckBox):
                out[key] = ed.isChecked()
            elif isinstance(ed, QtWidgets.QComboBox):
                out[key] = ed.currentData()
            else:
                text = ed.text()
                if not text.strip():
                    continue   # left empty: the default applies (or "is required")
                out[key] = parse_text(kind, text)
        return out

    def validate(self) -> dict[str, str]:
        """Check every editor; show the messages inline; return {key: message}."""
        _vals, errors = validate_parameters(self.cls, self.raw_values())
        bad = {e.key: f"{e.value!r} {e.allowed}" if e.value is not None else e.allowed for e in errors}
        for key, ed in self.editors.items():
            msg = self.messages[key]
            if key in bad:
                msg.setText(bad[key])
                msg.show()
                ed.setStyleSheet("border: 1px solid #c62828")
            else:
                msg.hide()
                ed.setStyleSheet("")
        return bad

    def errors(self) -> dict[str, str]:
        return self.validate()

    def values(self) -> dict[str, Any]:
        """Validated, converted values (defaults included); raises ValueError naming every problem."""
        vals, errors = validate_parameters(self.cls, self.raw_values())
        if errors:
            raise ValueError("; ".join(str(e) for e in errors))
        return vals

    def set_values(self, values: dict[str, Any]) -> list[str]:
        """Fill the editors (e.g. "use these parameters"); returns keys this procedure does not have."""
        unknown = []
        for key, v in values.items():
            ed = self.editors.get(key)
            if ed is None:
                unknown.append(key)
                continue
            if isinstance(ed, QtWidgets.QCheckBox):
                ed.setChecked(bool(v))
            elif isinstance(ed, QtWidgets.QComboBox):
                i = ed.findText(str(v))
                if i >= 0:
                    ed.setCurrentIndex(i)
            else:
                ed.setText(format_value(v))
        self.validate()
        return unknown
