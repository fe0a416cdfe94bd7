"""``sflab`` — the command line: one function per command, each parsing its arguments and printing.

The work is in :mod:`acq.workflows` (run, resume, replay, demo), :mod:`acq.pipeline` (analysis),
:mod:`acq.composition` (opening a lab), :mod:`acq.progress` and :mod:`acq.display` (output).
Exit codes: 0 success, 1 run failed (or aborted), 2 bad input (nothing moved), 130 interrupted
(Ctrl-C / SIGTERM; the backstop ran). ``sflab sim …`` is in :mod:`acq.cli_sim`; ``inspect``, ``repair``,
``export``, ``serve`` and ``absorption import`` in :mod:`acq.cli_files`. The simulated lab is composed by
:mod:`acq.composition`, the only module of ``acq`` that imports ``simulators``; this one is the only one that
imports ``gui`` (docs/decisions/0001, 0004).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from . import cli_files, cli_sim, display, workflows
from .cli_sim import TcspcMonoOpt
from .composition import SIM_TCSPC_BACKENDS, LabOptions, open_lab, resolve_sample, sim_check_config
from .config import ConfigError, LabConfig, load_config
from .workflows import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, BadInput

__all__ = ["app", "main", "open_lab", "sim_check_config", "EXIT_OK", "EXIT_FAILED", "EXIT_BAD_INPUT",
           "EXIT_INTERRUPTED"]

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="sflab — acquisition and superfluorescence analysis for the cryogenic scintillation "
                       "lab.\n\nExit codes: 0 success, 1 run failed, 2 bad input (nothing moved), 130 "
                       "interrupted.")
console, err_console, _fail = display.console, display.err_console, display.fail


def _guarded_code(fn: Callable[[], Any]) -> Any:
    """Run a workflow; bad input becomes its message and exit code 2."""
    try:
        return fn()
    except BadInput as exc:
        _fail(*exc.lines)


def _guarded(fn: Callable[[], int]) -> NoReturn:
    raise typer.Exit(_guarded_code(fn))


@app.callback()
def _main(verbose: Annotated[int, typer.Option("-v", "--verbose", count=True,
                                                help="more log output (-v info, -vv debug)")] = 0) -> None:
    workflows.setup_logging(verbose)


def _load_config(path: Path) -> LabConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        _fail(*exc.errors)


def _plan_lab_config(lab: Path | None, sim: bool | None) -> LabConfig:
    """The configuration a plan is checked against: ``lab`` (real), or the simulated lab's."""
    if lab is None:
        return sim_check_config()
    cfg = _load_config(lab)
    return cfg if not sim else sim_check_config(safety=cfg.safety)


def _lab_options(lab: Path | None, sim: bool | None, **kw: Any) -> LabOptions:
    """``LabOptions.choose``; a bad simulated time tagger or monochromator is bad input (exit 2)."""
    try:
        return LabOptions.choose(lab, sim, **kw)
    except ValueError as exc:
        _fail(str(exc))


def _sample(option: str | None, plan_sample: str = "") -> str:
    try:
        return resolve_sample(option, plan_sample)
    except ValueError as exc:
        _fail(str(exc))


@app.command()
def check(file: Annotated[Path, typer.Argument(help="a lab configuration (lab.toml) or a plan (TOML or .py)")],
          lab: Annotated[Path | None, typer.Option(help="for a plan: the lab configuration whose limits apply "
                                                        "(default: the simulated lab)")] = None) -> None:
    """Validate a lab configuration or a plan before anything moves (no instrument is contacted).

    For a plan: every step, parameter and limit (cryostat range, laser maximum, tube rating) is checked
    and errors are printed as file:line; a valid plan prints its runs with an estimate of lab time and
    disk space. Exit code 0 valid, 2 invalid."""
    from . import plans
    from .config import read_text_input

    if not file.exists():
        _fail(f"{file}:0: no such file")
    try:
        text = read_text_input(file, "plan or lab configuration") if file.suffix != ".py" else ""
    except ConfigError as exc:
        _fail(exc.errors[0])
    if file.suffix != ".py" and workflows.is_lab_config(text):
        display.print_config(console, file, _load_config(file))
        return
    raise typer.Exit(plans.check_command(file, console, err_console, lab_config=_plan_lab_config(lab, sim=None)))


