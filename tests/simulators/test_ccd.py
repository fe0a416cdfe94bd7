"""CCD and spectrograph models."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.ccd import CCD, qe_back_illuminated
from simulators.optics import Spectrograph


def test_dark_frame_statistics():
    cam = CCD(cosmic_per_cm2_min=0.0)
    frame = cam.expose(np.zeros((256, 1024)), 1.0, np.random.default_rng(0))
    assert frame.shape == (256, 1024) and frame.dtype == np.int64
    assert frame.mean() == pytest.approx(cam.bias_counts, abs=0.1)
    assert frame.std() == pytest.approx(cam.read_noise_e / cam.gain_e_per_count, rel=0.05)


def test_dark_current_doubles_and_binning_sums():
    cam = CCD(cosmic_per_cm2_min=0.0, read_noise_e=0.0, chip_temp_C=-20.0)
    assert cam.dark_rate(-60.0 + cam.dark_doubling_K) == pytest.approx(2 * cam.dark_rate(-60.0))
    rng = np.random.default_rng(1)
    fvb = cam.expose(np.zeros((256, 64)), 100.0, rng, binning=(1, 256))
    assert fvb.shape == (1, 64)
    expected_e = cam.dark_rate() * 100.0 * 256
    assert (fvb.mean() - cam.bias_counts) * cam.gain_e_per_count == pytest.approx(expected_e, rel=0.05)


def test_roi_binning_saturation_and_cosmics():
    cam = CCD(cosmic_per_cm2_min=0.0)
    rate = np.full((256, 1024), 1e9)
    out = cam.expose(rate, 1.0, np.random.default_rng(2), roi=(100, 50, 200, 40), binning=(2, 4))
    assert out.shape == (10, 100) and out.max() == 65535
    with pytest.raises(ValueError):
        cam.expose(rate, 1.0, np.random.default_rng(2), roi=(0, 0, 200, 40), binning=(3, 1))
    with pytest.raises(ValueError):
        cam.expose(rate, 1.0, np.random.default_rng(2), roi=(1000, 0, 200, 40))
    hot = CCD(cosmic_per_cm2_min=100.0).expose(np.zeros((256, 1024)), 60.0, np.random.default_rng(3))
    assert (hot > CCD().bias_counts + 300).sum() > 50
    shut = CCD(cosmic_per_cm2_min=0.0).expose(rate, 1.0, np.random.default_rng(4), shutter_open=False)
    assert shut.max() < 1000


def test_qe_curve():
    q = qe_back_illuminated(np.array([250.0, 520.0, 1100.0]))
    assert q[1] > 0.85 and q[0] < 0.2 and q[2] < 0.1


def test_spectrograph_axis_and_dispersion():
    s600 = Spectrograph(grating_lpmm=600, focal_mm=320)
    s1200 = Spectrograph(grating_lpmm=1200, focal_mm=320)
    wl = s600.wavelength_axis(530.0)
    assert np.all(np.diff(wl) > 0) and wl.size == 1024
    assert np.interp(511.5, np.arange(1024), wl) == pytest.approx(530.0, abs=0.2)
    # reciprocal dispersion ~ d cos(beta) / f: doubles when the groove density halves
    assert s600.dispersion_nm_per_px(530) == pytest.approx(2 * s1200.dispersion_nm_per_px(530), rel=0.1)
    assert s600.dispersion_nm_per_px(530) == pytest.approx(1e6 / 600 * 26e-3 / 320, rel=0.1)
    with pytest.raises(ValueError):
        Spectrograph(grating_lpmm=2400).wavelength_axis(1000.0)


def test_line_shape_and_flux_conservation():
    s = Spectrograph(grating_lpmm=1200, slit_um=100.0, throughput=1.0)
    offs, k = s.line_shape()
    assert k.sum() == pytest.approx(1.0) and offs[np.argmax(k)] == 0
    _, k_narrow = s.line_shape(slit_um=10.0)
    assert k_narrow.max() > k.max()
    assert s.line_fwhm_nm(530, slit_um=200.0) > s.line_fwhm_nm(530, slit_um=20.0)
    # a narrow line keeps its flux and is broadened to about the instrument width
    line = lambda lam: 1e6 * np.exp(-0.5 * ((lam - 530.0) / 0.01) ** 2) / (0.01 * np.sqrt(2 * np.pi))
    col = s.column_rates(line, 530.0, sub=64)
    assert col.sum() == pytest.approx(1e6, rel=0.01)
    assert (col > col.max() / 2).sum() >= 3
    chip = s.chip_rates(col, 256)
    assert chip.shape == (256, 1024) and chip.sum() == pytest.approx(col.sum())


@pytest.mark.parametrize("flip", [False, True])
def test_the_edge_columns_get_the_light_from_beyond_the_chip(flip):
    """A spectrum that goes on past the chip's ends lights its edge columns like the others: the slit image
    spreads light from beyond the edge onto them (a zero-padded convolution had dimmed them by up to 35 %)."""
    s = Spectrograph(grating_lpmm=1200, slit_um=100.0, throughput=1.0, flip=flip)
    col = s.column_rates(lambda lam: np.full_like(lam, 1e4), 530.0)
    dl = np.abs(np.diff(s.pixel_edges(530.0)))
    np.testing.assert_allclose(col / dl, 1e4, rtol=1e-3)
