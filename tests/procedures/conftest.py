"""Helpers for the procedure tests: a simulated lab on the AFAP clock and the runner's suspenders.

The runner's suspenders with short settle times (the count-rate check counts detector inputs only,
not the laser sync, and no suspender polls a role that is not connected).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from acq.cli import open_lab
from acq.runner import Suspender, count_rate_above, interlock_open, temperature_band
from acq.session import LabSession

log = logging.getLogger(__name__)


def suspenders() -> list[Suspender]:
    return [temperature_band(2.0, settle_s=10.0), interlock_open(settle_s=5.0), count_rate_above(5e6)]


@contextmanager
def sim_lab(data_dir: Path, sample: str = "milano-2d-sl", *, hbt: bool = False, seed: int = 0
            ) -> Iterator[LabSession]:
    """A simulated lab (real drivers over loopback) on the AFAP clock; ``hbt`` cables the emulated
    PicoHarp for HBT (two detectors on inputs 0 and 1, no laser sync)."""
    session = open_lab(sim=True, sample=sample, speed="max", data_dir=Path(data_dir), seed=seed,
                       tcspc_wiring="hbt" if hbt else "tcspc")
    try:
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
