"""Correlators against brute force, the PicoHarp vendor export v30.cor, and bunching fits against truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.g2 import correlate, correlate_numpy, fit_bunching, multitau, normalize
from analysis.readers import read_ptu

from .gen import burst_tags, g2_curve

DATA = Path("/work/shared/data/picoquant/picoharp")


def test_correlate_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    a = np.sort(rng.integers(0, 2_000_000, 700))
    b = np.sort(rng.integers(0, 2_000_000, 900))
    bw, nb = 250, 41
    c = correlate(a, b, bw, nb)
    d = (b[None, :] - a[:, None]).ravel()
    lo = -(nb // 2) * bw - bw // 2
    ref = np.histogram(d, bins=lo + bw * np.arange(nb + 1))[0]
    assert np.array_equal(c.counts, ref)
    assert c.counts.sum() > 50
    assert c.tau_ps[nb // 2] == 0
    assert np.array_equal(correlate_numpy(a, b, bw, nb), ref)
    # unsorted input is sorted
    assert np.array_equal(correlate(a[::-1], b, bw, nb).counts, ref)


def test_normalize_uncorrelated_is_one() -> None:
    rng = np.random.default_rng(1)
    T = 1e12
    a = np.sort(rng.integers(0, int(T), 200000))
    b = np.sort(rng.integers(0, int(T), 200000))
    c = correlate(a, b, 1000, 201, duration_ps=T)
    g = normalize(c)
    assert abs(np.mean(g.g2) - 1) < 3 * np.mean(g.g2_err) / np.sqrt(g.g2.size)
    assert np.std((g.g2 - 1) / g.g2_err) == pytest.approx(1.0, abs=0.15)
    raw = normalize(c.counts, binwidth_ps=1000, n1=c.n1, n2=c.n2, duration_ps=T)
    assert np.allclose(raw.g2, g.g2)


@pytest.mark.timeout(60)
def test_bunching_from_burst_tags() -> None:
    rng = np.random.default_rng(2)
    tau_true = 200.0
    a, b = burst_tags(
        rng, rate_hz=2e6, duration_s=5.0, mean_photons=2, tau_ps=tau_true, eta=0.03, jitter_ps=70.0
    )
    c = correlate(a, b, 40, 401, duration_ps=5e12)
    g = normalize(c)
    f = fit_bunching(g.tau_ps, g.g2, irf_fwhm_ps=70.0, g2_err=g.g2_err)
    assert f.bunched
    assert abs(f.tau_exp_ps.value - tau_true) < 4 * f.tau_exp_ps.error
    # shot-noise model (tcspc.md §6.2): g2(0)-1 ≈ <m(m-1)>/<m>^2 · A(0)/R, A(0) = 1/(2τ) before the IRF
    assert f.baseline.value == pytest.approx(1.0, abs=5 * f.baseline.error + 0.01)
    assert f.exp_chi2_dof < 1.5  # low counts per bin: Gaussian χ² is only indicative here


def test_fit_bunching_methods_against_truth() -> None:
    rng = np.random.default_rng(3)
    tau = np.arange(-1500, 1501, 10.0)
    g2, err = g2_curve(rng, tau, amp=0.5, tau_s=40.0, irf_fwhm=70.0, accidentals_per_bin=20000)
    f = fit_bunching(tau, g2, irf_fwhm_ps=70.0, g2_err=err, weights=[0.9, 0.1])
    assert abs(f.tau_exp_ps.value - 40.0) < 4 * f.tau_exp_ps.error
    assert abs(f.amplitude.value - 0.5) < 4 * f.amplitude.error
    assert f.tau_lorentz_ps.value > 0 and f.lorentz_fwhm_ps.value > 70
    assert f.double_taus_ps is not None and f.double_chi2_dof is not None
    flat, ferr = g2_curve(rng, tau, amp=0.0, tau_s=40.0, irf_fwhm=70.0, accidentals_per_bin=20000)
    assert not fit_bunching(tau, flat, irf_fwhm_ps=70.0, g2_err=ferr).bunched


def _cor() -> tuple[np.ndarray, np.ndarray]:
    rows = [ln.split() for ln in (DATA / "v30.cor").read_text().splitlines()[14:] if ln.strip()]
    arr = np.array(rows, dtype=float)
    step = arr[:, 0]
    w = np.empty_like(step)
    w[1:] = np.diff(step)
    w[0] = w[1]
    return arr, w


@pytest.mark.timeout(60)
def test_multitau_reproduces_vendor_v30_cor() -> None:
    """G(A,A), G(B,B), G(A,B) of PicoHarp's own export agree within |ΔG| < 0.02 on average ≪ 0.02."""
    tt = read_ptu(DATA / "v30_t2.ptu")
    cor, w = _cor()
    A, B = tt.channel(1), tt.channel(0)  # the export's routing masks: A = ch1, B = ch0
    assert (A < 7.545534e12).sum() == pytest.approx(382989, abs=2)
    assert (B < 7.545534e12).sum() == 523316
    for col, (x, y) in ((2, (A, A)), (3, (B, B)), (4, (A, B))):
        m = multitau(x, y, tau_s=cor[:, 1], width_s=w * 25e-9, t_start_ps=0, duration_ps=7.545534e12)
        dG = m.G - cor[:, col]
        print(
            f"v30.cor column {col}: mean|dG| {np.mean(np.abs(dG)):.4f}, max {np.max(np.abs(dG)):.4f}, "
            f"long-lag bias {np.mean(dG[-40:]):+.4f}"
        )
        assert np.mean(np.abs(dG)) < 0.01
        assert np.max(np.abs(dG)) < 0.06
        assert abs(np.mean(dG[-40:])) < 0.002


