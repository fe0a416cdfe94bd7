"""Built-in SF analysis: pure functions on arrays returning frozen dataclasses.

Modules: :mod:`analysis.spectra` (band decomposition, nm ↔ eV), :mod:`analysis.decay` (IRF
reconvolution fits, ⟨N⟩), :mod:`analysis.g2` (correlators, normalisation, bunching fits),
:mod:`analysis.series` (power law, onset temperature, lifetime trends), :mod:`analysis.sf` (the SF
verdict), :mod:`analysis.readers` (PTU, Photon-HDF5), :mod:`analysis.report` (figures and pages;
imported on demand because it loads matplotlib).
"""

from . import decay, g2, readers, series, sf, spectra
from ._common import to_jsonable
from .sf import Evidence, SFVerdict, assess


def warm_kernels() -> None:
    """Compile the analysis's numba kernels (decay reconvolution, correlators, band models, deviance
    moments) into numba's on-disk cache; ``make venv`` runs it once after installing."""
    decay.warm_kernels()
    g2.warm_kernels()
    spectra.warm_kernels()
    sf.warm_kernels()


__all__ = ["decay", "g2", "readers", "series", "sf", "spectra", "Evidence", "SFVerdict", "assess",
           "to_jsonable", "warm_kernels"]
