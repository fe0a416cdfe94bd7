"""Reports: PNG figures (matplotlib, Agg), a JSON summary and a markdown + HTML page, verdict first.

``render(verdicts, out_dir)`` takes one :class:`~analysis.sf.SFVerdict` or a mapping
``{run name: SFVerdict}``; every figure is drawn from the fits the verdict carries
(``verdict.fits``), so the input of a report is exactly the output of :func:`analysis.sf.assess`.
"""

from __future__ import annotations

import html
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ._common import to_jsonable  # noqa: E402
from .sf import NOT_MEASURED, PASS, SFVerdict  # noqa: E402

__all__ = ["ReportFiles", "render", "figures"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportFiles:
    """Paths written by :func:`render`."""

    markdown: Path
    html: Path
    json: Path
    figures: tuple[Path, ...]


_ROLE_COLOURS = {"sf": "tab:red", "mid": "tab:green", "unc": "tab:blue"}


def _margins(fig: Figure, *, left: float = 0.85, right: float = 0.15, bottom: float = 0.5, top: float = 0.35,
             wspace: float = 0.32, hspace: float = 0.08) -> None:
    """Fixed margins (inches) instead of ``tight_layout``: these figures have a fixed anatomy (tick labels,
    one axis label each side, a small title), and tight_layout measured every tick label by drawing each
    figure once more — 60 % of a report's rendering time."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=left / w, right=1 - right / w, bottom=bottom / h, top=1 - top / h,
                        wspace=wspace, hspace=hspace)


def _fig_spectra(v: SFVerdict) -> Figure | None:
    sp = v.fits.get("spectra") or []
    if not sp:
        return None
    sel = sorted(sp, key=lambda s: s["T_K"])
    if len(sel) > 4:
        idx = np.linspace(0, len(sel) - 1, 4).round().astype(int)
        sel = [sel[i] for i in idx]
    fig, axes = plt.subplots(2, len(sel), figsize=(3.6 * len(sel), 4.2), squeeze=False, sharex="col",
                             gridspec_kw={"height_ratios": [3, 1]})
    for ax, axr, s in zip(axes[0], axes[1], sel, strict=True):
        f = s["fit"]
        axr.plot(f.energy_eV, f.residuals, lw=0.5)
        axr.axhline(0, color="k", lw=0.5)
        axr.set_xlabel("energy (eV)")
        k = f.rebin  # fitted in bins of k pixels: shown per pixel
        ax.plot(f.energy_eV, f.counts / k, ".", ms=2, color="0.5", label="data" if k == 1 else f"data ({k} px bins)")
        ax.plot(f.energy_eV, f.model / k, "k-", lw=1, label="fit")
        for b, c in zip(f.bands, f.components, strict=True):
            # the SF colour only for an SF band of a multi-band fit; a single band is the uncoupled one
            ax.plot(f.energy_eV, c / k + f.background.value, lw=1, label=b.role, color=_ROLE_COLOURS.get(b.role))
        fl = f" {s['fluence_uJcm2']:g} µJ/cm²" if s.get("fluence_uJcm2") else ""
        ax.set_title(f"{s['T_K']:.1f} K{fl}: {f.n_bands} {f.shape} band(s), "
                     f"{'χ²' if f.statistic == 'chi2' else 'dev.'}/dof {f.reduced_deviance:.2f}", fontsize=8)
    axes[0][0].set_ylabel("counts / pixel")
    axes[1][0].set_ylabel("dev. res." if sel[0]["fit"].statistic != "chi2" else "(n−μ)/σ")
    axes[0][0].legend(fontsize=7)
    _margins(fig)
    return fig


def _fig_decays(v: SFVerdict) -> Figure | None:
    # the decays that decided the checklist (items 4 and 5); only when none did, the first ones fitted
    used = list(v.fits.get("decays_used") or [])
    dd = used or list(v.fits.get("decays") or [])
    if not dd:
        return None
    sel = dd[:4]
    fig, axes = plt.subplots(
        2,
        len(sel),
        figsize=(3.8 * len(sel), 4.2),
        squeeze=False,
        gridspec_kw={"height_ratios": [3, 1]},
        sharex="col",
    )
    for j, d in enumerate(sel):
        f = d["fit"]
        ax, axr = axes[0][j], axes[1][j]
        ax.semilogy(f.t_ps, np.maximum(f.counts, 0.5), ".", ms=2, color="0.5")
        ax.semilogy(f.t_ps, np.maximum(f.model, 0.5), "r-", lw=1)
        ax.semilogy(f.t_ps, np.maximum(f.irf * f.counts.max(), 0.5), color="0.8", lw=0.8)
        taus = ", ".join(f"{c.tau_ps.value:.0f}" for c in f.components)
        kind = {"burst": " (SF burst)", "sf": " (exp. rise)"}.get(f.model_name, "")
        fl = f", {d['fluence_uJcm2']:.2g} µJ/cm²" if d.get("fluence_uJcm2") else ""
        ax.set_title(f"{d['band']} band, {d['T_K']:.1f} K{fl}: τ = {taus} ps{kind}", fontsize=8)
        axr.plot(f.t_ps, f.deviance_residuals, lw=0.5)
        axr.axhline(0, color="k", lw=0.5)
        axr.set_xlabel("t (ps)")
        # the decay, not the empty rest of the TCSPC window: from 0.5 ns before the peak to 15 lifetimes after
        t_pk = float(f.t_ps[int(np.argmax(f.model))])
        span = max(15.0 * max(c.tau_ps.value for c in f.components), 1000.0)
        ax.set_xlim(max(float(f.t_ps[0]), t_pk - 500.0), min(float(f.t_ps[-1]), t_pk + span))
    axes[0][0].set_ylabel("counts")
    axes[1][0].set_ylabel("dev. res.")
    _margins(fig)
    return fig


def _fig_g2(v: SFVerdict) -> Figure | None:
    gg = v.fits.get("g2") or []
    if not gg:
        return None
    f = gg[0]
    fig, (ax, axr) = plt.subplots(2, 1, figsize=(4.5, 4.2), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.errorbar(f.tau_ps, f.g2, f.g2_err, fmt=".", ms=2, color="0.5", lw=0.5)
    with np.errstate(divide="ignore", invalid="ignore"):
        for model, style in ((f.exp_model, "r-"), (f.lorentz_model, "b--")):
            axr.plot(f.tau_ps, np.where(f.g2_err > 0, (f.g2 - model) / f.g2_err, np.nan), style, lw=0.5)
    axr.axhline(0, color="k", lw=0.5)
    axr.set_xlabel("τ (ps)")
    axr.set_ylabel("(g2 − fit)/σ")
    ax.plot(f.tau_ps, f.exp_model, "r-", lw=1, label=f"exp⊗IRF τ={f.tau_exp_ps.value:.0f} ps")
    ax.plot(f.tau_ps, f.lorentz_model, "b--", lw=1, label=f"Lorentz FWHM={f.lorentz_fwhm_ps.value:.0f} ps")
    if f.double_model is not None:
        ax.plot(f.tau_ps, f.double_model, "g:", lw=1, label="double exp (fixed weights)")
    ax.set_title(f"χ²/dof: exp {f.exp_chi2_dof:.2f}, Lorentz {f.lorentz_chi2_dof:.2f}", fontsize=8)
    ax.set_ylabel("g2(τ)")
    ax.legend(fontsize=7)
    _margins(fig, top=0.3)
    return fig


def _fig_exponent(v: SFVerdict) -> Figure | None:
    ps, pu = v.fits.get("power_law_sf"), v.fits.get("power_law_unc")
    if ps is None or pu is None:
        return None
    fig, ax = plt.subplots(figsize=(4.5, 3.4))
    for p, lab, c in ((ps, "SF band", "C3"), (pu, "uncoupled", "C0")):
        ax.errorbar(p.fluence, p.intensity, p.intensity_err, fmt="o", ms=3, color=c)
        ff = np.geomspace(p.fluence.min(), p.fluence.max(), 50)
        ax.plot(
            ff,
            p.prefactor.value * (ff / p.f_ref) ** p.exponent.value,
            color=c,
            label=f"{lab}: α = {p.exponent}",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    # ticks at the fluences measured, written plainly (log-axis minor labels "2×10⁰" overlapped)
    # (several series at one T — a PL series, its repeat, a fluence series — give near-equal fluences:
    # a tick is kept only 0.15 decade or more from the one before, so the labels do not run into each other)
    ticks: list[float] = []
    for f_ in np.unique(np.round(np.concatenate([ps.fluence, pu.fluence]), 6)):
        if f_ > 0 and (not ticks or math.log10(f_ / ticks[-1]) >= 0.15):
            ticks.append(float(f_))
    ax.set_xticks(ticks)
    ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda x, _: f"{x:.2g}"))
    ax.xaxis.set_minor_formatter(mticker.NullFormatter())
    ax.set_xlabel("fluence (µJ/cm²)")
    ax.set_ylabel("band counts / s")
    fs = v.fits.get("fluence_series") or []
    if fs:
        ax.set_title(f"fluence series at {fs[0]['T_K']:.1f} K", fontsize=9)
    ax.legend(fontsize=7)
    _margins(fig)
    return fig


def _fig_vs_T(v: SFVerdict) -> Figure | None:
    on = v.fits.get("onset")
    tr = v.fits.get("tau_sf_vs_T")
    if on is None and tr is None:
        return None
    # one panel per quantity measured: no empty τ_SF panel when no SF-band decays were fitted
    panels = [k for k, x in (("onset", on), ("tau", tr)) if x is not None]
    fig, axs = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), squeeze=False)
    axes = dict(zip(panels, axs[0], strict=True))
    if on is not None:
        ax = axes["onset"]
        ax.errorbar(on.T_K, on.sf_fraction, on.sf_fraction_err, fmt="o", ms=3)
        tt = np.linspace(on.T_K.min(), on.T_K.max(), 200)
        z = np.clip((tt - on.t_on_K.value) / on.width_K.value, -60, 60)
        ax.plot(tt, on.w_min.value + (on.w_max.value - on.w_min.value) / (1 + np.exp(z)), "r-")
        ax.axvline(on.t_on_K.value, color="0.6", ls="--")
        ax.set_xlabel("T (K)")
        ax.set_ylabel("SF fraction")
        ax.set_title(f"T_on = {on.t_on_K} K", fontsize=9)
    if tr is not None:
        ax = axes["tau"]
        ax.errorbar(tr.x, tr.tau_ps, tr.tau_err_ps, fmt="o", ms=3)
        ax.set_xlabel("T (K)")
        ax.set_ylabel("τ_SF (ps)")
        ax.set_title(f"τ_SF vs T: {tr.direction}", fontsize=9)
    _margins(fig)
    return fig


def figures(v: SFVerdict) -> dict[str, Figure]:
    """All figures that can be drawn from a verdict's fits, by name."""
    out: dict[str, Figure] = {}
    for name, fn in (
        ("spectra", _fig_spectra),
        ("decays", _fig_decays),
        ("g2", _fig_g2),
        ("exponent", _fig_exponent),
        ("vs_T", _fig_vs_T),
    ):
        try:
            f = fn(v)
        except Exception as exc:  # a failing figure must not lose the report
            log.warning("figure %s failed: %s", name, exc)
            continue
        if f is not None:
            out[name] = f
    return out


_ICON = {PASS: "✅ pass", NOT_MEASURED: "— not measured"}


def _md_for(name: str, v: SFVerdict, figs: list[Path], out: Path) -> str:
    lines = [f"## {name}: **{v.verdict}**" + (f" — likely {v.confuser}" if v.confuser else ""), ""]
    lines += [f"- {r}" for r in v.reasons[:6]]
    lines += ["", "| # | check | result | numbers |", "|---|---|---|---|"]
    for it in v.items:
        res = _ICON.get(it.status, "❌ fail")
        lines.append(f"| {it.number} | {it.title} | {res} | {it.detail.replace('|', '/')} |")
    st = {k: x for k, x in v.strength.items() if x is not None}
    if st:
        lines += ["", "Strength: " + ", ".join(f"{k} = {_fmt(x)}" for k, x in st.items())]
    lines.append("")
    for p in figs:
        lines.append(f"![{p.stem}]({p.relative_to(out).as_posix()})")
    lines.append("")
    return "\n".join(lines)


def _fmt(x: Any) -> str:
    if isinstance(x, dict) and "value" in x:
        e = x.get("error")
        return f"{x['value']:.4g} ± {e:.2g}" if e is not None else f"{x['value']:.4g}"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def render(
    verdicts: SFVerdict | Mapping[str, SFVerdict],
    out_dir: str | Path,
    *,
    title: str = "SF analysis",
    dpi: int = 110,
) -> ReportFiles:
    """Write ``summary.json``, ``report.md``, ``report.html`` and ``analysis_<run>_<figure>.png``
    into ``out_dir``; the page starts with the verdict(s)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = {"run": verdicts} if isinstance(verdicts, SFVerdict) else dict(verdicts)
    all_figs: list[Path] = []
    sections = []
    summary: dict[str, Any] = {"title": title, "runs": {}}
    head = [f"# {title}", ""]
    for name, v in runs.items():
        head.append(f"- **{name}**: {v.summary()}")
        paths = []
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
        for fname, fig in figures(v).items():
            p = out / f"analysis_{safe}_{fname}.png"
            fig.savefig(p, dpi=dpi)
            plt.close(fig)
            paths.append(p)
        all_figs += paths
        sections.append(_md_for(name, v, paths, out))
        summary["runs"][name] = v.to_dict()
    md = "\n".join(head) + "\n\n" + "\n".join(sections)
    mdp = out / "report.md"
    mdp.write_text(md, encoding="utf-8")
    jp = out / "summary.json"
    jp.write_text(json.dumps(to_jsonable(summary), indent=1, allow_nan=False), encoding="utf-8")
    hp = out / "report.html"
    hp.write_text(
        _html(
            title, runs, out, {n: [p for p in all_figs if f"analysis_{_safe(n)}_" in p.name] for n in runs}
        ),
        encoding="utf-8",
    )
    log.info("report written to %s", out)
    return ReportFiles(markdown=mdp, html=hp, json=jp, figures=tuple(all_figs))


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _html(title: str, runs: Mapping[str, SFVerdict], out: Path, figs: Mapping[str, list[Path]]) -> str:
    e = html.escape
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}td,th{border:1px solid #ccc;"
        "padding:3px 6px;font-size:13px}table{border-collapse:collapse}.pass{color:#070}.fail{color:#a00}"
        ".nm{color:#777}</style></head><body>",
        f"<h1>{e(title)}</h1><ul>",
    ]
    for n, v in runs.items():
        parts.append(f"<li><b>{e(n)}</b>: {e(v.summary())}</li>")
    parts.append("</ul>")
    for n, v in runs.items():
        parts.append(
            f"<h2>{e(n)}: {e(v.verdict)}" + (f" — likely {e(v.confuser)}" if v.confuser else "") + "</h2>"
        )
        parts.append("<ul>" + "".join(f"<li>{e(r)}</li>" for r in v.reasons[:6]) + "</ul>")
        parts.append("<table><tr><th>#</th><th>check</th><th>result</th><th>numbers</th></tr>")
        for it in v.items:
            cls = {"pass": "pass", "fail": "fail"}.get(it.status, "nm")
            parts.append(
                f"<tr><td>{it.number}</td><td>{e(it.title)}</td><td class='{cls}'>{e(it.status)}</td>"
                f"<td>{e(it.detail)}</td></tr>"
            )
        parts.append("</table>")
        for p in figs.get(n, []):
            parts.append(f"<p><img src='{e(p.relative_to(out).as_posix())}' style='max-width:100%'></p>")
    parts.append("</body></html>")
    return "\n".join(parts)
