"""Protocol tests (exact bytes) for drivers.conex and drivers.pm100d."""

from __future__ import annotations

import pytest
from pymeasure.test import expected_protocol

from acq.clock import SimClock
from drivers._link import LimitError, ReplyError
from drivers.base import DriverError, OptionError
from drivers.conex import ConexAGP, ConexNDAttenuator, nominal_calibration
from drivers.pm100d import PM100D, PM100DPowerMeter

NOERR = ("1TE?", "1TE@")


def test_conex_queries():
    pairs = [("1ID?", "1IDCONEX-AGP-PR100P_SIM"), ("1VE?", "1VE CONEX-AGP 1.0.4"), ("1TP?", "1TP12.50000"),
             ("1PA?", "1PA12.50000"), ("1TS?", "1TS000032"), ("1SL?", "1SL0"), ("1SR?", "1SR350")]
    with expected_protocol(ConexAGP, pairs) as st:
        assert st.identity == "CONEX-AGP-PR100P_SIM"
        assert st.version == "CONEX-AGP 1.0.4"
        assert st.position == 12.5
        assert st.target == 12.5
        assert st.state == "32"
        assert (st.left_limit, st.right_limit) == (0.0, 350.0)


def test_conex_setters_check_te():
    pairs = [("1PA45.00000", None), NOERR, ("1OR", None), NOERR, ("1ST", None), NOERR,
             ("1PA90.00000", None), ("1TE?", "1TEH")]
    with expected_protocol(ConexAGP, pairs) as st:
        st.target = 45
        st.home()
        st.stop()
        with pytest.raises(ReplyError, match="NOT REFERENCED") as e:
            st.target = 90
        assert e.value.code == "H"
    with expected_protocol(ConexAGP, []) as st, pytest.raises(ValueError):
        st.target = 400


def test_conex_state_errors_and_garbage():
    with expected_protocol(ConexAGP, [("1TS?", "1TS00200A"), ("1TP?", "junk")]) as st:
        with pytest.raises(ReplyError, match="positioner error"):
            _ = st.state
        with pytest.raises(ValueError):
            _ = st.position


def test_attenuator_move_and_transmission():
    pairs = [("1PA135.00000", None), NOERR, ("1TS?", "1TS000028"), ("1TS?", "1TS000033"), ("1TP?", "1TP135.00000"),
             ("1TP?", "1TP135.00000")]
    clock = SimClock()
    with expected_protocol(ConexAGP, pairs) as st:
        a = ConexNDAttenuator.attach(st, clock=clock, poll_s=0.5)
        a.move_to(135)
        assert a.transmission == pytest.approx(10 ** -(0.04 + 3.96 * 0.5), rel=1e-3)
    assert clock.monotonic() == pytest.approx(0.5)


def test_attenuator_set_transmission_uses_calibration():
    cal = [[0, 1.0], [100, 0.1], [200, 0.001]]
    pairs = [("1PA150.00000", None), NOERR, ("1TS?", "1TS000033"), ("1TP?", "1TP150.00000"),
             ("1PA200.00000", None), NOERR, ("1TS?", "1TS000033"), ("1TP?", "1TP200.00000")]
    with expected_protocol(ConexAGP, pairs) as st:
        a = ConexNDAttenuator.attach(st, clock=SimClock(), calibration=cal)
        a.set_transmission(0.01)
        a.set_max_attenuation()


def test_attenuator_validation_before_sending():
    with expected_protocol(ConexAGP, []) as st:
        a = ConexNDAttenuator.attach(st, clock=SimClock())
        with pytest.raises(LimitError, match="0 to 270 deg"):
            a.move_to(300)
        with pytest.raises(LimitError, match="calibration"):
            a.set_transmission(1e-6)
        with pytest.raises(LimitError, match="full_power_W"):
            a.set_fluence(1.0)
        with pytest.raises(LimitError, match="decrease"):
            a.set_calibration([[0, 0.1], [10, 0.5]])
    with pytest.raises(OptionError):
        ConexNDAttenuator(max_deg=720)


def test_attenuator_fluence():
    a = ConexNDAttenuator(full_power_W=0.05, rep_rate_Hz=76e6, spot_area_cm2=7.853981633974483e-05)
    assert a.fluence_for(1.0) == pytest.approx(0.05 / 76e6 / 7.853981633974483e-05 * 1e6)
    assert len(nominal_calibration()) == 28


def test_attenuator_move_timeout_and_bad_state():
    pairs = [("1PA10.00000", None), NOERR] + [("1TS?", "1TS000028")] * 4
    with expected_protocol(ConexAGP, pairs) as st:
        a = ConexNDAttenuator.attach(st, clock=SimClock(), move_timeout_s=1.0, poll_s=0.5)
        with pytest.raises(DriverError, match="did not finish"):
            a.move_to(10)
    with expected_protocol(ConexAGP, [("1PA10.00000", None), NOERR, ("1TS?", "1TS00003C")]) as st:
        a = ConexNDAttenuator.attach(st, clock=SimClock())
        with pytest.raises(DriverError, match="DISABLE"):
            a.move_to(10)


