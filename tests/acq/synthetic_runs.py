"""Small run files written directly (no simulated lab): PL spectra of a two-band superlattice with a
given SF weight per temperature, in the layout the procedures write (stream ``spectrum``: counts, dark,
exposure, T_K, fluence on the static axis ``wavelength``). Cheap inputs for the summary's tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from acq.store import Field, RunWriter, Stream

HC = 1239.84198
WL = np.linspace(490.0, 560.0, 400)
E_UNC, E_SF = 2.370, 2.310          # eV: uncoupled band and the red (SF) band 60 meV below
FWHM_UNC, FWHM_SF = 0.035, 0.022


def onset_weight(T: float, w_low: float = 0.46, T_on: float = 60.0, width: float = 12.0) -> float:
    """SF weight rising on cooling below T_on (a logistic step)."""
    return w_low / (1.0 + np.exp((T - T_on) / width))


def spectrum(w_sf: float, rng: np.random.Generator, photons: float = 3e5, e_unc: float = E_UNC) -> np.ndarray:
    E = HC / WL
    dE = np.abs(np.gradient(E))

    def g(e0: float, fwhm: float) -> np.ndarray:
        s = fwhm / 2.354820045
        return np.exp(-0.5 * ((E - e0) / s) ** 2) / (s * np.sqrt(2 * np.pi))

    mu = photons * ((1 - w_sf) * g(e_unc, FWHM_UNC) + w_sf * g(e_unc - (E_UNC - E_SF), FWHM_SF)) * dE + 2.0
    return rng.poisson(mu).astype(float)


def write_pl_run(path: Path, points: Sequence[tuple[float, float]], *, fluence: float = 1.0, seed: int = 0,
                 e_unc: float = E_UNC, sample: str = "synthetic-sl") -> Path:
    """A PLTemperatureSeries-like run file with one spectrum per ``(T_K, w_sf)``."""
    rng = np.random.default_rng(seed)
    n = WL.size
    st = Stream("spectrum", (Field("counts", (n,)), Field("dark", (n,)), Field("exposure", (), "f8", "s"),
                             Field("T_K", (), "f8", "K"), Field("fluence", (), "f8", "uJ/cm^2")),
                signal="counts", axes=(".", "wavelength"), static={"wavelength": (WL, "nm")})
    w = RunWriter(path, procedure="PLTemperatureSeries", parameters={"fluences": [fluence]}, streams=[st],
                  sample={"name": sample}, swmr=False)
    for T, wsf in points:
        w.append({"spectrum": {"counts": spectrum(wsf, rng, e_unc=e_unc), "dark": np.zeros(n),
                               "exposure": 1.0, "T_K": T, "fluence": fluence}})
    w.finish("success")
    w.close()
    return path