def test_linear_correlate_agrees_with_multitau_on_v30() -> None:
    """The linear-bin correlator, rebinned onto the first lags of the .cor grid, gives the same pair counts
    as the Laurence multi-tau kernel (rect) and matches the vendor G(A,B)."""
    tt = read_ptu(DATA / "v30_t2.ptu")
    cor, w = _cor()
    T = 7.545534e12
    A, B = tt.channel(1), tt.channel(0)
    A, B = A[A < T], B[B < T]
    sel = cor[:, 1] <= 3e-6
    taus, widths = cor[sel, 1] * 1e12, w[sel] * 25000.0
    # shift B by half a bin so that bins [k-1, k)·25 ns have integer edges
    c = correlate(A, B + 12500, 25000, 2 * 130 + 1, duration_ps=T)
    k = np.round(c.tau_ps / 25000).astype(int)
    pairs = []
    for t, wd in zip(taus, widths, strict=True):
        lo, hi = (t - wd / 2) / 25000, (t + wd / 2) / 25000
        pairs.append(c.counts[(k - 1 >= lo - 1e-9) & (k <= hi + 1e-9)].sum())
    m = multitau(A, B, tau_s=taus * 1e-12, width_s=widths * 1e-12, t_start_ps=0, duration_ps=T, kernel="rect")
    big = widths >= 50000
    assert np.array_equal(np.array(pairs)[big], m.pairs[big].astype(int))
    assert np.mean(np.abs(m.G - cor[sel, 4])) < 0.02


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 50_000), min_size=0, max_size=80),
    st.lists(st.integers(0, 50_000), min_size=0, max_size=80),
    st.integers(1, 400),
    st.integers(1, 60),
)
def test_correlate_property_all_pairs(a: list[int], b: list[int], bw: int, nb: int) -> None:
    """Every pair (t2 − t1) inside the window lands in its bin, for any tags, bin width and bin count."""
    t1, t2 = np.sort(np.array(a, dtype=np.int64)), np.sort(np.array(b, dtype=np.int64))
    c = correlate(t1, t2, bw, nb)
    lo = -(nb // 2) * bw - bw // 2
    d = (t2[None, :] - t1[:, None]).ravel() if t1.size and t2.size else np.zeros(0, np.int64)
    # np.histogram closes the last bin on the right; the correlator's bins are all half-open
    d_in = d[(d >= lo) & (d < lo + nb * bw)]
    ref = np.bincount((d_in - lo) // bw, minlength=nb) if d_in.size else np.zeros(nb, int)
    assert np.array_equal(c.counts, ref)
    assert np.array_equal(correlate_numpy(t1, t2, bw, nb), ref)
