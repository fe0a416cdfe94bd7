"""Series fits against truth: power law, onset temperature, lifetime trends."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.series import lifetime_vs_fluence, lifetime_vs_temperature, onset_temperature, power_law

from .gen import logistic


def test_power_law_recovers_exponent() -> None:
    rng = np.random.default_rng(0)
    f = np.geomspace(1, 100, 8)
    pulls = []
    for _ in range(100):
        lam = 500 * f**1.45
        y = rng.poisson(lam).astype(float)
        r = power_law(f, y, np.sqrt(y))
        pulls.append((r.exponent.value - 1.45) / r.exponent.error)
    p = np.array(pulls)
    assert abs(p.mean()) < 0.3 and 0.75 < p.std() < 1.25
    assert r.threshold is not None and r.threshold["delta_chi2"] < 20


def test_power_law_flags_threshold() -> None:
    f = np.array([2, 5, 10, 20, 30, 40, 60, 80.0])
    y = np.where(f < 20, 100 * f, 100 * f + 40 * (f - 18) ** 3)
    r = power_law(f, y, 0.02 * y)
    assert r.threshold["delta_chi2"] > 20  # type: ignore[index]
    assert r.threshold["slope_above"] - r.threshold["slope_below"] > 0.8  # type: ignore[index]
    with pytest.raises(ValueError):
        power_law([1, 2], [1, 2], [1, 1])


def test_onset_temperature() -> None:
    rng = np.random.default_rng(1)
    T = np.array([10, 20, 40, 60, 80, 100, 120, 140, 160, 200, 250, 295.0])
    w = logistic(T, 95.0, 10.0, 0.9) + rng.normal(0, 0.02, T.size)
    r = onset_temperature(T, w, np.full(T.size, 0.02))
    assert abs(r.t_on_K.value - 95) < 4 * r.t_on_K.error
    assert r.rises_on_cooling and r.significance > 10
    flat = onset_temperature(T, 0.3 + rng.normal(0, 0.02, T.size), np.full(T.size, 0.02))
    assert not flat.rises_on_cooling


def test_lifetime_trends() -> None:
    T = np.array([5, 20, 40, 60, 80.0])
    tau = 40 * np.exp(T / 60)
    tr = lifetime_vs_temperature(T, tau, 0.03 * tau)
    assert tr.direction == "increasing" and tr.slope.value == pytest.approx(1 / 60, rel=1e-6)
    f = np.array([2, 20, 80, 1000.0])
    tf = lifetime_vs_fluence(f, 100 * f**-0.2, 2 + 0 * f)
    assert tf.direction == "decreasing" and tf.slope.value == pytest.approx(-0.2, rel=1e-3)
    assert lifetime_vs_temperature(T, 50 + 0 * T, 5 + 0 * T).direction == "flat"


def test_power_law_scatter_student_t() -> None:
    """A fluence series with 4 % multiplicative scatter (6 points): the relative scatter is fitted in
    quadrature, the error of α is the Student-t 68 % half-width, and it covers (fixed seeds)."""
    from analysis.series import t_factor

    assert t_factor(1.0, math.inf) == 1.0
    assert t_factor(1.0, 4) == pytest.approx(1.1417, abs=1e-3)
    assert t_factor(3.0, 4) == pytest.approx(2.207, abs=2e-3)
    inside = []
    for seed in range(120):
        rng = np.random.default_rng(seed)
        f = np.geomspace(2.0, 63.0, 6)
        y = rng.poisson(3000.0 * (f / 10.0) ** 1.45 * rng.lognormal(0.0, 0.04, f.size)).astype(float)
        p = power_law(f, y, np.sqrt(y))
        inside.append(abs(p.exponent.value - 1.45) <= p.exponent.error)
        if p.extra_scatter > 0:
            assert p.error_dof == 4
    assert 0.58 < np.mean(inside) < 0.78
