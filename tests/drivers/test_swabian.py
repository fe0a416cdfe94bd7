"""Swabian Time Tagger backend (drivers.swabian) on the emulated TimeTagger module."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from acq.clock import SimClock
from drivers.base import DriverError, OptionError
from drivers.swabian import SwabianTimeTagger, import_vendor_module
from drivers.tcspc import correlate_tags
from simulators.replay import RecordedT2, open_recording, replay_tagger_module
from simulators.timetagger import make_module

ptufile = pytest.importorskip("ptufile")

DATA = Path("/work/shared/data/picoquant")
T2_FILE = DATA / "picoharp" / "v30_t2.ptu"
T3_FILES = sorted((DATA / "hydraharp").glob("v*_t3.ptu"))

pytestmark = pytest.mark.timeout(90)


class RecordingModule:
    """Wraps the emulated module: tagger setters and measurement constructors are recorded."""

    def __init__(self, module):
        self.module = module
        self.calls: list[str] = []

    def __getattr__(self, name):
        attr = getattr(self.module, name)
        if isinstance(attr, type):
            def construct(*a, **k):
                self.calls.append(name)
                return attr(*a, **k)
            return construct
        return attr

    def createTimeTagger(self, serial=""):
        tagger = self.module.createTimeTagger(serial)
        for name in ("setTriggerLevel", "setInputDelay", "setDeadtime", "setTestSignal"):
            orig = getattr(tagger, name)

            def wrapped(*a, _orig=orig, _name=name, **k):
                self.calls.append(_name)
                return _orig(*a, **k)

            setattr(tagger, name, wrapped)
        return tagger


def _tt(path: Path, **options) -> SwabianTimeTagger:
    clock = SimClock()
    tt = SwabianTimeTagger("", clock=clock, tagger_module=replay_tagger_module(path, clock=clock), **options)
    tt.connect()
    return tt


@pytest.mark.skipif(not T3_FILES, reason="no HydraHarp T3 files in shared/data")
@pytest.mark.parametrize("path", T3_FILES, ids=lambda p: p.name)
def test_t3_replay_histogram_equals_ptufile(path):
    with ptufile.PtuFile(path) as ptu:
        ref = ptu.decode_histogram(dtime=0)
        res_ps = round(ptu.tcspc_resolution * 1e12)
        acq_s = ptu.tags["MeasDesc_AcquisitionTime"] / 1e3
    tt = _tt(path)
    h = tt.histogram(acq_s + 0.5, channel=None, binwidth_ps=res_ps, n_bins=ref.shape[1])
    for c in range(ref.shape[0]):
        np.testing.assert_array_equal(h.counts_by_channel[c + 1], ref[c])
    assert h.channel_counts[1] == ref[0].sum() and h.channel_counts[2] == ref[1].sum()
    np.testing.assert_array_equal(h.time_ps[:3], [0, res_ps, 2 * res_ps])


@pytest.mark.skipif(not T2_FILE.exists(), reason="v30_t2.ptu not present")
def test_correlation_and_stream_on_t2_replay():
    feed = open_recording(T2_FILE)
    # PicoHarp inputs 0 and 1 are interface channels 0 and 1 -> tagger inputs 1 and 2
    tt = _tt(T2_FILE, detector_channels=[2])
    c = tt.correlation(3.0, ch1=1, ch2=0, binwidth_ps=25_000, n_bins=80)
    t = feed.time_ps[feed.time_ps < 3_000_000_000_000]
    ch = feed.channel[: t.size]
    lags, ref = correlate_tags(t[ch == 1], t[ch == 0], 25_000, 80)
    np.testing.assert_array_equal(c.counts, ref)  # streaming (chunked) == batch all-pairs
    np.testing.assert_allclose(c.lag_ps, lags)
    assert (c.n1, c.n2) == (int((ch == 1).sum()), int((ch == 0).sum()))
    assert c.duration_s == pytest.approx(3.0)
    s = tt.stream(0.5)  # continues where the correlation stopped: lab time 3.0 .. 3.5 s
    sel = (feed.time_ps >= 3_000_000_000_000) & (feed.time_ps < 3_500_000_000_000)
    np.testing.assert_array_equal(s.time_ps, feed.time_ps[sel] - 3_000_000_000_000)
    np.testing.assert_array_equal(s.channel, feed.channel[sel])


def test_bad_settings_raise_before_anything_is_sent():
    clock = SimClock()
    feed = RecordedT2(np.array([1, 2]), np.array([0, 5000]))
    module = RecordingModule(make_module(lambda: feed, clock=clock))
    tt = SwabianTimeTagger("", clock=clock, tagger_module=module)
    tt.connect()
    sent = list(module.calls)
    for settings in (dict(trigger_level_V=5.0), dict(dead_time_ps=100), dict(sync_divider=2),
                     dict(channel_offset_ps=10_000_000), dict(binning=3)):
        with pytest.raises(OptionError):
            tt.configure(**settings)
    for call in (lambda: tt.histogram(1.0, binwidth_ps=0.5), lambda: tt.histogram(1.0, channel=5),
                 lambda: tt.correlation(1.0, 1, 9), lambda: tt.correlation(-1.0),
                 lambda: tt.histogram(1.0, n_bins=0)):
        with pytest.raises(OptionError):
            call()
    assert module.calls == sent
    with pytest.raises(OptionError, match="detector_channels"):
        SwabianTimeTagger("", tagger_module=module, detector_channels=[1, 2])  # 1 is the sync input
    tt.configure(dead_time_ps=6000, channel_offset_ps=1200)
    assert module.calls[len(sent):] == ["setDeadtime"] * 3 + ["setInputDelay"] * 2


def test_emulated_module_api_shapes():
    clock = SimClock()
    feed = RecordedT2(np.array([0, 1, 0, 1, 1], np.int16), np.array([0, 100, 10_000, 10_150, 11_000]))
    TT = make_module(lambda: feed, clock=clock)
    tagger = TT.createTimeTagger()
    assert tagger.setDeadtime(1, 5100) == 6000  # rounded to the 2 ns clock
    assert tagger.setDeadtime(1, 2000) == 2000
    with TT.Histogram(tagger, 2, 1, 10, 50) as h:
        h.startFor(int(1e6))
        assert h.waitUntilFinished()
        assert not h.isRunning()
        assert h.getData().dtype == np.int32 and h.getIndex().dtype == np.int64
        assert h.getData().tolist()[10] == 1 and h.getData().tolist()[15] == 1
        assert h.getData().sum() == 2  # the click 850 ps after the previous one fell in the dead time
        assert h.getCaptureDuration() == int(1e6)
    assert TT.getVersion().endswith("emulation") and TT.CHANNEL_UNUSED == -134217728


def test_real_library_boundary():
    if importlib.util.find_spec("Swabian") or importlib.util.find_spec("TimeTagger"):
        pytest.skip("a Swabian library is installed here")
    with pytest.raises(DriverError, match="Swabian Time Tagger library not installed"):
        import_vendor_module()
    with pytest.raises(DriverError, match="not installed"):
        SwabianTimeTagger("").connect()


@pytest.mark.hardware
@pytest.mark.skipif(not os.environ.get("SFLAB_SWABIAN"), reason="set SFLAB_SWABIAN=<serial or 1> with a Time "
                    "Tagger connected to run this on hardware")
def test_real_time_tagger_smoke():  # pragma: no cover - needs the instrument
    serial = os.environ["SFLAB_SWABIAN"]
    tt = SwabianTimeTagger("" if serial == "1" else serial)
    tt.connect()
    try:
        assert set(tt.count_rates()) == set(SwabianTimeTagger.READBACKS)
    finally:
        tt.close()


def test_backend_on_the_physics_feed_lists_no_tags():
    """On the sample physics the emulated tagger draws histogram / correlation / count rates from the photon
    statistics: the backend's calls list no tag — also the count-rate reading the engine's keep-alive thread
    makes for the count-rate suspender (0.1 s gate of a 76 MHz sync: 7.6 M tags when listed)."""
    from types import SimpleNamespace

    from simulators.sample import Conditions, Sample
    from simulators.tags import TagSource
    from simulators.vendor import PhysicsFeed

    clock = SimClock()
    cond = Conditions(T_K=80.0, fluence_uJcm2=1.2)
    feed = PhysicsFeed(SimpleNamespace(conditions=lambda: cond), mode="tcspc",
                       source=TagSource(Sample.preset("technion-3d-sl", seed=0), None, 0))
    feed._read = lambda t0, t1: pytest.fail("a tag window was listed")
    tt = SwabianTimeTagger("", clock=clock, tagger_module=make_module(lambda: feed, clock=clock))
    tt.connect()
    rates = tt.count_rates()
    assert rates["rate_ch0"] == pytest.approx(76e6, rel=1e-6) and rates["rate_ch1"] > 1000
    h = tt.histogram(2.0, binwidth_ps=8, n_bins=1600)
    assert h.sync_period_ps == pytest.approx(1e12 / 76e6, rel=1e-6) and h.duration_s == pytest.approx(2.0)
    assert h.counts.sum() > 10_000 and h.channel_counts[0] == pytest.approx(2.0 * 76e6, abs=1)
    assert 200 < int(np.argmax(h.counts)) < 400          # the rise 2 ns after the sync (its cable delay)
    assert not h.flags
    long = tt.histogram(0.5, binwidth_ps=100, n_bins=300)  # 30 ns: past the 13.2 ns period
    first = int(np.ceil(1e12 / 76e6 / 100))
    assert long.flags == ["RANGE_BEYOND_SYNC_PERIOD"] and not long.counts[first:].any() and long.counts.sum() > 0
    c = tt.correlation(1.0, ch1=0, ch2=1, binwidth_ps=1000, n_bins=40)   # sync × detector: the laser comb
    assert c.counts.sum() > 0 and c.n1 == pytest.approx(76e6, abs=1)
    tt.close()
