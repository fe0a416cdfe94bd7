"""Every role in ``acq.lab.ROLES`` has a panel title and every readback a backend declares has a row
label (gui.instruments.TITLES / LABELS), so a new role or readback is never shown by its bare key."""

import math

import pytest

from acq.lab import BACKENDS, ROLES, backend_class
from gui.instruments import LABELS, TITLES


def test_every_role_has_a_title():
    missing = [r for r in ROLES if r not in TITLES]
    assert not missing, f"roles without a GUI title in gui/instruments.py TITLES: {missing}"
    # roles being added (issue 15): titled before they land
    assert TITLES["sample_stage"] == "Sample stage" and TITLES["white_light"] == "White-light source"
    assert all(t and t != r for r, t in TITLES.items())


def test_every_readback_of_every_backend_has_a_label():
    missing = sorted({f"{role}/{backend}: {name}" for role, backends in BACKENDS.items() for backend in backends
                      for name in backend_class(role, backend).READBACKS if name not in LABELS})
    assert not missing, f"readbacks without a GUI label in gui/instruments.py LABELS: {missing}"


@pytest.mark.timeout(120)
def test_instruments_view_titles_every_role_of_a_full_lab(qtbot, tmp_path):
    """The instruments dock on a lab with every role (the fakes plus the manual TCSPC monochromator):
    each panel shows its title and its readback labels, and the monochromator's polled readbacks arrive."""
    from acq.clock import SimClock
    from acq.config import sim_config
    from acq.events import EventBus
    from acq.fakes import fake_lab_roles
    from acq.lab import Lab
    from acq.session import LabSession
    from gui.instruments import InstrumentsView
    from gui.io import InstrumentIO

    clock = SimClock(math.inf)
    roles, _log, _world = fake_lab_roles(clock)
    for role in set(ROLES) - set(roles):
        roles[role] = backend_class(role, "fake")("fake", clock=clock)
    assert set(roles) == set(ROLES)
    cfg = sim_config({r: {"backend": "fake", "resource": "fake"} for r in ROLES}, name="full fake lab")
    session = LabSession(Lab(roles, clock=clock, config=cfg), clock, cfg, EventBus(clock), tmp_path / "runs",
                         sample={"name": "fake-sample", "truth": {"model": "acq.fakes"}})
    io = InstrumentIO(session, poll_s=0.1)
    try:
        view = InstrumentsView(session, io)
        qtbot.addWidget(view)
        for role in ROLES:
            io.connect_role(role)
        qtbot.waitUntil(lambda: session.lab.connected == set(ROLES), timeout=60_000)
        assert set(view.panels) == set(ROLES)
        for role, panel in view.panels.items():
            assert panel.title() == TITLES[role]
            for name, value_label in panel.labels.items():
                assert panel.form.labelForField(value_label).text() == LABELS[name] + ":"
        mono = view.panels["tcspc_mono"]
        qtbot.waitUntil(lambda: mono.labels["bandpass_nm"].text().endswith("nm"), timeout=60_000)
    finally:
        io.close()
        session.close()
