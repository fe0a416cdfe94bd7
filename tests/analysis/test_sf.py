"""The SF verdict on independent synthetic evidence (gen.scenario) for SF and the three confusers."""

from __future__ import annotations

import json

import pytest

from analysis.sf import FAIL, PASS, Evidence, assess

from .gen import scenario


@pytest.fixture(scope="module")
def verdicts() -> dict:
    return {
        k: assess(Evidence.from_dict(scenario(k, seed=1))) for k in ("sf", "biexciton", "ase", "miniband")
    }


@pytest.mark.timeout(120)
def test_sf_sample_is_sf(verdicts: dict) -> None:
    v = verdicts["sf"]
    print(v.summary())
    for it in v.items:
        print(f"  {it.number} {it.key}: {it.status} — {it.detail}")
    assert v.verdict == "SF", v.reasons
    assert v.confuser is None
    for key in (
        "two_band",
        "onset",
        "narrower",
        "faster",
        "delayed_rise",
        "fluence_exponent",
        "bunching",
        "no_absorption",
        "exclusions",
    ):
        assert v.item(key).status == PASS, (key, v.item(key).detail)
    assert v.item("coherence").status == "not measured"
    on = v.item("onset").numbers["T_on_K"]["value"]
    assert 90 < on < 130
    assert abs(v.strength["sf_fraction"]["value"] - 2 / 3) < 0.03  # 40000 / (40000 + 20000) at 10 K
    assert 1.3 < v.strength["alpha_sf"]["value"] < 1.6
    assert v.strength["acceleration"] > 4
    json.dumps(v.to_dict(), allow_nan=False)  # the summary is valid JSON


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "kind,confuser",
    [("biexciton", "biexciton-only"),
     ("ase", "ASE"), ("miniband", "miniband shift")],
)
def test_confusers_are_not_sf(verdicts: dict, kind: str, confuser: str) -> None:
    v = verdicts[kind]
    print(kind, v.summary(), v.confuser_flags)
    assert v.verdict == "not SF", v.reasons
    assert v.confuser == confuser, v.confuser_flags
    assert v.item("exclusions").status == FAIL
    assert any(confuser in r for r in v.reasons)


def test_empty_evidence_is_inconclusive() -> None:
    v = assess(Evidence())
    assert v.verdict == "inconclusive"
    assert all(it.status == "not measured" for it in v.items)
