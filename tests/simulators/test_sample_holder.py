"""The simulated sample holder on its CONEX-CC stage and the white-light lamp: what every light model sees."""

from __future__ import annotations

import numpy as np
import pytest

from acq.clock import SimClock
from simulators.lamp import LampModel
from simulators.sample import Conditions
from simulators.tags import TagSource
from simulators.world import World

LASER = dict(T_K=5.0, fluence_uJcm2=6.0, rep_rate_Hz=76e6, photon_eV=3.06)
LAM = np.linspace(480.0, 560.0, 161)


def world_with_stage(**kw):
    w = World(SimClock(), sample="milano-2d-sl", **kw)
    w.sample_stage.installed = True          # what starting its CONEX-CC server does
    w.sample_stage.referenced = True
    return w


def put(w: World, mm: float) -> None:
    w.sample_stage.position = w.sample_stage.target = mm


def test_without_a_stage_the_sample_is_in_the_beam():
    w = World(SimClock(), sample="milano-2d-sl")
    put(w, 25.0)                              # no controller: the stage is not in the beam path
    assert w.sample_in_beam() is w.sample


def test_each_position_shows_its_own_film_and_nothing_between():
    w = world_with_stage(reference_sample="isolated-ncs")
    cond = Conditions(**LASER)
    assert w.sample_in_beam() is w.sample                         # 0 mm: the superlattice
    put(w, 12.5)
    assert w.sample_in_beam().name == "isolated-ncs"
    ref = w.collected_spectrum(LAM, cond)
    np.testing.assert_allclose(ref, w.reference_sample.emission_spectrum(LAM, cond))
    for mm in (25.0, 6.0):                                       # blank, then the frame mid-travel
        put(w, mm)
        assert w.sample_in_beam() is None and not np.any(w.collected_spectrum(LAM, cond))
    src = TagSource(w.sample_in_beam, seed=1)                    # the TCSPC light follows the stage too
    assert src.light(cond, "tcspc").mu_pulse == 0.0
    put(w, 0.0)
    assert src.light(cond, "tcspc").mu_pulse > 0.0


def test_lamp_is_a_3000_K_blackbody_through_the_holder():
    w = world_with_stage()
    cond = Conditions(T_K=5.0)
    w.lamp.installed = True
    assert not np.any(w.collected_spectrum(LAM, cond))           # shutter closed at power-on
    w.lamp.shutter_enabled = True
    lamp = w.lamp.spectrum(LAM)
    # Planck in photons: the ratio of two wavelengths at 3000 K
    c2 = 1.438777e7
    ratio = (480.0 / 560.0) ** -4 * np.expm1(c2 / (560.0 * 3000.0)) / np.expm1(c2 / (480.0 * 3000.0))
    assert lamp[0] / lamp[-1] == pytest.approx(ratio, rel=1e-9)
    put(w, 25.0)
    np.testing.assert_allclose(w.collected_spectrum(LAM, cond), 0.9 * lamp)        # bare substrate
    put(w, 0.0)
    through = w.collected_spectrum(LAM, cond)
    np.testing.assert_allclose(through, 0.9 * lamp * 10 ** -w.sample.absorbance(LAM, cond))
    put(w, 6.0)
    assert not np.any(w.collected_spectrum(LAM, cond))            # the frame is opaque


def test_lamp_without_its_controller_gives_no_light():
    lamp = LampModel()
    lamp.shutter_enabled = True
    assert not np.any(lamp.spectrum(LAM))
