"""Instrument panels: one per role, live readbacks and manual controls.

Readbacks are whatever the role declares in ``READBACKS`` (names and units known up front), fed by
:class:`gui.io.InstrumentIO` polls and by the readbacks that come with every point of a run. Manual
controls validate inline as the drivers do (the driver's own checks, e.g. the X-ray generator's
``check_setpoint`` or the cryostat's ``min_K``/``max_K``, where it offers them) and then run on the
instrument thread; whatever the driver refuses (``SafetyError``, ``OptionError`` …) is shown in red
in the panel. Manual controls are disabled while a run owns the instruments.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from qtpy import QtCore, QtWidgets

from .io import InstrumentIO

log = logging.getLogger(__name__)

__all__ = ["InstrumentPanel", "InstrumentsView", "make_panel"]

#: the panel title of every role in ``acq.lab.ROLES`` (tests/gui/test_titles.py fails on a role without one)
TITLES = {"cryostat": "Cryostat", "xray": "X-ray source", "spectrometer": "Spectrometer + CCD",
          "tcspc": "TCSPC / time tagger", "tcspc_mono": "TCSPC monochromator", "attenuator": "Laser attenuator",
          "powermeter": "Power meter", "sample_stage": "Sample stage", "white_light": "White-light source"}
#: the row label of every readback a backend declares in ``READBACKS``
LABELS = {"T_sample": "T sample", "T_sensor": "T sensor", "setpoint": "setpoint", "heater": "heater",
          "kV": "voltage", "mA": "current", "hv_on": "HV", "shutter_open": "shutter",
          "interlock_closed": "interlock", "center_nm": "mono λ", "ccd_temperature": "CCD T",
          "rate_ch0": "rate ch 0", "rate_ch1": "rate ch 1", "rate_ch2": "rate ch 2",
          "wavelength_nm": "λ passed", "bandpass_nm": "bandpass",
          "angle": "angle", "transmission": "transmission", "power": "power", "fluence": "fluence",
          "position_mm": "stage position", "slot": "in the beam", "lamp_open": "lamp shutter"}

OK_STYLE = "color: #1a7f37; font-weight: bold"
BAD_STYLE = "color: #c62828; font-weight: bold"
ERR_STYLE = "color: #c62828"


def fmt_value(name: str, value: float, unit: str) -> tuple[str, str]:
    """Text and style for one readback."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—", ""
    if name == "hv_on":
        return ("ON", BAD_STYLE) if value else ("off", OK_STYLE)
    if name == "shutter_open":
        return ("OPEN", BAD_STYLE) if value else ("closed", OK_STYLE)
    if name == "lamp_open":   # white light on the sample: not a hazard, but it spoils PL/TCSPC data
        return ("open", "") if value else ("closed", OK_STYLE)
    if name == "interlock_closed":
        return ("closed (HV permitted)", OK_STYLE) if value else ("OPEN — HV refused", BAD_STYLE)
    if unit == "1/s":
        return f"{value:,.0f} /s", ""
    if name == "transmission":
        return f"{value:.3g}", ""
    if unit == "W":
        return f"{value * 1e3:.4g} mW", ""
    return f"{value:.4g} {unit}".strip(), ""


def _float(text: str) -> float:
    try:
        return float(text.strip().replace(",", "."))
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None


