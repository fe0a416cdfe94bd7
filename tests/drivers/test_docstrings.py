"""pymeasure's convention: property docstrings start with Control/Get/Measure/Set."""

from __future__ import annotations

import inspect

import pytest

from drivers import conex, lakeshore336, pm100d, shutter, spellman

CLASSES = [lakeshore336.LakeShore336, lakeshore336.LakeShore336Input, lakeshore336.LakeShore336Output,
           lakeshore336.LakeShore336Controller, spellman.SpellmanXRVLimited, spellman.SpellmanXRaySource,
           shutter.SC10, shutter.SC10Shutter, conex.ConexAGP, conex.ConexNDAttenuator, pm100d.PM100D,
           pm100d.PM100DPowerMeter]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_property_docstrings_follow_the_convention(cls):
    bad = []
    for name, attr in vars(cls).items():
        if name.startswith("_") or not (isinstance(attr, property) or hasattr(attr, "__get__")
                                        and not inspect.isfunction(attr) and not isinstance(attr, classmethod
                                                                                             | staticmethod)):
            continue
        doc = inspect.getdoc(attr) or ""
        if not doc:
            continue  # plain class attributes (dicts, constants)
        if doc.split()[0] not in ("Control", "Get", "Measure", "Set"):
            bad.append(f"{name}: {doc[:40]!r}")
    assert not bad, bad


@pytest.mark.parametrize("cls", [c for c in CLASSES if hasattr(c, "OPTIONS") and "Instrument" not in str(c.__mro__)])
def test_options_schema_constructible(cls):
    for key, opt in cls.OPTIONS.items():
        assert opt.describe()
        if opt.default is not None:
            assert opt.check(key, opt.default) == opt.default
