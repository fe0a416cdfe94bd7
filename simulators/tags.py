"""Time tags and histograms from the virtual sample (decision 0002).

:class:`TagSource` turns the sample's emission (:class:`simulators.sample.Sample`) and a detector
chain (:class:`simulators.detectors.Detectors`) into what a time tagger delivers, in two modes that
agree in distribution:

* **stream mode** (:meth:`TagSource.tcspc_stream`, :meth:`TagSource.hbt_stream`): every photon,
  dark count, afterpulse and crosstalk click as a ``(channel: uint8[], time_ps: int64[])`` stream,
  sorted in time, channel 0 = sync, 1 and 2 = detectors. The hot loops are numba-compiled and
  release the GIL (``nogil``): the X-ray keep-alive thread need not wait for a kernel to finish.
* **histogram mode** (:meth:`TagSource.tcspc_histogram`, :meth:`TagSource.g2_histogram`,
  :meth:`TagSource.start_stop_histogram` — HBT as a start–stop histogram, first stop per start): the
  expected counts per bin computed from the same model, then Poisson-sampled per bin — exact in
  the limit where each channel is dead for a small fraction of the time and a pulse rarely gives
  two clicks in one detector (the pile-up regime is only approximated, by a uniform dead-time loss).

Photon sources:

* pulsed laser (``cond.fluence_uJcm2 > 0``): independent photons per pulse (Poisson) with the
  sample's emission profile after the pulse; pulses at ``cond.rep_rate_Hz``.
* CW X-rays (``cond.xray_kV``, ``cond.xray_mA``): absorption events as a Poisson process; each event
  gives a negative-binomial number of detected photons (Gamma-distributed deposit, Poisson
  excitations, binomial thinning), which is what bunches photons in g2 (tcspc.md §6.2).

Every call draws a fresh seed from ``(seed, call index)``, so successive calls give independent
data and a new ``TagSource`` with the same seed repeats the same sequence byte for byte.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit
from scipy.special import ndtr, roots_genlaguerre

from simulators.detectors import Detectors, default_detectors
from simulators.sample import BANDS, HC_EV_NM, Conditions, Excited, Sample

log = logging.getLogger(__name__)


def fftconvolve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Full linear convolution of two 1-d arrays by FFT (what ``scipy.signal.fftconvolve`` computes, with
    numpy's pocketfft: importing scipy.signal would cost every simulated lab ≈ 1.2 s of start-up)."""
    n = len(a) + len(b) - 1
    return np.fft.irfft(np.fft.rfft(a, n) * np.fft.rfft(b, n), n)

__all__ = ["TagSource", "ICDF_SIZE"]

ICDF_SIZE = 1 << 12  # 32 kB per channel: the random lookups stay in the L1/L2 cache
_SYNC_MODES = ("all", "conditional")


# ==================================================================================================
# numba kernels


@njit(cache=True, inline="always")
def _rotl(x: np.uint64, k: int) -> np.uint64:
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True, inline="always")
def _rand(s: np.ndarray) -> float:
    """xoshiro256+ (Blackman & Vigna): uniform double in [0, 1); state ``s`` is uint64[4]."""
    s0, s1, s2, s3 = s[0], s[1], s[2], s[3]
    result = s0 + s3
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    s[0] = s0
    s[1] = s1
    s[2] = s2
    s[3] = s3
    return (result >> np.uint64(11)) * (1.0 / 9007199254740992.0)


def _rng_state(seed: int) -> np.ndarray:
    """xoshiro state from a seed via SeedSequence (never all zero)."""
    st = np.random.SeedSequence(seed).generate_state(4, np.uint64)
    if not st.any():  # pragma: no cover
        st[0] = 1
    return st


@njit(cache=True, nogil=True)
def _pulsed_kernel(st: np.ndarray, k_first: int, k_last: int, period: float, mu: float, p1: float,
                   icdf1: np.ndarray, icdf2: np.ndarray, o1: np.ndarray, o2: np.ndarray, n: np.ndarray) -> bool:
    """Detected photons from pulses k_first..k_last-1 (pulse k at k*period) into ``o1``/``o2`` (counts
    in ``n``); False if an output array was too small.

    ``icdf1``/``icdf2``: inverse CDF of the arrival time (emission ⊗ IRF ⊕ cable delay) per channel;
    ``st``: xoshiro256+ state (advanced in place). Pulses without a detected photon are skipped with
    geometric jumps, so the cost is per detected photon, not per pulse."""
    if mu <= 0.0:
        return True
    n1 = 0
    n2 = 0
    c1 = o1.size
    c2 = o2.size
    M1 = icdf1.size - 1
    M2 = icdf2.size - 1
    s1 = M1 / p1 if p1 > 0.0 else 0.0
    s2 = M2 / (1.0 - p1) if p1 < 1.0 else 0.0
    k = k_first - 1
    emu = math.exp(-mu)
    inv_lq = -1.0 / mu
    ok = True
    while True:
        if mu > 30.0:
            k += 1
        else:
            k += 1 + int(math.log(1.0 - _rand(st)) * inv_lq)
        if k >= k_last:
            break
        # zero-truncated Poisson(mu) by inversion
        u = _rand(st) * (1.0 - emu) + emu
        m = 0
        pm = emu
        cum = emu
        while cum < u and m < 100000:
            m += 1
            pm *= mu / m
            cum += pm
        if m == 0:
            m = 1
        t0 = k * period
        for _ in range(m):
            u = _rand(st)
            if u < p1:
                if n1 >= c1:
                    ok = False
                    break
                x = u * s1
                j = min(int(x), M1 - 1)
                o1[n1] = t0 + icdf1[j] + (x - j) * (icdf1[j + 1] - icdf1[j])
                n1 += 1
            else:
                if n2 >= c2:
                    ok = False
                    break
                x = (u - p1) * s2
                j = min(int(x), M2 - 1)
                o2[n2] = t0 + icdf2[j] + (x - j) * (icdf2[j + 1] - icdf2[j])
                n2 += 1
        if not ok:
            break
    n[0] = n1
    n[1] = n2
    return ok