# ============================================================================ campaigns: run / resume
SampleOpt = Annotated[str | None, typer.Option(
    "--sample", help="virtual sample for --sim: a preset (milano-2d-sl, technion-3d-sl, isolated-ncs, "
                     "biexciton-only, ase-film, miniband-shift) or a sample TOML file; default: the plan's "
                     "sample if it names a preset, else milano-2d-sl")]
SpeedOpt = Annotated[str, typer.Option(help="simulated lab clock: 'max' (as fast as possible), or lab seconds "
                                            "per wall second")]
FaultsOpt = Annotated[str | None, typer.Option(help="simulated faults, e.g. 'xray.garbage=0.05,interlock_open@600+30' "
                                                    "(see simulators/faults.py)")]
SeedOpt = Annotated[int, typer.Option(help="random seed of the simulated lab")]
LabOpt = Annotated[Path | None, typer.Option("--lab", help="lab configuration (lab.toml) of the real setup")]
SimOpt = Annotated[bool | None, typer.Option("--sim/--real", help="simulated lab (the default without --lab)")]
TcspcOpt = Annotated[str, typer.Option(help=f"simulated time tagger: {', '.join(SIM_TCSPC_BACKENDS)}")]
ProgressOpt = Annotated[bool, typer.Option("--progress/--quiet", help="live progress display")]


def _run_and_report(campaign: Any, show: bool, t0: float) -> int:
    code = _guarded_code(lambda: workflows.run_campaign(campaign, console, show=show))
    display.print_campaign(console, campaign)
    console.print(f"wall time {time.monotonic() - t0:.1f} s", highlight=False)
    return code


@app.command()
def run(plan: Annotated[Path, typer.Argument(help="a plan: TOML (see plans/) or a Python plan script")],
        lab: LabOpt = None, sim: SimOpt = None, sample: SampleOpt = None, speed: SpeedOpt = "max",
        faults: FaultsOpt = None, seed: SeedOpt = 0, tcspc: TcspcOpt = "picoharp300",
        tcspc_mono: TcspcMonoOpt = "cornerstone",
        out: Annotated[Path | None, typer.Option(help="campaign folder (default runs/<time>_<plan>)")] = None,
        analyze_after: Annotated[bool, typer.Option("--analyze/--no-analyze",
                                                    help="SF summary of the campaign at the end")] = True,
        progress: ProgressOpt = True) -> None:
    """Run a plan (validated whole first) into a campaign folder, with a live progress display.

    Nothing moves if anything in the plan is wrong. The procedure runs go one by one with a live display
    (current run, point, T, fluence, ETA).

    Writes into the campaign folder one run file per procedure run, campaign.json (the index of every run
    file) and queue.json (the persisted queue: after a crash or reboot, `sflab resume FOLDER` continues at
    the first incomplete point). Exit codes: 0 all runs succeeded, 1 a run failed or was aborted, 2 bad plan
    or configuration (nothing moved), 130 interrupted (resumable)."""
    from .campaign import Campaign
    from .plans import format_bytes, format_duration, load_plan

    p = load_plan(plan, _plan_lab_config(lab, sim=bool(sim) or lab is None))
    if p.errors:
        _fail(*p.errors, f"{plan}: {len(p.errors)} error(s); nothing was run")
    opts = _lab_options(lab, sim, speed=speed, faults=faults, seed=seed, tcspc=tcspc, tcspc_mono=tcspc_mono)
    if not opts.sim and lab is None:
        _fail("--real needs the real lab's configuration: --lab lab.toml (nothing was run)")
    if opts.sim:
        opts = replace(opts, sample=_sample(sample, p.sample))
    folder = (out or Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}_{plan.stem}").resolve()
    try:
        campaign = Campaign.create(folder, p, opts.to_dict())
    except FileExistsError as exc:
        _fail(str(exc))
    console.print(f"[bold]sflab run[/bold] {plan}: {sum(not r.is_wait for r in p.runs)} runs, estimated "
                  f"{format_duration(p.lab_seconds)} lab time, {format_bytes(p.bytes)}; "
                  + ("simulated lab, sample " + opts.sample if opts.sim else f"lab {lab}")
                  + f" → {folder}", highlight=False, soft_wrap=True)
    code = _run_and_report(campaign, progress, time.monotonic())
    if code == EXIT_INTERRUPTED:
        err_console.print(f"interrupted — continue with: sflab resume {folder}", style="yellow", markup=False,
                          soft_wrap=True)
    elif analyze_after and campaign.run_files():
        _analyze(campaign.run_files(), report=None, as_json=False, quiet=True)
    raise typer.Exit(code)


