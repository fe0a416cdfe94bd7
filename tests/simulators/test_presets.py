"""Every preset loads, documents every parameter with a source, and round-trips through TOML."""

from __future__ import annotations

import json

import pytest

from simulators.sample import Conditions, Sample, list_presets

EXPECTED = {"milano-2d-sl", "technion-3d-sl", "isolated-ncs", "biexciton-only", "ase-film", "miniband-shift"}


def test_all_presets_present():
    assert EXPECTED <= set(list_presets())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_preset_loads_and_round_trips(name, tmp_path):
    s = Sample.preset(name, seed=3)
    assert s.name == name and s.seed == 3
    for sec, table in s.params.items():
        if sec == "meta":
            assert table["name"] == name and table["description"]
            continue
        for key, entry in table.items():
            assert set(entry) >= {"value", "unit", "source"}, f"{sec}.{key}"
            assert str(entry["source"]).strip(), f"{sec}.{key} has no source"
    text = s.to_toml()
    again = Sample.from_toml_string(text)
    assert again.params == s.params
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    assert Sample.from_toml(path).params == s.params
    assert again.values() == s.values()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_truth_is_json_and_complete(name):
    s = Sample.preset(name)
    for cond in (Conditions(T_K=20.0, fluence_uJcm2=5.0), Conditions(T_K=80.0, xray_kV=30.0, xray_mA=1.0),
                 Conditions(T_K=300.0)):
        t = s.truth(cond)
        json.dumps(t, allow_nan=False)
        assert t["params"] == s.params
        d = t["derived"]
        for key in ("sf_fraction", "band_fraction", "N_optical", "xray_absorbed_rate_per_s", "E_uncoupled_eV",
                    "tau_X_isolated_ps", "T_onset_low_density_K", "excitation_source"):
            assert key in d
        if d["excitation_source"] != "none":
            for key in ("tau_sf_ps", "tau_D_ps", "tau_X_ps", "tau_XX_ps", "N_coupled", "T_onset_K", "alpha_local",
                        "xx_x_amplitude_ratio", "E_sf_eV", "fwhm_sf_meV", "band_E_eV"):
                assert key in d
            assert abs(sum(d["band_fraction"].values()) - 1.0) < 1e-9


def test_replace_and_errors():
    s = Sample.preset("milano-2d-sl")
    t = s.replace({"sf.shift0_meV": 80.0})
    assert t.p("sf", "shift0_meV") == 80.0 and s.p("sf", "shift0_meV") == 60.0
    assert t.params["sf"]["shift0_meV"]["source"] == "override"
    with pytest.raises(ValueError, match="unknown sample preset"):
        Sample.preset("no-such-sample")
    bad = dict(s.params)
    bad["sf"] = {**s.params["sf"], "w_max": {"value": 1.0}}
    with pytest.raises(ValueError, match="source"):
        Sample(bad)


def test_confusers_have_no_sf():
    for name in ("isolated-ncs", "biexciton-only", "ase-film", "miniband-shift"):
        s = Sample.preset(name)
        for T in (5.0, 80.0):
            d = s.truth(Conditions(T_K=T, fluence_uJcm2=20.0))["derived"]
            assert d["sf_fraction"] == 0.0
