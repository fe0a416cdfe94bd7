"""``sflab inspect | repair | export | serve | absorption import`` — the commands on run files and data folders
(registered by :mod:`acq.cli`). Parse and print; the work is in :mod:`acq.runinfo`, :mod:`acq.store`,
:mod:`acq.export`, :mod:`acq.serve` and :mod:`acq.absorption`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from . import display
from .display import fail as _fail

__all__ = ["inspect", "repair", "export_command", "serve_command", "absorption_app"]

EXIT_OK, EXIT_BAD_INPUT = 0, 2


def inspect(runfile: Annotated[Path, typer.Argument(help="a run file")],
            as_json: Annotated[bool, typer.Option("--json", help="the full record, machine-readable")] = False) -> None:
    """Summarise a run file: status, points, streams, data quality, last error.

    Also says whether its writer is alive or the file needs `sflab repair` (works while the file is being
    written, or after its writer died). --json: the full record."""
    from .runinfo import describe

    try:
        info = describe(runfile)
    except (OSError, ValueError) as exc:
        _fail(str(exc))
    display.print_info(info, as_json=as_json)


def repair(runfile: Annotated[Path, typer.Argument(help="a run file whose writer died (kill -9, power cut)")]
           ) -> None:
    """Rebuild a run file whose writer died into a clean, closed file.

    All its completed points and every attribute are kept; the new file is built beside the old one and
    swapped in atomically. The original is kept next to it as NAME.interrupted.h5."""
    from .store import backups_of
    from .store import repair as _repair

    try:
        p = _repair(runfile)
    except (OSError, ValueError) as exc:
        _fail(str(exc))
    kept = backups_of(p)
    print(f"repaired: {p}" + (f" (the original is kept as {kept[-1].name})" if kept else ""))


def export_command(runfile: Annotated[Path, typer.Argument(help="a run file")],
                   to: Annotated[list[str] | None, typer.Option("--to", help="ptu, photon-hdf5 or text (repeat for "
                                                                             "several; default: all)")] = None,
                   out: Annotated[Path | None, typer.Option(help="output folder (default: <run>.export next to "
                                                                 "the run file)")] = None) -> None:
    """Export a run for other tools: PTU (PicoQuant, tttrlib), Photon-HDF5, text columns (Origin, Igor).

    PTU: one file per point's raw time tags (T2 for HBT tags, T3 for TCSPC tags). Text: every spectrum, decay
    and g2 as tab-separated columns with a # header (units, temperature, fluence), plus the per-point
    scalars. Formats the run has no data for are reported and skipped."""
    from .export import FORMATS, export_run

    dest = out or runfile.with_suffix(".export")
    try:
        res = export_run(runfile, dest, tuple(to or FORMATS))
    except (OSError, ValueError) as exc:
        _fail(f"export: {exc}")
    raise typer.Exit(EXIT_OK if display.print_export(display.console, res, dest) else EXIT_BAD_INPUT)


def serve_command(data: Annotated[Path, typer.Argument(help="the lab's data folder (campaign folders, run files)")],
                  host: Annotated[str, typer.Option(help="address to listen on (loopback unless --expose)")]
                  = "127.0.0.1",
                  port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 8000,
                  api_key: Annotated[str | None, typer.Option(envvar="SFLAB_SERVE_API_KEY",
                                                              help="API key clients must send (letters and "
                                                                   "digits; default: a new random key, printed)")]
                  = None,
                  expose: Annotated[bool, typer.Option(help="allow a non-loopback --host (the network sees the "
                                                            "data, behind the API key)")] = False) -> None:
    """Serve the data folder with Tiled: campaigns, run files, arrays and metadata, live points.

    A colleague connects with `from tiled.client import from_uri; c = from_uri("http://HOST:PORT",
    api_key="KEY")` (docs/serve-export.md). Prints one JSON line {"url", "api_key", "data"} when listening."""
    from .serve import new_api_key, serve

    key = api_key or new_api_key()
    try:
        serve(data, host=host, port=port, api_key=key, expose=expose,
              ready=lambda url: print(json.dumps({"url": url, "api_key": key, "data": str(data.resolve())}),
                                      flush=True))
    except (OSError, ValueError) as exc:
        _fail(f"serve: {exc}")


absorption_app = typer.Typer(no_args_is_help=True, add_completion=False,
                             help="Absorption spectra (physics.md P6): import spectrophotometer exports into a "
                                  "campaign.")


@absorption_app.command("import")
def absorption_import(file: Annotated[Path, typer.Argument(help="a PerkinElmer UV WinLab export: ASCII (.asc/.sp, "
                                                                "#HDR/#GR/#DATA) or CSV ('nm,A' / 'nm,%T')")],
                      campaign: Annotated[Path, typer.Option("--campaign", help="the campaign folder (or a folder of "
                                                                               "run files) the spectrum belongs to")],
                      T_K: Annotated[float | None, typer.Option("--T-K", help="sample temperature during the "
                                                                              "measurement, K (1-400); needed unless "
                                                                              "the export says 'T=20 K'")] = None,
                      sample: Annotated[str | None, typer.Option(help="sample name (default: the campaign's)")]
                      = None) -> None:
    """Import a spectrophotometer absorption spectrum (PerkinElmer Lambda 950, UV WinLab) into a campaign.

    The ordinate may be A or %T (converted to absorbance, A = 2 - log10 %T); wavelengths in either order.
    The spectrum is written as a run file (procedure AbsorptionImport, stream absorption) and registered in the
    campaign, so `sflab analyze FOLDER` uses the absorption at the lowest T for checklist item 9 (no
    ground-state absorption at the SF energy). Exit code 0 imported, 2 bad file or option (nothing written)."""
    from .absorption import AbsorptionImportError, import_absorption

    try:
        res = import_absorption(file, campaign, T_K=T_K, sample=sample)
    except (AbsorptionImportError, OSError) as exc:
        _fail(str(exc))
    ex = res.export
    bad = f", {ex.n_nonpositive} point(s) with T <= 0 left out" if ex.n_nonpositive else ""
    print(f"imported {file.name} ({ex.format}, ordinate {ex.ordinate_unit}, {ex.wavelength_nm.size} points "
          f"{ex.wavelength_nm.min():g}-{ex.wavelength_nm.max():g} nm{bad}) at {res.T_K:g} K -> {res.run_file}"
          + ("" if res.campaign else " (a folder without campaign.json: not indexed)"))