@app.command()
def resume(target: Annotated[Path, typer.Argument(help="a campaign folder (or its campaign.json / queue.json), or "
                                                       "one run file")],
           lab: LabOpt = None, sim: SimOpt = None, sample: SampleOpt = None,
           speed: Annotated[str | None, typer.Option(help="simulated clock (default: as recorded)")] = None,
           faults: FaultsOpt = None, seed: Annotated[int | None, typer.Option(help="simulated seed")] = None,
           progress: ProgressOpt = True,
           retake: Annotated[bool, typer.Option("--retake", help="a run whose file has no readable version: "
                                                          "measure its points again (under X-ray dose again "
                                                          "for X-ray runs); recorded in the new file")] = False
           ) -> None:
    """Continue a campaign (or one run file) after a crash, kill or reboot.

    The interrupted run continues at its first incomplete point (completed points are copied, never
    re-taken — nor re-exposed to X-rays), then the rest of the queue runs.

    A campaign is reopened on the lab it was started with (the options in campaign.json; --lab, --sample,
    --speed, --faults, --seed override). A single run file is continued on the lab its provenance names."""
    from .campaign import Campaign

    if target.suffix == ".h5":
        _guarded(lambda: workflows.resume_file(target, console, lab=lab, sim=sim, sample=sample, speed=speed,
                                               faults=faults, seed=seed, show=progress))
    try:
        campaign = Campaign.open(target)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    campaign.info["lab"] = LabOptions.from_dict(campaign.info.get("lab", {})).override(
        lab=lab, sim=sim, sample=sample, speed=speed, faults=faults, seed=seed).to_dict()
    if retake:
        for it in campaign.queue.pending:
            if it.status != "queued":
                campaign.queue.mark(it.id, it.status, retake=True)
    todo = campaign.queue.pending
    if not todo:
        console.print(f"{campaign.folder}: nothing left to run", highlight=False, soft_wrap=True)
        display.print_campaign(console, campaign)
        raise typer.Exit(workflows.campaign_exit(campaign))
    console.print(f"[bold]sflab resume[/bold] {campaign.folder}: {len(todo)} runs left "
                  f"({sum(it.status != 'queued' for it in todo)} to continue)", highlight=False, soft_wrap=True)
    raise typer.Exit(_run_and_report(campaign, progress, time.monotonic()))


# ============================================================================ analyze
def _analyze(paths: list[Path], *, report: Path | None, as_json: bool, quiet: bool = False,
             recompute: bool = False, workers: int | None = None, scheduler: str | None = None) -> int:
    from .pipeline import analyze_paths

    if workers is not None and scheduler is not None:
        _fail("analyze: give --workers or --scheduler, not both")
    try:
        with display.task_progress(err_console, f"analyze on {workers or scheduler}") as progress:
            res = analyze_paths(paths, report=report, recompute=recompute, workers=workers, scheduler=scheduler,
                                progress=progress if workers or scheduler else None)
    except (OSError, TimeoutError, ValueError) as exc:   # the Dask cluster could not be started or reached
        _fail(f"analyze: cannot use the Dask cluster: {exc}")
    return display.print_analysis(console, err_console, res, as_json=as_json, quiet=quiet)


