"""The sample stage (CONEX-CC, manual) and the white-light lamp's SC10: exact bytes, validation before motion,
and both against their simulated controllers."""

from __future__ import annotations

import math

import pytest
from pymeasure.test import expected_protocol

from acq.clock import SimClock
from acq.config import ConfigError, parse_config
from drivers._link import LimitError, ReplyError
from drivers.base import OptionError
from drivers.conex import ConexCC
from drivers.sample_stage import ConexSampleStage, ManualSampleStage
from drivers.shutter import SC10
from drivers.white_light import SC10WhiteLight

from .simlab import sim_lab

NOERR = ("1TE?", "1TE@")


# -- CONEX-CC command set (instruments.md §5.3: ID, VE, TP, PA, TS, OR, ST, SL, SR, TE; CR LF; address 1) ----
def test_conex_cc_queries_in_mm():
    pairs = [("1ID?", "1IDCONEX-CC-LTA-HS"), ("1VE?", "1VE CONEX-CC 2.0.1"), ("1TP?", "1TP12.50000"),
             ("1PA?", "1PA12.50000"), ("1TS?", "1TS000033"), ("1SL?", "1SL0"), ("1SR?", "1SR25")]
    with expected_protocol(ConexCC, pairs) as st:
        assert st.identity == "CONEX-CC-LTA-HS"
        assert st.version == "CONEX-CC 2.0.1"
        assert st.position == 12.5 and st.target == 12.5
        assert st.state == "33"
        assert (st.left_limit, st.right_limit) == (0.0, 25.0)


def test_conex_cc_setters_check_te():
    pairs = [("1PA12.50000", None), NOERR, ("1OR", None), NOERR, ("1ST", None), NOERR,
             ("1PA30.00000", None), ("1TE?", "1TEC")]
    with expected_protocol(ConexCC, pairs) as st:
        st.target = 12.5
        st.home()
        st.stop()
        with pytest.raises(ReplyError, match="out of range") as e:
            st.target = 30
        assert e.value.code == "C"
    with expected_protocol(ConexCC, []) as st, pytest.raises(ValueError):
        st.target = 5000


def test_stage_moves_to_a_named_position_and_reads_back():
    pairs = [("1PA12.50000", None), NOERR, ("1TS?", "1TS000028"), ("1TS?", "1TS000033"), ("1TP?", "1TP12.50000"),
             ("1TP?", "1TP12.50000")]
    clock = SimClock()
    with expected_protocol(ConexCC, pairs) as st:
        s = ConexSampleStage.attach(st, clock=clock, poll_s=0.5)
        assert s.move_to_position("reference") == 12.5
        assert s.readback() == {"position_mm": 12.5, "slot": 1.0}
    assert clock.monotonic() == pytest.approx(0.5)


def test_stage_between_positions_reads_slot_nan_and_homes_if_not_referenced():
    pairs = [("1ID?", "1IDCONEX-CC-LTA-HS"), ("1TS?", "1TS00000A"), ("1OR", None), NOERR, ("1TS?", "1TS000032"),
             ("1TP?", "1TP6.00000")]
    with expected_protocol(ConexCC, pairs) as st:
        s = ConexSampleStage.attach(st, clock=SimClock())
        s.connect()
        rb = s.readback()
        assert rb["position_mm"] == 6.0 and math.isnan(rb["slot"]) and s.at(6.0) is None


def test_stage_validates_before_sending_anything():
    with expected_protocol(ConexCC, []) as st:
        s = ConexSampleStage.attach(st, clock=SimClock(), positions={"sample": 0.0, "reference": 12.5})
        with pytest.raises(OptionError, match="'blank' is not a named position .*named: sample, reference"):
            s.move_to_position("blank")
        with pytest.raises(LimitError, match="position"):
            s.move_to_mm(26.0)
        s.make_safe()   # no unsafe state: nothing is sent


