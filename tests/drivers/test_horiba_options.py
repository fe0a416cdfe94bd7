"""The ICL monochromator options are defined once (drivers.horiba.ICL_MONO_OPTIONS) and both Horiba classes
still accept and reject the same values for them, with the same messages; each class keeps its own keys."""

import pytest

from drivers.base import OptionError, validate_options
from drivers.horiba import ICL_MONO_OPTIONS, HoribaMonochromator, HoribaSpectrometer

SPECTROMETER_KEYS = {"mono_index", "ccd_index", "icl_settle_s", "timer_resolution", "exposure_s", "min_exposure_s",
                     "max_exposure_s", "gain_token", "speed_token", "e_per_count", "read_noise_e", "grating",
                     "center_nm", "slit_mm", "x_bin", "y_origin", "y_size", "full_vertical_binning",
                     "range_nm_at_1200", "home_on_connect", "poll_s", "command_timeout_s"}
MONOCHROMATOR_KEYS = {"rld_nm_per_mm_at_1200", "min_slit_um", "max_slit_um", "mono_index", "icl_settle_s", "grating",
                      "range_nm_at_1200", "home_on_connect", "poll_s", "command_timeout_s"}

#: per shared option: values both must accept, values both must refuse
CASES = {
    "mono_index": ([0, 3, 7], [-1, 8, 1.5, "1"]),
    "icl_settle_s": ([0.0, 5, 60.0], [-0.1, 60.5, "x"]),
    "grating": ([None, 0, 2], [-1, 3, "a"]),
    "range_nm_at_1200": ([100.0, 1500, 10000.0], [99.0, 10001.0]),
    "home_on_connect": ([True, False], ["yes", 2]),
    "poll_s": ([0.001, 0.05, 5.0], [0.0, 5.1]),
    "command_timeout_s": ([1.0, 30, 600.0], [0.5, 601.0]),
}


def test_each_class_keeps_its_keys_and_the_shared_ones():
    assert set(HoribaSpectrometer.OPTIONS) == SPECTROMETER_KEYS
    assert set(HoribaMonochromator.OPTIONS) == MONOCHROMATOR_KEYS
    assert set(ICL_MONO_OPTIONS) == set(CASES) == SPECTROMETER_KEYS & MONOCHROMATOR_KEYS
    assert HoribaSpectrometer.OPTIONS["mono_index"].default == 0      # the spectrograph is the ICL's device 0
    assert HoribaMonochromator.OPTIONS["mono_index"].default == 1     # the TCSPC monochromator its device 1
    for k in set(CASES) - {"mono_index"}:
        assert HoribaSpectrometer.OPTIONS[k] is HoribaMonochromator.OPTIONS[k] is ICL_MONO_OPTIONS[k]


@pytest.mark.parametrize("key", sorted(CASES))
def test_both_classes_accept_and_refuse_the_same_values(key):
    good, bad = CASES[key]
    for v in good:
        a, ea = validate_options(HoribaSpectrometer.OPTIONS, {key: v})
        b, eb = validate_options(HoribaMonochromator.OPTIONS, {key: v})
        assert not ea and not eb, (key, v, ea, eb)
        assert a[key] == b[key]
    for v in bad:
        _, ea = validate_options(HoribaSpectrometer.OPTIONS, {key: v})
        _, eb = validate_options(HoribaMonochromator.OPTIONS, {key: v})
        assert len(ea) == len(eb) == 1 and str(ea[0]) == str(eb[0]), (key, v, ea, eb)
        assert isinstance(ea[0], OptionError)


def test_an_unknown_option_is_refused_by_both():
    for cls in (HoribaSpectrometer, HoribaMonochromator):
        _, errs = validate_options(cls.OPTIONS, {"icl_setle_s": 1.0})
        assert errs and "icl_setle_s" in str(errs[0])
    # and an option of the one class is not one of the other
    assert validate_options(HoribaMonochromator.OPTIONS, {"ccd_index": 0})[1]
    assert validate_options(HoribaSpectrometer.OPTIONS, {"max_slit_um": 100.0})[1]


def test_the_ccd_calibration_comes_from_the_configuration():
    """No SDK reports e⁻/count: the test-sheet values are lab.toml options, checked like the others."""
    assert HoribaSpectrometer().ccd_calibration() == {}
    s = HoribaSpectrometer(e_per_count=4.0, read_noise_e=3.0)
    assert s.ccd_calibration() == {"e_per_count": 4.0, "read_noise_e": 3.0}
    for bad in ({"e_per_count": 0.0}, {"e_per_count": 101.0}, {"read_noise_e": -1.0}):
        with pytest.raises(OptionError, match=next(iter(bad))):
            HoribaSpectrometer(**bad)