@app.command()
def analyze(runfiles: Annotated[list[Path], typer.Argument(help="run files and/or campaign folders")],
            report: Annotated[Path | None, typer.Option(help="write a report folder here (figures, report.html, "
                                                             "report.md, summary.json)")] = None,
            as_json: Annotated[bool, typer.Option("--json", help="machine-readable output on stdout")] = False,
            recompute: Annotated[bool, typer.Option(help="recompute each run's summary instead of using the one "
                                                         "stored in the file (the campaign's is always computed)")]
            = False,
            workers: Annotated[int | None, typer.Option(min=1, help="analyse the run files in parallel on a local "
                                                                    "Dask cluster of N worker processes")] = None,
            scheduler: Annotated[str | None, typer.Option(help="use an existing Dask cluster (tcp://host:8786) whose "
                                                               "workers see the same data folder")] = None) -> None:
    """SF analysis of run files and campaign folders, verdict first.

    The campaign verdict (SF / not SF / inconclusive, with the likely confuser), then the campaign-level
    numbers (SF fraction and τ_SF vs T, fluence exponents, onset
    temperature) and one summary per run file. Exit code 2 if a file cannot be read. --workers N / --scheduler
    ADDRESS: the run files in parallel with dask.distributed (same verdicts); one file is always analysed here."""
    raise typer.Exit(_analyze(runfiles, report=report, as_json=as_json, recompute=recompute, workers=workers,
                              scheduler=scheduler))


# ============================================================================ replay
@app.command()
def replay(file: Annotated[Path, typer.Argument(help="a PTU or Photon-HDF5 recording, or an sflab run file")],
           procedure: Annotated[str | None, typer.Option(help="procedure to run on the replaying lab (recordings; "
                                                              "default HBTCorrelation)")] = None,
           param: Annotated[list[str], typer.Option("--param", help="procedure parameter key=value (repeatable)")]
           = [],  # noqa: B006 - typer reads the default
           sample: SampleOpt = None, speed: SpeedOpt = "max", seed: Annotated[int | None, typer.Option(
               help="simulated seed (run files: as recorded)")] = None, tcspc: TcspcOpt = "picoharp300",
           out: Annotated[Path, typer.Option(help="folder for the new run file")] = Path("replay-output")) -> None:
    """Re-run a recording through the simulated lab.

    A PTU / Photon-HDF5 file: the simulated time tagger (PicoHarp PHLib or Swabian module, the real backend
    code) plays the recorded tags at the lab clock's pace while a procedure measures (default HBTCorrelation).
    An sflab run file: its recorded procedure and parameters are run again on the simulated lab with the
    recorded virtual sample and seed. Writes one new run file into --out."""
    try:
        params = workflows.parse_params(param)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    _guarded(lambda: workflows.replay_file(file, console, procedure=procedure, params=params, sample=sample,
                                           speed=speed, seed=seed, tcspc=tcspc, out=out))


# ============================================================================ sim serve


# ============================================================================ gui
@app.command("gui")
def gui_command(lab: LabOpt = None, sim: SimOpt = None, sample: SampleOpt = None,
                speed: Annotated[str, typer.Option(help="simulated lab clock (lab s per wall s, or 'max')")] = "1",
                faults: FaultsOpt = None, seed: SeedOpt = 0,
                queue: Annotated[Path | None, typer.Option(help="the persisted queue file (default "
                                                                "<data_dir>/queue.json)")] = None) -> None:
    """The desktop GUI on the real lab (--lab lab.toml) or the simulated one (default)."""
    try:
        from gui import app as gapp
    except ImportError as exc:   # e.g. no Qt platform libraries on this machine
        _fail(f"the GUI cannot start: {exc}", code=EXIT_FAILED)
    opts = LabOptions.choose(lab, sim, sample=_sample(sample), speed=speed, faults=faults, seed=seed)
    data_dir = Path(_load_config(lab).lab["data_dir"]) if not opts.sim and lab is not None else Path("runs")
    code = gapp.main(open_session=lambda: _guarded_code(lambda: workflows.open_session(opts, data_dir)),
                     queue_path=queue or data_dir / "queue.json")
    raise typer.Exit(int(code or 0))


