"""Tag streams and exact-statistics histograms: determinism, detector effects, and agreement."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.stats import chi2

from simulators.detectors import SPAD, Detectors, picoharp_hybrid, swabian_spad
from simulators.sample import Conditions, Sample
from simulators.tags import TagSource

XRAY = Conditions(T_K=20.0, xray_kV=20.0, xray_mA=1.0)
LASER = Conditions(T_K=20.0, fluence_uJcm2=2.0, rep_rate_Hz=76e6)


@pytest.fixture(scope="module")
def sl() -> Sample:
    return Sample.preset("milano-2d-sl")


def _chi2_pvalue(obs: np.ndarray, exp: np.ndarray, min_expected: float = 10.0) -> tuple[float, int, float]:
    """Pearson chi-square of observed counts against the expectation (bins with enough counts; the rest
    pooled into one bin)."""
    m = exp >= min_expected
    o = np.append(obs[m], obs[~m].sum())
    e = np.append(exp[m], exp[~m].sum())
    if e[-1] < min_expected:
        o, e = o[:-1], e[:-1]
    x2 = float(np.sum((o - e) ** 2 / e))
    dof = o.size
    return x2, dof, float(chi2.sf(x2, dof))


def test_same_seed_same_bytes(sl):
    for method, cond in (("hbt_stream", XRAY), ("tcspc_stream", LASER)):
        a = getattr(TagSource(sl, picoharp_hybrid(), seed=7), method)(cond, 0.002)
        b = getattr(TagSource(sl, picoharp_hybrid(), seed=7), method)(cond, 0.002)
        assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes()
        c = getattr(TagSource(sl, picoharp_hybrid(), seed=8), method)(cond, 0.002)
        assert c[1].tobytes() != a[1].tobytes()
    h1 = TagSource(sl, seed=5).g2_histogram(XRAY, 1.0, 8.0, 200)
    h2 = TagSource(sl, seed=5).g2_histogram(XRAY, 1.0, 8.0, 200)
    assert h1.tobytes() == h2.tobytes()
    h3 = TagSource(sl, seed=5).tcspc_histogram(LASER, 0.1, 16.0, 900)
    h4 = TagSource(sl, seed=5).tcspc_histogram(LASER, 0.1, 16.0, 900)
    assert h3.tobytes() == h4.tobytes()


def test_successive_calls_are_independent(sl):
    src = TagSource(sl, seed=1)
    a = src.hbt_stream(XRAY, 0.002)
    b = src.hbt_stream(XRAY, 0.002)
    assert a[1].tobytes() != b[1].tobytes()


def test_stream_format_and_detector_effects(sl):
    det = picoharp_hybrid()
    ch, t = TagSource(sl, det, seed=2).hbt_stream(XRAY, 0.05)
    assert ch.dtype == np.uint8 and t.dtype == np.int64
    assert np.all(np.diff(t) >= 0) and set(np.unique(ch)) == {1, 2}
    assert t.min() >= 0 and t.max() < 0.05e12
    assert np.all(t % int(det.tagger_resolution_ps) == 0)
    for c in (1, 2):
        assert np.diff(t[ch == c]).min() >= det.dead_ps(c)  # non-paralysable dead time per channel
    ch, t = TagSource(sl, det, seed=2).tcspc_stream(LASER, 0.001)
    sync = t[ch == 0]
    assert set(np.unique(ch)) == {0, 1}
    assert np.allclose(np.diff(sync), 1e12 / 76e6, atol=det.tagger_resolution_ps + 1)
    ch2, t2 = TagSource(sl, det, seed=2).tcspc_stream(LASER, 0.001, syncs="conditional")
    assert (ch2 == 0).sum() <= (ch2 == 1).sum() + 1 and (ch2 == 0).sum() < 0.2 * (ch == 0).sum()


def test_rates_follow_the_tube_and_darks(sl):
    src = TagSource(sl, seed=3)
    n1 = len(src.hbt_stream(Conditions(T_K=20, xray_kV=20, xray_mA=1), 0.02)[1])
    n2 = len(src.hbt_stream(Conditions(T_K=20, xray_kV=20, xray_mA=2), 0.02)[1])
    assert n2 / n1 == pytest.approx(2.0, rel=0.1)
    dark = src.hbt_stream(Conditions(T_K=20), 2.0)[1]
    assert len(dark) == pytest.approx(2 * 2 * 50.0, rel=0.35)  # 50 cps per detector


def test_crosstalk_peak_in_g2(sl):
    det = picoharp_hybrid(crosstalk_prob=0.05, crosstalk_delay_ps=2500.0)
    h = TagSource(sl, det, seed=4).g2_histogram(Conditions(T_K=300, xray_kV=5, xray_mA=0.1), 100.0, 50.0, 200,
                                               expected=True)
    tau = (np.arange(200) - 100 + 0.5) * 50.0
    assert h[np.argmin(np.abs(tau - 2500))] > 5 * np.median(h)
    assert h[np.argmin(np.abs(tau + 2500))] > 5 * np.median(h)


def test_tcspc_stream_and_histogram_agree(sl):
    """Chi-square between the stream (histogrammed here) and the exact-statistics expectation."""
    det = picoharp_hybrid()
    src = TagSource(sl, det, seed=11)
    dur = 0.2
    ch, t = src.tcspc_stream(LASER, dur)
    sy, ph = t[ch == 0], t[ch == 1]
    k = np.searchsorted(sy, ph, side="right") - 1
    dtime = ph[k >= 0] - sy[k[k >= 0]]
    bw = 16.0
    nb = int(np.ceil(1e12 / 76e6 / bw))
    obs = np.bincount((dtime // bw).astype(int), minlength=nb)[:nb].astype(float)
    exp = src.tcspc_histogram(LASER, dur, bw, nb, expected=True)
    exp *= obs.sum() / exp.sum()  # first sync period and the window edges: compare shapes
    x2, dof, p = _chi2_pvalue(obs, exp)
    assert p > 1e-3, f"chi2 {x2:.1f} for {dof} bins"
    assert obs.sum() == pytest.approx(src.tcspc_histogram(LASER, dur, bw, nb, expected=True).sum(), rel=0.02)


@pytest.mark.parametrize("preset", ["milano-2d-sl", "technion-3d-sl"])
def test_g2_stream_and_histogram_agree(preset):
    s = Sample.preset(preset)
    det = swabian_spad(hbt_transmission=0.5) if preset.startswith("tech") else picoharp_hybrid(hbt_transmission=0.5)
    cond = XRAY if preset.startswith("milano") else Conditions(T_K=80.0, xray_kV=50.0, xray_mA=0.6)
    src = TagSource(s, det, seed=12)
    dur = 1.0
    ch, t = src.hbt_stream(cond, dur)
    t1, t2 = t[ch == 1], t[ch == 2]
    bw, nb = (8.0, 400) if preset.startswith("milano") else (40.0, 300)
    H = nb * bw / 2
    i0 = np.searchsorted(t2, t1 - H)
    i1 = np.searchsorted(t2, t1 + H)
    taus = np.concatenate([t2[a:b] - x for x, a, b in zip(t1, i0, i1, strict=True)])
    obs = np.histogram(taus, bins=np.arange(nb + 1) * bw - H)[0].astype(float)
    exp = src.g2_histogram(cond, dur, bw, nb, expected=True)
    assert obs.sum() == pytest.approx(exp.sum(), rel=0.05)
    x2, dof, p = _chi2_pvalue(obs, exp)
    assert p > 1e-3, f"chi2 {x2:.1f} for {dof} bins"


def test_ideal_detectors_and_validation(sl):
    ideal = SPAD(name="ideal", efficiency=1.0, irf_fwhm_ps=0.0, irf_tail_fraction=0.0, dark_cps=0.0,
                 dead_time_ps=0.0, afterpulse_prob=0.0)
    det = Detectors(spads=(ideal, ideal), tagger_resolution_ps=1.0, tagger_jitter_rms_ps=0.0,
                    tagger_dead_time_ps=0.0, crosstalk_prob=0.0)
    h = TagSource(sl, det, seed=1).tcspc_histogram(LASER, 0.01, 4.0, 1000, expected=True)
    assert h.sum() > 0 and np.argmax(h) * 4.0 == pytest.approx(-det.sync_offset_ps, abs=12.0)
    with pytest.raises(ValueError):
        SPAD(efficiency=1.5)
    with pytest.raises(ValueError):
        Detectors(split_to_1=1.0)
    with pytest.raises(ValueError):
        TagSource(sl).tcspc_stream(LASER, 0.001, syncs="some")
    assert dataclasses.asdict(det)["tagger_resolution_ps"] == 1.0


def test_tcspc_15kHz_with_pile_up_agrees():
    """15 kHz amplified laser, isolated NCs at RT (ns decay), ~0.4 detected photons per pulse: the
    histogram mode's first-photon pile-up must match the stream's dead-time behaviour."""
    s = Sample.preset("isolated-ncs")
    det = picoharp_hybrid(tcspc_transmission=8e-4)
    cond = Conditions(T_K=295.0, fluence_uJcm2=80.0, rep_rate_Hz=15e3)
    src = TagSource(s, det, seed=21)
    mu = src.light(cond, "tcspc").mu_pulse
    assert 0.2 < mu < 1.0
    dur = 20.0
    ch, t = src.tcspc_stream(cond, dur)
    sy, ph = t[ch == 0], t[ch == 1]
    k = np.searchsorted(sy, ph, side="right") - 1
    dtime = ph[k >= 0] - sy[k[k >= 0]]
    bw, nb = 32.0, 1000
    obs = np.bincount(np.minimum(dtime // bw, nb).astype(int), minlength=nb + 1)[:nb].astype(float)
    exp = src.tcspc_histogram(cond, dur, bw, nb, expected=True)
    assert obs.sum() == pytest.approx(exp.sum(), rel=0.03)
    x2, dof, p = _chi2_pvalue(obs, exp)
    assert p > 1e-3, f"chi2 {x2:.1f} for {dof} bins"
    # and the pile-up is real: the no-pile-up shape would be rejected
    assert src._first_only(1, *src._arrival(src.light(cond, "tcspc").cdf_laser, 1, 1.0))


def test_laser_hbt_comb(sl):
    """Under the pulsed laser the HBT histogram is a comb at multiples of the period with equal peaks
    (independent photons from an ensemble: no antibunching, no bunching)."""
    cond = Conditions(T_K=20.0, fluence_uJcm2=0.5, rep_rate_Hz=76e6)
    src = TagSource(sl, picoharp_hybrid(tcspc_transmission=1e-4, hbt_transmission=1e-4, crosstalk_prob=0.0), seed=9)
    P = 1e12 / 76e6
    bw, nb = 50.0, 1200
    h = src.g2_histogram(cond, 10.0, bw, nb, expected=True)
    tau = (np.arange(nb) - nb / 2 + 0.5) * bw
    peaks = [h[np.abs(tau - k * P) < 300].sum() for k in (-2, -1, 0, 1, 2)]
    assert np.allclose(peaks, peaks[2], rtol=0.05)
    assert h[np.abs(tau - 0.5 * P) < 100].sum() < 0.01 * peaks[2]
    ch, t = src.hbt_stream(cond, 0.01)
    assert set(np.unique(ch)) <= {1, 2} and np.all(np.diff(t) >= 0)
