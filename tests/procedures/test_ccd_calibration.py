"""The CCD's conversion gain and read noise: given by the plan, else the spectrometer role's lab.toml
calibration, else the former defaults with a warning — and the value used is what the run file records."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from procedures import PLTemperatureSeries
from procedures._common import UNCALIBRATED_E_PER_COUNT, UNCALIBRATED_READ_NOISE_E


class _Spec:
    def __init__(self, cal: dict[str, float]) -> None:
        self.cal = cal

    def ccd_calibration(self) -> dict[str, Any]:
        return dict(self.cal)


def test_lab_calibration_is_used_and_recorded() -> None:
    p = PLTemperatureSeries(temperatures=[10.0], fluences=[1.0])
    p.resolve_ccd_calibration(_Spec({"e_per_count": 4.0, "read_noise_e": 3.0}))
    assert (p.ccd_gain, p.read_noise_e) == (4.0, 3.0)
    rec = p.parameter_values()   # what the runner writes to the run file
    assert rec["ccd_gain"] == 4.0 and rec["read_noise_e"] == 3.0


def test_a_plan_value_wins() -> None:
    p = PLTemperatureSeries(temperatures=[10.0], fluences=[1.0], ccd_gain=2.5)
    p.resolve_ccd_calibration(_Spec({"e_per_count": 4.0, "read_noise_e": 3.0}))
    assert (p.ccd_gain, p.read_noise_e) == (2.5, 3.0)


def test_without_a_calibration_the_assumption_is_named(caplog: pytest.LogCaptureFixture) -> None:
    p = PLTemperatureSeries(temperatures=[10.0], fluences=[1.0])
    with caplog.at_level(logging.WARNING):
        p.resolve_ccd_calibration(_Spec({}))
    assert (p.ccd_gain, p.read_noise_e) == (UNCALIBRATED_E_PER_COUNT, UNCALIBRATED_READ_NOISE_E)
    text = caplog.text
    assert "e_per_count" in text and "read_noise_e" in text and "assumed" in text
