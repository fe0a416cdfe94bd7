"""Live band decomposition of the latest spectrum, in a separate process.

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

__all__ = ["BandFitter", "fit_bands"]


def fit_bands(wavelength_nm: np.ndarray, counts: np.ndarray) -> dict[str, Any]:
    """Two-band decomposition of one spectrum; curves on the wavelength axis (runs in the worker)."""
    from analysis.spectra import HC_EV_NM, decompose, wavelength_to_energy

    try:
        e, c = wavelength_to_energy(np.asarray(wavelength_nm, float), np.asarray(counts, float), density=False)
        f = decompose(e, c, n_bands=2)
        return {"x_nm": HC_EV_NM / f.energy_eV, "model": np.asarray(f.model), "components": np.asarray(f.components),
                "sf_fraction": float(f.sf_fraction.value), "shift_meV": float(f.shift_meV.value),
                "roles": [b.role for b in f.bands]}
    except Exception as exc:  # a failed live fit only removes the overlay
        return {"error": f"{type(exc).__name__}: {exc}"}


class BandFitter:
    """At most one fit in flight; ``submit`` returns False while busy."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._busy = False

    @property
    def busy(self) -> bool:
        return self._busy

    def submit(self, wavelength_nm: np.ndarray, counts: np.ndarray, done: Any) -> bool:
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
            fut = self._pool.submit(fit_bands, np.array(wavelength_nm, float), np.array(counts, float))
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
