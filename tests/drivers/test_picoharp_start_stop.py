"""HBT the way [000] did it: the PicoHarp 300 backend's start–stop g2 in histogram mode on the emulated
PHLib (start = detector 1 on input 0, stop = detector 2 on input 1 delayed through the sync offset),
against the all-pairs g2 of T2 tags of the same simulated conditions, and the emulation's two ways of
making the start–stop histogram (closed form, from tags) against each other."""

from __future__ import annotations

import ctypes
import math

import numpy as np
import pytest
from scipy.stats import chi2 as chi2_dist

from acq.clock import SimClock
from drivers.base import CancelToken, OptionError
from drivers.picoharp300 import PicoHarp300
from simulators.detectors import picoharp_hybrid
from simulators.phlib import HISTCHAN, MODE_HIST, EmulatedPHLib
from simulators.sample import Conditions, Sample
from simulators.tags import TagSource
from simulators.vendor import PhysicsFeed

pytestmark = pytest.mark.timeout(120)
XRAY = Conditions(T_K=20.0, xray_kV=20.0, xray_mA=0.5)
c = ctypes.c_int


class World:
    def __init__(self, cond: Conditions = XRAY) -> None:
        self.clock = SimClock()
        self.sample = Sample.preset("milano-2d-sl")
        self.cond = cond

    def conditions(self) -> Conditions:
        return self.cond


