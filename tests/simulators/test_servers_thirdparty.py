"""pymeasure's own, unmodified drivers talk to the protocol servers over pyvisa-py loopback TCP and
read values the physics produced."""

from __future__ import annotations

import warnings

import pytest
from pymeasure.instruments.lakeshore import LakeShore3xx
from pymeasure.instruments.spellmanhv import SpellmanXRV
from pymeasure.instruments.spellmanhv.spellmanXRV import ErrorCode, StatusCode
from pymeasure.instruments.thorlabs import ThorlabsPM100USB

from acq.clock import SimClock
from simulators.servers import DEFAULT_PORTS, start_servers
from simulators.world import World
from tests.drivers.simlab import open_laser_shutter, sim_lab

pytestmark = pytest.mark.timeout(60)


def test_default_ports_and_loopback_only():
    assert DEFAULT_PORTS["cryostat"] == 7777 and DEFAULT_PORTS["xray"] == 50001
    w = World(SimClock(), tick_s=0)
    with pytest.raises(ValueError, match="loopback"):
        start_servers(w, host="0.0.0.0", ports={r: 0 for r in DEFAULT_PORTS})
    with sim_lab("cryostat") as (_, servers):
        assert servers["cryostat"].resource.startswith("TCPIP::127.0.0.1::")
        assert set(servers) == {"cryostat"}


def test_unmodified_lakeshore3xx_sees_sample_lag_behind_sensor():
    clock = SimClock()
    with sim_lab("cryostat", clock=clock) as (world, servers):
        ls = LakeShore3xx(servers["cryostat"].resource, visa_library="@py", timeout=1000)
        try:
            assert ls.id.startswith("LSCI,MODEL336")
            T0 = ls.input_A.kelvin
            assert 4.5 < T0 < 5.5                          # closed-cycle He base
            ls.output_1.range = "high"
            ls.output_1.setpoint = 80.0
            assert ls.output_1.setpoint == pytest.approx(80.0)   # a query: the setter has landed
            clock.sleep(60)
            stage, sample = ls.input_A.kelvin, ls.input_B.kelvin
            assert stage > T0 + 20                         # heating towards 80 K
            assert sample < stage - 0.5                    # the sample lags the sensor
            assert ls.output_1.output > 0
            clock.sleep(3600)
            assert ls.input_A.kelvin == pytest.approx(80.0, abs=0.05)
            assert ls.input_B.kelvin == pytest.approx(80.0, abs=0.05)
        finally:
            ls.adapter.close()


def test_unmodified_spellman_xrv_ramps_and_reports():
    clock = SimClock()
    with sim_lab("xray", clock=clock) as (world, servers):
        sp = SpellmanXRV(servers["xray"].resource, visa_library="@py", query_delay=0)
        try:
            assert sp.scaling == {"voltage": 50000, "current": 0.001, "polarity": 0}
            assert sp.status & StatusCode.INTERLOCK_1_CLOSED
            sp.voltage_setpoint = 20000
            sp.current_setpoint = 0.0005
            sp.output_enabled = True
            clock.sleep(0.5)
            mon = sp.analog_monitor
            assert 0 < mon["voltage"] < 20000              # ramping at 10 kV/s
            clock.sleep(3)
            assert sp.voltage == pytest.approx(20000, abs=20)
            assert sp.analog_monitor["current"] == pytest.approx(0.0005, abs=2e-6)
            assert sp.output_enabled is True
            sp.output_enabled = False
            assert sp.errors == ErrorCode.NO_ERROR
        finally:
            sp.adapter.close()


def test_unmodified_spellman_with_serial_checksums_over_the_socket():
    """The checksum path: the server checks and answers checksummed frames; a bad checksum is silent."""
    import pyvisa

    with sim_lab("xray") as (_, servers):
        rm = pyvisa.ResourceManager("@py")
        r = rm.open_resource(servers["xray"].resource, read_termination="\x03", write_termination="\x03",
                             timeout=500)
        try:
            r.write("\x0228,j")
            assert r.read() == "\x0228,50,1,0," + SpellmanXRV.checksum("28,50,1,0,")
            r.write("\x0228,k")                            # wrong checksum: no reply at all
            with pytest.raises(pyvisa.errors.VisaIOError):
                r.read()
            r.write("\x0299,")                             # invalid command: error code 2
            assert r.read() == "\x0299,2,"
        finally:
            r.close()


def test_unmodified_thorlabs_pm100usb_reads_laser_power():
    with sim_lab("powermeter", "attenuator", "laser_shutter") as (world, servers):
        open_laser_shutter(servers)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            pm = ThorlabsPM100USB(servers["powermeter"].resource, visa_library="@py", timeout=1000,
                                  read_termination="\n")
        try:
            assert pm.sensor_name == "S120C" and pm.is_power_sensor
            assert pm.wavelength == 405.0
            expected = world.laser.power_W * world.laser.transmission(0.0)
            assert pm.power == pytest.approx(expected, rel=0.03)
            world.laser.angle = 135.0
            assert pm.power == pytest.approx(world.laser.power_W * world.laser.transmission(135.0), rel=0.03)
            pm.wavelength = 2000                           # pymeasure truncates silently ...
            assert pm.wavelength == 1100.0                 # ... (our PM100D driver raises instead)
        finally:
            pm.adapter.close()


def test_lakeshore_ignores_unknown_and_flags_esr():
    import pyvisa

    with sim_lab("cryostat") as (_, servers):
        rm = pyvisa.ResourceManager("@py")
        r = rm.open_resource(servers["cryostat"].resource, read_termination="\r\n", timeout=500)
        try:
            r.write("FOO? 1")
            with pytest.raises(pyvisa.errors.VisaIOError):
                r.read()
            assert r.query("*ESR?") == "36"
            assert r.query("KRDG? 0").count(",") == 3
        finally:
            r.close()