def test_stage_options_are_checked():
    with pytest.raises(OptionError, match="positions.blank = 30.0 is outside min_mm–max_mm = 0–25 mm"):
        ConexSampleStage("<x>", positions={"sample": 0.0, "blank": 30.0})
    with pytest.raises(OptionError, match="not an identifier"):
        ConexSampleStage("<x>", positions={"2nd": 1.0})
    with pytest.raises(OptionError, match="positions.sample = 'left' must be a float"):
        ManualSampleStage(positions={"sample": "left"})


def test_stage_positions_in_lab_toml_are_checked_with_file_and_line():
    text = ('[sample_stage]\nbackend = "conex"\nresource = "TCPIP::127.0.0.1::7781::SOCKET"\n'
            'positions = {sample = 0.0, reference = 12.5, blank = 27.0}\n')
    with pytest.raises(ConfigError) as e:
        parse_config(text, "lab.toml")
    assert e.value.errors == ["lab.toml:4: sample_stage.positions.blank = 27.0 is outside "
                              "sample_stage.min_mm–sample_stage.max_mm = 0–25 mm"]
    ok = parse_config(text.replace("27.0", "24.0").replace('"conex"', '"manual"'), "lab.toml")
    assert ok.roles["sample_stage"].options["positions"] == {"sample": 0.0, "reference": 12.5, "blank": 24.0}


def test_manual_stage_prompts_the_operator_and_records_it():
    asked: list[str] = []
    clock = SimClock()
    s = ManualSampleStage(clock=clock, ask=asked.append)
    s.move_to_position("reference")
    s.move_to_position("reference")          # already there: no prompt
    assert asked == ["move the sample holder to 'reference' (12.500 mm)"]
    assert s.readback() == {"position_mm": 12.5, "slot": 1.0}
    assert [p["prompt"] for p in s.describe()["prompts"]] == asked
    waiting = ManualSampleStage(clock=clock, wait_s=30.0)     # no one to answer: the operator's time
    t0 = clock.monotonic()
    waiting.move_to_position("blank")
    assert clock.monotonic() - t0 == pytest.approx(30.0) and waiting.at() == "blank"


# -- the lamp's SC10 (its manual's echo + prompt protocol, docs/shutter.md) ----------------------------------
def q(cmd: str, value: str) -> list:
    return [(cmd, cmd), (None, value), (None, "> ")]


def test_white_light_opens_and_closes_verified():
    pairs = (q("id?", "THORLABS SC10 VERSION 1.07") + q("ens?", "1") + [("ens", "ens"), (None, "> ")]
             + q("closed?", "1")                        # connect: closes an open shutter, verified
             + q("ens?", "0") + [("ens", "ens"), (None, "> ")] + q("closed?", "0")   # open
             + q("closed?", "0")                                                          # readback
             + q("ens?", "1") + [("ens", "ens"), (None, "> ")] + q("closed?", "1"))   # make_safe
    with expected_protocol(SC10, pairs) as sh:
        lamp = SC10WhiteLight.attach(sh)
        lamp.connect()
        lamp.open_shutter()
        assert lamp.readback() == {"lamp_open": 1.0}
        lamp.make_safe()


def test_conex_cc_and_lamp_against_their_simulators():
    clock = SimClock()
    with sim_lab("sample_stage", "lamp_shutter", clock=clock) as (world, servers):
        stage = ConexSampleStage(servers["sample_stage"].resource, clock=clock)
        lamp = SC10WhiteLight(servers["lamp_shutter"].resource, clock=clock)
        try:
            stage.connect()
            lamp.connect()
            assert world.sample_in_beam() is world.sample
            stage.move_to_position("reference")
            assert world.sample_stage.position == pytest.approx(12.5)
            assert world.sample_in_beam() is world.reference_sample
            stage.move_to_position("blank")
            assert world.sample_in_beam() is None
            lamp.open_shutter()
            assert world.lamp.shutter_open and lamp.readback()["lamp_open"] == 1.0
            lamp.make_safe()
            assert not world.lamp.shutter_open
        finally:
            stage.close()
            lamp.close()
