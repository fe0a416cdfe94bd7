"""Protocol tests (exact bytes, serial checksums) for drivers.spellman and drivers.shutter."""

from __future__ import annotations

import pytest
from pymeasure.instruments.spellmanhv.spellmanXRV import ErrorCode, SpellmanXRV, StatusCode
from pymeasure.test import expected_protocol

from acq.clock import SimClock
from drivers._link import LimitError, ReplyError
from drivers.base import DriverError, OptionError, SafetyError
from drivers.shutter import SC10, SC10Mode
from drivers.spellman import SpellmanXRaySource, SpellmanXRVLimited


def f(body: str) -> str:
    """A serial frame without its ETX terminator: STX body, checksum."""
    b = body + ","
    return "\x02" + b + SpellmanXRV.checksum(b)


INIT = [(f("28"), f("28,50,1,0"))]
def ack(cmd: str, arg: str) -> tuple[str, str]:
    return (f(f"{cmd},{arg}"), f(f"{cmd},$"))


def status(hv: bool = False, interlock: bool = True, fault: bool = False) -> str:
    bits = [0] * 17
    bits[0] = int(hv)
    bits[1] = bits[2] = int(interlock)
    bits[4] = int(fault)
    bits[15] = bits[16] = 1
    return f("22," + ",".join(map(str, bits)))


def faults(*names: str) -> str:
    bits = [0] * 27
    for n in names:
        bits[ErrorCode[n].bit_length() - 1] = 1
    return f("68," + ",".join(map(str, bits)))


def test_checksum_vectors():
    assert f("22") == "\x0222,p"
    assert f("28") == "\x0228,j"
    assert f("10,4095") == "\x0210,4095,u"


def test_scaling_and_setpoints():
    with expected_protocol(SpellmanXRVLimited, query_delay=0, comm_pairs=INIT + [ack("10", "1638"), ack("11", "2048"),
                                                        (f("14"), f("14,1638"))]) as sp:
        sp.voltage_setpoint = 20000
        sp.current_setpoint = 0.0005
        assert sp.voltage_setpoint == 20000


def test_error_reply_is_reply_error():
    with expected_protocol(SpellmanXRVLimited, query_delay=0, comm_pairs=INIT + [(f("98,1"), f("98,E#2"))]) as sp:
        with pytest.raises(ReplyError, match="interlock open") as e:
            sp.output_enabled = True
        assert e.value.code == "E#2"


def test_monitors_status_faults():
    mon = f("19,1365,1706,2000,0,0,0,0,0")
    with expected_protocol(SpellmanXRVLimited, query_delay=0, comm_pairs=INIT + [(f("19"), mon),
                                                        (f("22"), status(hv=True)),
                                                        (f("68"), faults("ANODE_ARC"))]) as sp:
        kV, mA = sp.monitors_kV_mA
        assert kV == pytest.approx(20.0, abs=0.02) and mA == pytest.approx(0.5, abs=0.001)
        assert sp.status & StatusCode.HV_ENABLED
        assert sp.errors == ErrorCode.ANODE_ARC


def src(pairs):
    return expected_protocol(SpellmanXRVLimited, INIT + pairs, query_delay=0)


ON_20_05 = [(f("22"), status()), (f("68"), faults()), ack("10", "0"), ack("11", "0"), ack("98", "1"),
            ack("10", "1638"), ack("11", "2048"), (f("22"), status(hv=True)),
            (f("19"), f("19,1365,1706,2000,0,0,0,0,0"))]


def test_source_on_sequence_bytes():
    with src(ON_20_05) as sp:
        x = SpellmanXRaySource.attach(sp, clock=SimClock(), ramp_kV_per_s=50, ramp_mA_per_s=1)
        x.on(20, 0.5)


def test_source_on_ramps_in_steps():
    pairs = [(f("22"), status()), (f("68"), faults()), ack("10", "0"), ack("11", "0"), ack("98", "1"),
             ack("10", "819"), ack("10", "1638"), ack("11", "1024"), ack("11", "2048"),
             (f("22"), status(hv=True)), (f("19"), f("19,1365,1706,2000,0,0,0,0,0"))]
    clock = SimClock()
    with src(pairs) as sp:
        x = SpellmanXRaySource.attach(sp, clock=clock, ramp_kV_per_s=10, ramp_mA_per_s=0.25, ramp_step_s=1)
        x.on(20, 0.5)
    assert clock.monotonic() == pytest.approx(2.0)  # one step wait for kV, one for mA