def test_attenuator_connect_homes_if_not_referenced():
    pairs = [("1ID?", "1IDX"), ("1TS?", "1TS00000A"), ("1OR", None), NOERR, ("1TS?", "1TS00001E"),
             ("1TS?", "1TS000032")]
    with expected_protocol(ConexAGP, pairs) as st:
        ConexNDAttenuator.attach(st, clock=SimClock()).connect()


# -- PM100D -----------------------------------------------------------------------------------

INIT = [("SYST:SENSOR:IDN?", "S120C,12345678,15-Jan-2026,1,18,289")]
OKERR = ("SYST:ERR?", '0,"No error"')


def pm(pairs):
    return expected_protocol(PM100D, INIT + pairs)


def test_pm100d_power_and_wavelength():
    pairs = [("MEAS:POW?", "4.557467E-02"), ("SENSE:CORR:WAV?", "4.050000E+02"),
             ("SENS:CORR:WAV? MIN", "4.000000E+02"), ("SENS:CORR:WAV? MAX", "1.100000E+03"),
             ("SENSE:CORR:WAV 532", None), OKERR]
    with pm(pairs) as p:
        assert p.sensor_name == "S120C" and p.wavelength_settable
        assert p.power == pytest.approx(0.04557467)
        assert p.wavelength == 405.0
        p.wavelength = 532


def test_pm100d_wavelength_fails_loudly_instead_of_truncating():
    pairs = [("SENS:CORR:WAV? MIN", "4.000000E+02"), ("SENS:CORR:WAV? MAX", "1.100000E+03")]
    with pm(pairs) as p:
        with pytest.raises(LimitError, match="400 to 1100 nm"):
            p.wavelength = 2000
        with pytest.raises(LimitError):
            p.wavelength = 350


def test_pm100d_averaging_zero_errors():
    pairs = [("SENS:AVER:COUN?", "10"), ("SENS:AVER:COUN 100", None), OKERR,
             ("SENS:CORR:COLL:ZERO:INIT", None), OKERR, ("SENS:CORR:COLL:ZERO:MAGN?", "5.000000E-08"),
             ("SENS:AVER:COUN 20", None), ("SYST:ERR?", '-222,"Data out of range"'), OKERR]
    with pm(pairs) as p:
        assert p.averaging == 10
        p.averaging = 100
        p.zero()
        assert p.zero_magnitude == pytest.approx(5e-8)
        with pytest.raises(ReplyError, match="-222"):
            p.averaging = 20
    with pm([]) as p, pytest.raises(ValueError):
        p.averaging = 0


def test_powermeter_backend():
    pairs = [("SENS:CORR:WAV? MIN", "4.000000E+02"), ("SENS:CORR:WAV? MAX", "1.100000E+03"),
             ("SENSE:CORR:WAV 405", None), OKERR, ("SENS:AVER:COUN 10", None), OKERR,
             ("MEAS:POW?", "1.000000E-03"), ("MEAS:POW?", "9.900000E+37"), ("MEAS:POW?", "?#x")]
    with pm(pairs) as p:
        b = PM100DPowerMeter.attach(p)
        b.connect()
        assert b.readback() == {"power": 1e-3}
        with pytest.raises(DriverError, match="over range"):
            _ = b.power
        with pytest.raises(DriverError, match="garbage"):
            _ = b.power
    with pytest.raises(OptionError, match="1100 nm"):
        PM100DPowerMeter(wavelength_nm=1500)


def test_attenuator_readback_and_connect_when_referenced():
    pairs = [("1ID?", "1IDX"), ("1TS?", "1TS000032"), ("1TS?", "1TS000032"), ("1TP?", "1TP0.00000")]
    with expected_protocol(ConexAGP, pairs) as st:
        a = ConexNDAttenuator.attach(st, clock=SimClock())
        a.connect()
        assert a.state_code() == "32"
        rb = a.readback()
        assert rb["angle"] == 0.0 and rb["transmission"] == pytest.approx(10 ** -0.04)


def test_powermeter_backend_wavelength_and_zero():
    pairs = [("SENSE:CORR:WAV?", "4.050000E+02"), ("SENS:CORR:WAV? MIN", "4.000000E+02"),
             ("SENS:CORR:WAV? MAX", "1.100000E+03"), ("SENSE:CORR:WAV 633", None), OKERR,
             ("SENS:CORR:COLL:ZERO:INIT", None), OKERR]
    with pm(pairs) as p:
        b = PM100DPowerMeter.attach(p)
        assert b.wavelength == 405.0
        b.set_wavelength(633)
        with pytest.raises(LimitError, match="S120C"):
            b.set_wavelength(1200)
        b.zero()
        assert b.make_safe() is None
