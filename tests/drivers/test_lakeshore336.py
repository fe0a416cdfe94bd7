"""Protocol tests (exact bytes) for drivers.lakeshore336, plus the backend against the simulator."""

from __future__ import annotations

import pytest
from pymeasure.test import expected_protocol

from acq.clock import SimClock
from drivers._link import LimitError, ReplyError
from drivers.base import DriverError, OptionError
from drivers.lakeshore336 import (
    HeaterStatus,
    LakeShore336,
    LakeShore336Controller,
    OutputMode,
    ReadingStatus,
)

OK = ("*ESR?", "0")


def test_reading_status():
    with expected_protocol(LakeShore336, [("RDGST? A", "000"), ("RDGST? B", "033")]) as ls:
        assert ls.input_A.reading_status == ReadingStatus.OK
        assert ls.input_B.reading_status == ReadingStatus.INVALID_READING | ReadingStatus.TEMP_OVERRANGE


def test_kelvin():
    with expected_protocol(LakeShore336, [("KRDG? B", "+020.015")]) as ls:
        assert ls.input_B.kelvin == pytest.approx(20.015)


def test_setpoint_get_set():
    with expected_protocol(LakeShore336, [("SETP? 1", "+020.000"), ("SETP 1,25.500", None), OK]) as ls:
        assert ls.output_1.setpoint == 20.0
        ls.output_1.setpoint = 25.5


def test_setpoint_out_of_range_sends_nothing():
    with expected_protocol(LakeShore336, []) as ls:
        with pytest.raises(ValueError):
            ls.output_1.setpoint = 500


def test_setter_error_flagged_by_esr():
    with expected_protocol(LakeShore336, [("SETP 1,25.000", None), ("*ESR?", "16")]) as ls:
        with pytest.raises(ReplyError, match="execution error"):
            ls.output_1.setpoint = 25


def test_range_get_set():
    with expected_protocol(LakeShore336, [("RANGE? 1", "2"), ("RANGE 1,3", None), OK]) as ls:
        assert ls.output_1.range == "medium"
        ls.output_1.range = "high"
    with expected_protocol(LakeShore336, []) as ls, pytest.raises(ValueError):
        ls.output_1.range = "max"


def test_mout_get_set():
    with expected_protocol(LakeShore336, [("MOUT? 1", "+012.50"), ("MOUT 1,40.00", None), OK]) as ls:
        assert ls.output_1.mout == 12.5
        ls.output_1.mout = 40


def test_ramp_get_set():
    with expected_protocol(LakeShore336, [("RAMP? 1", "1,5.0"), ("RAMP 1,1,2.5", None), OK,
                                          ("RAMP 1,0,0.0", None), OK]) as ls:
        assert ls.output_1.ramp == (True, 5.0)
        ls.output_1.ramp = (True, 2.5)
        ls.output_1.ramp = (False, 0)
    with expected_protocol(LakeShore336, []) as ls:
        with pytest.raises(ValueError):
            ls.output_1.ramp = (True, 0.05)
        with pytest.raises(ValueError):
            ls.output_1.ramp = (True, 101)


def test_ramping():
    with expected_protocol(LakeShore336, [("RAMPST? 1", "1"), ("RAMPST? 1", "0")]) as ls:
        assert ls.output_1.ramping is True
        assert ls.output_1.ramping is False


def test_pid_get_set():
    with expected_protocol(LakeShore336, [("PID? 1", "+050.0,+0020.0,+000"), ("PID 1,30.0,10.0,5", None), OK]) as ls:
        assert ls.output_1.pid == (50.0, 20.0, 0.0)
        ls.output_1.pid = (30, 10, 5)
    with expected_protocol(LakeShore336, []) as ls, pytest.raises(ValueError):
        ls.output_1.pid = (0.01, 10, 5)


def test_outmode_get_set():
    with expected_protocol(LakeShore336, [("OUTMODE? 1", "1,1,0"), ("OUTMODE 1,3,2,0", None), OK]) as ls:
        assert ls.output_1.outmode == (OutputMode.CLOSED_LOOP, 1, 0)
        ls.output_1.outmode = (3, 2, 0)
    with expected_protocol(LakeShore336, []) as ls, pytest.raises(ValueError):
        ls.output_1.outmode = (7, 1, 0)


def test_heater_output_and_status():
    with expected_protocol(LakeShore336, [("HTR? 1", "+013.70"), ("HTRST? 1", "1")]) as ls:
        assert ls.output_1.output == 13.7
        assert ls.output_1.heater_status == HeaterStatus.OPEN_LOAD


def test_event_status():
    with expected_protocol(LakeShore336, [("*ESR?", "32")]) as ls:
        assert ls.event_status == 32


# -- backend (role) -----------------------------------------------------------------------------

def test_controller_connect_and_identity():
    with expected_protocol(LakeShore336, [("*IDN?", "LSCI,MODEL336,123/456,2.9")]) as ls:
        c = LakeShore336Controller.attach(ls)
        c.connect()
        assert c.idn.startswith("LSCI")
    with expected_protocol(LakeShore336, [("*IDN?", "ACME,THING")]) as ls:
        with pytest.raises(DriverError, match="does not identify"):
            LakeShore336Controller.attach(ls).connect()