def test_source_limits_checked_before_sending():
    with src([]) as sp:
        x = SpellmanXRaySource.attach(sp, clock=SimClock(), max_power_W=20)
        with pytest.raises(LimitError, match="0 to 50 kV"):
            x.on(60, 0.1)
        with pytest.raises(LimitError, match="0 to 0.6 mA"):
            x.on(20, 0.8)
        with pytest.raises(LimitError, match="power rating"):
            x.on(40, 0.6)
    with pytest.raises(OptionError, match="50 kV rating"):
        SpellmanXRaySource("TCPIP::127.0.0.1::1::SOCKET", max_kV=60)


def test_source_refuses_with_interlock_open_before_hv_command():
    with src([(f("22"), status(interlock=False))]) as sp:
        x = SpellmanXRaySource.attach(sp, clock=SimClock())
        with pytest.raises(SafetyError, match="interlock is open"):
            x.on(20, 0.5)


def test_source_refuses_with_latched_fault():
    with src([(f("22"), status()), (f("68"), faults("ANODE_ARC"))]) as sp:
        x = SpellmanXRaySource.attach(sp, clock=SimClock())
        with pytest.raises(SafetyError, match="ANODE_ARC"):
            x.on(20, 0.5)


def test_source_generator_refusal_is_safety_error():
    pairs = [(f("22"), status()), (f("68"), faults()), ack("10", "0"), ack("11", "0"), (f("98,1"), f("98,E#2"))]
    with src(pairs) as sp:
        x = SpellmanXRaySource.attach(sp, clock=SimClock())
        with pytest.raises(SafetyError, match="interlock open"):
            x.on(20, 0.5)


def test_source_off_sequence():
    pairs = [(f("22"), status(hv=True)), (f("19"), f("19,1365,1706,2000,0,0,0,0,0")),
             ack("11", "0"), ack("10", "0"), ack("98", "0"), (f("22"), status())]
    with src(pairs) as sp:
        x = SpellmanXRaySource.attach(sp, clock=SimClock(), ramp_kV_per_s=50, ramp_mA_per_s=1)
        x.off()


def test_source_make_safe_sends_hv_off_even_if_setpoints_fail():
    pairs = [(f("10,0"), f("10,3")), ack("98", "0")]
    with src(pairs) as sp:
        x = SpellmanXRaySource.attach(sp, clock=SimClock())
        with pytest.raises(DriverError, match="setpoints to 0"):
            x.make_safe()


def test_keepalive_detects_trip():
    with src(ON_20_05 + [(f("22"), status(hv=True)), (f("22"), status()), (f("68"), faults("ANODE_ARC"))]) as sp:
        x = SpellmanXRaySource.attach(sp, clock=SimClock(), ramp_kV_per_s=50, ramp_mA_per_s=1)
        x.on(20, 0.5)
        x.keepalive()
        with pytest.raises(SafetyError, match="ANODE_ARC"):
            x.keepalive()


def test_readback_and_reset():
    pairs = [(f("22"), status(hv=True)), (f("19"), f("19,1365,1706,2000,0,0,0,0,0")), (f("31"), f("31,$")),
             (f("31"), f("31,4"))]
    with src(pairs) as sp:
        x = SpellmanXRaySource.attach(sp, clock=SimClock())
        rb = x.readback()
        assert rb["hv_on"] == 1.0 and rb["interlock_closed"] == 1.0 and rb["shutter_open"] == 0.0
        assert rb["kV"] == pytest.approx(20.0, abs=0.02)
        x.reset_faults()
        with pytest.raises(ReplyError, match="packet overrun"):
            x.reset_faults()


# -- SC10 shutter --------------------------------------------------------------------------

def q(cmd: str, value: str) -> list:
    return [(cmd, cmd), (None, value), (None, "> ")]


def s(cmd: str) -> list:
    return [(cmd, cmd), (None, "> ")]


