"""The emulated Swabian TimeTagger module: measurement semantics on synthetic tags."""

from __future__ import annotations

import numpy as np
import pytest

from acq.clock import SimClock
from drivers.tcspc import correlate_tags
from simulators.replay import RecordedT2
from simulators.timetagger import make_module

pytestmark = pytest.mark.timeout(60)
PS = 1_000_000_000_000


def _poisson_pair(seed: int = 0, duration_s: float = 0.3, rate: float = 2e5, pairs: float = 2e4):
    """Two inputs (feed channels 1, 2) with independent Poisson tags plus correlated pairs at +3 ns."""
    rng = np.random.default_rng(seed)
    dur = int(duration_s * PS)
    t1 = rng.integers(0, dur, rng.poisson(rate * duration_s))
    t2 = rng.integers(0, dur, rng.poisson(rate * duration_s))
    tp = rng.integers(0, dur - 10_000, rng.poisson(pairs * duration_s))
    t = np.concatenate([t1, tp, t2, tp + 3000])
    ch = np.concatenate([np.ones(t1.size + tp.size, np.int16), np.full(t2.size + tp.size, 2, np.int16)])
    return RecordedT2(ch, t, duration_ps=dur)


def test_streamed_correlation_equals_the_all_pairs_histogram():
    clock = SimClock()
    feed = _poisson_pair()
    TT = make_module(lambda: feed, clock=clock)
    tagger = TT.createTimeTagger()
    for ch in (2, 3):
        tagger.setDeadtime(ch, 2000)
    corr = TT.Correlation(tagger, 2, 3, binwidth=500, n_bins=100)
    rate = TT.Countrate(tagger, [2, 3])
    corr.startFor(int(0.3 * PS))
    rate.startFor(int(0.3 * PS))
    corr.waitUntilFinished()
    rate.waitUntilFinished()
    assert clock.monotonic() == pytest.approx(0.3)
    # reference on the tags the tagger accepted (the dead time removes a few)
    t = feed.time_ps
    kept = {}
    for c in (1, 2):
        tc = t[feed.channel == c]
        keep = np.ones(tc.size, bool)
        last = -10**18
        for i, v in enumerate(tc):
            if v - last >= 2000:
                last = v
            else:
                keep[i] = False
        kept[c] = tc[keep]
    _, ref = correlate_tags(kept[1], kept[2], 500, 100)
    np.testing.assert_array_equal(corr.getData(), ref)
    assert rate.getCountsTotal().tolist() == [kept[1].size, kept[2].size]
    g2 = corr.getDataNormalized()
    idx = corr.getIndex()
    assert idx[50] == 250 and idx[49] == -250  # bin centres, zero delay at the edge between 49 and 50
    peak = int(np.argmax(g2))
    assert idx[peak] == 3250 and g2[peak] > 5  # the +3 ns pairs
    assert np.median(g2) == pytest.approx(1.0, abs=0.1)


def test_input_delay_shifts_and_stream_clears():
    clock = SimClock()
    feed = RecordedT2(np.array([0, 1] * 100, np.int16), np.repeat(np.arange(100) * 10_000_000, 2)
                      + np.tile([0, 1000], 100))
    TT = make_module(lambda: feed, clock=clock)
    tagger = TT.createTimeTagger()
    tagger.setInputDelay(2, 500)
    h = TT.Histogram(tagger, 2, 1, 100, 30)
    s = TT.TimeTagStream(tagger, 1000, [1, 2])
    clock.sleep(0.5e-3)  # 0.5 ms: 50 pairs
    data = h.getData()
    assert data[15] == 50 and data.sum() == 50
    buf = s.getData()
    assert buf.size == 100 and buf.getChannels().dtype == np.int32
    assert np.all(buf.getTimestamps()[buf.getChannels() == 2] % 10_000_000 == 1500)
    assert s.getData().size == 0  # getData() clears the buffer
    clock.sleep(0.5e-3)
    assert s.getData().size == 100
    c = TT.Counter(tagger, [1, 2], binwidth=int(1e8), n_values=5)
    clock.sleep(0.5e-3)
    assert c.getData().shape == (2, 5)


def test_trigger_level_limits_and_free():
    TT = make_module(lambda: RecordedT2(np.array([1]), np.array([0])), clock=SimClock())
    tagger = TT.createTimeTagger("ABC")
    assert tagger.getSerial() == "ABC"
    with pytest.raises(ValueError, match="trigger level"):
        tagger.setTriggerLevel(1, 3.0)
    with pytest.raises(ValueError, match="not a valid input"):
        tagger.setInputDelay(9, 0)
    cfg = tagger.getConfiguration()
    assert cfg["channels"][0]["trigger level"] == 0.5
    TT.freeTimeTagger(tagger)
    with pytest.raises(RuntimeError, match="freed"):
        TT.Countrate(tagger, [1])
