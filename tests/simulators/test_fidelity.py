"""Fidelity of the virtual sample to the seed papers, measured from simulated data.

Every test simulates what the lab would record (CCD spectra through the spectrograph, TCSPC or g2
histograms from the detector chain), analyses it with scipy the way the paper did, and fails if the
value leaves the stated tolerance. Nothing here reads the model's parameters or imports
``analysis/``. The ``measure_*`` functions return the measured numbers; docs/simulator-fidelity.md
lists them (regenerate with ``python -m tests.simulators.test_fidelity``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import curve_fit
from scipy.special import erfc

from simulators.ccd import CCD
from simulators.detectors import picoharp_hybrid, streak_like, swabian_spad
from simulators.optics import Spectrograph
from simulators.sample import Conditions, Sample
from simulators.tags import TagSource

HC = 1239.84198
FWHM = 2.354820045

# ---------------------------------------------------------------------------------------------------
# simulated acquisitions


def ccd_spectrum(sample: Sample, cond: Conditions, *, grating: float, center_nm: float, exposure_s: float,
                 seed: int, focal_mm: float = 190.0) -> tuple[np.ndarray, np.ndarray]:
    """A full-vertical-binning CCD spectrum: (photon energy eV per column, bias-subtracted counts/s)."""
    spec = Spectrograph(grating_lpmm=grating, focal_mm=focal_mm, slit_um=50.0)
    cam = CCD(cosmic_per_cm2_min=0.0)
    col = spec.column_rates(lambda lam: sample.emission_spectrum(lam, cond), center_nm)
    chip = spec.chip_rates(col, cam.n_rows)
    wl = spec.wavelength_axis(center_nm)
    rng = np.random.default_rng(seed)
    for _ in range(8):  # like a physicist: shorten the exposure until the peak is well below saturation
        counts = cam.expose(chip, exposure_s, rng, binning=(1, cam.n_rows), wavelength_nm=wl)[0]
        if counts.max() < 40_000:
            break
        exposure_s *= 0.5 * 40_000 / counts.max()
    return HC / wl, (counts.astype(float) - cam.bias_counts) / exposure_s


def _g(E, A, E0, w):
    return A * np.exp(-0.5 * ((E - E0) / (w / FWHM)) ** 2)


def fit_two_bands(E: np.ndarray, y: np.ndarray, *, required: bool = True) -> dict[str, float] | None:
    """Two Gaussians in energy (the papers' decomposition): the blue one is 'unc', the red one 'sf'.

    Returns None when no two-band fit converges (a single band) unless ``required``."""
    m = y > 0.02 * y.max()
    E, y = E[m], y[m]
    i = int(np.argmax(y))
    Epk = E[i]
    p0 = [y.max() * 0.5, Epk + 0.03, 0.05, y.max(), Epk, 0.03]
    lo = [0, Epk - 0.05, 0.005, 0, Epk - 0.15, 0.005]
    hi = [np.inf, Epk + 0.15, 0.2, np.inf, Epk + 0.05, 0.2]

    def model(E, A1, E1, w1, A2, E2, w2):
        return _g(E, A1, E1, w1) + _g(E, A2, E2, w2)

    sig = np.sqrt(np.maximum(y, 1e-3 * y.max()))
    best = None
    for p_try in (p0, [y.max(), Epk, 0.05, y.max() * 0.3, Epk - 0.06, 0.03]):
        try:
            p, _ = curve_fit(model, E, y, p0=p_try, bounds=(lo, hi), sigma=sig, max_nfev=400)
        except RuntimeError:
            continue
        chi = float(np.sum(((model(E, *p) - y) / sig) ** 2))
        if best is None or chi < best[0]:
            best = (chi, p)
    if best is None:
        assert not required, "two-band fit failed"
        return None
    A1, E1, w1, A2, E2, w2 = best[1]
    if E2 > E1:
        A1, E1, w1, A2, E2, w2 = A2, E2, w2, A1, E1, w1
    a1, a2 = A1 * w1, A2 * w2
    return {"E_unc": E1, "E_sf": E2, "w_unc": w1, "w_sf": w2, "frac_sf": a2 / (a1 + a2),
            "I_unc": a1, "I_sf": a2, "shift_meV": (E1 - E2) * 1e3}


def f_for_N(sample: Sample, N: float) -> float:
    """Fluence (µJ cm⁻²) giving ⟨N⟩ per NC at 3.06 eV, the way P2 step 7 converts (σ_abs·j)."""
    sigma = 0.92e-14  # [000]: <N> ~ 1.5 at 80 uJ/cm2 -> cross section, the lab's calibration
    return N / sigma * 3.06 * 1.602176634e-19 * 1e6


# ---------------------------------------------------------------------------------------------------
# measurements


def measure_onset_low_fluence() -> float:
    """[000] Fig. 2c: temperature below which the red-shifted SF peak is resolved, <N> < 0.1."""
    s = Sample.preset("milano-2d-sl", seed=1)
    temps = np.arange(40.0, 171.0, 10.0)
    frac = []
    for k, T in enumerate(temps):
        cond = Conditions(T_K=T, fluence_uJcm2=2.0, rep_rate_Hz=76e6)
        E, y = ccd_spectrum(s, cond, grating=1200, center_nm=525, exposure_s=1.0, seed=100 + k)
        r = fit_two_bands(E, y, required=False)
        resolved = r is not None and r["shift_meV"] > 25 and r["w_sf"] < r["w_unc"]
        frac.append(r["frac_sf"] if resolved else 0.0)
    frac = np.array(frac)
    # onset: where the SF share falls through 10 % on warming (linear interpolation)
    above = np.nonzero(frac >= 0.10)[0]
    i = int(above.max())
    if i + 1 >= temps.size:
        return float(temps[-1])
    t0, t1, f0, f1 = temps[i], temps[i + 1], frac[i], frac[i + 1]
    return float(t0 + (f0 - 0.10) / (f0 - f1) * (t1 - t0))


def measure_rl_decomposition(T: float, seed: int) -> dict[str, float]:
    """[000] Fig. 3a,d: RL spectrum (W tube 20 kV, 600 l/mm) decomposed into two bands."""
    s = Sample.preset("milano-2d-sl", seed=seed)
    cond = Conditions(T_K=T, xray_kV=20.0, xray_mA=1.0)
    E, y = ccd_spectrum(s, cond, grating=600, center_nm=530, exposure_s=1.0, seed=seed, focal_mm=180.0)
    return fit_two_bands(E, y)


def _exp_tail(t, A, tau, c):
    return A * np.exp(-t / tau) + c


def measure_tau_sf_20K() -> float:
    """[000] Fig. 2d,h: SF decay at 20 K, low fluence, streak-class resolution, SF window."""
    s = Sample.preset("milano-2d-sl", seed=2)
    src = TagSource(s, streak_like(filter_nm=(530.0, 550.0), tcspc_transmission=1e-4), seed=2)
    cond = Conditions(T_K=20.0, fluence_uJcm2=2.0, rep_rate_Hz=76e6)
    bw = 1.0
    h = src.tcspc_histogram(cond, 5.0, bw, 3000).astype(float)
    t = (np.arange(h.size) + 0.5) * bw
    i = int(np.argmax(h))
    m = (t > t[i] + 10) & (t < t[i] + 250)
    p, _ = curve_fit(_exp_tail, t[m] - t[i], h[m], p0=[h[i], 40.0, 0.0], sigma=np.sqrt(h[m] + 1))
    return float(p[1])


def measure_rise_delay() -> float:
    """[000] Fig. 2e,f: delay of the SF transient after the uncoupled PL, 5 K, low fluence, streak."""
    s = Sample.preset("milano-2d-sl", seed=3)
    cond = Conditions(T_K=5.0, fluence_uJcm2=2.0, rep_rate_Hz=76e6)

    def peak(window: tuple[float, float], seed: int) -> float:
        src = TagSource(s, streak_like(filter_nm=window, tcspc_transmission=1e-4), seed=seed)
        bw = 0.5
        h = src.tcspc_histogram(cond, 20.0, bw, 6000).astype(float)
        t = (np.arange(h.size) + 0.5) * bw
        i = int(np.argmax(np.convolve(h, np.ones(5) / 5, mode="same")))
        m = (t > t[i] - 4) & (t < t[i] + 4)
        a, b, _ = np.polyfit(t[m], h[m], 2)
        return float(-b / (2 * a))

    return peak((532.0, 545.0), 30) - peak((512.0, 520.0), 31)


def g2_laplace(tau, tau0, A, c, tau1, sig):
    """Bunching peak of a single-exponential pulse (two mirrored exponentials) ⊗ Gaussian IRF."""
    x = tau - tau0
    with np.errstate(over="ignore", invalid="ignore"):
        a = 0.5 * np.exp(sig**2 / (2 * tau1**2)) * (
            np.exp(-x / tau1) * erfc((sig / tau1 - x / sig) / math.sqrt(2))
            + np.exp(x / tau1) * erfc((sig / tau1 + x / sig) / math.sqrt(2)))
    return A * np.nan_to_num(a) + c


def measure_g2_fwhm_20K() -> dict[str, float]:
    """[000] Fig. 3f: g2 of RL under CW X-rays at 20 K with a ~70 ps HBT response; Lorentzian FWHM."""
    s = Sample.preset("milano-2d-sl", seed=4)
    det = picoharp_hybrid()
    src = TagSource(s, det, seed=4)
    cond = Conditions(T_K=20.0, xray_kV=20.0, xray_mA=1.0)
    bw, nb = 4.0, 1000
    h = src.g2_histogram(cond, 20.0, bw, nb).astype(float)
    tau = (np.arange(nb) - nb / 2 + 0.5) * bw

    def lor(t, t0, A, g, c):
        return A / (1 + ((t - t0) / (g / 2)) ** 2) + c

    # normalise to the accidental floor far out and fit the central ±500 ps by ordinary least squares,
    # as the paper's Lorentzian fit of the normalised g2
    floor = max(float(np.median(np.concatenate([h[:40], h[-40:]]))), 1e-9)
    g2 = h / floor
    m = np.abs(tau) <= 500.0
    p, _ = curve_fit(lor, tau[m], g2[m], p0=[0, g2.max(), 80.0, 1.0])
    fwhm = abs(float(p[2]))
    return {"fwhm_ps": fwhm, "instrument_fwhm_ps": det.hbt_irf_fwhm_ps(),
            "tau_quadrature_ps": math.sqrt(max(fwhm**2 - det.hbt_irf_fwhm_ps() ** 2, 0.0))}


def measure_exponents() -> dict[str, float]:
    """[000] Fig. 2j,m: I ∝ f^α at 5 K for isolated NCs and for the SF band of the SL."""
    fl = np.geomspace(0.4, 8.0, 6)
    iso = Sample.preset("isolated-ncs", seed=5)
    sl = Sample.preset("milano-2d-sl", seed=5)
    I_iso, I_sf = [], []
    for k, f in enumerate(fl):
        cond = Conditions(T_K=5.0, fluence_uJcm2=float(f), rep_rate_Hz=15e3)
        E, y = ccd_spectrum(iso, cond, grating=1200, center_nm=525, exposure_s=1.0, seed=500 + k)
        I_iso.append(y.sum())
        E, y = ccd_spectrum(sl, cond, grating=1200, center_nm=525, exposure_s=1.0, seed=600 + k)
        I_sf.append(fit_two_bands(E, y)["I_sf"])
    a_iso = np.polyfit(np.log(fl), np.log(I_iso), 1)[0]
    a_sf = np.polyfit(np.log(fl), np.log(I_sf), 1)[0]
    return {"alpha_isolated": float(a_iso), "alpha_sf": float(a_sf)}


def _g2_multi(tau, tau0, c, sig, *ab):
    out = np.full_like(tau, c)
    for A, t1 in zip(ab[0::2], ab[1::2], strict=True):
        out = out + g2_laplace(tau, tau0, A, 0.0, t1, sig)
    return out


def measure_technion_g2() -> dict[str, float]:
    """[001] Fig. 3a,b: g2 under X-rays, double exponential at 80 K, single at 300 K (SPADs + Swabian)."""
    s = Sample.preset("technion-3d-sl", seed=6)
    det = swabian_spad()
    sig = det.hbt_irf_fwhm_ps() / FWHM
    out = {}
    src = TagSource(s, det, seed=6)
    cond = Conditions(T_K=80.0, xray_kV=50.0, xray_mA=0.6)
    bw, nb = 20.0, 1500
    h = src.g2_histogram(cond, 3600.0, bw, nb).astype(float)
    tau = (np.arange(nb) - nb / 2 + 0.5) * bw
    f = lambda t, t0, c, A1, t1, A2, t2: _g2_multi(t, t0, c, sig, A1, t1, A2, t2)
    amp = h.max() - h.min()
    p, _ = curve_fit(f, tau, h, p0=[0, h.min(), amp / 2, 200.0, amp / 2, 900.0],
                     sigma=np.sqrt(h + 1), bounds=([-100, 0, 0, 20, 0, 100], [100, np.inf, np.inf, 2000, np.inf, 2e4]),
                     maxfev=40000)
    t_fast, t_slow = sorted([p[3], p[5]])
    out["tau_fast_ns"] = t_fast / 1e3
    out["tau_slow_ns"] = t_slow / 1e3
    cond = Conditions(T_K=300.0, xray_kV=50.0, xray_mA=0.6)
    bw, nb = 50.0, 1600
    h = src.g2_histogram(cond, 36000.0, bw, nb).astype(float)
    tau = (np.arange(nb) - nb / 2 + 0.5) * bw
    f1 = lambda t, t0, c, A1, t1: _g2_multi(t, t0, c, sig, A1, t1)
    p, _ = curve_fit(f1, tau, h, p0=[0, h.min(), h.max() - h.min(), 3000.0], sigma=np.sqrt(h + 1),
                     maxfev=20000)
    out["tau_300K_ns"] = p[3] / 1e3
    return out


def measure_xx_ratio() -> float:
    """[000] SI Fig. 2 / [003] Eqs 1–6: amplitude ratio A/B of the fast (XX) and slow (X) decay at
    ⟨N⟩ = 1.5 (isolated NCs, RT, 15 kHz pulses), from an IRF-convolved biexponential fit."""
    s = Sample.preset("isolated-ncs", seed=7)
    det = picoharp_hybrid(tcspc_transmission=2e-6)
    src = TagSource(s, det, seed=7)
    cond = Conditions(T_K=295.0, fluence_uJcm2=f_for_N(s, 1.5), rep_rate_Hz=15e3)
    bw, nb = 8.0, 6000
    h = src.tcspc_histogram(cond, 3000.0, bw, nb).astype(float)
    t = (np.arange(nb) + 0.5) * bw
    sig = det.sigma_ps(1)

    def emg(t, t0, tau):
        x = t - t0
        return 0.5 * np.exp(sig**2 / (2 * tau**2) - x / tau) * erfc((sig / tau - x / sig) / math.sqrt(2))

    def model(t, t0, B, tb, A, ta, c):
        return B * emg(t, t0, tb) + A * emg(t, t0, ta) + c

    i = int(np.argmax(h))
    p, _ = curve_fit(model, t, h, p0=[t[i], h[i] * 0.3, 3000.0, h[i], 80.0, 0.0], sigma=np.sqrt(h + 1),
                     bounds=([t[i] - 200, 0, 500, 0, 5, -10], [t[i] + 200, np.inf, 3e4, np.inf, 500, np.inf]),
                     maxfev=40000)
    return float(p[3] / p[1])


# ---------------------------------------------------------------------------------------------------
# the table (paper value, tolerance)


def test_sf_onset_temperature_low_fluence():
    T_on = measure_onset_low_fluence()
    assert 75.0 <= T_on <= 105.0, f"SF onset {T_on:.1f} K, [000] ~90 K"


@pytest.mark.parametrize(("T", "paper", "tol"), [(20.0, 0.92, 0.05), (80.0, 0.90, 0.05)])
def test_sf_fraction_of_rl(T, paper, tol):
    r = measure_rl_decomposition(T, seed=int(T))
    assert abs(r["frac_sf"] - paper) <= tol, f"SF fraction {r['frac_sf']:.3f} at {T} K, [000] {paper}"


@pytest.mark.parametrize("T", [120.0, 180.0])
def test_sf_dominates_rl_up_to_180K(T):
    r = measure_rl_decomposition(T, seed=int(T))
    assert r["frac_sf"] > 0.70, f"SF fraction {r['frac_sf']:.3f} at {T} K, [000] > 70 % over 20-180 K"


def test_sf_red_shift():
    r = measure_rl_decomposition(20.0, seed=21)
    assert 50.0 <= r["shift_meV"] <= 70.0, f"SF red shift {r['shift_meV']:.1f} meV, [000] 60 meV"
    assert r["w_sf"] < r["w_unc"], "SF band must be narrower than the uncoupled band"


def test_tau_sf_20K():
    tau = measure_tau_sf_20K()
    assert 32.0 <= tau <= 48.0, f"tau_SF {tau:.1f} ps at 20 K, [000] ~40 ps"


def test_sf_rise_delay():
    d = measure_rise_delay()
    assert 3.5 <= d <= 8.5, f"SF rise delay {d:.1f} ps, [000] ~6 ps"


def test_g2_bunching_fwhm_20K():
    r = measure_g2_fwhm_20K()
    assert 65.0 <= r["instrument_fwhm_ps"] <= 75.0
    assert 68.0 <= r["fwhm_ps"] <= 92.0, f"g2 FWHM {r['fwhm_ps']:.1f} ps, [000] 80 ps"


def test_fluence_exponents():
    r = measure_exponents()
    assert 0.97 <= r["alpha_isolated"] <= 1.13, f"alpha isolated {r['alpha_isolated']:.3f}, [000] 1.05"
    assert 1.25 <= r["alpha_sf"] <= 1.55, f"alpha SF {r['alpha_sf']:.3f}, [000] 1.4"


def test_technion_g2_lifetimes():
    r = measure_technion_g2()
    assert 0.18 <= r["tau_fast_ns"] <= 0.30, f"tau_fast {r['tau_fast_ns']:.3f} ns, [001] 0.24 ns"
    assert 0.56 <= r["tau_slow_ns"] <= 0.93, f"tau_slow {r['tau_slow_ns']:.3f} ns, [001] 0.74 ns"
    assert 3.0 <= r["tau_300K_ns"] <= 3.7, f"tau(300 K) {r['tau_300K_ns']:.2f} ns, [001] 3.35 ns"


def test_xx_x_amplitude_ratio():
    R = measure_xx_ratio()
    assert 2.25 <= R <= 2.95, f"A/B {R:.2f} at <N> = 1.5, physics.md 4.3: 2.60"


if __name__ == "__main__":  # pragma: no cover - regenerates the numbers of docs/simulator-fidelity.md
    import json

    res = {
        "onset_K": measure_onset_low_fluence(),
        "rl20": measure_rl_decomposition(20.0, 20),
        "rl80": measure_rl_decomposition(80.0, 80),
        "rl120": measure_rl_decomposition(120.0, 120),
        "rl180": measure_rl_decomposition(180.0, 180),
        "shift": measure_rl_decomposition(20.0, 21),
        "tau_sf_ps": measure_tau_sf_20K(),
        "delay_ps": measure_rise_delay(),
        "g2": measure_g2_fwhm_20K(),
        "alpha": measure_exponents(),
        "technion": measure_technion_g2(),
        "xx_ratio": measure_xx_ratio(),
    }
    print(json.dumps(res, indent=1, default=float))
