"""Reversibility over a thermal cycle (physics.md P1 step 7): the plan step that asks for it and the
comparison that fills :attr:`analysis.sf.Evidence.reversible`.

**The plan step.** A temperature-series step (a procedure with a ``temperatures`` list) may carry ::

    reversibility = {repeat = [90, 20, 5], warm_K = 295}

After the step's run, the plan queues one more run of the same procedure with the same parameters and
``temperatures = [warm_K, *repeat]``: the cryostat warms to room temperature, the sample is measured
there, and it is cooled again through the repeated points ([001] SI S7: "reversibility over heating/cooling
cycles"). :func:`parse_spec` checks the table before anything moves: ``repeat`` is a non-empty subset of
the step's temperatures (within :data:`MATCH_K`), ``warm_K`` (default 295 K) is at least
``analysis.sf.RULES["rt_K"]`` (250 K, above every SF onset reported) and above every repeated point.

**The comparison.** :func:`compare` walks the campaign's emission spectra in acquisition order (the run
files in campaign order, the points in file order). Every spectrum at T ≥ ``rt_K`` that follows a colder
one closes a thermal cycle; the points measured after it are cycle 1, 2, …; the first pass is cycle 0.
(A readback within ``same_T_K`` below ``rt_K`` counts as warm.) A colder spectrum of a later cycle is
*repeated* when cycle 0 has one of the same excitation, fluence (the set value) and temperature (within
``Evidence.same_T_K``). Each spectrum of a pair is judged
by :func:`analysis.sf.assess` alone (the analysis' own band model and red-band rules), and the pair agrees
when

* the SF weight agrees: ``|w₂ − w₁| ≤ k·√(σ₁² + σ₂²)`` (a spectrum without a resolved red band counts as
  w = 0), and — when both show the red band — its shift below the uncoupled band agrees the same way;
* the uncoupled band sits at the same energy (the same test on its centre),

with k = :data:`SIGMA` = 3 and the errors floored at :data:`FRACTION_FLOOR` and :data:`ENERGY_FLOOR_MEV`
(ours: the fit errors of a bright spectrum are far below what a 1 K difference in the readback or the
spectrometer's repeatability give). Source of the criterion: physics.md §6.2 item 2 ("the weight of the
new band … reappears after thermal cycling", [000], [001]) and item 10 ("irreversible shift →
degradation", [001], [002]; §1.3: ageing/energy transfer give a red-shifted component, halide
segregation an irreversible *blue* shift).

``reversible`` is True when every pair agrees, False when any pair disagrees, and None (not tested) when
there is no repeated point or when no first-pass spectrum of a pair shows the red band (nothing to see
come back).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SPEC_KEYS", "DEFAULT_WARM_K", "MATCH_K", "SIGMA", "FRACTION_FLOOR", "ENERGY_FLOOR_MEV", "ReversibilitySpec",
           "parse_spec", "rt_K", "compare", "Pair"]

SPEC_KEYS = ("repeat", "warm_K")
#: room temperature to warm to when the plan does not say
DEFAULT_WARM_K = 295.0
#: a repeated temperature must be one of the step's own temperatures within this (K)
MATCH_K = 0.5
#: agreement within this many combined standard errors (ours)
SIGMA = 3.0
#: floors of the errors compared (ours): SF weight (absolute) and band energies (meV)
FRACTION_FLOOR = 0.02
ENERGY_FLOOR_MEV = 2.0


def rt_K() -> float:
    """Room temperature for the cycle: ``analysis.sf.RULES['rt_K']`` (a spectrum at or above it closes a
    cycle; no SF band is expected there)."""
    from analysis.sf import RULES

    return float(RULES["rt_K"])


@dataclass(frozen=True)
class ReversibilitySpec:
    repeat: tuple[float, ...]
    warm_K: float

    def temperatures(self) -> list[float]:
        """The repeat run's temperatures: warm first, then the repeated points from warm to cold."""
        return [self.warm_K, *sorted(self.repeat, reverse=True)]


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def parse_spec(spec: Any, temperatures: Sequence[float] | None
               ) -> tuple[ReversibilitySpec | None, list[tuple[str, str]]]:
    """Check a step's ``reversibility`` table against the step's ``temperatures``.

    Returns (the spec or None, problems as ``(key, message)``; the key names the line to point at)."""
    errs: list[tuple[str, str]] = []
    allowed = "reversibility = {repeat = [T, …], warm_K = 295}"
    if not isinstance(spec, Mapping):
        return None, [("reversibility", f"reversibility = {spec!r} must be a table: {allowed}")]
    for k in spec:
        if k not in SPEC_KEYS:
            m = difflib.get_close_matches(str(k), SPEC_KEYS, n=1)
            errs.append(("reversibility", f"reversibility.{k} is not a key of reversibility (allowed: "
                                          f"{', '.join(SPEC_KEYS)})" + (f" — did you mean {m[0]!r}?" if m else "")))
    if temperatures is None:
        errs.append(("reversibility", "reversibility needs a temperature series: a procedure with a temperatures "
                                      "list (PLTemperatureSeries, RLTemperatureSeries, …) and no loop"))
        return None, errs
    if "repeat" not in spec:
        errs.append(("reversibility", f"reversibility needs repeat = [T, …] (which of the step's temperatures to "
                                      f"measure again after warming): {allowed}"))
        return None, errs
    rep = spec["repeat"]
    vals = [_num(x) for x in rep] if isinstance(rep, list) else []
    if not isinstance(rep, list) or not rep or any(v is None for v in vals):
        errs.append(("reversibility", f"reversibility.repeat = {rep!r} must be a non-empty list of temperatures "
                                      "in K"))
        return None, errs
    temps = [float(t) for t in temperatures]
    for v in vals:
        assert v is not None
        if not any(abs(v - t) <= MATCH_K for t in temps):
            errs.append(("reversibility", f"reversibility.repeat: {v:g} K is not one of the step's temperatures "
                                          f"({', '.join(f'{t:g}' for t in temps)} K); a reversibility check repeats "
                                          "a subset of them"))
    warm_raw = spec.get("warm_K", DEFAULT_WARM_K)
    warm = _num(warm_raw)
    rt = rt_K()
    if warm is None:
        errs.append(("reversibility", f"reversibility.warm_K = {warm_raw!r} must be a temperature in K "
                                      f"(≥ {rt:g} K, room temperature)"))
    elif warm < rt:
        errs.append(("reversibility", f"reversibility.warm_K = {warm:g} K is below room temperature: the cycle must "
                                      f"warm to ≥ {rt:g} K (above every SF onset reported; analysis.sf "
                                      "RULES['rt_K'])"))
    else:
        cold = [v for v in vals if v is not None and v >= rt]
        for v in cold:
            errs.append(("reversibility", f"reversibility.repeat: {v:g} K is at or above room temperature "
                                          f"({rt:g} K): only points below it can be compared after the cycle"))
    if errs:
        return None, errs
    ordered = tuple(dict.fromkeys(float(v) for v in vals if v is not None))  # keep the user's order, no duplicates
    assert warm is not None
    return ReversibilitySpec(ordered, warm), []