class InstrumentPanel(QtWidgets.QGroupBox):
    """Readbacks of one role plus (subclasses) its manual controls."""

    def __init__(self, role: str, driver: Any, io: InstrumentIO, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(TITLES.get(role, role), parent)
        self.setObjectName(f"panel_{role}")
        self.role, self.driver, self.io = role, driver, io
        self.units = dict(getattr(type(driver), "READBACKS", {}))
        self.values: dict[str, float] = {}
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        self.state = QtWidgets.QLabel("not connected")
        self.state.setStyleSheet("color: #777")
        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.state, 1)
        self.connect_btn = QtWidgets.QPushButton("Connect")
        self.connect_btn.clicked.connect(lambda: self.io.connect_role(self.role))
        top.addWidget(self.connect_btn)
        lay.addLayout(top)
        self.form = QtWidgets.QFormLayout()
        self.form.setFieldGrowthPolicy(QtWidgets.QFormLayout.AllNonFixedFieldsGrow)
        self.labels: dict[str, QtWidgets.QLabel] = {}
        for name in self.units:
            lab = QtWidgets.QLabel("—")
            lab.setObjectName(f"rb_{role}_{name}")
            lab.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
            lab.setSizePolicy(QtWidgets.QSizePolicy.Ignored, QtWidgets.QSizePolicy.Preferred)  # no relayout per value
            self.labels[name] = lab
            self.form.addRow(LABELS.get(name, name) + ":", lab)
        lay.addLayout(self.form)
        self.controls = QtWidgets.QWidget()
        self.controls_layout = QtWidgets.QGridLayout(self.controls)
        self.controls_layout.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.controls)
        self.message = QtWidgets.QLabel("")
        self.message.setObjectName(f"msg_{role}")
        self.message.setWordWrap(True)
        lay.addWidget(self.message)
        self.build_controls()

    # -- subclasses
    def build_controls(self) -> None:
        self.controls.hide()

    # -- state
    def set_connection(self, text: str) -> None:
        if text == "connected":
            self.state.setText(f"connected ({type(self.driver).__name__})")
            self.state.setStyleSheet("color: #1a7f37")
            self.connect_btn.hide()
        elif text == "connecting…":
            self.state.setText("connecting…")
            self.state.setStyleSheet("color: #777")
            self.connect_btn.hide()
        else:
            self.state.setText(text)
            self.state.setStyleSheet(ERR_STYLE)
            self.connect_btn.show()

    def set_run_active(self, active: bool) -> None:
        self.controls.setEnabled(not active)
        self.controls.setToolTip("the running procedure owns the instruments" if active else "")

    def update_readbacks(self, rb: dict[str, float]) -> None:
        for name, v in rb.items():
            self.values[name] = v
            lab = self.labels.get(name)
            if lab is not None:
                text, style = fmt_value(name, v, self.units.get(name, ""))
                lab.setText(text)
                lab.setStyleSheet(style)
        self.after_readbacks()

    def after_readbacks(self) -> None:
        pass

    def update_extras(self, ex: dict[str, str]) -> None:
        for name, text in ex.items():
            lab = self.labels.get(name)
            if lab is None:
                lab = QtWidgets.QLabel()
                lab.setObjectName(f"rb_{self.role}_{name}")
                self.labels[name] = lab
                self.form.addRow(LABELS.get(name, name) + ":", lab)
            lab.setText(text)
            lab.setStyleSheet("" if text == "none" else BAD_STYLE)

    def say(self, text: str, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet(ERR_STYLE if error else "color: #555")

    #: called with one line for the event log for every manual command and its outcome (InstrumentsView)
    journal: Callable[[str], None] | None = None

    def run(self, what: str, fn: Callable[[], Any], done: Callable[[], None] | None = None) -> None:
        """Run a manual command on the instrument thread; report the outcome in the panel and the
        event log (every manual command is journaled)."""
        self.say(f"{what} …")
        if self.journal is not None:
            self.journal(f"manual command: {self.role}: {what}")

        def cb(_res: Any, err: BaseException | None) -> None:
            if err is None:
                self.say(f"{what}: done")
                if self.journal is not None:
                    self.journal(f"manual command: {self.role}: {what}: done")
                if done:
                    done()
            else:
                self.say(f"{what} refused: {err}", error=True)
                if self.journal is not None:
                    self.journal(f"manual command: {self.role}: {what}: REFUSED ({err})")

        self.io.submit(fn, cb, what=f"{self.role}: {what}")

    def _add_entry(self, row: int, label: str, unit: str, default: str, check: Callable[[str], Any],
                   button: str, action: Callable[[Any], None]) -> QtWidgets.QLineEdit:
        """A value entry with inline validation (``check`` raises with the allowed range) and a button."""
        edit = QtWidgets.QLineEdit(default)
        edit.setObjectName(f"in_{self.role}_{label.split()[0].lower()}")
        btn = QtWidgets.QPushButton(button)
        btn.setObjectName(f"btn_{self.role}_{button.split()[0].lower()}")

        def validate() -> Any:
            try:
                v = check(edit.text())
            except Exception as exc:
                edit.setStyleSheet("border: 1px solid #c62828")
                edit.setToolTip(str(exc))
                self.say(str(exc), error=True)
                btn.setEnabled(False)
                return None
            edit.setStyleSheet("")
            edit.setToolTip("")
            btn.setEnabled(True)
            if self.message.styleSheet() == ERR_STYLE:
                self.say("")
            return v

        edit.textChanged.connect(validate)
        btn.clicked.connect(lambda: (lambda v: v is not None and action(v))(validate()))
        self.controls_layout.addWidget(QtWidgets.QLabel(label), row, 0)
        self.controls_layout.addWidget(edit, row, 1)
        self.controls_layout.addWidget(QtWidgets.QLabel(unit), row, 2)
        self.controls_layout.addWidget(btn, row, 3)
        return edit


def _range_check(name: str, lo: float | None, hi: float | None, unit: str) -> Callable[[str], float]:
    def check(text: str) -> float:
        v = _float(text)
        if not math.isfinite(v):
            raise ValueError(f"{name} must be a finite number")
        if lo is not None and v < lo:
            raise ValueError(f"{name} = {v:g} {unit} is below the minimum {lo:g} {unit}")
        if hi is not None and v > hi:
            raise ValueError(f"{name} = {v:g} {unit} is above the maximum {hi:g} {unit}")
        return v

    return check


class CryostatPanel(InstrumentPanel):
    def build_controls(self) -> None:
        opts = getattr(self.driver, "opts", {}) or {}
        lo, hi = opts.get("min_K", 1.0), opts.get("max_K", 400.0)
        self.setpoint = self._add_entry(0, "Setpoint", "K", "295", _range_check("setpoint", lo, hi, "K"), "Set",
                                        lambda v: self.run(f"setpoint {v:g} K",
                                                           lambda: self.driver.set_temperature(v)))


class XRayPanel(InstrumentPanel):
    def build_controls(self) -> None:
        self.interlock_banner = QtWidgets.QLabel("interlock: unknown")
        self.interlock_banner.setObjectName("xray_interlock")
        self.interlock_banner.setAlignment(QtCore.Qt.AlignCenter)
        self.controls_layout.addWidget(self.interlock_banner, 0, 0, 1, 4)
        self.kv = QtWidgets.QLineEdit("40")
        self.kv.setObjectName("in_xray_kv")
        self.ma = QtWidgets.QLineEdit("0.5")
        self.ma.setObjectName("in_xray_ma")
        for r, (lab, ed, unit) in enumerate((("Voltage", self.kv, "kV"), ("Current", self.ma, "mA")), start=1):
            self.controls_layout.addWidget(QtWidgets.QLabel(lab), r, 0)
            self.controls_layout.addWidget(ed, r, 1)
            self.controls_layout.addWidget(QtWidgets.QLabel(unit), r, 2)
            ed.textChanged.connect(self.validate)
        self.on_btn = QtWidgets.QPushButton("X-ray ON")
        self.on_btn.setObjectName("btn_xray_on")
        self.off_btn = QtWidgets.QPushButton("X-ray off")
        self.off_btn.setObjectName("btn_xray_off")
        self.controls_layout.addWidget(self.on_btn, 3, 0, 1, 2)
        self.controls_layout.addWidget(self.off_btn, 3, 2, 1, 2)
        self.on_btn.clicked.connect(self.switch_on)
        self.off_btn.clicked.connect(lambda: self.run("X-ray off", self.driver.off, self.io.stop_keepalive))
        self.interlock: bool | None = None
        self.validate()

    def setpoint(self) -> tuple[float, float]:
        kV, mA = _float(self.kv.text()), _float(self.ma.text())
        check = getattr(self.driver, "check_setpoint", None)
        if callable(check):   # the generator's own limits (rating, power), no instrument I/O
            kV, mA = check(kV, mA)
        else:
            if not (0 <= kV <= getattr(self.driver, "max_kV", 60.0)):
                raise ValueError(f"{kV:g} kV is outside 0..{getattr(self.driver, 'max_kV', 60.0):g} kV")
            if kV * mA > getattr(self.driver, "max_W", math.inf):
                raise ValueError(f"{kV:g} kV × {mA:g} mA is above the {self.driver.max_W:g} W rating")
        return kV, mA

    #: the message shows this panel's own validation error (cleared once the setpoint is valid again; a
    #: refusal reported by the instrument stays until the next command — validate() runs at every readback)
    _invalid = False

    def validate(self) -> bool:
        try:
            self.setpoint()
        except Exception as exc:
            self.say(str(exc), error=True)
            self._invalid = True
            self.on_btn.setEnabled(False)
            return False
        if self._invalid:
            self.say("")
            self._invalid = False
        self.on_btn.setEnabled(self.interlock is not False)
        return True

    def after_readbacks(self) -> None:
        v = self.values.get("interlock_closed")
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return
        self.interlock = bool(v)
        if self.interlock:
            self.interlock_banner.setText("Interlock closed — HV permitted")
            self.interlock_banner.setStyleSheet("background: #d7f5dd; color: #1a7f37; font-weight: bold; padding: 3px")
        else:
            self.interlock_banner.setText("INTERLOCK OPEN — HV refused")
            self.interlock_banner.setStyleSheet("background: #fde0e0; color: #c62828; font-weight: bold; padding: 3px")
        self.validate()

    def switch_on(self) -> None:
        if not self.validate():
            return
        kV, mA = self.setpoint()

        def on() -> None:
            self.io.start_keepalive()   # the generator's watchdog needs keep-alives while HV is on
            try:
                self.driver.on(kV, mA)
            except BaseException:
                self.io.stop_keepalive()
                raise

        self.run(f"X-ray on at {kV:g} kV, {mA:g} mA", on)


class AttenuatorPanel(InstrumentPanel):
    def build_controls(self) -> None:
        rng = getattr(self.driver, "transmission_range", None)
        lo, hi = (rng if isinstance(rng, tuple) else (1e-6, 1.0))
        self.trans = self._add_entry(0, "Transmission", "", "0.01", _range_check("transmission", lo, hi, ""), "Set",
                                     lambda v: self.run(f"transmission {v:g}", lambda: self.driver.set_transmission(v)))
        self.fluence = self._add_entry(1, "Fluence", "µJ/cm²", "1", _range_check("fluence", 0.0, None, "µJ/cm²"), "Set",
                                       lambda v: self.run(f"fluence {v:g} µJ/cm²", lambda: self.driver.set_fluence(v)))
        dark = QtWidgets.QPushButton("Maximum attenuation")
        dark.setObjectName("btn_attenuator_dark")
        dark.clicked.connect(lambda: self.run("maximum attenuation", self.driver.set_max_attenuation))
        self.controls_layout.addWidget(dark, 2, 0, 1, 4)


class SpectrometerPanel(InstrumentPanel):
    def build_controls(self) -> None:
        self.center = self._add_entry(0, "Centre", "nm", "515", _range_check("centre wavelength", 0.0, 2000.0, "nm"),
                                      "Move", lambda v: self.run(f"move to {v:g} nm", lambda: self.driver.move_to(v)))


PANELS: dict[str, type[InstrumentPanel]] = {"cryostat": CryostatPanel, "xray": XRayPanel,
                                             "attenuator": AttenuatorPanel, "spectrometer": SpectrometerPanel}


def make_panel(role: str, driver: Any, io: InstrumentIO) -> InstrumentPanel:
    return PANELS.get(role, InstrumentPanel)(role, driver, io)


class InstrumentsView(QtWidgets.QScrollArea):
    """All role panels in a scrollable column, wired to the instrument thread's readbacks.
    ``manual`` carries one event-log line per manual command and per outcome."""

    manual = QtCore.Signal(str)

    def __init__(self, session: Any, io: InstrumentIO, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.io = io
        inner = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(inner)
        lay.setContentsMargins(4, 4, 4, 4)
        self.panels: dict[str, InstrumentPanel] = {}
        from acq.lab import ROLES

        for role in sorted(session.lab.roles, key=lambda r: ROLES.index(r) if r in ROLES else 99):
            p = make_panel(role, session.lab.roles[role], io)
            p.journal = self.manual.emit
            self.panels[role] = p
            lay.addWidget(p)
            if role in session.lab.connected:
                p.set_connection("connected")
        lay.addStretch(1)
        self.setWidget(inner)
        io.readbacks.connect(self.on_readbacks)
        io.extras.connect(self.on_extras)
        io.connection.connect(lambda role, text: self.panels[role].set_connection(text) if role in self.panels
                              else None)

    def on_readbacks(self, rb: dict[str, dict[str, float]], _t: float = 0.0) -> None:
        for role, vals in rb.items():
            p = self.panels.get(role)
            if p is not None:
                p.update_readbacks(vals)

    def on_extras(self, ex: dict[str, dict[str, str]]) -> None:
        for role, vals in ex.items():
            p = self.panels.get(role)
            if p is not None:
                p.update_extras(vals)

    def set_run_active(self, active: bool) -> None:
        for p in self.panels.values():
            p.set_run_active(active)
