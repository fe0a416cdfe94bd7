"""Helpers for the procedure tests: a simulated lab on the AFAP clock and the runner's suspenders.

The session's own count-rate suspender also counts the TCSPC sync input (76 MHz laser) and polls
the tagger before it is connected, so a run on the simulated lab with it would stay suspended; these
tests use the temperature-band and interlock suspenders plus a count-rate check of the detector
inputs only (reported to the runner's owner).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from acq.cli import open_lab
from acq.runner import Suspender, interlock_open, temperature_band
from acq.session import LabSession

log = logging.getLogger(__name__)


def detector_rate_above(limit: float = 5e6) -> Suspender:
    def check(lab: Any) -> str | None:
        if "tcspc" not in lab.connected:
            return None
        rates = lab.tcspc.count_rates()
        hot = {k: v for k, v in rates.items() if k != "rate_ch0" and v > limit}
        return f"detector count rate {hot}" if hot else None

    return Suspender("detector_rate_above", check, settle_s=5.0, poll_s=1.0)


def suspenders() -> list[Suspender]:
    return [temperature_band(2.0, settle_s=10.0), interlock_open(settle_s=5.0), detector_rate_above()]


@contextmanager
def sim_lab(data_dir: Path, sample: str = "milano-2d-sl", *, hbt: bool = False, seed: int = 0
            ) -> Iterator[LabSession]:
    """A simulated lab (real drivers over loopback) on the AFAP clock; ``hbt`` cables the emulated
    PicoHarp for HBT (two detectors on inputs 0 and 1, no laser sync)."""
    session = open_lab(sim=True, sample=sample, speed="max", data_dir=Path(data_dir), seed=seed)
    try:
        if hbt:
            session.sim.vendor["tcspc"]["phlib"].wiring = "hbt"
        yield session
    finally:
        session.close()


def run(session: LabSession, procedure: Any, **kw: Any) -> Any:
    result = session.make_runner(procedure, suspenders=suspenders(), **kw).run()
    assert result.exit_status == "success", result.error
    return result


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runs")