# ============================================================================ demo
@app.command()
def demo(out: Annotated[Path, typer.Option(help="folder for the campaign (run files, index, report)")]
         = Path("demo-output"),
         engine_check: Annotated[bool | None, typer.Option(
             "--engine-check/--full", help="--engine-check: the engine check on in-memory fake instruments; "
                                           "--full: the simulated SF campaign (default when the procedures are "
                                           "installed)")] = None,
         sample: Annotated[str, typer.Option(help="virtual sample preset or file (full demo)")] = "milano-2d-sl",
         seed: SeedOpt = 0, tcspc_mono: TcspcMonoOpt = "cornerstone",
         speed: Annotated[str, typer.Option(help="lab clock: 'max' (as fast as possible) or lab s per wall s")]
         = "max",
         progress: ProgressOpt = True) -> None:
    """A complete simulated campaign end to end, ending with the SF verdict and a report folder.

    Full demo: a PL temperature series at several fluences with its thermal-cycle repeat, a fluence series,
    the isolated-NC reference film, the in-situ absorption, an RL (X-ray) temperature series and an HBT g2
    on the simulated lab (real drivers over loopback, accelerated clock), then the campaign analysis
    (`sflab analyze`) with a report folder. --engine-check: the run-engine check on in-memory fakes."""
    from .campaign import Campaign
    from .registry import procedures

    missing = [p for p in workflows.demo_procedures() if p not in procedures()]
    if engine_check or (engine_check is None and missing):
        _guarded(lambda: workflows.engine_check(out, speed, console, show=progress))
    if missing:
        _fail(f"the full demo needs the procedures {', '.join(missing)}", code=EXIT_FAILED)
    opts = _lab_options(None, True, sample=_sample(sample), speed=speed, seed=seed, tcspc_mono=tcspc_mono)
    folder = (out / f"{time.strftime('%Y%m%d-%H%M%S')}_{workflows.sample_folder_name(sample)}").resolve()
    p = workflows.demo_plan(sample, folder)
    if p.errors:  # a bug of sflab's, not the user's
        _fail(*p.errors, code=EXIT_FAILED)
    campaign = Campaign.create(folder, p, opts.to_dict())
    console.print(f"[bold]sflab demo[/bold] — simulated SF campaign on sample [bold]{opts.sample}[/bold]: "
                  f"{sum(not r.is_wait for r in p.runs)} runs, {p.lab_seconds / 3600:.1f} h of lab time on the "
                  f"accelerated clock → {folder}", highlight=False, soft_wrap=True)
    t0 = time.monotonic()
    code = _guarded_code(lambda: workflows.run_campaign(campaign, console, show=progress))
    wall = time.monotonic() - t0
    display.print_campaign(console, campaign)
    if code != EXIT_OK:
        raise typer.Exit(code)
    console.print(f"campaign done in {wall:.1f} s wall", highlight=False)
    rc = _analyze([folder], report=folder / "report", as_json=False, quiet=True)
    console.print(f"re-read it: [cyan]sflab analyze {folder}[/cyan]; report: [cyan]{folder / 'report'}[/cyan]",
                  highlight=False, soft_wrap=True)
    raise typer.Exit(rc)


# ============================================================================ sim, run files, data folders
app.add_typer(cli_sim.sim_app, name="sim")
app.add_typer(cli_files.absorption_app, name="absorption")
for _name, _fn in (("inspect", cli_files.inspect), ("repair", cli_files.repair), ("export", cli_files.export_command),
                   ("serve", cli_files.serve_command)):
    app.command(_name)(_fn)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/yellow]")
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()
