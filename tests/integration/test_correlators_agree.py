"""The two all-pairs correlators sflab has — ``drivers.tcspc.correlate_tags`` (what a time-tagger backend
returns, binned edge-aligned like the instruments' own correlation) and ``analysis.g2.correlate`` (bins
centred on multiples of the bin width, for the fits) — are kept apart by the layer rules (drivers and
analysis import nothing of ours; docs/decisions/0005). They must count the same pairs: shifted by half a
bin, the histograms are identical."""

import numpy as np

from analysis.g2 import correlate
from drivers.tcspc import correlate_tags


def test_driver_and_analysis_correlators_count_the_same_pairs():
    rng = np.random.default_rng(12)
    t1 = np.sort(rng.integers(0, 2_000_000_000, 40_000)).astype(np.int64)
    t2 = np.sort(np.concatenate([rng.integers(0, 2_000_000_000, 40_000),
                                 t1[::7] + rng.integers(-3_000, 3_000, t1[::7].size)])).astype(np.int64)
    bw, n = 1_000, 200
    _, drv = correlate_tags(t1, t2 + bw // 2, bw, n)    # edge-aligned bins, moved to the centred ones
    ana = correlate(t1, t2, bw, n).counts
    assert drv.sum() > 5_000                            # the bunched pairs near zero delay are there
    np.testing.assert_array_equal(drv, ana)
