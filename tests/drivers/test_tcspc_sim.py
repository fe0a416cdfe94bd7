"""Both TCSPC backends on the physics-fed vendor layers from ``simulators.vendor.start_vendor_layers``."""

from __future__ import annotations

import numpy as np
import pytest

from acq.clock import SimClock
from drivers.picoharp300 import PicoHarp300
from drivers.swabian import SwabianTimeTagger
from simulators.vendor import PhysicsFeed, start_vendor_layers

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def layers():
    from simulators.world import World

    world = World(SimClock(), sample="milano-2d-sl", tick_s=0)
    out = start_vendor_layers(world, ports={"spectrometer": 0})
    yield world, out
    out["spectrometer"].stop()
    world.stop()


def test_start_vendor_layers_api(layers):
    _, out = layers
    assert set(out) == {"spectrometer", "tcspc"}
    icl = out["spectrometer"]
    assert icl.port > 0 and icl.url == f"ws://127.0.0.1:{icl.port}"
    assert set(out["tcspc"]) == {"phlib", "tagger_module", "replay_phlib", "replay_tagger_module"}
    assert hasattr(out["tcspc"]["phlib"], "PH_ReadFiFo")
    assert hasattr(out["tcspc"]["tagger_module"], "createTimeTagger")


def test_picoharp_histogram_modes_agree_in_distribution(layers):
    world, out = layers
    lib = out["tcspc"]["phlib"]
    hist = PicoHarp300("", clock=world.clock, phlib=lib, binning=3)  # 32 ps
    hist.connect()
    rates = hist.count_rates()
    assert rates["rate_ch0"] == pytest.approx(76e6, rel=1e-3)
    assert 0 < rates["rate_ch1"] < 0.1 * rates["rate_ch0"]
    h_exact = hist.histogram(0.05)  # histogram mode: the physics' exact-statistics histogram
    hist.close()
    t3 = PicoHarp300("", clock=world.clock, phlib=lib, binning=3, histogram_source="t3")
    t3.connect()
    h_tags = t3.histogram(0.05)  # T3 records from the tag stream
    t3.close()
    assert h_exact.binwidth_ps == h_tags.binwidth_ps == 32.0
    period_bins = int(round(1e12 / 76e6 / 32.0))
    a = h_exact.counts[:period_bins].astype(float)
    b = h_tags.counts[:period_bins].astype(float)
    assert a.sum() > 5e4 and b.sum() > 5e4
    x = np.arange(period_bins)
    mean_a, mean_b = (x * a).sum() / a.sum(), (x * b).sum() / b.sum()
    assert mean_a == pytest.approx(mean_b, rel=0.03)
    assert abs(int(np.argmax(a)) - int(np.argmax(b))) <= 3
    assert h_tags.sync_period_ps == pytest.approx(1e12 / 76e6, rel=1e-3)


def test_swabian_g2_under_xrays_shows_bunching():
    from simulators.sample import Conditions, Sample

    class XrayWorld:
        clock = SimClock()
        sample = Sample.preset("milano-2d-sl")
        rng_seed = 3

        def conditions(self):
            return Conditions(T_K=10.0, fluence_uJcm2=0.0, xray_kV=40.0, xray_mA=1.0)

    w = XrayWorld()
    from simulators.timetagger import make_module

    tt = SwabianTimeTagger("", clock=w.clock, tagger_module=make_module(lambda: PhysicsFeed(w, mode="hbt"),
                                                                         clock=w.clock))
    tt.connect()
    c = tt.correlation(1.0, 1, 2, binwidth_ps=200, n_bins=200)
    assert c.n1 > 1000 and c.n2 > 1000
    assert c.lag_ps[0] < 0 < c.lag_ps[-1]
    centre = c.g2[95:105].mean()
    wings = np.r_[c.g2[:20], c.g2[-20:]].mean()
    assert centre > wings  # X-ray bursts bunch photons around zero delay


def test_picoharp_hbt_wiring_on_inputs_0_and_1():
    from simulators.phlib import EmulatedPHLib
    from simulators.sample import Conditions, Sample

    class XrayWorld:
        clock = SimClock()
        sample = Sample.preset("milano-2d-sl")
        rng_seed = 5

        def conditions(self):
            return Conditions(T_K=10.0, fluence_uJcm2=0.0, xray_kV=40.0, xray_mA=1.0)

    w = XrayWorld()
    lib = EmulatedPHLib(lambda mode: PhysicsFeed(w, mode=mode), clock=w.clock, wiring="hbt")
    ph = PicoHarp300("", clock=w.clock, phlib=lib)
    ph.connect()
    c = ph.correlation(1.0, 0, 1, binwidth_ps=200, n_bins=200)
    assert c.n1 > 1000 and c.n2 > 1000
    assert c.g2[95:105].mean() > np.r_[c.g2[:20], c.g2[-20:]].mean()
