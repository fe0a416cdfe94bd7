"""Protocol tests (exact bytes) for drivers.cornerstone (Oriel Cornerstone 260, MCS260 manual Appendix I),
and the driver against the simulated controller (simulators.servers.cornerstone) over loopback."""

from __future__ import annotations

import socket

import pytest
from pymeasure.test import expected_protocol

from acq.clock import SimClock
from drivers._link import LimitError, ReplyError
from drivers.base import DriverError, OptionError
from drivers.cornerstone import Cornerstone260, CornerstoneMonochromator

from .simlab import sim_lab


def q(cmd: str, value: str) -> list:
    """A query under RS-232: the echo, then the response (MCS260 §16.3)."""
    return [(cmd, cmd), (None, value)]


def c(cmd: str) -> list:
    """A command in standard mode: its echo, then the driver reads the status byte (``00``: no error)."""
    return [(cmd, cmd)] + q("STB?", "00")


def test_queries():
    pairs = (q("INFO?", "CORNERSTONE 260 VER 2.30") + q("WAVE?", "536.800") + q("GRAT?", "1,1200,VIS1200")
             + q("SHUTTER?", "C") + q("SLIT1MICRONS?", "600") + q("SLIT2MICRONS?", "600") + q("UNITS?", "NM")
             + q("STB?", "00") + q("ERROR?", "0") + q("GRAT2LINES?", "600"))
    with expected_protocol(Cornerstone260, pairs) as cs:
        assert cs.info == "CORNERSTONE 260 VER 2.30"
        assert cs.wavelength == 536.8
        assert cs.grating == (1, 1200.0, "VIS1200")
        assert cs.shutter == "C"
        assert (cs.slit1_um, cs.slit2_um) == (600, 600)
        assert cs.units == "NM"
        assert cs.status_byte == 0
        assert cs.error_code == 0
        assert cs.grating_lines(2) == 600.0


def test_commands_read_the_status_byte():
    pairs = (c("UNITS NM") + c("GOWAVE 523.300") + c("GRAT 2") + c("SHUTTER O") + c("SHUTTER C")
             + c("SLIT1MICRONS 625") + c("SLIT2MICRONS 625") + [("HANDSHAKE 0", "HANDSHAKE 0")])
    with expected_protocol(Cornerstone260, pairs) as cs:
        cs.units = "NM"
        cs.wavelength = 523.3
        cs.grating = 2
        cs.shutter = "O"
        cs.shutter = "C"
        cs.slit1_um = 625
        cs.slit2_um = 625
        cs.standard_mode()


def test_errors_from_status_byte_and_error_code():
    pairs = [("GOWAVE 2400.000", "GOWAVE 2400.000")] + q("STB?", "20") + q("ERROR?", "3")
    with expected_protocol(Cornerstone260, pairs) as cs, pytest.raises(ReplyError, match="not allowed") as e:
        cs.wavelength = 2400
    assert e.value.code == "3"
    # values outside the manual's ranges are refused before anything is sent
    with expected_protocol(Cornerstone260, []) as cs:
        for attr, bad in (("wavelength", -1), ("grating", 4), ("shutter", "X"), ("slit1_um", 5000), ("units", "A")):
            with pytest.raises(ValueError):
                setattr(cs, attr, bad)


def test_wrong_echo_is_a_connection_error():
    with expected_protocol(Cornerstone260, [("WAVE?", "GOWAVE 1")]) as cs, pytest.raises(ConnectionError):
        _ = cs.wavelength