def test_sc10_queries():
    pairs = q("id?", "THORLABS SC10 VERSION 1.07") + q("ens?", "1") + q("closed?", "0") + q("interlock?", "0") \
        + q("mode?", "1") + q("open?", "100")
    with expected_protocol(SC10, pairs) as sh:
        assert sh.identity.startswith("THORLABS")
        assert sh.enabled is True
        assert sh.closed is False
        assert sh.interlock_tripped is False
        assert sh.mode == SC10Mode.MANUAL
        assert sh.open_time == 100


def test_sc10_setters_and_errors():
    pairs = s("mode=1") + s("open=250") + s("ens") + [("mode=5", "mode=5"), (None, "Command error CMD_ARG_INVALID"),
                                                   (None, "> ")]
    with expected_protocol(SC10, pairs) as sh:
        sh.mode = 1
        sh.open_time = 250
        sh.toggle()
        with pytest.raises(ReplyError, match="CMD_ARG_INVALID"):
            sh.mode = 5
    with expected_protocol(SC10, []) as sh, pytest.raises(ValueError):
        sh.mode = 9


def test_sc10_garbage_in_place_of_the_prompt_is_garbage_not_an_instrument_error():
    """Only the manual's error line (``Command error CMD_…``) is the SC10 refusing a command (never retried);
    other text where the prompt belongs is a garbled reply, which the link resynchronises and retries
    (a fault campaign's garbage on ``ens`` failed a run as an "SC10 error")."""
    from drivers._link import GarbageReply

    with expected_protocol(SC10, [("ens", "ens"), (None, "%!q~^*z%!x**"), (None, "> ")]) as sh, \
            pytest.raises(GarbageReply, match="instead of the prompt"):
        sh.toggle()


def test_sc10_bad_echo_is_an_error():
    with expected_protocol(SC10, [("ens?", "xyz")]) as sh, pytest.raises(ConnectionError):
        _ = sh.enabled


def test_source_with_shutter_opens_at_setpoint_and_closes_first():
    from drivers._link import Link
    from drivers.shutter import SC10Shutter

    sh_pairs = (q("interlock?", "0") + q("ens?", "0") + q("closed?", "1") + q("ens?", "0") + s("ens")
                + q("closed?", "0") + q("ens?", "1") + s("ens") + q("closed?", "1"))
    with src(ON_20_05 + [ack("98", "0")]) as sp, \
            expected_protocol(SC10, sh_pairs) as sh:
        x = SpellmanXRaySource.attach(sp, clock=SimClock(), ramp_kV_per_s=50, ramp_mA_per_s=1)
        x.shutter = SC10Shutter(Link.attach("SC10", sh))
        x.on(20, 0.5)            # closes (already closed) before HV, opens after the setpoint
        x.shutter.close()        # closes first ...
        x.link.call("off", lambda i: setattr(i, "output_enabled", False))  # ... then HV off


def test_source_connect_reads_scaling_watchdog_and_shutter_identity():
    cfg = f("27,0,10,5000,2000,0,0,0,0,0,50,1,5")
    with src([(f("28"), f("28,40,1,0")), (f("27"), cfg)]) as sp, \
            expected_protocol(SC10, q("id?", "THORLABS SC10 VERSION 1.07")) as sh:
        from drivers._link import Link
        from drivers.shutter import SC10Shutter

        x = SpellmanXRaySource.attach(sp, clock=SimClock())
        x.shutter = SC10Shutter(Link.attach("SC10", sh))
        x.connect()
        assert x.watchdog_s == 5.0
        assert x.opts["max_kV"] == 40.0          # limited to the generator's full scale
        with pytest.raises(LimitError):
            x.check_setpoint(45, 0.1)


def test_source_hv_on_kv_ma_and_interlock_properties():
    pairs = [(f("22"), status(hv=True)), (f("19"), f("19,1365,1706,2000,0,0,0,0,0")),
             (f("22"), status(interlock=False)), (f("22"), f("22,3"))]
    with src(pairs) as sp:
        x = SpellmanXRaySource.attach(sp, clock=SimClock())
        assert x.hv_on is True
        kV, mA = x.kV_mA
        assert kV == pytest.approx(20.0, abs=0.02)
        assert x.interlock_closed is False
        with pytest.raises(ReplyError, match="error 3"):
            x.status()
