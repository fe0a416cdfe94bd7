"""``fit_decay`` with the analytic cost gradient (``grad=`` to iminuit) against the numerical-gradient
MIGRAD it replaced, on the same simulated decays (< 60 s).

Two-component decays (80 + 600 ps, 10⁵ photons, 1600 bins of 4 ps, tests/analysis/gen.py) and a few
one-component and ``model="sf"`` ones: CPU time per fit (``time.process_time``), cost and gradient calls
per fit (``nfcn``/``ngrad`` summed over every Minuit of the fit) and the largest difference of the
lifetimes between the two, in units of their HESSE errors. ``python -m benchmarks.bench_decay_grad [N]``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np


def _datasets(n2: int) -> list[tuple[str, dict[str, Any], tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    from tests.analysis.gen import decay

    rng = np.random.default_rng(2029)
    out: list[tuple[str, dict[str, Any], tuple[np.ndarray, np.ndarray, np.ndarray]]] = []
    for _ in range(n2):
        out.append(("exp2", {"n_components": 2},
                    decay(rng, 1e5, [80.0, 600.0], [0.5, 0.5], bg=2.0, n_bins=1600, irf_photons=None)))
    for _ in range(max(n2 // 6, 1)):
        out.append(("exp1", {}, decay(rng, 2e4, [300.0], [1.0], bg=2.0, n_bins=1600)))
        out.append(("sf2", {"model": "sf", "n_components": 2},
                    decay(rng, 2e5, [40.0, 300.0], [0.6, 0.4], rise=8.0, irf_sigma=6.0, dt=2.0, n_bins=1600)))
    return out


def _fit(D: Any, made: list[Any], analytic: bool, kw: dict[str, Any], t: np.ndarray, n: np.ndarray,
         irf: np.ndarray) -> dict[str, Any]:
    made.clear()
    D._ANALYTIC_GRAD = analytic
    c0 = time.process_time()
    f = D.fit_decay(t, n, irf, **kw)
    cpu = time.process_time() - c0
    rise = [f.tau_rise_ps] if f.tau_rise_ps is not None else []
    return {"cpu": cpu, "nfcn": sum(m.nfcn for m in made), "ngrad": sum(m.ngrad for m in made),
            "tau": [c.tau_ps.value for c in f.components] + [r.value for r in rise],
            "err": [c.tau_ps.error for c in f.components] + [r.error for r in rise], "ok": f.converged}


def main(n2: int = 300) -> dict[str, float]:
    from analysis import decay as D

    made: list[Any] = []
    real, old = D.Minuit, D._ANALYTIC_GRAD

    class Counting(real):  # type: ignore[misc, valid-type]
        def __init__(self, *a: Any, **k: Any) -> None:
            super().__init__(*a, **k)
            made.append(self)

    data = _datasets(n2)
    res: dict[str, dict[bool, list[dict[str, Any]]]] = {}
    D.Minuit = Counting
    try:
        for analytic in (False, True):  # compile / load the kernels outside the timing
            for _, kw, tni in (data[0], data[-1], data[-2]):
                _fit(D, made, analytic, kw, *tni)
        for i, (kind, kw, tni) in enumerate(data):  # interleaved, alternating order: the same machine load
            r = res.setdefault(kind, {False: [], True: []})
            for analytic in ((False, True) if i % 2 else (True, False)):
                r[analytic].append(_fit(D, made, analytic, kw, *tni))
    finally:
        D.Minuit, D._ANALYTIC_GRAD = real, old
    out: dict[str, float] = {}
    print(f"{'model':6} {'fits':>5} {'CPU/fit num':>12} {'CPU/fit ana':>12} {'ratio':>6} "
          f"{'fcn+grad num':>13} {'fcn+grad ana':>13} {'max|Δτ|/σ':>10} {'max|Δσ/σ|':>10} {'valid':>8}")
    for kind, r in res.items():
        a, b = r[False], r[True]

        def col(rows: list[dict[str, Any]], key: str) -> np.ndarray:
            return np.array([row[key] for row in rows], dtype=float)

        ea, eb = col(a, "err"), col(b, "err")
        pull = float(np.nanmax(np.abs(col(a, "tau") - col(b, "tau")) / np.minimum(ea, eb)))
        derr = float(np.nanmax(np.abs(eb / ea - 1)))
        ca, cb = col(a, "cpu").mean(), col(b, "cpu").mean()
        print(f"{kind:6} {len(a):5d} {ca * 1e3:9.2f} ms {cb * 1e3:9.2f} ms {ca / cb:6.2f} "
              f"{col(a, 'nfcn').mean():7.0f}+{col(a, 'ngrad').mean():<5.0f} "
              f"{col(b, 'nfcn').mean():7.0f}+{col(b, 'ngrad').mean():<5.0f} {pull:10.2e} {derr:10.2e} "
              f"{int(col(a, 'ok').sum()):3d}/{int(col(b, 'ok').sum())}")
        out[f"{kind}_speedup"] = ca / cb
        out[f"{kind}_max_dtau_over_sigma"] = pull
    return out


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