def test_role_move_bandpass_window_and_safe_state():
    pairs = (q("INFO?", "CORNERSTONE 260 VER 2.30") + c("UNITS NM") + q("GRAT?", "1,1200,VIS1200")
             + c("GOWAVE 536.800") + q("WAVE?", "536.800")
             + c("SLIT1MICRONS 625") + c("SLIT2MICRONS 625") + q("SLIT1MICRONS?", "625")
             + q("WAVE?", "536.800") + q("SLIT1MICRONS?", "625")
             + c("SHUTTER C") + q("SHUTTER?", "C"))
    with expected_protocol(Cornerstone260, pairs) as cs:
        m = CornerstoneMonochromator.attach(cs, clock=SimClock())
        m.connect()
        assert m.grating_lpmm == 1200.0
        m.move_to(536.8)
        assert m.set_bandpass(2.0) == pytest.approx(2.0)         # 625 µm × 3.2 nm/mm
        assert m.window_nm() == pytest.approx((535.8, 537.8))
        m.make_safe()
    with expected_protocol(Cornerstone260, []) as cs:
        m = CornerstoneMonochromator.attach(cs, clock=SimClock())
        with pytest.raises(LimitError):
            m.move_to(1500.0)                                     # beyond max_nm, nothing sent
        with pytest.raises(OptionError, match="slits allow"):
            m.slit_for(100.0)                                     # 31 mm of slit


def test_move_not_reached_is_an_error():
    pairs = c("GOWAVE 500.000") + q("WAVE?", "498.000")
    with expected_protocol(Cornerstone260, pairs) as cs:
        m = CornerstoneMonochromator.attach(cs, clock=SimClock())
        with pytest.raises(DriverError, match="498"):
            m.move_to(500.0)


def test_driver_against_the_simulated_controller():
    clock = SimClock()
    with sim_lab("tcspc_mono", clock=clock, tcspc_mono="cornerstone") as (world, servers):
        m = CornerstoneMonochromator(servers["tcspc_mono"].resource, clock=clock, timeout_s=5.0)
        m.connect()
        try:
            assert "CORNERSTONE" in m.identity
            assert m.wavelength_nm == 0.0 and world.tcspc_passband() is None       # zero order: all light
            m.move_to(523.3)
            m.set_bandpass(2.0)
            pb = world.tcspc_passband()
            assert pb.center_nm == pytest.approx(523.3)
            assert pb.fwhm_nm == pytest.approx(2.0, rel=0.15)     # true RLD (grating equation) vs nominal 3.2 nm/mm
            assert clock.monotonic() > 5.0                        # the drive took lab time (≈ 100 nm/s)
            m.make_safe()
            assert not world.tcspc_passband().open
            with pytest.raises(LimitError):
                m.move_to(1500.0)
        finally:
            m.close()


def exchange(port: int, statements: list[bytes], expected: bytes) -> None:
    """Send ``statements``; the simulated controller must answer exactly ``expected`` (then nothing)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        for st in statements:
            s.sendall(st)
        out = b""
        while len(out) < len(expected):
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
        s.settimeout(0.05)
        try:
            out += s.recv(4096)
        except TimeoutError:
            pass
    assert out == expected


def test_simulated_controller_bytes():
    """Echo + CR LF, standard-mode errors in STB?/ERROR? (cleared on reading), handshake mode."""
    with sim_lab("tcspc_mono", tcspc_mono="cornerstone") as (_world, servers):
        port = servers["tcspc_mono"].port
        exchange(port, [b"wave?\n"], b"wave?\n0.000\r\n")
        exchange(port, [b"GOWAVE 500\r\n", b"WAVE?\r\n"], b"GOWAVE 500\r\nWAVE?\r\n500.000\r\n")
        exchange(port, [b"BOGUS\n", b"STB?\n", b"ERROR?\n", b"STB?\n"],
                 b"BOGUS\nSTB?\n20\r\nERROR?\n1\r\nSTB?\n00\r\n")
        exchange(port, [b"SLIT1MICRONS 9000\n", b"ERROR?\n"], b"SLIT1MICRONS 9000\nERROR?\n2\r\n")
        exchange(port, [b"FILTER 2\n", b"ERROR?\n"], b"FILTER 2\nERROR?\n6\r\n")
        exchange(port, [b"GRAT?\n", b"SHUTTER C\n", b"SHUTTER?\n"],
                 b"GRAT?\n1,1200,VIS1200\r\nSHUTTER C\nSHUTTER?\nC\r\n")
        exchange(port, [b"HANDSHAKE 1\n", b"WAVE?\n", b"GOWAVE 99999\n", b"HANDSHAKE 0\n"],
                 b"HANDSHAKE 1\n00\r\nWAVE?\n500.000\r\n00\r\nGOWAVE 99999\n20\r\nHANDSHAKE 0\n")