class TagsOnlyFeed(PhysicsFeed):
    """The physics feed without its closed-form histogram: the emulated device builds the start–stop
    histogram from the tags (the path a replayed recording takes)."""

    def exact_histogram(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


def _picoharp(world: World, src: TagSource, feed=PhysicsFeed, seed: int = 4) -> tuple[PicoHarp300, EmulatedPHLib]:
    lib = EmulatedPHLib(lambda mode: feed(world, mode=mode, source=src), clock=world.clock, wiring="hbt", seed=seed)
    ph = PicoHarp300("", clock=world.clock, phlib=lib)
    ph.connect()
    return ph, lib


def _groups(weights: np.ndarray, min_count: float) -> np.ndarray:
    """Group index of each bin: adjacent bins merged until each group's ``weights`` reach ``min_count``."""
    g = np.zeros(weights.size, np.int64)
    k, acc = 0, 0.0
    for i, w in enumerate(weights):
        g[i] = k
        acc += w
        if acc >= min_count:
            k, acc = k + 1, 0.0
    if acc and k:
        g[g == k] = k - 1  # a short last group joins the one before
    return g


def _two_sample_p(a: np.ndarray, b: np.ndarray, min_count: float = 25.0) -> tuple[float, int, float]:
    """Chi-square that two Poisson histograms have the same shape (totals free): (χ², dof, p)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    g = _groups(np.minimum(a / a.sum(), b / b.sum()) * min(a.sum(), b.sum()), min_count)
    a, b = np.bincount(g, a), np.bincount(g, b)
    A, B = a.sum(), b.sum()
    x2 = float(np.sum((math.sqrt(B / A) * a - math.sqrt(A / B) * b) ** 2 / (a + b)))
    dof = a.size - 1
    return x2, dof, float(chi2_dist.sf(x2, dof))


def _one_sample_p(obs: np.ndarray, exp: np.ndarray, min_count: float = 25.0) -> tuple[float, int, float]:
    """Pearson chi-square of Poisson counts against their expectation, bins merged to ``min_count``."""
    g = _groups(np.asarray(exp, float), min_count)
    o, e = np.bincount(g, np.asarray(obs, float)), np.bincount(g, np.asarray(exp, float))
    x2 = float(np.sum((o - e) ** 2 / e))
    return x2, o.size, float(chi2_dist.sf(x2, o.size))


def test_start_stop_g2_agrees_in_distribution_with_the_t2_g2():
    """Same simulated sample, detectors and X-ray flux; the T2 g2 counts all pairs, the start–stop
    histogram the first stop per start. The oracle from the T2 data alone: the accidental floor per bin
    is f = N1·N2·bw/T, the rest the pairs of one X-ray event (at most one stop per start: the detectors
    are dead for longer than an event emits). Over a lag range shorter than the stop channel's dead time
    (4 ns ≪ 95 ns) at most one accidental stop fits too, so an event's own stop in bin i is seen unless
    an accidental came first (probability S₂·h_i), and an accidental unless the event's own stop came
    first (Q_i, its cumulative share per start): pred_i = own_i·(1 − S₂·h_i) + f·(1 − Q_i). At this
    brightness a start sees its own event's stop within the range ~20 % of the time."""
    world = World()
    src = TagSource(world.sample, picoharp_hybrid(hbt_transmission=0.5), seed=21)
    ph, _ = _picoharp(world, src)
    bw, n = 16.0, 250
    t2 = ph.correlation(1.0, 0, 1, binwidth_ps=bw, n_bins=n)
    ss = ph.start_stop_correlation(10.0, binwidth_ps=bw, n_bins=n)
    assert t2.method == "all-pairs" and ss.method == "start-stop"
    np.testing.assert_allclose(ss.lag_ps, t2.lag_ps)
    assert t2.counts.sum() > 20_000 and ss.counts.sum() > 100_000
    # the normalisation inputs: the rate meters during the acquisition agree with the counted tags
    assert ss.n1 / ss.duration_s == pytest.approx(t2.n1 / t2.duration_s, rel=0.03)
    assert ss.n2 / ss.duration_s == pytest.approx(t2.n2 / t2.duration_s, rel=0.03)
    floor = t2.n1 * t2.n2 * bw * 1e-12 / t2.duration_s
    own = t2.counts - floor
    h = np.arange(n) * bw + bw / 2
    Q = (np.cumsum(own) - own / 2) / t2.n1
    assert 0.1 < Q[-1] < 0.5
    pred = own * (1 - t2.n2 / t2.duration_s * h * 1e-12) + floor * (1 - Q)
    x2, dof, p = _two_sample_p(pred, ss.counts)
    assert p > 1e-3, f"chi2 {x2:.1f} for {dof} dof"
    # g2 itself (counts·T/(bw·N1·N2)): the bunching peak as the T2 one, the accidental wings lower by 1 − Q
    peak = slice(n // 2 - 5, n // 2 + 5)
    assert ss.g2[peak].mean() == pytest.approx(t2.g2[peak].mean(), rel=0.05)
    q = ss.quality()
    assert q["pileup"] == pytest.approx(ss.counts.sum() / ss.n1, rel=1e-9) and 0.1 < q["pileup"] < 0.5
    assert not q["overflow"] and q["clipped_bins"] == 0


@pytest.mark.parametrize(("binning", "sync_offset_ps"), [(7, -3000), (2, -2000)])
def test_emulated_start_stop_from_tags_matches_its_closed_form(binning, sync_offset_ps):
    """The emulated device's start–stop histogram from tags (a recording's path) against the closed form
    (``TagSource.start_stop_histogram``): over the full 65 536 × 512 ps range, where the accidentals
    decay (the first stop of a start hides the later ones), and at 16 ps around a bright bunching peak."""
    world = World()
    src = TagSource(world.sample, picoharp_hybrid(hbt_transmission=0.5), seed=8)
    lib = EmulatedPHLib(lambda mode: TagsOnlyFeed(world, mode=mode, source=src), clock=world.clock, wiring="hbt")
    lib.PH_OpenDevice(c(0), ctypes.create_string_buffer(8))
    lib.PH_Initialize(c(0), c(MODE_HIST))
    lib.PH_SetBinning(c(0), c(binning))   # 7: 512 ps, a 33.5 µs range; 2: 16 ps, 1 µs
    lib.PH_SetSyncOffset(c(0), c(sync_offset_ps))  # the stop 2–3 ns "later"
    lib.PH_ClearHistMem(c(0), c(0))
    dur = 0.5
    lib.PH_StartMeas(c(0), c(int(dur * 1e3)))
    st = c(0)
    while not st.value:
        lib.PH_CTCStatus(c(0), ctypes.byref(st))
        world.clock.sleep(0.05)
    buf = (ctypes.c_uint * HISTCHAN)()
    lib.PH_GetHistogram(c(0), ctypes.byref(buf), c(0))
    obs = np.ctypeslib.as_array(buf).astype(float)
    res = 4.0 * 2**binning
    exp = src.start_stop_histogram(world.cond, dur, res, HISTCHAN, start_delay_ps=float(sync_offset_ps),
                                   expected=True)
    assert obs.sum() == pytest.approx(exp.sum(), rel=0.03)
    x2, dof, p = _one_sample_p(obs, exp)
    assert p > 1e-3, f"chi2 {x2:.1f} for {dof} bins"
    if binning != 7:
        return
    # where all pairs would be flat, the accidentals decay as the probability of no earlier stop: beyond the
    # stop channel's dead time D that is exp(−λ₂·h) with its input rate λ₂ = S₂/(1 − S₂·D) (a stream of
    # clicks thinned by a dead time: the wait from a random time to the next click), S₂ counted in tags
    # here. The mean over a window [a, b) of bins is ∝ (e^{−k·a} − e^{−k·b}) / (b − a).
    ch, _ = src.hbt_stream(world.cond, 0.2)
    s2, dead = float(np.sum(ch == 2)) / 0.2, src.detectors.dead_ps(2) * 1e-12
    k = s2 / (1 - s2 * dead) * 512e-12     # per bin

    def window(a: int, b: int) -> float:
        return (math.exp(-k * a) - math.exp(-k * b)) / (b - a)

    assert 3.0 < k * HISTCHAN < 10.0   # several decades of decay over the range
    ratio = obs[30_000:50_000].mean() / obs[100:10_100].mean()
    assert ratio == pytest.approx(window(30_000, 50_000) / window(100, 10_100), rel=0.08)


def test_start_stop_settings_are_restored_and_validated():
    world = World()
    src = TagSource(world.sample, picoharp_hybrid(), seed=3)
    ph, lib = _picoharp(world, src)
    ph.configure(binning=3, offset_ps=1000, sync_offset_ps=500)
    c2 = ph.start_stop_correlation(0.5, binwidth_ps=24.0, n_bins=400)   # 24 ps = 3 × 8 ps device bins
    assert c2.counts.shape == (400,) and c2.binwidth_ps == 24.0
    d = lib._dev[0]
    assert (d.binning, d.offset_ps, d.sync_offset_ps) == (3, 1000, 500)  # the TCSPC settings are back
    with pytest.raises(OptionError, match="65 536"):
        ph.start_stop_correlation(1.0, binwidth_ps=4.0, n_bins=70_000)
    with pytest.raises(OptionError, match="stop delay"):
        ph.start_stop_correlation(1.0, binwidth_ps=512.0, n_bins=1000)   # 256 ns > the ±100 ns sync offset
    with pytest.raises(OptionError, match="multiple of the 4 ps"):
        ph.start_stop_correlation(1.0, binwidth_ps=6.0, n_bins=100)
    ph.configure(sync_divider=2)
    with pytest.raises(OptionError, match="divider"):
        ph.start_stop_correlation(1.0, binwidth_ps=8.0, n_bins=100)
    ph.configure(sync_divider=1)
    # hbt_correlation is the start-stop one by default and the T2 one on request
    assert ph.hbt_correlation(0.2, binwidth_ps=8.0, n_bins=100).method == "start-stop"
    ph.options["hbt_source"] = "t2"
    assert ph.hbt_correlation(0.2, binwidth_ps=8.0, n_bins=100).method == "all-pairs"


def test_start_stop_acquisition_is_interruptible():
    world = World()
    ph, lib = _picoharp(world, TagSource(world.sample, picoharp_hybrid(), seed=2))

    class Stop(Exception):
        pass

    t_start = world.clock.monotonic()

    def hook(urgent: bool = False) -> None:
        if world.clock.monotonic() - t_start > 100.0:
            raise Stop

    ph.cancel = CancelToken(hook)
    with pytest.raises(Stop):
        ph.start_stop_correlation(3600.0, binwidth_ps=8.0, n_bins=500)
    assert world.clock.monotonic() - t_start < 100.0 + 2 * ph.options["poll_s"] + 0.2
    d = lib._dev[0]
    assert not d.running and d.sync_offset_ps == 0 and d.binning == 0   # stopped, settings restored
