"""sflab measurements: pymeasure ``Procedure`` subclasses that run inside ``acq.runner``.

``PROCEDURES`` (name → class) is what ``acq.registry`` adds to the built-in ``EngineCheck``; plans,
``sflab resume`` and the GUI find procedures there by name. docs/procedures.md describes each one.
"""

from __future__ import annotations

import acq.procedure  # noqa: F401  (first: it imports pymeasure.experiment without dask.array and IPython)

from .absorption import Transmission
from .calibration import FluenceCalibration
from .pl import FluenceSeries, PLTemperatureSeries
from .reference import ReferenceSpectra
from .xray import HBTCorrelation, RLTemperatureSeries, TimeResolvedRL

__all__ = ["PROCEDURES", "FluenceCalibration", "PLTemperatureSeries", "FluenceSeries", "RLTemperatureSeries",
           "HBTCorrelation", "TimeResolvedRL", "ReferenceSpectra", "Transmission"]

PROCEDURES = {
    "FluenceCalibration": FluenceCalibration,
    "PLTemperatureSeries": PLTemperatureSeries,
    "FluenceSeries": FluenceSeries,
    "RLTemperatureSeries": RLTemperatureSeries,
    "HBTCorrelation": HBTCorrelation,
    "TimeResolvedRL": TimeResolvedRL,
    "ReferenceSpectra": ReferenceSpectra,
    "Transmission": Transmission,
}
