"""Absorption spectra from a spectrophotometer (physics.md P6, [000] Fig. 3g: PerkinElmer Lambda 950 with
an integrating sphere) into a campaign, so that the absorption at the lowest T reaches the SF verdict
(checklist item 9, "no ground-state absorption at E_SF").

Formats read (:func:`read_export`, recognised by content, whatever the extension):

**UV WinLab ASCII** (``.asc``, ``.sp``; PerkinElmer "PEDS" text, Lambda 9/900/950/1050). A header of one
value per line, then section markers::

    PE UV       SUBTECH     SPECTRUM    ASCII       PEDS        4.00     line 1: identifier
       -1
    Sample5933.Probe.Raw.asc                                            line 3: file / sample name
    24/02/27                                                            line 4: date (yy/mm/dd)
    16:45:12.00                                                         line 5: time
    …                                                                   line 8: operator, line 9: sample
    Lambda 1050                                                         line 12: instrument (UV WinLab 6)
    …
    #HDR
    …
    #GR
    nm                                                                  +1: abscissa unit (nm or cm-1)
    %T                                                                  +2: ordinate (A, %T or T)
    1.0
    0.0
    1900.000000                                                         +5: first abscissa
    -5.000000                                                           +6: step (negative: descending)
    281                                                                 +7: number of points
    …
    #DATA
    1900.000000<TAB>99.999792                                           abscissa / ordinate pairs
    …

Sources: FAIRmat-NFDI/readers-transmission ``src/fairmat_readers_transmission/perkin_elmers_asc.py`` (a
reader of these files for NOMAD: header lines by index — 2 file name, 3/4 start date/time, 7 analyst, 11
instrument; ordinate type and wavelength unit on the two lines after ``#GR``; data after ``#DATA``) and its
test exports ``FAIRmat-NFDI/nomad-measurements tests/data/transmission/*.Probe.Raw.asc`` (real Lambda 1050 /
UV WinLab 6.3 files: ``%T``, tab-separated, descending wavelength); solarchemist/pelambda ``README.md`` and
``R/import.R`` (Lambda 900 ``.SP``: ``#HDR``/``#GR``/``#DATA``, #GR rows 1, 2, 5, 6, 7 = x unit, y unit, x
start, x step, number of points).

**UV WinLab CSV** (``.csv``): an optional title line, a header ``nm,A`` or ``nm,%T`` (also written
``Wavelength (nm),%T``, ``nm,Abs``), then ``wavelength,value`` rows, usually descending. Source:
evnchn/ISDN2603-UV-VIS-NIR-spectroscopy ``DATA/*.Sample.csv`` (real UV WinLab exports: ``Created as New
Dataset,`` / ``nm,A`` / ``2500.0,0.5289`` …). A ``;`` separator with decimal commas (a European Windows
locale) is read as well.

**Ordinate → absorbance** (decadic, what the analysis compares): ``A`` as is; ``%T``: A = 2 − log₁₀(%T);
``T``: A = −log₁₀ T. A transmittance ≤ 0 (noise at a very high optical density) has no absorbance: that
point is NaN (counted, left out of the analysis). Any other ordinate (``%R``, ``KM``, …) is refused.

**Temperature.** UV WinLab records no sample temperature (the cryostat is not the spectrophotometer's). It
is given with ``--T-K`` (:func:`import_absorption` ``T_K``) or written by the operator into the export's
sample description / CSV title as ``T=20 K`` (or ``T = 20K``); both given must agree. Allowed: 1–400 K.

**Storage** (docs/run-files.md): one run file per imported spectrum, procedure ``AbsorptionImport``, stream
``absorption`` with per-point ``absorbance`` [n], ``ordinate`` [n] (as exported), ``T_K``, on the static axis
``wavelength`` (nm, ascending); ``parameters`` names the source file, its SHA-256, the format and header.
Into a campaign folder the file is registered in ``campaign.json`` / ``queue.json`` as a finished item (so
``sflab analyze FOLDER`` pools it); into a plain folder of run files it is just written there.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["AbsorptionExport", "AbsorptionImportError", "read_export", "to_absorbance", "import_absorption",
           "ImportResult", "PROCEDURE", "T_MIN_K", "T_MAX_K", "ORDINATES", "absorption_stream", "absorption_point"]

#: the procedure name of an imported absorption run file
PROCEDURE = "AbsorptionImport"
T_MIN_K, T_MAX_K = 1.0, 400.0
#: ordinate names accepted (normalised) → unit
ORDINATES = {"A": "A", "ABS": "A", "ABSORBANCE": "A", "%T": "%T", "T%": "%T", "TRANSMITTANCE(%)": "%T",
             "T": "T", "TRANSMITTANCE": "T"}
_X_UNITS = {"NM": "nm", "WAVELENGTH(NM)": "nm", "WAVELENGTH[NM]": "nm", "CM-1": "cm-1", "1/CM": "cm-1"}
_T_IN_TEXT = re.compile(r"(?<![A-Za-z0-9_])T\s*=\s*([0-9]+(?:[.,][0-9]+)?)\s*K\b")
#: UV WinLab ASCII header lines (0-based) by the NOMAD reader's indices
_ASC_HEADER = {"file": 2, "date": 3, "time": 4, "operator": 7, "description": 8, "instrument": 11}


class AbsorptionImportError(ValueError):
    """A bad export or option: one line naming the file, what is wrong and what is allowed."""


@dataclass
class AbsorptionExport:
    """One spectrum read from an export, wavelength ascending."""

    path: Path
    format: str
    wavelength_nm: np.ndarray
    ordinate: np.ndarray
    ordinate_unit: str
    absorbance: np.ndarray
    header: dict[str, str] = field(default_factory=dict)
    #: the temperature written into the export's text (``T=20 K``), None when it has none
    T_K: float | None = None

    @property
    def n_nonpositive(self) -> int:
        return int(np.sum(~np.isfinite(self.absorbance)))


def to_absorbance(values: np.ndarray, unit: str) -> np.ndarray:
    """Decadic absorbance from an ordinate in ``A``, ``%T`` or ``T`` (T ≤ 0 → NaN)."""
    v = np.asarray(values, dtype=float)
    if unit == "A":
        return v.copy()
    t = v / 100.0 if unit == "%T" else v
    out = np.full_like(t, np.nan)
    ok = t > 0
    out[ok] = -np.log10(t[ok])
    return out


def _norm(s: str) -> str:
    return re.sub(r"\s+", "", s.strip().strip('"').strip("'")).upper()


def _ordinate(name: str, path: Path, where: str) -> str:
    u = ORDINATES.get(_norm(name))
    if u is None:
        raise AbsorptionImportError(f"{path}:{where}: ordinate {name.strip()!r} is not absorbance or transmittance "
                                    "(allowed: A, %T, T); export the spectrum from UV WinLab as A or %T")
    return u


def _x_unit(name: str, path: Path, where: str) -> str:
    u = _X_UNITS.get(_norm(name))
    if u is None:
        raise AbsorptionImportError(f"{path}:{where}: abscissa unit {name.strip()!r} is not a wavelength or "
                                    "wavenumber (allowed: nm, cm-1)")
    return u


def _float(s: str, comma: bool = False) -> float:
    return float(s.replace(",", ".") if comma else s)


def _temperature_in(text: str) -> float | None:
    m = _T_IN_TEXT.search(text)
    return float(m.group(1).replace(",", ".")) if m else None


def _finish(path: Path, fmt: str, x: list[float], y: list[float], xu: str, yu: str, header: dict[str, str],
            T: float | None) -> AbsorptionExport:
    if len(x) < 3:
        raise AbsorptionImportError(f"{path}: {len(x)} data point(s); an absorption spectrum needs at least 3")
    xa, ya = np.asarray(x, float), np.asarray(y, float)
    if not (np.all(np.isfinite(xa)) and np.all(xa > 0)):
        raise AbsorptionImportError(f"{path}: the abscissa has values ≤ 0 or not finite; wavelengths in nm (or "
                                    "wavenumbers in cm-1) are > 0")
    wl = xa if xu == "nm" else 1e7 / xa
    order = np.argsort(wl, kind="stable")
    wl, ya = wl[order], ya[order]
    if np.any(np.diff(wl) == 0):
        raise AbsorptionImportError(f"{path}: a wavelength appears twice; one value per wavelength is allowed")
    A = to_absorbance(ya, yu)
    if not np.any(np.isfinite(A)):
        raise AbsorptionImportError(f"{path}: no point has a finite absorbance (every transmittance ≤ 0?)")
    return AbsorptionExport(path, fmt, wl, ya, yu, A, header, T)


def _read_asc(path: Path, lines: list[str]) -> AbsorptionExport:
    stripped = [ln.strip() for ln in lines]
    try:
        i_gr = stripped.index("#GR")
        i_data = stripped.index("#DATA")
    except ValueError:
        raise AbsorptionImportError(f"{path}: a UV WinLab ASCII export has #GR and #DATA section markers; this "
                                    "file lacks " + ("#GR" if "#GR" not in stripped else "#DATA")) from None
    if i_data < i_gr + 3:
        raise AbsorptionImportError(f"{path}:{i_gr + 1}: the #GR section is too short (abscissa unit, ordinate, …, "
                                    "number of points)")
    header = {k: stripped[i] for k, i in _ASC_HEADER.items() if i < i_gr and stripped[i]}
    header["identifier"] = stripped[0]
    # the whole #GR block, as written (its lines 3-4 — 1.0 / 0.0 in every export seen — are kept, not applied)
    header["gr"] = " | ".join(stripped[i_gr + 1:i_data])
    xu = _x_unit(stripped[i_gr + 1], path, str(i_gr + 2))
    yu = _ordinate(stripped[i_gr + 2], path, str(i_gr + 3))
    n_decl: int | None = None
    if i_gr + 7 < i_data:
        try:
            n_decl = int(float(stripped[i_gr + 7]))
        except ValueError:
            n_decl = None
    x: list[float] = []
    y: list[float] = []
    for k, ln in enumerate(stripped[i_data + 1:], start=i_data + 2):
        if not ln:
            continue
        parts = ln.replace(";", " ").split()
        comma = "." not in ln and "," in ln
        if len(parts) != 2:
            raise AbsorptionImportError(f"{path}:{k}: {ln[:60]!r} is not a wavelength/value pair (allowed: two "
                                        "numbers separated by a tab or spaces)")
        try:
            x.append(_float(parts[0], comma))
            y.append(_float(parts[1], comma))
        except ValueError:
            raise AbsorptionImportError(f"{path}:{k}: {ln[:60]!r} is not a wavelength/value pair (allowed: two "
                                        "numbers separated by a tab or spaces)") from None
    if n_decl is not None and n_decl != len(x):
        raise AbsorptionImportError(f"{path}:{i_gr + 8}: the #GR section declares {n_decl} points but #DATA holds "
                                    f"{len(x)} (a truncated or edited export?)")
    T = _temperature_in(header.get("description", "")) or _temperature_in(header.get("file", ""))
    return _finish(path, "perkinelmer-asc", x, y, xu, yu, header, T)


def _read_csv(path: Path, lines: list[str]) -> AbsorptionExport:
    title: list[str] = []
    xu = yu = None
    sep = ","
    x: list[float] = []
    y: list[float] = []
    for k, raw in enumerate(lines, start=1):
        ln = raw.strip()
        if not ln:
            continue
        if xu is None:
            for s_ in (",", ";", "\t"):
                cells = ln.rstrip(s_).split(s_)
                if len(cells) > 2 and _norm(cells[0]) in _X_UNITS:
                    raise AbsorptionImportError(f"{path}:{k}: {len(cells) - 1} ordinate columns; sflab imports one "
                                                "spectrum per file (export each sample's spectrum on its own)")
                if len(cells) == 2 and _norm(cells[0]) in _X_UNITS and cells[1].strip():
                    xu = _x_unit(cells[0], path, str(k))
                    yu = _ordinate(cells[1], path, str(k))
                    sep = s_
                    break
            else:
                title.append(ln.rstrip(",;"))
                if len(title) > 5:
                    break
            continue
        cells = [c.strip() for c in ln.split(sep)]
        if len(cells) > 2 and all(not c for c in cells[2:]):
            cells = cells[:2]
        comma = sep == ";"
        try:
            if len(cells) != 2:
                raise ValueError
            x.append(_float(cells[0], comma))
            y.append(_float(cells[1], comma))
        except ValueError:
            raise AbsorptionImportError(f"{path}:{k}: {ln[:60]!r} is not a wavelength{sep}value row") from None
    if xu is None or yu is None:
        raise AbsorptionImportError(f"{path}: no column header: a UV WinLab CSV export has a line 'nm,A' or "
                                    "'nm,%T' (also 'Wavelength (nm),%T') before the data")
    header = {"title": " / ".join(title)} if title else {}
    return _finish(path, "perkinelmer-csv", x, y, xu, yu, header, _temperature_in(" ".join(title)))


def read_export(path: str | Path) -> AbsorptionExport:
    """Read a UV WinLab ASCII (``#HDR``/``#GR``/``#DATA``) or CSV export (see the module doc)."""
    p = Path(path)
    if p.is_dir():
        raise AbsorptionImportError(f"{p}: is a folder; give the exported spectrum file (.asc, .sp or .csv)")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise AbsorptionImportError(f"{p}: cannot read: {exc.strerror or exc}") from None
    if b"\x00" in data[:4096]:
        raise AbsorptionImportError(f"{p}: a binary file; sflab reads UV WinLab's ASCII (.asc/.sp) and CSV exports "
                                    "(File → Save As → ASCII or CSV), not its binary .sp")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")   # UV WinLab writes the Windows code page
    lines = text.splitlines()
    if not lines:
        raise AbsorptionImportError(f"{p}: empty file")
    if any(ln.strip() == "#DATA" for ln in lines) or lines[0].lstrip().startswith("PE UV"):
        return _read_asc(p, lines)
    return _read_csv(p, lines)


# ---------------------------------------------------------------------------------------------- stream
def absorption_stream(wavelength_nm: np.ndarray, ordinate_unit: str, *, ordinate_doc: str = "",
                      extra: tuple[Any, ...] = (), long_name: str = "absorption spectrum") -> Any:
    """The run-file stream ``absorption`` (what ``acq.summary`` reads for checklist item 9): per point
    ``absorbance`` [n] (decadic), ``ordinate`` [n] (in ``ordinate_unit``: A, %T or T) and ``T_K``, on the static
    axis ``wavelength`` (nm, ascending); ``extra``: further ``acq.store.Field`` s of the writer (the in-situ
    transmission's error, mask and raw spectra). Used by the import and by ``procedures.absorption``."""
    from .store import Field, Stream

    wl = np.asarray(wavelength_nm, float)
    if wl.size > 1 and np.any(np.diff(wl) <= 0):
        raise ValueError("the absorption stream's wavelength axis must increase strictly")
    n = int(wl.size)
    unit = {"A": "", "%T": "percent", "T": ""}[ordinate_unit]
    return Stream("absorption", (Field("absorbance", (n,), "f8", "", "absorbance (decadic, -log10 T)"),
                                 Field("ordinate", (n,), "f8", unit, ordinate_doc or f"ordinate ({ordinate_unit})"),
                                 Field("T_K", (), "f8", "K", "sample temperature during the measurement"),
                                 *extra),
                  signal="absorbance", axes=(".", "wavelength"), static={"wavelength": (wl, "nm")},
                  long_name=long_name)


def absorption_point(absorbance: np.ndarray, ordinate: np.ndarray, T_K: float) -> dict[str, Any]:
    """One point of :func:`absorption_stream` (its three common fields)."""
    return {"absorbance": np.asarray(absorbance, float), "ordinate": np.asarray(ordinate, float), "T_K": float(T_K)}


# ---------------------------------------------------------------------------------------------- import
@dataclass
class ImportResult:
    run_file: Path
    export: AbsorptionExport
    T_K: float
    campaign: bool


def _check_T(T: float | None, export: AbsorptionExport) -> float:
    p = export.path
    if T is None and export.T_K is None:
        raise AbsorptionImportError(f"{p}: no measurement temperature: the export does not record one; give it with "
                                    f"--T-K ({T_MIN_K:g}–{T_MAX_K:g} K) or write 'T=20 K' into the sample "
                                    "description before exporting")
    if T is not None and export.T_K is not None and abs(T - export.T_K) > 0.5:
        raise AbsorptionImportError(f"{p}: --T-K {T:g} K disagrees with the T = {export.T_K:g} K written in the "
                                    "export; give one of them")
    v = float(T if T is not None else export.T_K)  # type: ignore[arg-type]
    if not math.isfinite(v) or not T_MIN_K <= v <= T_MAX_K:
        raise AbsorptionImportError(f"{p}: temperature {v:g} K is outside {T_MIN_K:g}–{T_MAX_K:g} K")
    return v


def import_absorption(path: str | Path, campaign: str | Path, *, T_K: float | None = None,
                      sample: str | None = None) -> ImportResult:
    """Read an export and write it as a run file into ``campaign`` (a campaign folder, registered in its
    index, or a plain folder of run files). Raises :class:`AbsorptionImportError` with one line."""
    from .campaign import INDEX, Campaign
    from .names import safe_name
    from .queue import QueueItem
    from .store import RunWriter, open_run, post_run_update
    from .summary import summarize

    folder = Path(campaign)
    if folder.is_file() and folder.name == INDEX:
        folder = folder.parent
    if not folder.is_dir():
        raise AbsorptionImportError(f"{folder}: no such campaign folder (give the folder `sflab run` wrote, or a "
                                    "folder of run files)")
    export = read_export(path)
    T = _check_T(T_K, export)
    src = Path(path)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    try:
        camp = Campaign.open(folder) if (folder / INDEX).exists() else None
    except (ValueError, OSError, KeyError, TypeError) as exc:
        raise AbsorptionImportError(f"{folder / INDEX}: not a readable campaign index ({exc}); nothing was "
                                    "imported") from None
    name = sample or (str(camp.info.get("sample", "")) if camp is not None else "") or \
        export.header.get("file", src.stem).split(".")[0]
    if camp is not None:
        for old in camp.queue.items:
            if old.procedure == PROCEDURE and old.parameters.get("sha256") == digest \
                    and abs(float(old.parameters.get("T_K", math.nan)) - T) <= 0.5:
                raise AbsorptionImportError(f"{src}: already imported into {folder} at {T:g} K as {old.run_file}")
    params: dict[str, Any] = {"source": str(src.resolve()), "source_name": src.name, "sha256": digest,
                              "format": export.format, "ordinate": export.ordinate_unit, "T_K": T,
                              "header": export.header, "n_points": int(export.wavelength_nm.size),
                              "n_nonpositive_transmittance": export.n_nonpositive,
                              "T_from": "option" if T_K is not None else "export"}
    title = f"absorption at {T:g} K ({src.name})"
    it: QueueItem | None = None
    if camp is not None:
        it = camp.queue.add(PROCEDURE, params, title, estimate_s=0.0, n_points=1)
        out = folder / camp.filename(it, len(camp.queue.items) - 1)
    else:
        out = folder / f"absorption_{T:g}K_{safe_name(src.stem)}.h5"
    if out.exists():
        if camp is not None and it is not None:
            camp.queue.remove(it.id)
        raise AbsorptionImportError(f"{out}: exists; sflab never overwrites a run file")
    stream = absorption_stream(export.wavelength_nm, export.ordinate_unit,
                               ordinate_doc=f"ordinate as exported ({export.ordinate_unit})",
                               long_name="absorption spectrum (imported spectrophotometer export)")
    try:
        w = RunWriter(out, procedure=PROCEDURE, parameters=params, streams=[stream], title=title,
                      sample={"name": name}, config={"imported_from": str(src.resolve()), "format": export.format},
                      swmr=False)
        try:
            w.append({"absorption": absorption_point(export.absorbance, export.ordinate, T)})
            w.log_event("import", f"imported {src.name} ({export.format}, ordinate {export.ordinate_unit}) at {T:g} K")
            w.finish("success")
        finally:
            w.close()
        post_run_update(out, analysis=summarize(open_run(out)), sidecar_links=False)
    except BaseException:
        out.unlink(missing_ok=True)
        if camp is not None and it is not None:
            camp.queue.remove(it.id)
        raise
    if camp is not None and it is not None:
        camp.queue.mark(it.id, "done", run_file=str(out))
    log.info("absorption %s at %g K → %s", src, T, out)
    return ImportResult(out, export, T, camp is not None)
