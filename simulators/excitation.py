"""Excitation of the virtual sample: optical pulses and X-ray absorption events.

Pure functions of numbers (no state), so :mod:`simulators.sample` and :mod:`simulators.tags` agree.

Optical: a laser pulse of fluence ``f`` (µJ cm⁻²) at photon energy ``E_ph`` puts on average
``⟨N⟩ = σ_abs · f / E_ph`` excitations in every NC (photons per cm² times the absorption cross
section, physics.md §2.5 / P2 step 7).

X-ray: absorbed photons form a Poisson process whose rate follows the tube (Kramers' law for the
bremsstrahlung/characteristic output, ``rate ∝ mA · (kV − kV_min)^p``). Each absorbed photon deposits
an energy ``E_dep`` (Gamma-distributed around the Geant4 mean, physics.md §2.5) which creates
``E_dep / ε_eh`` excitations (ε_eh = 4.2 E_g, [003]); every excitation then emits with the band
yields of the sample. The spread of the multiplicity is what gives photon bunching under CW X-rays
(tcspc.md §6.2).
"""

from __future__ import annotations

__all__ = [
    "EV_J",
    "HC_EV_NM",
    "optical_N",
    "xray_absorbed_rate",
    "xray_excitations_per_event",
    "multiplicity_moments",
]

EV_J = 1.602176634e-19
#: h·c in eV·nm (CODATA exact h, c, e) — the simulators' own constant (they share no code with analysis/)
HC_EV_NM = 1239.841984


def optical_N(fluence_uJcm2: float, photon_eV: float, sigma_abs_cm2: float, edge_eV: float) -> float:
    """Mean excitations per NC per pulse, ⟨N⟩ = σ·j with j the photon fluence (photons cm⁻²).

    Photons below the absorption edge ``edge_eV`` are not absorbed (⟨N⟩ = 0).
    """
    if fluence_uJcm2 <= 0.0 or photon_eV <= 0.0 or photon_eV < edge_eV:
        return 0.0
    j = fluence_uJcm2 * 1e-6 / (photon_eV * EV_J)
    return float(sigma_abs_cm2 * j)


def xray_absorbed_rate(kV: float, mA: float, *, rate_ref_per_s: float, kV_ref: float, mA_ref: float,
                       kV_min: float, kV_power: float) -> float:
    """Absorbed X-ray photons per second in the collection spot (Kramers-law scaling)."""
    if kV <= kV_min or mA <= 0.0:
        return 0.0
    return float(rate_ref_per_s * (mA / mA_ref) * ((kV - kV_min) / (kV_ref - kV_min)) ** kV_power)


def xray_excitations_per_event(E_dep_keV: float, eps_eh_over_Eg: float, Eg_eV: float) -> float:
    """Mean number of electron–hole excitations made by one absorbed X-ray photon."""
    return float(E_dep_keV * 1e3 / (eps_eh_over_Eg * Eg_eV))


def multiplicity_moments(n_exc_mean: float, E_shape: float, yield_per_exc: float) -> tuple[float, float]:
    """``(E[m], E[m(m−1)])`` of the emitted-photon number per absorbed X-ray.

    Model: E_dep ~ Gamma(shape k, mean μ·ε), excitations ~ Poisson(E_dep/ε), each emits with
    probability ``Y`` (binomial thinning). Then E[m] = Yμ and E[m(m−1)] = Y²μ²(1 + 1/k).
    Binomial thinning by the detection efficiency keeps the same form, so the bunching amplitude
    of g2 follows from these two numbers.
    """
    m1 = yield_per_exc * n_exc_mean
    m2 = (yield_per_exc * n_exc_mean) ** 2 * (1.0 + 1.0 / E_shape)
    return float(m1), float(m2)