def test_controller_temperature_and_invalid_reading():
    with expected_protocol(LakeShore336, [("KRDG? B", "+020.010"), ("KRDG? A", "+019.990"),
                                          ("KRDG? B", "+000.000"), ("RDGST? B", "001")]) as ls:
        c = LakeShore336Controller.attach(ls)
        assert c.temperature == pytest.approx(20.01)
        assert c.sensor_temperature == pytest.approx(19.99)
        with pytest.raises(DriverError, match="input B reading invalid"):
            _ = c.temperature


def test_controller_temperature_and_setpoint_in_one_chained_query():
    """instruments.md §1.1 (346 manual): commands chained with ';' in one message, the replies joined by ';'."""
    with expected_protocol(LakeShore336, [("KRDG? B;SETP? 1", "+020.010;+020.000"),
                                          ("KRDG? B;SETP? 1", "+000.000;+020.000"), ("RDGST? B", "001"),
                                          ("KRDG? B;SETP? 1", "+020.010")]) as ls:
        c = LakeShore336Controller.attach(ls)
        assert c.temperature_and_setpoint() == (pytest.approx(20.01), 20.0)
        with pytest.raises(DriverError, match="input B reading invalid"):
            c.temperature_and_setpoint()
        with pytest.raises(DriverError, match="not two values"):   # one reply lost: garbage, not a reading
            c.temperature_and_setpoint()


def test_controller_garbage_reading():
    with expected_protocol(LakeShore336, [("KRDG? B", "#?x!")]) as ls:
        with pytest.raises(DriverError, match="garbage"):
            _ = LakeShore336Controller.attach(ls).temperature


def test_controller_set_temperature_bytes():
    pairs = [("KRDG? A", "+010.123"), ("RAMP 1,0,0.0", None), OK, ("SETP 1,10.123", None), OK,
             ("RAMP 1,1,5.0", None), OK, ("RANGE 1,2", None), OK, ("SETP 1,20.000", None), OK,
             ("RAMP 1,0,0.0", None), OK, ("RANGE 1,3", None), OK, ("SETP 1,80.000", None), OK,
             ("RAMP 1,0,0.0", None), OK, ("RANGE 1,1", None), OK, ("SETP 1,6.000", None), OK]
    with expected_protocol(LakeShore336, pairs) as ls:
        c = LakeShore336Controller.attach(ls)
        c.set_temperature(20, ramp_K_per_min=5)
        c.set_temperature(80)
        c.set_temperature(6)


def test_controller_validates_before_sending():
    with expected_protocol(LakeShore336, []) as ls:
        c = LakeShore336Controller.attach(ls)
        with pytest.raises(LimitError, match="4 to 325 K"):
            c.set_temperature(400)
        with pytest.raises(LimitError, match="0.1 to 100 K/min"):
            c.set_temperature(20, ramp_K_per_min=500)
        with pytest.raises(LimitError):
            c.set_pid(0, 1, 1)


def test_controller_options_checked():
    with pytest.raises(OptionError, match="400 K"):
        LakeShore336Controller("TCPIP::127.0.0.1::1::SOCKET", max_K=500)
    with pytest.raises(OptionError, match="not a known option"):
        LakeShore336Controller("TCPIP::127.0.0.1::1::SOCKET", maxK=5)
    assert LakeShore336Controller().opts["control_input"] == "A"


def test_controller_set_pid_make_safe_readback():
    pairs = [("PID 1,40.0,10.0,0", None), OK, ("RANGE 1,0", None), OK,
             ("KRDG? B", "+020.000"), ("KRDG? A", "+019.900"), ("SETP? 1", "+020.000"), ("HTR? 1", "+013.70"),
             ("RAMPST? 1", "0"), ("HTRST? 1", "0")]
    with expected_protocol(LakeShore336, pairs) as ls:
        c = LakeShore336Controller.attach(ls)
        c.set_pid(40, 10, 0)
        c.make_safe()
        assert c.readback() == {"T_sample": 20.0, "T_sensor": 19.9, "setpoint": 20.0, "heater": 13.7}
        assert c.ramping is False
        assert c.heater_status == HeaterStatus.NO_ERROR


def test_controller_wait_stable_on_the_clock():
    pairs = [("KRDG? B", v) for v in ("+019.500", "+019.950", "+020.000", "+020.020")]
    clock = SimClock()
    with expected_protocol(LakeShore336, pairs) as ls:
        c = LakeShore336Controller.attach(ls, clock=clock)
        assert c.wait_stable(20.0, band_K=0.1, hold_s=2, poll_s=1) == pytest.approx(3.0)
    pairs = [("KRDG? B", "+025.000")] * 3
    with expected_protocol(LakeShore336, pairs) as ls:
        c = LakeShore336Controller.attach(ls, clock=SimClock())
        with pytest.raises(TimeoutError, match="last reading 25.000 K"):
            c.wait_stable(20.0, band_K=0.1, hold_s=2, poll_s=1, timeout_s=2)


def test_message_pacing():
    import time

    with expected_protocol(LakeShore336, [("KRDG? A", "+005.000"), ("KRDG? A", "+005.000")]) as ls:
        ls.min_interval_s = 0.05
        t0 = time.monotonic()
        _ = ls.input_A.kelvin
        _ = ls.input_A.kelvin
        assert time.monotonic() - t0 >= 0.05
