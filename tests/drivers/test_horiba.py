"""Horiba backend (drivers.horiba, on horiba-sdk) against the simulated ICL."""

from __future__ import annotations

import math
import socket

import numpy as np
import pytest

from acq.clock import SimClock
from drivers.base import DriverError, OptionError
from drivers.horiba import HoribaSpectrometer
from simulators.icl_server import IclServer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def lab():
    from simulators.world import World

    world = World(SimClock(), sample="milano-2d-sl", tick_s=0)
    server = IclServer(world, port=0).start()
    spec = HoribaSpectrometer(f"ws://127.0.0.1:{server.port}", clock=world.clock, grating=1, center_nm=520.0,
                              slit_mm=0.05, timer_resolution="us", exposure_s=0.0005)
    spec.connect()
    yield world, server, spec
    spec.close()
    server.stop()
    world.stop()


def test_acquire_spectrum_with_axis_and_calibration(lab):
    world, server, spec = lab
    assert spec.readback()["center_nm"] == 520.0
    assert spec.grating_lpmm == 1200.0 and spec.slit_mm == pytest.approx(0.05)
    s = spec.acquire()
    d = spec.dark_frame()
    assert s.counts.shape == (1024,) and s.wavelength_nm.shape == (1024,)
    assert s.wavelength_nm[0] < 520.0 < s.wavelength_nm[-1]
    assert s.exposure_s == 0.0005 and not s.dark and d.dark
    c = np.asarray(s.calibration["coefficients"])
    np.testing.assert_allclose(np.polynomial.polynomial.polyval(s.pixel, c), s.wavelength_nm, atol=1e-3)
    assert s.counts.max() > d.counts.max() + 1000
    fine = np.linspace(s.wavelength_nm[0], s.wavelength_nm[-1], 50_000)
    truth = world.sample.emission_spectrum(fine, world.conditions())
    assert abs(s.wavelength_nm[np.argmax(s.counts - d.counts)] - fine[np.argmax(truth)]) < 0.3
    # binning 2 columns halves the axis and keeps the calibration consistent
    spec.set_roi(x_bin=2)
    b = spec.acquire()
    assert b.counts.shape == (512,)
    assert b.pixel[0] == pytest.approx(0.5)
    assert spec.ccd_temperature < 20.0
    # the clock moved by the exposures and mono moves, and only on the lab clock
    assert world.clock.monotonic() > 20.0


def test_bad_settings_raise_before_anything_is_sent(lab):
    _, server, spec = lab
    n = len(server.log)
    for call, key in ((lambda: spec.acquire(7200.0), "exposure_s"), (lambda: spec.acquire(0.0), "exposure_s"),
                      (lambda: spec.acquire(1.5e-6 + 1e-7), "exposure_s"),
                      (lambda: spec.set_roi(x_bin=3), "x_bin"), (lambda: spec.set_roi(x_bin=0), "x_bin"),
                      (lambda: spec.set_roi(y_bin=300), "y_bin"), (lambda: spec.set_roi(x_origin=1024), "x_origin"),
                      (lambda: spec.set_gain(7), "gain_token"), (lambda: spec.set_speed(9), "speed_token"),
                      (lambda: spec.set_grating(3), "grating"), (lambda: spec.move_to(1600.0), "center_nm"),
                      (lambda: setattr(spec, "slit_mm", 8.0), "slit_mm")):
        with pytest.raises(OptionError) as err:
            call()
        assert err.value.key == key
    assert len(server.log) == n, f"commands reached the ICL: {server.log[n:]}"
    with pytest.raises(OptionError, match="timer_resolution"):
        HoribaSpectrometer("", timer_resolution="ns")
    with pytest.raises(OptionError, match="exposure_s"):
        HoribaSpectrometer("", exposure_s=1e5)


def test_make_safe_closes_the_shutter_and_is_idempotent(lab):
    _, server, spec = lab
    spec.open_shutter()
    assert server.mono.shutter_open
    spec.make_safe()
    spec.make_safe()
    assert not server.mono.shutter_open


def test_grating_change_and_range(lab):
    _, server, spec = lab
    spec.set_grating(2)  # 300 gr/mm: range up to 6000 nm
    assert spec.grating_lpmm == 300.0 and server.mono.grating == 2
    spec.move_to(1800.0)
    with pytest.raises(OptionError, match="move first"):
        spec.set_grating(0)


def test_no_icl_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = HoribaSpectrometer(f"127.0.0.1:{port}", clock=SimClock(), command_timeout_s=5.0)
    with pytest.raises(DriverError, match="ICL"):
        spec.connect()
    spec.close()


def test_the_simulated_labs_test_sheet_is_its_cameras_photon_transfer_curve():
    """The gain and read noise the simulated lab states (simulators.icl_server.test_sheet, its lab.toml
    spectrometer options) are what a photon-transfer measurement of the emulated camera gives: the variance
    of frame differences against the signal has slope 1/gain (counts) and the spread of 1 µs dark frames is the
    read noise with the ADC's quantisation (gain²/12) — measured through the driver, not read from the emulator."""
    from simulators.icl_server import test_sheet
    from simulators.world import World

    sheet = test_sheet()
    assert set(sheet) == {"gain_token", "speed_token", "e_per_count", "read_noise_e"}
    world = World(SimClock(), sample="milano-2d-sl", tick_s=0)
    server = IclServer(world, port=0).start()
    spec = HoribaSpectrometer(f"ws://127.0.0.1:{server.port}", clock=world.clock, grating=1, center_nm=520.0,
                              slit_mm=0.05, timer_resolution="us", exposure_s=0.002, **sheet)
    try:
        spec.connect()
        assert spec.ccd_calibration() == {k: sheet[k] for k in ("e_per_count", "read_noise_e")}
        light = np.array([spec.acquire().counts for _ in range(8)], float)
        dark = np.array([spec.dark_frame().counts for _ in range(8)], float)
        bias = np.array([spec.dark_frame(exposure_s=1e-6).counts for _ in range(8)], float)  # no dark charge
    finally:
        spec.close()
        server.stop()
        world.stop()
    g = sheet["e_per_count"]
    d = (bias[0::2] - bias[1::2]).ravel()
    d = d[np.abs(d) < 10 * np.std(d)]  # no cosmic-ray hit in the spread
    read_e = math.sqrt(max(np.var(d) / 2 * g * g - g * g / 12, 0.0))
    print("read noise", read_e)
    assert read_e == pytest.approx(sheet["read_noise_e"], rel=0.1)
    signal = light.mean(0) - dark.mean(0)
    var = ((light[0::2] - light[1::2]) ** 2).mean(0) / 2
    assert signal.max() > 10_000  # the curve spans a decade and more of signal
    # var = S/g + σ²/g² (+ a quadratic term for the source's intensity noise)
    slope = np.linalg.lstsq(np.vstack([signal, np.ones_like(signal), signal ** 2]).T, var, rcond=None)[0][0]
    print("gain", 1.0 / slope)
    assert 1.0 / slope == pytest.approx(g, rel=0.05)
