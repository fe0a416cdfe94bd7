"""The emulated Swabian module's statistical mode: measurements drawn from the photon statistics agree in
distribution with the same measurements computed from every listed tag (fixed seeds, small windows)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats

from acq.clock import SimClock
from simulators.replay import RecordedT2
from simulators.sample import Conditions, Sample
from simulators.tags import TagSource
from simulators.timetagger import make_module
from simulators.vendor import PhysicsFeed

pytestmark = pytest.mark.timeout(120)
PS = 1_000_000_000_000


def _tagger(mode: str, cond: Conditions, statistical: bool, seed: int):
    clock = SimClock()
    world = SimpleNamespace(conditions=lambda: cond)
    source = TagSource(Sample.preset("milano-2d-sl", seed=seed), None, seed)
    feed = PhysicsFeed(world, mode=mode, source=source)
    reads = []
    inner = feed._read
    feed._read = lambda t0, t1: (reads.append((t0, t1)), inner(t0, t1))[1]
    TT = make_module(lambda: feed, clock=clock)
    TT.STATISTICS = statistical
    return TT, TT.createTimeTagger(), reads


def _homogeneous(a: np.ndarray, b: np.ndarray, min_count: int = 20) -> float:
    """p-value that two Poisson histograms of equal exposure share their means (bins merged to ≥ min_count)."""
    groups, acc_a, acc_b = [], 0, 0
    for x, y in zip(a, b, strict=True):
        acc_a += int(x)
        acc_b += int(y)
        if acc_a + acc_b >= min_count:
            groups.append((acc_a, acc_b))
            acc_a = acc_b = 0
    if acc_a + acc_b and groups:
        ga, gb = groups.pop()
        groups.append((ga + acc_a, gb + acc_b))
    chi2 = sum((x - y) ** 2 / (x + y) for x, y in groups)
    return float(stats.chi2.sf(chi2, len(groups)))


def _run(TT, tagger, make, duration_s: float):
    ms = make(TT, tagger)
    for m in ms:
        m.startFor(int(duration_s * PS))
    for m in ms:
        m.waitUntilFinished()
    return ms


def test_statistical_correlation_agrees_with_the_tag_listing_one():
    """HBT under CW X-rays (bunching peak + accidentals): Correlation and Countrate, 0.5 lab s each way."""
    cond = Conditions(T_K=20.0, xray_kV=20.0, xray_mA=1.0)

    def make(TT, tg):
        return TT.Correlation(tg, 2, 3, binwidth=250, n_bins=80), TT.Countrate(tg, [1, 2, 3])

    TT, tg, reads = _tagger("hbt", cond, False, seed=3)
    c_tags, r_tags = _run(TT, tg, make, 0.5)
    assert reads  # the reference lists every tag
    TT, tg, reads = _tagger("hbt", cond, True, seed=4)
    c_stat, r_stat = _run(TT, tg, make, 0.5)
    assert not reads  # statistical mode lists none
    a, b = c_tags.getData(), c_stat.getData()
    assert a.sum() > 400 and b.sum() > 400
    assert a[38:42].sum() > 0.6 * a.sum() and b[38:42].sum() > 0.6 * b.sum()   # the bunching peak at τ = 0
    assert _homogeneous(a, b) > 1e-3
    assert stats.ks_2samp(np.repeat(np.arange(80), a), np.repeat(np.arange(80), b)).pvalue > 1e-3
    np.testing.assert_array_equal(c_stat.getIndex(), c_tags.getIndex())
    assert c_stat.getCaptureDuration() == c_tags.getCaptureDuration() == int(0.5 * PS)
    na, nb = r_tags.getCountsTotal(), r_stat.getCountsTotal()
    assert na[0] == nb[0] == 0                     # nothing on input 1 in the HBT wiring
    for x, y in zip(na[1:], nb[1:], strict=True):   # singles within 5 σ (bunched light: a little wider)
        assert abs(int(x) - int(y)) < 5 * np.sqrt(x + y)
    g2 = c_stat.getDataNormalized()   # Δt / (binwidth · N1 · N2) · histogram (tcspc.md §1.4)
    np.testing.assert_allclose(g2, b * 0.5 / (250e-12 * int(nb[1]) * int(nb[2])), rtol=0.05)  # N1, N2 drawn apart
    assert g2[39] > 5


def test_statistical_histogram_agrees_over_two_periods_with_a_sync_delay():
    """Pulsed-laser TCSPC: multi-start Histogram against the 76 MHz sync over 2 periods (each click pairs
    with every earlier sync in range), the sync delayed by 3 ns; 20 lab ms each way (1.5 M syncs listed)."""
    cond = Conditions(T_K=20.0, fluence_uJcm2=2.0)

    def make(TT, tg):
        tg.setInputDelay(1, 3000)
        return TT.Histogram(tg, 2, 1, binwidth=100, n_bins=264), TT.Countrate(tg, [1, 2])

    TT, tg, _ = _tagger("tcspc", cond, False, seed=5)
    h_tags, r_tags = _run(TT, tg, make, 0.02)
    TT, tg, reads = _tagger("tcspc", cond, True, seed=6)
    h_stat, r_stat = _run(TT, tg, make, 0.02)
    assert not reads
    a, b = h_tags.getData().astype(np.int64), h_stat.getData().astype(np.int64)
    assert a.sum() > 5000
    period_bins = 1e12 / cond.rep_rate_Hz / 100
    # the 3 ns sync delay wraps the decay to the end of the first period; the same clicks again one
    # period later (every click pairs with each earlier sync in range)
    for h in (a, b):
        first, second = int(np.argmax(h[:132])), 132 + int(np.argmax(h[132:]))
        assert abs(second - first - period_bins) <= 1 and abs(first - (period_bins - 10)) <= 2
    assert _homogeneous(a, b) > 1e-3
    assert stats.ks_2samp(np.repeat(np.arange(264), a), np.repeat(np.arange(264), b)).pvalue > 1e-3
    sa, sb = r_tags.getCountsTotal(), r_stat.getCountsTotal()
    assert abs(int(sa[0]) - int(sb[0])) <= 1      # the sync is periodic, not a Poisson count
    assert abs(int(sa[1]) - int(sb[1])) < 5 * np.sqrt(sa[1] + sb[1])


def test_measurements_that_need_tags_list_them_and_idle_time_is_skipped():
    cond = Conditions(T_K=20.0, xray_kV=20.0, xray_mA=1.0)
    TT, tg, reads = _tagger("hbt", cond, True, seed=7)
    tg._clock.sleep(3600.0)             # an idle lab hour: nothing runs, nothing is listed
    c = TT.Correlation(tg, 2, 3, binwidth=250, n_bins=80)
    assert not reads
    s = TT.TimeTagStream(tg, 10_000_000, [2, 3])   # a raw stream needs the tags: the window is listed
    tg._clock.sleep(0.05)
    buf = s.getData()
    assert reads and buf.size > 0
    s.stop()
    auto = TT.Correlation(tg, 2, binwidth=250, n_bins=80)   # auto-correlation: not in the statistics
    assert not auto._stat_ok(tg._stats, cond)
    auto.stop()
    n = len(reads)
    tg._clock.sleep(0.05)
    c.getData()
    assert len(reads) == n              # back to drawing once only statistical measurements run
    tg.setDeadtime(2, 200_000)           # a tagger dead time longer than the detectors': listed again
    tg._clock.sleep(0.05)
    c.getData()
    assert len(reads) > n


def test_time_differences_steps_histograms_on_the_next_channel():
    # input 1: starts every 1 µs; input 2: a click 100 ps after each start; input 3: "next" every 3 µs
    # (after starts 0, 3, 6, …); input 4: "sync" once at 10.5 µs
    starts = np.arange(20) * 1_000_000
    nxt = np.arange(1, 7) * 3_000_000 - 500_000
    t = np.concatenate([starts, starts + 100, nxt, [10_500_000]])
    ch = np.concatenate([np.zeros(20), np.ones(20), np.full(6, 2), [3]]).astype(np.int16)
    order = np.argsort(t, kind="stable")
    clock = SimClock()
    TT = make_module(lambda: RecordedT2(ch[order], t[order], duration_ps=30_000_000), clock=clock)
    tg = TT.createTimeTagger()
    td = TT.TimeDifferences(tg, 2, 1, 3, 4, binwidth=10, n_bins=50, n_histograms=3)
    clock.sleep(25e-6)
    data = td.getData()
    assert data.shape == (3, 50) and data.dtype == np.int32
    # starts 0-2 → 0, 3-5 → 1, 6-8 → 2, 9-10 → 0 (rollover), sync: 11 → 0, 12-14 → 1, 15-17 → 2, 18-19 → 0
    assert data[:, 10].tolist() == [8, 6, 6] and data.sum() == 20
    assert td.getCounts() == 2 and td.getIndex()[1] == 10


def test_a_reading_on_another_thread_does_not_wait_for_a_physics_computation():
    """The engine's keep-alive thread reads the count rates (count-rate suspender) while the procedure's
    measurement computes the expectation of a new condition: the reading must not queue behind it."""
    import threading

    cond = Conditions(T_K=20.0, xray_kV=20.0, xray_mA=1.0)
    TT, tg, _ = _tagger("hbt", cond, True, seed=8)
    source = tg._stats.source
    inner = source.g2_histogram
    inside, done = threading.Event(), threading.Event()
    order = []

    def slow_g2(*a, **k):   # the first computation waits until the other thread has read its rates
        if not inside.is_set():
            inside.set()
            done.wait(30)
            order.append("g2 computed")
        return inner(*a, **k)

    source.g2_histogram = slow_g2
    c = TT.Correlation(tg, 2, 3, binwidth=250, n_bins=80)
    r = TT.Countrate(tg, [2, 3])
    tg._clock.sleep(0.2)
    worker = threading.Thread(target=c.getData)
    worker.start()
    assert inside.wait(30)
    counts = r.getCountsTotal()          # on this thread, while the other one is in the computation
    order.append("rates read")
    done.set()
    worker.join(30)
    assert order == ["rates read", "g2 computed"] and counts.sum() > 0


def test_statistical_histogram_follows_the_tcspc_monochromator_at_constant_conditions():
    """Band-resolved decays on the emulated Time Tagger: the IRF on the laser line, then the SF and the
    uncoupled wavelength, the sample's conditions unchanged. Each histogram is the light the monochromator
    passes now (the expectation cache once kept the first passband: both decays came out as the IRF)."""
    from simulators.detectors import default_detectors
    from simulators.optics import Passband

    cond = Conditions(T_K=10.0, fluence_uJcm2=1.0)
    setting = {"pb": Passband(405.2, 2.0, 2.0)}
    clock = SimClock()
    world = SimpleNamespace(conditions=lambda: cond)
    det = default_detectors().with_passband(lambda: setting["pb"])
    source = TagSource(Sample.preset("milano-2d-sl", seed=1), det, 1)
    feed = PhysicsFeed(world, mode="tcspc", source=source)
    TT = make_module(lambda: feed, clock=clock)
    TT.STATISTICS = True
    tg = TT.createTimeTagger()

    def histogram() -> np.ndarray:
        (h,) = _run(TT, tg, lambda TT_, t: [TT_.Histogram(t, 2, 1, binwidth=8, n_bins=1500)], 0.5)
        return h.getData().astype(float)

    def mean_delay(h: np.ndarray) -> float:
        k = int(np.argmax(h))
        w = h[k: k + 400]
        return float(np.sum(np.arange(w.size) * w) / np.sum(w)) * 8.0

    irf = histogram()
    truth = source.sample.truth(cond)["derived"]
    setting["pb"] = Passband(1239.84198 / truth["band_E_eV"]["sf"], 2.0, 2.0)
    sf = histogram()
    setting["pb"] = Passband(1239.84198 / truth["band_E_eV"]["uncoupled"], 2.0, 2.0)
    unc = histogram()
    assert min(irf.sum(), sf.sum(), unc.sum()) > 1e4
    # prompt laser, then the faster SF band, then the slower uncoupled band (mean delay after the peak)
    d_irf, d_sf, d_unc = mean_delay(irf), mean_delay(sf), mean_delay(unc)
    assert d_irf < d_sf < d_unc, (d_irf, d_sf, d_unc)
    assert _homogeneous(sf, unc) < 1e-6 and _homogeneous(irf, sf) < 1e-6