# ---------------------------------------------------------------------------------------------- comparison
@dataclass
class Pair:
    """A repeated point: the first pass and the measurement after ``cycle`` thermal cycles."""

    T_K: float
    fluence_uJcm2: float | None
    excitation: str
    cycle: int
    first: dict[str, Any] = field(default_factory=dict)
    repeat: dict[str, Any] = field(default_factory=dict)
    agree: bool = True
    why: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"T_K": self.T_K, "fluence_uJcm2": self.fluence_uJcm2, "excitation": self.excitation,
                "cycle": self.cycle, "first": self.first, "repeat": self.repeat, "agree": self.agree,
                "why": list(self.why)}


def _judge(rec: Any, excitation: str) -> dict[str, Any]:
    """One spectrum judged alone by the analysis: red band or not, SF weight, shift, uncoupled centre."""
    from analysis.sf import Evidence, assess

    v = assess(Evidence(spectra=[rec], excitation=excitation))
    fr, sh = v.strength.get("sf_fraction"), v.strength.get("shift_meV")
    out: dict[str, Any] = {"T_K": float(rec.T_K), "red": fr is not None}
    if fr is not None and sh is not None:
        out["sf_fraction"] = {"value": fr.get("value"), "error": fr.get("error")}
        out["shift_meV"] = {"value": sh.get("value"), "error": sh.get("error")}
    else:
        out["sf_fraction"] = {"value": 0.0, "error": 0.0}
    rows = v.fits.get("spectra") or []
    if rows:
        unc = rows[0]["fit"].unc
        out["E_unc_eV"] = {"value": float(unc.center_eV.value), "error": float(unc.center_eV.error)}
    return out