@njit(cache=True, nogil=True)
def _xray_kernel(st: np.ndarray, t_start: float, t_end: float, rate_per_ps: float, cdf_n: np.ndarray, p1: float,
                 icdf1: np.ndarray, icdf2: np.ndarray, o1: np.ndarray, o2: np.ndarray, n: np.ndarray) -> bool:
    """Detected photons of CW X-ray events that give at least one click, into ``o1``/``o2`` (counts in
    ``n``); False if an output array was too small.

    ``rate_per_ps`` is the rate of such events (the absorbed rate thinned by P(n ≥ 1)); ``cdf_n[i]`` is
    the CDF of the zero-truncated negative-binomial photon number at n = i + 1 (Gamma-distributed
    deposit × Poisson excitations × binomial detection)."""
    if rate_per_ps <= 0.0 or cdf_n.size == 0:
        return True
    n1 = 0
    n2 = 0
    c1 = o1.size
    c2 = o2.size
    M1 = icdf1.size - 1
    M2 = icdf2.size - 1
    s1 = M1 / p1 if p1 > 0.0 else 0.0
    s2 = M2 / (1.0 - p1) if p1 < 1.0 else 0.0
    inv_rate = 1.0 / rate_per_ps
    t = t_start
    last = cdf_n.size - 1
    ok = True
    while True:
        t -= math.log(1.0 - _rand(st)) * inv_rate
        if t >= t_end:
            break
        u = _rand(st)
        m = 0
        while m < last and cdf_n[m] < u:
            m += 1
        for _ in range(m + 1):
            u = _rand(st)
            if u < p1:
                if n1 >= c1:
                    ok = False
                    break
                x = u * s1
                j = min(int(x), M1 - 1)
                o1[n1] = t + icdf1[j] + (x - j) * (icdf1[j + 1] - icdf1[j])
                n1 += 1
            else:
                if n2 >= c2:
                    ok = False
                    break
                x = (u - p1) * s2
                j = min(int(x), M2 - 1)
                o2[n2] = t + icdf2[j] + (x - j) * (icdf2[j + 1] - icdf2[j])
                n2 += 1
        if not ok:
            break
    n[0] = n1
    n[1] = n2
    return ok


@njit(cache=True, nogil=True)
def _pick(st: np.ndarray, n: int, p: float) -> np.ndarray:
    """Indices 0..n-1 each kept with probability p (geometric skipping: cost ∝ number kept)."""
    if p <= 0.0 or n == 0:
        return np.zeros(0, np.int64)
    out = np.empty(max(16, int(n * p * 1.5 + 10 * math.sqrt(n * p + 1))), np.int64)
    k = 0
    i = -1
    lq = math.log1p(-p) if p < 1.0 else -1e300
    while True:
        i += 1 + int(math.floor(math.log(1.0 - _rand(st)) / lq)) if p < 1.0 else 1
        if i >= n:
            break
        if k >= out.size:
            new = np.empty(out.size * 2, np.int64)
            new[:k] = out[:k]
            out = new
        out[k] = i
        k += 1
    return out[:k]


@njit(cache=True, nogil=True)
def _merge_dead(a: np.ndarray, b: np.ndarray, dead: float) -> np.ndarray:
    """Merge two sorted arrays and apply a non-paralysable dead time in the same pass."""
    out = np.empty(a.size + b.size, np.float64)
    i = 0
    j = 0
    k = 0
    last = -1e300
    while i < a.size or j < b.size:
        if j >= b.size or (i < a.size and a[i] <= b[j]):
            x = a[i]
            i += 1
        else:
            x = b[j]
            j += 1
        if x - last >= dead:
            out[k] = x
            k += 1
            last = x
    return out[:k]


