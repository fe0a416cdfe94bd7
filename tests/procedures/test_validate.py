"""Cross-checks before anything moves (``validate(lab_config)``, called by the runner before it
connects), the registry, parameters and estimates."""

from __future__ import annotations

import pytest

from acq.procedure import parameter_schema, validate_parameters
from acq.registry import procedures
from acq.runner import ValidationError
from procedures import (
    PROCEDURES,
    FluenceCalibration,
    FluenceSeries,
    HBTCorrelation,
    PLTemperatureSeries,
    RLTemperatureSeries,
    TimeResolvedRL,
)

from .conftest import run, sim_lab

pytestmark = pytest.mark.timeout(120)


def test_registry_and_parameters():
    assert set(PROCEDURES) == {"FluenceCalibration", "PLTemperatureSeries", "FluenceSeries",
                               "RLTemperatureSeries", "HBTCorrelation", "TimeResolvedRL", "ReferenceSpectra",
                               "Transmission"}
    assert set(PROCEDURES) <= set(procedures())
    for name, cls in PROCEDURES.items():
        schema = parameter_schema(cls)
        assert schema, name
        _, errors = validate_parameters(cls, {})
        assert not errors, (name, errors)
        est = cls().estimate()
        assert est["lab_seconds"] > 0 and est["bytes"] > 0, name
    assert parameter_schema(PLTemperatureSeries)["temperatures"]["units"] == "K"
    _, errors = validate_parameters(PLTemperatureSeries, {"temperatures": [5, 500]})
    assert errors and "400" in str(errors[0])


def test_estimates_scale_with_points():
    a = PLTemperatureSeries(temperatures=[5.0, 10.0], fluences=[1.0]).estimate()
    b = PLTemperatureSeries(temperatures=[5.0, 10.0, 20.0, 40.0], fluences=[1.0, 2.0]).estimate()
    assert b["lab_seconds"] > a["lab_seconds"] and b["bytes"] > a["bytes"]
    h = HBTCorrelation(g2_s=3600.0).estimate()
    assert h["lab_seconds"] > 3600.0


def test_validation_refuses_before_any_instrument(tmp_path):
    with sim_lab(tmp_path) as s:
        cal = run(s, FluenceCalibration(n_steps=6, readings=1)).path
        s.lab.close()
        cases = [
            (PLTemperatureSeries(temperatures=[2.0, 20.0]), "below the cryostat's min_K"),
            (RLTemperatureSeries(kV=60.0, mA=0.1), "max_kV"),
            (HBTCorrelation(kV=55.0, mA=0.6), "tube rating"),
            (RLTemperatureSeries(kV=20.0, mA=0.8), "max_mA"),
            (FluenceSeries(fluences=[1.0, 2.0, 3.0]), "1.5 decades"),
            (PLTemperatureSeries(fluences=[1.0, 100.0], calibration=str(cal)), "above the maximum"),
            (HBTCorrelation(g2_binwidth_ps=10.0), "multiple of the PicoHarp"),
        ]
        for proc, text in cases:
            runner = s.make_runner(proc, tmp_path / f"{type(proc).__name__}-{text[:5]}.h5")
            with pytest.raises(ValidationError, match=text):
                runner.validate()
            assert not s.lab.connected  # nothing was contacted
        # a good one passes
        s.make_runner(PLTemperatureSeries(fluences=[0.5, 5.0], calibration=str(cal)),
                      tmp_path / "ok.h5").validate()
        assert TimeResolvedRL(temperatures=[20.0]).validate(s.config) == []