def _agree(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None, floor: float, scale: float = 1.0
           ) -> tuple[bool, float] | None:
    if not a or not b or a.get("value") is None or b.get("value") is None:
        return None

    def err(x: Mapping[str, Any]) -> float:
        e = x.get("error")
        e = float(e) if e is not None and math.isfinite(float(e)) else 0.0
        return max(e * scale, floor)

    d = abs(float(b["value"]) - float(a["value"])) * scale
    s = math.hypot(err(a), err(b))
    return d <= SIGMA * s, d / s


def compare(sequence: Iterable[tuple[str, Any]], same_T_K: float = 1.0) -> dict[str, Any]:
    """The reversibility check over ``sequence``: ``(excitation, SpectrumRecord)`` in acquisition order.

    Returns ``{"reversible": True | False | None, "criterion": …, "pairs": [...], "detail": …}``."""
    rt = rt_K()
    warm = rt - same_T_K   # a readback a hair below a 250 K setpoint is still the warm visit
    cycle, seen_cold = 0, False
    first: list[tuple[str, Any]] = []
    later: list[tuple[int, str, Any]] = []
    for exc, rec in sequence:
        T = float(rec.T_K)
        if not math.isfinite(T):
            continue
        if T >= warm:
            if seen_cold:
                cycle, seen_cold = cycle + 1, False
            continue
        seen_cold = True
        if cycle == 0:
            first.append((exc, rec))
        else:
            later.append((cycle, exc, rec))
    criterion = (f"repeated points after warming to ≥ {rt:g} K agree with the first pass within {SIGMA:g}σ "
                 f"(SF weight, red-band shift, uncoupled-band energy; error floors {FRACTION_FLOOR:g} and "
                 f"{ENERGY_FLOOR_MEV:g} meV) — physics.md §6.2 items 2 and 10, P1 step 7")
    out: dict[str, Any] = {"reversible": None, "criterion": criterion, "cycles": cycle, "pairs": []}
    pairs: list[Pair] = []
    for cyc, exc, rec in later:
        f = rec.fluence_uJcm2
        cands = [r for e, r in first if e == exc and abs(float(r.T_K) - float(rec.T_K)) <= same_T_K
                 and ((f is None and r.fluence_uJcm2 is None)
                      or (f is not None and r.fluence_uJcm2 is not None
                          and abs(r.fluence_uJcm2 - f) <= 1e-6 * max(abs(f), 1e-12)))]
        if not cands:
            continue
        a_rec = min(cands, key=lambda r: abs(float(r.T_K) - float(rec.T_K)))
        p = Pair(float(rec.T_K), f, exc, cyc, _judge(a_rec, exc), _judge(rec, exc))
        a, b = p.first, p.repeat
        chk = _agree(a["sf_fraction"], b["sf_fraction"], FRACTION_FLOOR)
        if chk is not None and not chk[0]:
            p.agree = False
            p.why.append(f"SF weight {a['sf_fraction']['value']:.3f} → {b['sf_fraction']['value']:.3f} "
                         f"({chk[1]:.1f}σ)")
        if a["red"] and b["red"]:
            chk = _agree(a.get("shift_meV"), b.get("shift_meV"), ENERGY_FLOOR_MEV)
            if chk is not None and not chk[0]:
                p.agree = False
                p.why.append(f"red-band shift {a['shift_meV']['value']:.1f} → {b['shift_meV']['value']:.1f} meV "
                             f"({chk[1]:.1f}σ)")
        chk = _agree(a.get("E_unc_eV"), b.get("E_unc_eV"), ENERGY_FLOOR_MEV, scale=1e3)
        if chk is not None and not chk[0]:
            p.agree = False
            p.why.append(f"uncoupled band {a['E_unc_eV']['value']:.4f} → {b['E_unc_eV']['value']:.4f} eV "
                         f"({chk[1]:.1f}σ)")
        pairs.append(p)
    out["pairs"] = [p.to_dict() for p in pairs]
    if not pairs:
        out["detail"] = ("no repeated point: no spectrum below room temperature was measured again after a "
                         "warm-up" if cycle == 0 else "no point after the warm-up matches a first-pass point "
                         "(temperature, fluence)")
        return out
    tested = [p for p in pairs if p.first["red"]]
    if not tested:
        out["detail"] = "no red band at the repeated points in the first pass: nothing to see come back"
        return out
    bad = [p for p in pairs if not p.agree]
    out["reversible"] = not bad
    if bad:
        out["detail"] = "; ".join(f"{p.T_K:g} K: " + ", ".join(p.why) for p in bad)
    else:
        out["detail"] = (f"{len(pairs)} repeated point(s) at "
                         f"{', '.join(sorted({f'{p.T_K:.0f}' for p in pairs}, key=float))} K agree with the first "
                         "pass")
    return out
