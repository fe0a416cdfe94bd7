"""Live fits in a separate process: band decomposition of the latest spectrum, decay fit of the latest decay.

``analysis.spectra.decompose`` is CPU-bound Python/numba work that holds the GIL; run in a thread of
the GUI process it would stall both the event loop and the acquisition thread. A one-worker process
pool (spawned, so no Qt state is forked) keeps it off both; only the spectrum (a few kB) goes in and
the fitted curves come back.
"""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["BandFitter", "fit_bands", "fit_decay_curve"]


def fit_bands(wavelength_nm: np.ndarray, counts: np.ndarray) -> dict[str, Any]:
    """Two-band decomposition of one spectrum; curves on the wavelength axis (runs in the worker)."""
    from analysis.spectra import HC_EV_NM, decompose, wavelength_to_energy

    try:
        e, c = wavelength_to_energy(np.asarray(wavelength_nm, float), np.asarray(counts, float), density=False)
        f = decompose(e, c, n_bands=2)
        # the fit is on bins of f.rebin pixels: per pixel, to overlay the pixel spectrum
        return {"x_nm": HC_EV_NM / f.energy_eV, "model": np.asarray(f.model) / f.rebin,
                "components": np.asarray(f.components) / f.rebin,
                "sf_fraction": float(f.sf_fraction.value), "shift_meV": float(f.shift_meV.value),
                "roles": [b.role for b in f.bands]}
    except Exception as exc:  # a failed live fit only removes the overlay
        return {"error": f"{type(exc).__name__}: {exc}"}


def fit_decay_curve(t_ps: np.ndarray, counts: np.ndarray, irf_fwhm_ps: float = 50.0) -> dict[str, Any]:
    """Two-exponential IRF-reconvolution fit of one decay (nominal Gaussian IRF, as ``acq.summary`` does
    for runs without a measured IRF); the model curve and the lifetimes (runs in the worker)."""
    from acq.summary import nominal_irf
    from analysis.decay import fit_decay

    try:
        t, c = np.asarray(t_ps, float), np.asarray(counts, float)
        f = fit_decay(t, c, nominal_irf(t, c, irf_fwhm_ps), model="exp", n_components=2)
        return {"t": np.asarray(f.t_ps, float), "model": np.asarray(f.model, float),
                "taus_ps": [float(x) for x in f.taus_ps]}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


_JOBS = {"bands": fit_bands, "decay": fit_decay_curve}


def run_job(kind: str, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    return _JOBS[kind](x, y)


class BandFitter:
    """Fits in a worker process, at most one in flight; ``submit`` returns False while busy."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._busy = False

    @property
    def busy(self) -> bool:
        return self._busy

    def submit(self, wavelength_nm: np.ndarray, counts: np.ndarray, done: Any, kind: str = "bands") -> bool:
        if self._busy:
            return False
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        self._busy = True

        def finished(fut: Future) -> None:
            self._busy = False
            try:
                res = fut.result()
            except Exception as exc:  # worker died, pool shut down, …
                res = {"error": f"{type(exc).__name__}: {exc}"}
            done(res)

        try:
            fut = self._pool.submit(run_job, kind, np.array(wavelength_nm, float), np.array(counts, float))
        except RuntimeError as exc:   # shut down
            self._busy = False
            log.debug("band fit not submitted: %s", exc)
            return False
        fut.add_done_callback(finished)
        return True

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