@njit(cache=True, nogil=True)
def _merge_channels(t0: np.ndarray, t1: np.ndarray, t2: np.ndarray, res: float, t_end: float,
                    sync_period: float = 0.0, sync_offset: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Merge three sorted float arrays into one int64 stream quantised to the tagger bins
    (floor(t / res) * res), keeping 0 <= t < t_end; channels 0, 1, 2, ties: lower channel first.

    With ``sync_period > 0`` channel 0 is generated on the fly (k·period + offset) instead of read
    from ``t0``, so a 76 MHz sync train never exists as a float array."""
    k_sync = 0
    n_sync = t0.size
    if sync_period > 0.0:
        k_sync = int(math.ceil(-sync_offset / sync_period)) if sync_offset < 0 else 0
        n_sync = max(int(math.ceil((t_end - sync_offset) / sync_period)) - k_sync, 0)
    n = n_sync + t1.size + t2.size
    ch = np.empty(n, np.uint8)
    tt = np.empty(n, np.int64)
    i0 = 0
    i1 = 0
    i2 = 0
    k = 0
    inf = np.inf
    inv = 1.0 / res
    while True:
        if sync_period > 0.0:
            a = (k_sync + i0) * sync_period + sync_offset if i0 < n_sync else inf
        else:
            a = t0[i0] if i0 < t0.size else inf
        b = t1[i1] if i1 < t1.size else inf
        c = t2[i2] if i2 < t2.size else inf
        if a <= b and a <= c:
            x = a
            cc = 0
            i0 += 1
        elif b <= c:
            x = b
            cc = 1
            i1 += 1
        else:
            x = c
            cc = 2
            i2 += 1
        if x == inf or x >= t_end:
            break
        if x >= 0.0:
            ch[k] = cc
            tt[k] = np.int64(math.floor(x * inv) * res)
            k += 1
    return ch[:k], tt[:k]


@njit(cache=True, nogil=True)
def _conditional_syncs(det: np.ndarray, period: float, offset: float) -> np.ndarray:
    """The sync preceding each detector tag (unique, sorted)."""
    out = np.empty(det.size, np.float64)
    n = 0
    last = -1.0
    for i in range(det.size):
        k = math.floor((det[i] - offset) / period)
        s = k * period + offset
        if s != last and s >= 0.0:
            out[n] = s
            n += 1
            last = s
    return out[:n]


# ==================================================================================================
# light model shared by both modes


@dataclass
class _Light:
    """What reaches the detectors for one condition (both sources), per detector arm."""

    period_ps: float           # laser period (inf if no laser)
    mu_pulse: float            # detected photons per pulse, both detectors of the arm together
    cdf_laser: tuple[np.ndarray, np.ndarray] | None
    xray_rate_per_ps: float
    xray_mean_c: float          # mean detected photons per X-ray event (both detectors)
    xray_shape: float
    cdf_xray: tuple[np.ndarray, np.ndarray] | None
    t_tail_ps: float           # how far back emission of earlier pulses/events can reach


#: the emission-time profile of :meth:`TagSource.light` with ``timing=False``: every photon within 1 ps
_PROMPT = (np.array([0.0, 1.0]), np.array([0.0, 1.0]))
#: the emission-time profile of scattered laser light (within 0.05 ps of the pulse): the IRF
_SCATTER = (np.array([0.0, 0.05]), np.array([0.0, 1.0]))


class TagSource:
    """Tag streams and exact-statistics histograms from a sample and a detector chain."""

    def __init__(self, sample: Sample | Callable[[], Sample | None], detectors: Detectors | None = None,
                 seed: int = 0) -> None:
        # a Sample, or a callable giving the sample in the beam now (None: nothing emits there; the sample
        # stage of simulators.world)
        self._sample_of: Callable[[], Sample | None] = sample if callable(sample) else (lambda: sample)
        self.detectors = detectors if detectors is not None else default_detectors()
        self.seed = int(seed)
        self._calls = 0
        self._meter_calls = 0
        self._lock = threading.Lock()  # vendor layers may call from several threads
        self._cache: dict[tuple, _Light] = {}
        self._icdf_cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def sample(self) -> Sample | None:
        """The sample the detectors see now (None: nothing in the beam emits)."""
        return self._sample_of()

    # ---- seeds ------------------------------------------------------------------------------------
    def _next_seeds(self, n: int = 4, *, meter: bool = False) -> list[int]:
        """Seeds of the next stream. The rate meters (``timing=False``) draw from a stream of their own,
        so the measured data do not depend on how often something read the count rate."""
        with self._lock:
            if meter:
                call = self._meter_calls
                self._meter_calls += 1
            else:
                call = self._calls
                self._calls += 1
        key = [self.seed, 1, call] if meter else [self.seed, call]
        return [int(x) for x in np.random.SeedSequence(key).generate_state(n, np.uint32)]

    # ---- light -----------------------------------------------------------------------------------
    def _band_transmission(self, cond: Conditions, ex: Excited, filter_nm: tuple[float, float] | None,
                           passband: Any = None) -> dict[str, float]:
        """Fraction of each band's photons through the band-pass window ``filter_nm`` (a box) and the
        monochromator's ``passband`` (``simulators.optics.Passband``; each band a Gaussian in energy)."""
        out = dict.fromkeys(BANDS, 1.0)
        if filter_nm is not None:
            E_lo, E_hi = HC_EV_NM / filter_nm[1], HC_EV_NM / filter_nm[0]
            for b in BANDS:
                bs = ex.bands[b]
                sig = bs.fwhm_meV * 1e-3 / 2.354820045
                out[b] = float(ndtr((E_hi - bs.E_eV) / sig) - ndtr((E_lo - bs.E_eV) / sig))
        if passband is not None:
            x = np.linspace(-6.0, 6.0, 481)
            g = np.exp(-0.5 * x * x)
            g /= g.sum()
            for b in BANDS:
                bs = ex.bands[b]
                sig = max(bs.fwhm_meV * 1e-3 / 2.354820045, 1e-6)
                lam = HC_EV_NM / np.maximum(bs.E_eV + x * sig, 1e-3)
                out[b] *= float(np.sum(g * passband.transmission(lam)))
        return out

    def _mixture(self, ex: Excited, weights: dict[str, float], sample: Sample) -> tuple[np.ndarray, np.ndarray]:
        """(t, cdf) of one photon's emission time for this band mix of ``sample``."""
        tot = sum(weights.values())
        t = None
        cdf = None
        for b, w in weights.items():
            if w <= 0:
                continue
            tb, cb = sample.profile_table(ex, b)
            t = tb
            cdf = cb * (w / tot) if cdf is None else cdf + cb * (w / tot)
        if t is None:
            return np.array([0.0, 1.0]), np.array([0.0, 1.0])
        return t, cdf

    def light(self, cond: Conditions, arm: str, filter_nm: tuple[float, float] | None = None, *,
              timing: bool = True) -> _Light:
        """Detected-photon model for arm ``"tcspc"`` (detector 1 only) or ``"hbt"`` (both).

        ``timing=False`` keeps every photon number and rate but replaces the emission-time profile by
        prompt emission (:data:`_PROMPT`): for the rate meters, whose count in a 10 ms gate does not
        depend on a sub-ns to ns profile (the detectors' dead time and the pulse period are longer),
        and whose profile would otherwise be rebuilt at every reading as the temperature drifts."""
        filt = self.detectors.filter_nm if filter_nm is None else filter_nm
        # the TCSPC monochromator (detector 1's arm; an explicit filter_nm replaces it)
        pb = None
        if arm == "tcspc" and filter_nm is None and self.detectors.passband is not None:
            pb = self.detectors.passband()
        s = self.sample
        key = (tuple(sorted(cond.to_dict().items())), arm, filt, None if pb is None else pb.key, timing, id(s))
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if s is None:   # nothing emits in the beam: dark counts only
            return _Light(math.inf, 0.0, None, 0.0, 0.0, 1.0, None, 0.0)
        d = self.detectors
        eta_coll = s.p("excitation", "collection_efficiency")
        if arm == "tcspc":
            eff = eta_coll * d.tcspc_transmission * d.spads[0].efficiency
        elif arm == "hbt":
            eff = eta_coll * d.hbt_transmission * (d.split_to_1 * d.spads[0].efficiency
                                                   + (1 - d.split_to_1) * d.spads[1].efficiency)
        else:
            raise ValueError(f"arm must be 'tcspc' or 'hbt', not {arm!r}")
        period = math.inf
        mu = 0.0
        cdf_l = None
        t_tail = 0.0
        N = s.N_optical(cond)
        if N > 0 and cond.rep_rate_Hz > 0:
            ex = s.excited(cond.T_K, N)
            tr = self._band_transmission(cond, ex, filt, pb)
            w = {b: ex.bands[b].photons_per_nc * tr[b] for b in BANDS}
            mu = eff * s.p("excitation", "n_nc_spot") * sum(w.values())
            period = 1e12 / cond.rep_rate_Hz
            # scattered laser through a monochromator set on the laser line: prompt photons (the IRF)
            mu_sc = 0.0
            if pb is not None and cond.photon_eV > 0:
                t_laser = float(pb.transmission(np.array([HC_EV_NM / cond.photon_eV]))[0])
                mu_sc = self.detectors.laser_scatter_per_uJcm2 * cond.fluence_uJcm2 * t_laser
            if mu + mu_sc > 0:
                if not timing:
                    cdf_l = _PROMPT
                elif mu > 0 and mu_sc > 0:
                    tg, cg = self._mixture(ex, w, s)
                    cdf_l = (tg, (mu * cg + mu_sc * (tg > 0)) / (mu + mu_sc))
                elif mu > 0:
                    cdf_l = self._mixture(ex, w, s)
                else:
                    cdf_l = _SCATTER
                t_tail = max(t_tail, float(cdf_l[0][-1]))
            mu += mu_sc
        R = s.xray_rate(cond)
        mean_c = 0.0
        cdf_x = None
        if R > 0:
            exx = s.excited(cond.T_K, s.p("xray", "local_N"), xray=True)
            tr = self._band_transmission(cond, exx, filt, pb)
            w = {b: exx.bands[b].photons_per_nc * tr[b] for b in BANDS}
            mean_c = eff * s.xray_excitations_per_event() * sum(w.values()) / exx.N
            if mean_c > 0:
                cdf_x = self._mixture(exx, w, s) if timing else _PROMPT
                t_tail = max(t_tail, float(cdf_x[0][-1]))
        light = _Light(period, mu, cdf_l, R * 1e-12, mean_c, s.p("xray", "E_dep_shape"), cdf_x, t_tail)
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = light
        return light

    def _arrival_icdf(self, prof: tuple[np.ndarray, np.ndarray], ch: int) -> np.ndarray:
        """Inverse CDF of one photon's arrival at channel ``ch`` (emission ⊗ IRF ⊕ delay), the same
        distribution the histogram mode integrates."""
        key = (id(prof[1]), ch)
        hit = self._icdf_cache.get(key)
        if hit is not None and hit[0] is prof[1]:
            return hit[1]
        sig = self.detectors.sigma_ps(ch)
        dt = min(1.0, max(sig / 4.0, 0.1))
        lower, a = self._arrival(prof, ch, dt)
        cdf = np.concatenate([[0.0], np.cumsum(a)])
        cdf /= cdf[-1]
        edges = np.concatenate([lower, [lower[-1] + dt]])
        keep = np.concatenate([[True], np.diff(cdf) > 0])
        u = np.linspace(0.0, 1.0, ICDF_SIZE + 1)
        icdf = np.interp(u, cdf[keep], edges[keep])
        if len(self._icdf_cache) > 64:
            self._icdf_cache.clear()
        self._icdf_cache[key] = (prof[1], icdf)
        return icdf

    # ---- stream mode ------------------------------------------------------------------------------
    def _photons(self, light: _Light, duration_ps: float, seeds: list[int], p1: float
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Raw detected photon times (float ps, unsorted) of channels 1 and 2 from both sources."""
        d = self.detectors
        pre = light.t_tail_ps + 10 * max(d.sigma_ps(1), d.sigma_ps(2)) + 15 * max(
            sp.irf_tail_tau_ps for sp in d.spads) + max(abs(sp.delay_ps) for sp in d.spads)
        parts1: list[np.ndarray] = []
        parts2: list[np.ndarray] = []

        def run(kernel, st_seed: int, n_exp: float, sd: float, *args) -> None:  # type: ignore[no-untyped-def]
            cap1 = int(n_exp * p1 * 1.05 + 10 * sd + 1000)
            cap2 = int(n_exp * (1 - p1) * 1.05 + 10 * sd + 1000) if p1 < 1 else 1
            while True:
                o1, o2 = np.empty(cap1), np.empty(cap2)
                n = np.zeros(2, np.int64)
                if kernel(_rng_state(st_seed), *args, o1, o2, n):
                    break
                cap1, cap2 = 2 * cap1, 2 * cap2
            parts1.append(o1[:n[0]])
            parts2.append(o2[:n[1]])

        if light.mu_pulse > 0 and light.cdf_laser is not None:
            i1 = self._arrival_icdf(light.cdf_laser, 1)
            i2 = self._arrival_icdf(light.cdf_laser, 2) if p1 < 1.0 else i1
            k_first = -int(math.ceil(pre / light.period_ps))
            k_last = int(math.ceil(duration_ps / light.period_ps))
            n_exp = light.mu_pulse * (k_last - k_first)
            run(_pulsed_kernel, seeds[0], n_exp, math.sqrt(n_exp + 1), k_first, k_last, light.period_ps,
                light.mu_pulse, p1, i1, i2)
        if light.xray_mean_c > 0 and light.cdf_xray is not None:
            i1 = self._arrival_icdf(light.cdf_xray, 1)
            i2 = self._arrival_icdf(light.cdf_xray, 2) if p1 < 1.0 else i1
            n_exp = light.xray_rate_per_ps * (duration_ps + pre) * light.xray_mean_c
            sd = math.sqrt(n_exp * (1 + light.xray_mean_c * (1 + 1 / light.xray_shape)) + 1)
            p_any, cdf_n = _truncated_nbinom(light.xray_mean_c, light.xray_shape)
            run(_xray_kernel, seeds[1], n_exp, sd, -pre, duration_ps, light.xray_rate_per_ps * p_any, cdf_n, p1,
                i1, i2)

        def cat(ps: list[np.ndarray]) -> np.ndarray:
            return (ps[0] if len(ps) == 1 else np.concatenate(ps)) if ps else np.zeros(0)

        return cat(parts1), cat(parts2)

    def _clicks(self, raw: tuple[np.ndarray, np.ndarray], duration_ps: float, channels: tuple[int, ...],
                rng: np.random.Generator) -> dict[int, np.ndarray]:
        """Per-channel click times after darks, dead time, afterpulsing and crosstalk (float ps)."""
        d = self.detectors
        st = _rng_state(int(rng.integers(0, 2**63)))
        out: dict[int, np.ndarray] = {}
        for ch in channels:
            sp = d.spads[ch - 1]
            tc = raw[ch - 1]
            tc.sort(kind="stable")  # nearly sorted (bursts overlap only by their emission time): fast
            n_dark = rng.poisson(sp.dark_cps * duration_ps * 1e-12)
            darks = np.sort(rng.uniform(0.0, duration_ps, n_dark)) if n_dark else np.zeros(0)
            out[ch] = _merge_dead(tc, darks, d.dead_ps(ch))
        # afterpulses (own channel) and breakdown-flash crosstalk (other channel) from accepted clicks
        extra: dict[int, list[np.ndarray]] = {ch: [] for ch in channels}
        for ch in channels:
            sp = d.spads[ch - 1]
            acc = out[ch]
            if sp.afterpulse_prob > 0 and acc.size:
                k = _pick(st, acc.size, sp.afterpulse_prob)
                extra[ch].append(acc[k] + d.dead_ps(ch) + rng.exponential(sp.afterpulse_tau_ps, k.size))
            other = 3 - ch
            if d.crosstalk_prob > 0 and other in channels and acc.size:
                k = _pick(st, acc.size, d.crosstalk_prob)
                if k.size:
                    so = d.spads[other - 1]
                    extra[other].append(acc[k] + d.crosstalk_delay_ps + so.delay_ps
                                        + rng.normal(0.0, d.sigma_ps(other), k.size))
        for ch in channels:
            if extra[ch]:
                e = np.sort(np.concatenate(extra[ch]))
                out[ch] = _merge_dead(out[ch], e, d.dead_ps(ch))
        return out

    def _finish(self, clicks: dict[int, np.ndarray], syncs: np.ndarray, duration_ps: float,
                sync_period: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        empty = np.zeros(0)
        return _merge_channels(syncs, clicks.get(1, empty), clicks.get(2, empty),
                               self.detectors.tagger_resolution_ps, duration_ps, sync_period,
                               self.detectors.sync_offset_ps)

    def tcspc_stream(self, cond: Conditions, duration_s: float, *, syncs: str = "all",
                     filter_nm: tuple[float, float] | None = None, timing: bool = True
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Pulsed-laser TCSPC: sync (channel 0) and detector 1 (channel 1) tags over ``duration_s``.

        ``syncs="all"`` lists every laser pulse (a T2 stream: 76 M tags per lab second at 76 MHz);
        ``"conditional"`` only the sync preceding each detector tag (the Swabian conditional filter /
        PicoHarp T3 view). CW X-ray photons, if the tube is on, arrive uncorrelated with the sync.
        ``timing=False``: see :meth:`light` (rate meters).
        """
        if syncs not in _SYNC_MODES:
            raise ValueError(f"syncs must be one of {_SYNC_MODES}")
        dur = float(duration_s) * 1e12
        seeds = self._next_seeds(meter=not timing)
        light = self.light(cond, "tcspc", filter_nm, timing=timing)
        raw = self._photons(light, dur, seeds, 1.0)
        rng = np.random.default_rng(seeds[2])
        clicks = self._clicks(raw, dur, (1,), rng)
        off = self.detectors.sync_offset_ps
        if cond.rep_rate_Hz <= 0:
            return self._finish(clicks, np.zeros(0), dur)
        period = 1e12 / cond.rep_rate_Hz
        if syncs == "all":
            return self._finish(clicks, np.zeros(0), dur, sync_period=period)
        return self._finish(clicks, _conditional_syncs(clicks[1], period, off), dur)

    def hbt_stream(self, cond: Conditions, duration_s: float, *,
                   filter_nm: tuple[float, float] | None = None, timing: bool = True
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Two detectors behind the fibre beamsplitter (channels 1 and 2), no sync."""
        dur = float(duration_s) * 1e12
        seeds = self._next_seeds(meter=not timing)
        light = self.light(cond, "hbt", filter_nm, timing=timing)
        d = self.detectors
        p1 = d.split_to_1 * d.spads[0].efficiency
        p1 /= p1 + (1 - d.split_to_1) * d.spads[1].efficiency
        raw = self._photons(light, dur, seeds, p1)
        rng = np.random.default_rng(seeds[2])
        clicks = self._clicks(raw, dur, (1, 2), rng)
        return self._finish(clicks, np.zeros(0), dur)

    # ---- histogram mode -----------------------------------------------------------------------------
    def _irf_kernel(self, ch: int, dt: float, quantization: bool = False) -> tuple[np.ndarray, int]:
        """IRF of channel ``ch`` (incl. cable delay) as masses on a dt grid, and the index of t = 0.

        With ``quantization`` the kernel also carries the triangular (±resolution) spread that the
        tagger's bins add to a time difference between two channels."""
        d = self.detectors
        sp = d.spads[ch - 1]
        sig = d.sigma_ps(ch)
        lo = sp.delay_ps - 8 * sig - dt
        hi = sp.delay_ps + 8 * sig + (15 * sp.irf_tail_tau_ps if sp.irf_tail_fraction > 0 else 0.0) + dt
        i0 = int(math.floor(lo / dt))
        i1 = int(math.ceil(hi / dt))
        edges = np.arange(i0, i1 + 1) * dt - sp.delay_ps
        cdf = _irf_cdf(edges, sig, sp.irf_tail_fraction, sp.irf_tail_tau_ps)
        kern = np.diff(cdf)
        res = d.tagger_resolution_ps
        if quantization and res > dt:
            n = int(math.ceil(res / dt))
            x = (np.arange(-n, n + 1)) * dt
            tri = np.maximum(1.0 - np.abs(x) / res, 0.0)
            tri /= tri.sum()
            kern = np.convolve(kern, tri)
            i0 -= n
        return kern, -i0

    @staticmethod
    def _grid(binwidth_ps: float, span_ps: float) -> float:
        m = max(1, int(math.ceil(binwidth_ps / 1.0)))
        dt = binwidth_ps / m
        while span_ps / dt > (1 << 22):
            dt *= 2
        return dt

    def _arrival(self, prof: tuple[np.ndarray, np.ndarray], ch: int, dt: float, quantization: bool = False
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Arrival-time distribution of one photon at channel ``ch`` (emission ⊗ IRF) on a dt grid:
        ``(cell lower edges in ps, mass per cell)``."""
        t, cdf = prof
        n_e = int(math.ceil(t[-1] / dt)) + 1
        m = np.diff(np.interp(np.arange(n_e + 1) * dt, t, cdf, left=0.0, right=1.0))
        kern, k0 = self._irf_kernel(ch, dt, quantization=quantization)
        a = np.maximum(fftconvolve(m, kern), 0.0)
        # the sum of two cell-uniform positions is centred half a cell later than cell n's lower edge;
        # differences of tagger-quantised times are multiples of the resolution, and binning those with
        # floor() acts like a continuous variable shifted by half a resolution step
        shift = 0.5 * self.detectors.tagger_resolution_ps if quantization else 0.0
        return (np.arange(a.size) - k0 + 0.5) * dt + shift, a

    def _first_only(self, ch: int, lower: np.ndarray, a: np.ndarray) -> bool:
        """True when the channel's dead time outlasts the emission, so a pulse/event gives ≤ 1 click."""
        c = np.cumsum(a)
        t99 = lower[min(int(np.searchsorted(c, 0.999 * c[-1])), lower.size - 1)] - lower[0]
        return self.detectors.dead_ps(ch) >= t99

    @staticmethod
    def _clicks_density(a: np.ndarray, mu: float, first_only: bool) -> np.ndarray:
        """Per-pulse click density for Poisson(mu) photons of arrival mass ``a``: all photons, or only
        the first one (classic pile-up: mu·a·exp(−mu·A))."""
        if not first_only:
            return mu * a
        A = np.cumsum(a) - 0.5 * a
        return mu * a * np.exp(-mu * A)

    def _loss(self, ch: int, s_raw: float) -> tuple[float, float]:
        """Non-paralysable dead time between pulses/events, with afterpulses fed by accepted clicks:
        (accepted rate, loss factor)."""
        d = self.detectors
        tau = d.dead_ps(ch) * 1e-12
        p = d.spads[ch - 1].afterpulse_prob
        if tau <= 0:
            return s_raw / (1 - p), 1.0
        a, b, c = p * tau, 1 + s_raw * tau - p, -s_raw
        acc = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a) if a > 0 else s_raw / b
        return acc, acc / (s_raw + p * acc)

    def tcspc_histogram(self, cond: Conditions, duration_s: float, binwidth_ps: float, n_bins: int, *,
                        filter_nm: tuple[float, float] | None = None, expected: bool = False,
                        timing: bool = True) -> np.ndarray:
        """Histogram of detector-1 arrival time after the preceding sync (exact-statistics mode).

        Bin ``i`` covers ``[i, i+1) * binwidth_ps`` after the sync (bins beyond the period stay
        empty). Includes pile-up (first photon per pulse when the dead time outlasts the emission),
        dark counts, CW X-ray background, afterpulses folded into the period, and a uniform
        dead-time loss between pulses. Returns int64 Poisson counts, or the float expectation with
        ``expected=True``. ``timing=False``: prompt emission (:meth:`light`), for totals such as the rate
        meters' — the dead time (≥ 95 ns) outlasts any emission profile, so the total is the same.
        """
        light = self.light(cond, "tcspc", filter_nm, timing=timing)
        d = self.detectors
        dur = float(duration_s)
        expect = np.zeros(n_bins)
        if cond.rep_rate_Hz <= 0:
            return expect if expected else expect.astype(np.int64)
        P = 1e12 / cond.rep_rate_Hz
        sp = d.spads[0]
        n_valid = min(n_bins, int(math.ceil(P / binwidth_ps - 1e-9)))
        b_edges = np.minimum(np.arange(n_valid + 1) * binwidth_ps, P)
        shape = np.zeros(n_valid)
        s_sig = 0.0
        if light.cdf_laser is not None and light.mu_pulse > 0:
            dt = self._grid(binwidth_ps, light.cdf_laser[0][-1] + 4000.0)
            lower, a = self._arrival(light.cdf_laser, 1, dt, quantization=True)
            f = self._clicks_density(a, light.mu_pulse, self._first_only(1, lower, a))
            s_sig = float(f.sum()) * cond.rep_rate_Hz
            cum = np.concatenate([[0.0], np.cumsum(f)]) / max(float(f.sum()), 1e-300)
            cell_edges = np.concatenate([lower, [lower[-1] + dt]])
            off = d.sync_offset_ps
            k_lo = int(math.floor((cell_edges[0] - off) / P)) - 1
            k_hi = int(math.ceil((cell_edges[-1] - off) / P)) + 1
            for k in range(k_lo, k_hi + 1):
                shape += np.diff(np.interp(b_edges + off + k * P, cell_edges, cum, left=0.0, right=1.0))
        s_flat = sp.dark_cps + light.xray_rate_per_ps * 1e12 * light.xray_mean_c
        s_acc, loss = self._loss(1, s_sig + s_flat)
        s_ap = sp.afterpulse_prob * s_acc
        raw = s_sig * shape + s_flat * np.diff(b_edges) / P
        D = d.dead_ps(1)
        if D > 0 and s_sig > 0:
            # dead time across pulses is phase dependent: a click at phase φ of pulse j − m (m ≥ 1) blocks
            # a photon at phase t of pulse j if φ + D > t + m·P, so early photons are lost more often.
            # P(dead at t) = ρ·Σ_m (1 − H(t + m·P − D)), ρ = accepted clicks per pulse, H the phase CDF of
            # accepted clicks (clicks of the same pulse are already handled by the first-photon density).
            w_sig = s_sig / (s_sig + s_flat + s_ap)

            def H(x: np.ndarray) -> np.ndarray:
                xc = np.clip(x, 0.0, P)
                hs = np.zeros_like(xc)
                for k in range(k_lo, k_hi + 1):
                    hs += np.interp(xc + off + k * P, cell_edges, cum, left=0.0, right=1.0)
                hs -= sum(float(np.interp(off + k * P, cell_edges, cum, left=0.0, right=1.0))
                          for k in range(k_lo, k_hi + 1))
                return np.clip(w_sig * hs + (1 - w_sig) * xc / P, 0.0, 1.0)

            centre = 0.5 * (b_edges[:-1] + b_edges[1:])
            rho = s_acc / cond.rep_rate_Hz
            blocked = np.zeros_like(centre)
            for m in range(1, int(math.ceil(D / P)) + 2):
                blocked += 1.0 - H(centre + m * P - D)
            p_dead = np.clip(rho * blocked, 0.0, 1.0)
            expect[:n_valid] = raw * (1.0 - p_dead) * dur
        else:
            expect[:n_valid] = raw * loss * dur
        if s_ap > 0:
            # afterpulses: dead time + exponential delay after a click, folded into the period
            expect[:n_valid] += s_ap * dur * _folded_exp_mass(b_edges, d.dead_ps(1) % P, sp.afterpulse_tau_ps, P)
        # a sum of non-negative terms, but FFT convolutions and interpolation differences leave rounding
        # residues of either sign (−7e-10 beside a 1.2e4 maximum): a mean count is never below zero
        np.maximum(expect, 0.0, out=expect)
        if expected:
            return expect
        rng = np.random.default_rng(self._next_seeds()[3])
        return rng.poisson(expect).astype(np.int64)

    def g2_histogram(self, cond: Conditions, duration_s: float, binwidth_ps: float, n_bins: int, *,
                     filter_nm: tuple[float, float] | None = None, expected: bool = False) -> np.ndarray:
        """Coincidences of detector 2 relative to detector 1 (τ = t₂ − t₁), exact-statistics mode.

        Bin ``i`` covers ``[(i − n_bins/2), (i − n_bins/2 + 1)) * binwidth_ps``. Includes the
        accidental floor, X-ray photon bunching (Gamma–Poisson multiplicity, at most one click per
        event and detector when the dead time outlasts the emission), the laser comb, and crosstalk
        peaks at ±``crosstalk_delay_ps``. Returns int64 Poisson counts (or the expectation).
        """
        tau_lo = -0.5 * n_bins * binwidth_ps
        parts, _ = self._coincidence_rates(cond, tau_lo + np.arange(n_bins + 1) * binwidth_ps, filter_nm)
        expect = (parts["uncorrelated"] + parts["own"]) * float(duration_s)
        if expected:
            return expect
        rng = np.random.default_rng(self._next_seeds()[3])
        return rng.poisson(expect).astype(np.int64)

    def start_stop_histogram(self, cond: Conditions, duration_s: float, binwidth_ps: float, n_bins: int, *,
                             start_delay_ps: float = 0.0, sync_div: int = 1,
                             filter_nm: tuple[float, float] | None = None, expected: bool = False
                             ) -> np.ndarray:
        """HBT in start–stop histogram mode (the [000] PicoHarp 300 way), exact-statistics mode.

        Detector 1 starts, detector 2 stops; ``start_delay_ps`` is the delay of the start relative to
        the stop (a sync offset / cable: negative = the stop is delayed, which puts negative τ on the
        histogram). For each start (every ``sync_div``-th one) the device records the time
        ``h = t₂ − (t₁ + start_delay_ps) ≥ 0`` of the **first** stop after it; bin ``i`` covers
        ``[i, i + 1) * binwidth_ps`` of ``h``, i.e. τ = t₂ − t₁ in ``[i·bw + start_delay_ps, …)``.

        The coincidence rates per bin are :meth:`g2_histogram`'s (bunching, accidentals, laser comb,
        crosstalk, dead-time loss of both detectors), divided by S₁: the stops a start sees per bin. The
        first one lands in bin i with probability ``P(h_i) − P(h_{i+1})``, P(h) the probability of no stop
        in [0, h) — the start–stop pile-up / first-stop factor (tcspc.md §6.4), a product of

        * the start's own event (X-ray bunching, breakdown-flash crosstalk: at most one stop each, the
          detectors being dead for longer than an event emits): ``1 − Q(h)``, Q its stops per start so far;
        * every other stop (other events, darks, afterpulses, the laser): a stationary stream thinned by
          the stop channel's non-paralysable dead time D (input rate λ₂ = S₂/(1 − S₂·D)). With Λ(h) its
          stops per start so far, ``1 − Λ(h)`` for h < D (at most one stop fits) and
          ``(1 − Λ(D))·exp(−(Λ(h) − Λ(D))/(1 − S₂·D))`` after, i.e. a decay with λ₂, not S₂.

        The number of starts is Poisson, so the counts per bin are independent Poisson variables.
        ``sync_div > 1`` keeps one start in ``sync_div`` (taken here as a thinning of the starts).
        Returns int64 counts, or the float expectation with ``expected=True``.
        """
        if sync_div < 1:
            raise ValueError("sync_div must be >= 1")
        bw = float(binwidth_ps)
        edges = float(start_delay_ps) + np.arange(n_bins + 1) * bw
        parts, singles = self._coincidence_rates(cond, edges, filter_nm)
        s1, s2 = singles[1], singles[2]
        if s1 <= 0:
            expect = np.zeros(n_bins)
        else:
            h = np.arange(n_bins + 1) * bw
            Q = np.minimum(np.concatenate([[0.0], np.cumsum(parts["own"] / s1)]), 1.0)
            L = np.concatenate([[0.0], np.cumsum(parts["uncorrelated"] / s1)])
            D = self.detectors.dead_ps(2)
            B = 1.0 - L
            late = h >= D
            if late.any():
                L_D = float(np.interp(D, h, L))
                B[late] = (1.0 - L_D) * np.exp(-(L[late] - L_D) / max(1.0 - s2 * D * 1e-12, 1e-9))
            P = (1.0 - Q) * np.clip(B, 0.0, 1.0)
            expect = (s1 / sync_div) * float(duration_s) * np.maximum(P[:-1] - P[1:], 0.0)
        if expected:
            return expect
        rng = np.random.default_rng(self._next_seeds()[3])
        return rng.poisson(expect).astype(np.int64)

    def _coincidence_rates(self, cond: Conditions, bin_edges: np.ndarray,
                           filter_nm: tuple[float, float] | None = None
                           ) -> tuple[dict[str, np.ndarray], dict[int, float]]:
        """Coincidences per second of detector 2 relative to detector 1 in the τ bins ``bin_edges`` (ps),
        and the accepted singles rates ``{1: S₁, 2: S₂}`` (1/s) — the model behind both histogram modes.

        The rates come in two parts: ``"own"``, the pairs of one X-ray event (bunching) and of one
        breakdown flash (crosstalk), at most one stop per start each; ``"uncorrelated"``, the pairs of
        independent clicks (the accidental floor and the laser comb)."""
        light = self.light(cond, "hbt", filter_nm)
        d = self.detectors
        n_bins = bin_edges.size - 1
        binwidth_ps = float(bin_edges[1] - bin_edges[0])
        p1 = d.split_to_1 * d.spads[0].efficiency
        p1 /= p1 + (1 - d.split_to_1) * d.spads[1].efficiency
        split = {1: p1, 2: 1 - p1}
        span = max(light.t_tail_ps, 1.0) + 4000.0
        dt = self._grid(binwidth_ps, 2 * span)
        s_l = {1: 0.0, 2: 0.0}
        s_x = {1: 0.0, 2: 0.0}
        comb = None
        bunch = None
        rep = cond.rep_rate_Hz
        if light.cdf_laser is not None and light.mu_pulse > 0 and rep > 0:
            l1, a1 = self._arrival(light.cdf_laser, 1, dt)
            l2, a2 = self._arrival(light.cdf_laser, 2, dt, quantization=True)
            f1 = self._clicks_density(a1, light.mu_pulse * split[1], self._first_only(1, l1, a1))
            f2 = self._clicks_density(a2, light.mu_pulse * split[2], self._first_only(2, l2, a2))
            s_l = {1: float(f1.sum()) * rep, 2: float(f2.sum()) * rep}
            tau_c, cc = _corr(l1, f1, l2, f2, dt)
            P = light.period_ps
            dens = np.zeros(n_bins)
            kmin = int(math.floor((bin_edges[0] - tau_c[-1]) / P)) - 1
            kmax = int(math.ceil((bin_edges[-1] - tau_c[0]) / P)) + 1
            for k in range(kmin, kmax + 1):
                dens += _bin_masses(tau_c + k * P, cc, bin_edges)
            comb = rep * dens  # coincidences per second per bin (before dead-time loss)
        if light.cdf_xray is not None and light.xray_mean_c > 0:
            Rx = light.xray_rate_per_ps * 1e12
            k = light.xray_shape
            l1, a1 = self._arrival(light.cdf_xray, 1, dt)
            l2, a2 = self._arrival(light.cdf_xray, 2, dt, quantization=True)
            fo1, fo2 = self._first_only(1, l1, a1), self._first_only(2, l2, a2)
            x, w = _gamma_nodes(k)
            cc_sum = None
            s1 = s2 = 0.0
            for xi, wi in zip(x, w, strict=True):
                f1 = self._clicks_density(a1, light.xray_mean_c * split[1] * xi, fo1)
                f2 = self._clicks_density(a2, light.xray_mean_c * split[2] * xi, fo2)
                s1 += wi * float(f1.sum())
                s2 += wi * float(f2.sum())
                tau_c, cc = _corr(l1, f1, l2, f2, dt)
                cc_sum = wi * cc if cc_sum is None else cc_sum + wi * cc
            s_x = {1: Rx * s1, 2: Rx * s2}
            bunch = Rx * _bin_masses(tau_c, cc_sum, bin_edges)
        # singles, crosstalk fed by the other channel's accepted clicks (fixed point), dead-time loss
        acc = {c: s_l[c] + s_x[c] + d.spads[c - 1].dark_cps for c in (1, 2)}
        loss = {1: 1.0, 2: 1.0}
        raw = dict(acc)
        for _ in range(30):
            for c in (1, 2):
                raw[c] = s_l[c] + s_x[c] + d.spads[c - 1].dark_cps + d.crosstalk_prob * acc[3 - c]
            acc = {c: self._loss(c, raw[c])[0] for c in (1, 2)}
            loss = {c: self._loss(c, raw[c])[1] for c in (1, 2)}
        # everything except the laser-laser pairs is uncorrelated between events
        tot = {c: raw[c] + d.spads[c - 1].afterpulse_prob * acc[c] for c in (1, 2)}
        floor = (tot[1] * tot[2] - s_l[1] * s_l[2]) * loss[1] * loss[2]
        rate = np.full(n_bins, floor * binwidth_ps * 1e-12)
        if comb is not None:
            rate += comb * loss[1] * loss[2]
        own = np.zeros(n_bins)
        if bunch is not None:
            own += bunch * loss[1] * loss[2]
        if d.crosstalk_prob > 0:
            for src, sign in ((1, 1.0), (2, -1.0)):
                dst = 3 - src
                sig = d.sigma_ps(dst)
                mu = sign * (d.crosstalk_delay_ps + d.spads[dst - 1].delay_ps - d.spads[src - 1].delay_ps)
                mass = np.diff(ndtr((bin_edges - mu) / sig)) if sig > 0 else np.diff((bin_edges >= mu) * 1.0)
                own += acc[src] * d.crosstalk_prob * loss[dst] * mass
        return {"uncorrelated": rate, "own": own}, {1: float(acc[1]), 2: float(acc[2])}


# ==================================================================================================
# helpers


def _irf_cdf(x: np.ndarray, sig: float, f: float, tau: float) -> np.ndarray:
    """CDF of Gaussian(σ) + [with probability f] Exponential(τ) at x."""
    if sig <= 0:
        g = (x >= 0).astype(float)
        if f <= 0:
            return g
        e = np.where(x > 0, -np.expm1(-np.maximum(x, 0) / tau), 0.0)
        return (1 - f) * g + f * e
    g = ndtr(x / sig)
    if f <= 0:
        return g
    # CDF of the exponentially modified Gaussian
    z = x / sig - sig / tau
    with np.errstate(over="ignore", invalid="ignore"):
        emg = g - np.exp(-x / tau + 0.5 * (sig / tau) ** 2 + np.log(np.maximum(ndtr(z), 1e-300)))
    emg = np.where(np.isfinite(emg), emg, g)
    return (1 - f) * g + f * np.clip(emg, 0.0, 1.0)


def _corr(l1: np.ndarray, f1: np.ndarray, l2: np.ndarray, f2: np.ndarray, dt: float
          ) -> tuple[np.ndarray, np.ndarray]:
    """Cross-correlation of two click densities on the same dt grid: (τ of each cell, mass)."""
    cc = np.maximum(fftconvolve(f1[::-1], f2), 0.0)
    # index n pairs f1[i] with f2[j], j - i = n - (len(f1) - 1); τ = l2[j] - l1[i]
    tau = (np.arange(cc.size) - (f1.size - 1)) * dt + (l2[0] - l1[0])
    return tau, cc


def _truncated_nbinom(mean: float, shape: float) -> tuple[float, np.ndarray]:
    """P(n ≥ 1) and the CDF over n = 1, 2, … of the zero-truncated negative binomial with this mean
    and Gamma shape (Poisson photon number whose mean is Gamma-distributed)."""
    from scipy.stats import nbinom  # here, not at import: scipy.stats costs ≈ 0.45 s, and only X-rays need it

    p = shape / (shape + mean)
    p_any = float(-np.expm1(shape * np.log(p)))
    hi = int(nbinom.isf(1e-13, shape, p)) + 2
    n = np.arange(1, max(hi, 2) + 1)
    pmf = nbinom.pmf(n, shape, p)
    cdf = np.cumsum(pmf) / max(p_any, 1e-300)
    cdf[-1] = 1.0
    return p_any, np.minimum(cdf, 1.0)


def _gamma_nodes(shape: float, n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature nodes/weights for E ~ Gamma(shape, mean 1) (generalised Gauss–Laguerre)."""
    x, w = roots_genlaguerre(n, shape - 1.0)
    w = w / w.sum()
    return x / shape, w


def _bin_masses(centres: np.ndarray, mass: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Distribute cell masses (at cell centres, uniform spacing) over output bins exactly by overlap."""
    if centres.size < 2:
        return np.zeros(edges.size - 1)
    dt = centres[1] - centres[0]
    c = np.concatenate([[0.0], np.cumsum(mass)])
    cell_edges = centres[0] - 0.5 * dt + np.arange(centres.size + 1) * dt
    cum = np.interp(edges, cell_edges, c, left=0.0, right=c[-1])
    return np.diff(cum)


def _folded_exp_mass(edges: np.ndarray, t0: float, tau: float, P: float) -> np.ndarray:
    """Mass in bins between ``edges`` of (t0 + Exp(tau)) mod P."""
    def cdf(x: np.ndarray) -> np.ndarray:
        # CDF over one period of the folded exponential starting at t0 (periodic in x)
        y = np.mod(x - t0, P)
        norm = -math.expm1(-P / tau)
        return -np.expm1(-y / tau) / norm
    a = cdf(edges[:-1])
    b = cdf(edges[1:])
    out = b - a
    out = np.where(out < 0, out + 1.0, out)
    return out


def warm_kernels() -> None:
    """Compile this module's numba kernels into numba's on-disk cache (``make venv`` calls it once after
    installing, so the first stream of every later process loads them instead of compiling for ~5 s):
    the X-ray and pulsed generators, dead time, afterpulsing, cross-talk, both sync modes."""
    from simulators.detectors import picoharp_hybrid, swabian_spad

    sample = Sample.preset("milano-2d-sl")
    xray = Conditions(T_K=20.0, xray_kV=20.0, xray_mA=1.0)
    laser = Conditions(T_K=20.0, fluence_uJcm2=2.0, rep_rate_Hz=76e6)
    for det in (picoharp_hybrid(), swabian_spad()):
        src = TagSource(sample, det, seed=0)
        src.hbt_stream(xray, 0.002)
        for syncs in _SYNC_MODES:
            src.tcspc_stream(laser, 0.0005, syncs=syncs)
