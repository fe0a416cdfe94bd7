"""GUI tests run offscreen (no display needed) on in-memory fakes or the simulated lab, AFAP clock."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import math  # noqa: E402

import pytest  # noqa: E402

from acq.clock import SimClock  # noqa: E402
from acq.config import sim_config  # noqa: E402
from acq.events import EventBus  # noqa: E402
from acq.fakes import fake_lab_roles  # noqa: E402
from acq.lab import ROLES, Lab  # noqa: E402
from acq.session import LabSession  # noqa: E402


def make_fake_session(tmp_path):
    """A LabSession on the in-memory fakes (acq.fakes): lab, AFAP clock, bus, data dir; plus log and world."""
    clock = SimClock(math.inf)
    roles, log, world = fake_lab_roles(clock)
    cfg = sim_config({r: {"backend": "fake", "resource": "fake"} for r in ROLES}, name="fake lab")
    lab = Lab(roles, clock=clock, config=cfg)
    session = LabSession(lab, clock, cfg, EventBus(clock), tmp_path / "runs",
                         sample={"name": "fake-sample", "truth": {"model": "acq.fakes"}})
    return session, log, world


@pytest.fixture
def fake_session(tmp_path):
    session, log, world = make_fake_session(tmp_path)
    yield session, log, world
    session.close()
