"""``sflab`` — the command line.

Exit codes scripts can trust: 0 success, 1 run failed (or aborted), 2 bad input (nothing moved),
130 interrupted (Ctrl-C / SIGTERM; the backstop ran).

``acq.cli`` is sflab's composition root: the one module of ``acq`` allowed to import
``simulators`` (for ``--sim``) and, lazily, ``gui`` (docs/decisions/0001-layers.md).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from .clock import make_clock
from .config import ConfigError, load_config
from .events import EventBus
from .lab import Lab
from .runner import Runner, ValidationError, handle_signals
from .session import LabSession

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="sflab — acquisition and superfluorescence analysis for the cryogenic scintillation "
                       "lab.\n\nExit codes: 0 success, 1 run failed, 2 bad input (nothing moved), 130 "
                       "interrupted.")
console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)
log = logging.getLogger("sflab")


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("pymeasure", "pyvisa", "numba", "matplotlib", "h5py", "websockets", "asyncio"):
        logging.getLogger(noisy).setLevel(max(level, logging.ERROR))


@app.callback()
def _main(verbose: Annotated[int, typer.Option("-v", "--verbose", count=True,
                                                help="more log output (-v info, -vv debug)")] = 0) -> None:
    _setup_logging(verbose)


def open_lab(config: Path | None = None, *, sim: bool | None = None, sample: str = "milano-2d-sl",
             speed: str = "max", faults: str | None = None, seed: int = 0, tcspc: str = "picoharp300",
             data_dir: Path | None = None, bus: EventBus | None = None,
             replay: Path | None = None) -> LabSession:
    """A connected-on-demand lab: the real one from ``config`` (``lab.toml``), or — with no config or
    ``sim=True`` — the simulated lab (``simulators.start_lab``) reached through the same drivers over
    loopback, on an accelerated clock. ``replay`` (simulated only): the time tagger plays this PTU /
    Photon-HDF5 recording instead of the sample physics. Raises ConfigError on a bad configuration
    (nothing contacted)."""
    from .clock import RealClock
    from .config import load_config, sim_config

    simulate = sim if sim is not None else config is None
    if not simulate:
        cfg = load_config(config)
        clock = RealClock()
        lab = Lab.from_config(cfg, clock)
        d = data_dir or Path(cfg.lab["data_dir"])
        return LabSession(lab, clock, cfg, bus or EventBus(clock), d,
                          sample={"name": str(cfg.sample.get("name", "")), "truth": {}})
    import simulators

    clock = make_clock(speed)
    simlab = simulators.start_lab(clock=clock, sample=sample, faults=faults, seed=seed, tcspc_backend=tcspc)
    try:
        safety = None
        if config is not None:  # a lab.toml's [safety] and [lab] still apply to a simulated run
            base = load_config(config)
            safety = base.safety
        cfg = sim_config(simlab.resources, sample={"name": simlab.sample_name}, safety=safety)
        inject = simlab.inject
        if replay is not None:
            from simulators.replay import replay_phlib, replay_tagger_module

            inject = dict(inject)
            inject["tcspc"] = ({"phlib": replay_phlib(replay, clock=clock, loop=True)} if tcspc == "picoharp300"
                               else {"tagger_module": replay_tagger_module(replay, clock=clock, loop=True)})
        lab = Lab.from_config(cfg, clock, inject=inject)
    except BaseException:
        simlab.stop()
        raise
    info = simlab.sample_info()
    if replay is not None:
        info["truth"] = dict(info.get("truth", {})) | {"replay": str(replay)}
    session = LabSession(lab, clock, cfg, bus or EventBus(clock), data_dir or Path("runs"), sim=simlab,
                         sample=info)
    session.on_close.append(simlab.stop)
    # QueueWorker calls this before each queued run (the GUI's queue too): re-cable the emulated tagger
    session.before_run = lambda it: _cable_tagger(session, it.procedure, it.parameters)  # type: ignore[attr-defined]
    return session


def sim_check_config(safety: dict[str, Any] | None = None) -> Any:
    """The simulated lab's configuration as ``sflab check`` sees it, without starting it: the backends
    and option defaults of ``simulators.start_lab``, and the simulated laser's power (so fluence limits
    are checked as at the setup). Contacts nothing."""
    from simulators.laser import LaserModel

    from .config import sim_config

    laser = LaserModel()
    roles = {
        "cryostat": {"backend": "lakeshore336", "resource": "TCPIP::127.0.0.1::7777::SOCKET"},
        "xray": {"backend": "spellman", "resource": "TCPIP::127.0.0.1::50001::SOCKET",
                 "shutter_resource": "TCPIP::127.0.0.1::50002::SOCKET"},
        "attenuator": {"backend": "conex", "resource": "TCPIP::127.0.0.1::7778::SOCKET",
                       "full_power_W": laser.power_W, "rep_rate_Hz": laser.rep_rate_Hz,
                       "spot_area_cm2": laser.spot_area_cm2},
        "powermeter": {"backend": "pm100d", "resource": "TCPIP::127.0.0.1::7779::SOCKET"},
        "spectrometer": {"backend": "horiba", "resource": "ws://127.0.0.1:25010", "icl_settle_s": 0.0,
                         "center_nm": 515.0},
        "tcspc": {"backend": "picoharp300", "resource": "emulated"},
    }
    return sim_config(roles, safety=safety)


def _is_lab_config(text: str) -> bool:
    import tomllib

    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return True  # let the config parser report the syntax error with its line
    from .lab import ROLES

    return any(k in raw for k in ("lab", "safety", *ROLES))


@app.command()
def check(file: Annotated[Path, typer.Argument(help="a lab configuration (lab.toml) or a plan (TOML or .py)")],
          lab: Annotated[Path | None, typer.Option(help="for a plan: the lab configuration whose limits apply "
                                                        "(default: the simulated lab)")] = None) -> None:
    """Validate a lab configuration or a plan before anything moves (no instrument is contacted).

    For a plan: every step, parameter and limit (cryostat range, laser maximum, tube rating) is checked
    and errors are printed as file:line; a valid plan prints its runs with an estimate of lab time and
    disk space. Exit code 0 valid, 2 invalid."""
    if not file.exists():
        err_console.print(f"[red]{file}: no such file[/red]")
        raise typer.Exit(EXIT_BAD_INPUT)
    text = file.read_text() if file.suffix != ".py" else ""
    if file.suffix != ".py" and _is_lab_config(text):
        try:
            cfg = load_config(file)
        except ConfigError as exc:
            for e in exc.errors:
                err_console.print(f"[red]{e}[/red]", soft_wrap=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        console.print(f"[green]{file}: valid lab configuration[/green] ({cfg.lab['name']})", soft_wrap=True)
        t = Table()
        for col in ("role", "backend", "resource", "options"):
            t.add_column(col)
        for r, c in cfg.roles.items():
            t.add_row(r, c.backend, c.resource, ", ".join(f"{k}={v}" for k, v in c.options.items()))
        console.print(t)
        return
    from . import plans

    lab_cfg = _plan_lab_config(lab, sim=None)
    raise typer.Exit(plans.check_command(file, console, err_console, lab_config=lab_cfg))


def _plan_lab_config(lab: Path | None, sim: bool | None) -> Any:
    """The configuration a plan is checked against: ``lab`` (real), or the simulated lab's."""
    if lab is not None:
        try:
            cfg = load_config(lab)
        except ConfigError as exc:
            for e in exc.errors:
                err_console.print(e, style="red", soft_wrap=True, markup=False)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        if not sim:
            return cfg
        return sim_check_config(safety=cfg.safety)
    return sim_check_config()


def _run_with_progress(runner: Runner, bus: EventBus, title: str) -> Any:
    """Run in this thread with a rich progress bar fed from the event bus."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    sub = bus.subscribe("point", "run.start", coalesce=True)
    result = None
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console,
                  transient=False) as prog:
        task = prog.add_task(title, total=None, info="")

        def pump() -> None:
            for ev in sub.drain():
                if ev.topic == "run.start":
                    prog.update(task, total=ev.data.get("n_points"), completed=ev.data.get("resume_from", 0))
                elif ev.topic == "point":
                    rb = ev.data.get("readbacks", {})
                    T = rb.get("cryostat", {}).get("T_sample")
                    info = f"T={T:.1f} K" if T is not None else ""
                    prog.update(task, completed=ev.data["index"] + 1, info=info)

        import threading

        done = threading.Event()

        def ticker() -> None:
            while not done.wait(0.1):
                pump()

        th = threading.Thread(target=ticker, daemon=True)
        th.start()
        try:
            result = runner.run()
        finally:
            done.set()
            th.join()
            pump()
            sub.close()
    return result


def _exit_code(status: str) -> int:
    return {"success": EXIT_OK, "interrupted": EXIT_INTERRUPTED}.get(status, EXIT_FAILED)


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
TcspcOpt = Annotated[str, typer.Option(help="simulated time tagger: picoharp300 or swabian")]


def _presets() -> list[str]:
    import simulators

    return sorted(p.stem for p in (Path(simulators.__file__).parent / "presets").glob("*.toml"))


def _sim_sample(option: str | None, plan_sample: str = "") -> str:
    if option:
        if option not in _presets() and not Path(option).exists():
            err_console.print(f"--sample {option!r}: not a preset ({', '.join(_presets())}) nor a sample file",
                              style="red", markup=False)
            raise typer.Exit(EXIT_BAD_INPUT)
        return option
    if plan_sample and (plan_sample in _presets() or (plan_sample.endswith(".toml") and Path(plan_sample).exists())):
        return plan_sample
    return "milano-2d-sl"


def _lab_options(lab: Path | None, sim: bool | None, sample: str, speed: str, faults: str | None, seed: int,
                 tcspc: str) -> dict[str, Any]:
    simulate = sim if sim is not None else lab is None
    return {"sim": simulate, "config": str(lab.resolve()) if lab else None, "sample": sample, "speed": speed,
            "faults": faults, "seed": seed, "tcspc": tcspc}


def _open_from_options(o: dict[str, Any], data_dir: Path) -> LabSession:
    try:
        return open_lab(Path(o["config"]) if o.get("config") else None, sim=o.get("sim"),
                        sample=o.get("sample") or "milano-2d-sl", speed=o.get("speed") or "max",
                        faults=o.get("faults"), seed=int(o.get("seed") or 0), tcspc=o.get("tcspc") or "picoharp300",
                        data_dir=data_dir)
    except ConfigError as exc:
        for e in exc.errors:
            err_console.print(e, style="red", soft_wrap=True, markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None


def _fmt_h(s: float | None) -> str:
    from .plans import format_duration

    return format_duration(s if s is not None else float("nan"))


def _scalar(d: dict[str, Any], *names: str) -> float | None:
    for stream in d.values():
        if not isinstance(stream, dict):
            continue
        for k, v in stream.items():
            if any(k == n or k.startswith(n) for n in names):
                try:
                    f = float(v)
                except (TypeError, ValueError):
                    continue
                if f == f:
                    return f
    return None


def _drive_queue(worker: Any, campaign: Any, session: LabSession, *, show: bool = True) -> None:
    """Run the campaign's queue in this thread with a rich progress display fed from the event bus:
    current run, point, T, fluence, lab time and ETA."""
    import threading

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    q = campaign.queue
    items = [it for it in q.items if it.procedure != "wait"]
    total = sum(it.n_points or 0 for it in items) if all(it.n_points for it in items) else None
    bus = session.bus
    pts_sub = bus.subscribe("point", coalesce=True)
    ev_sub = bus.subscribe("run.start", "run.stop", "queue.item", "suspend", "unsuspend", maxsize=10000)
    state: dict[str, Any] = {"run_total": None, "title": "", "T": None, "F": None, "base": 0}

    def done_points() -> int:
        return sum(it.n_points or 0 for it in q.items if it.status == "done" and it.procedure != "wait")

    def remaining_lab() -> float:
        return sum(it.estimate_s or 0.0 for it in q.items if it.status in ("queued", "running", "interrupted"))

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                  console=console, transient=False, disable=not show) as prog:
        t_all = prog.add_task("campaign", total=total, completed=done_points(), info="")
        t_run = prog.add_task("run", total=None, info="")

        def pump() -> None:
            for ev in ev_sub.drain():
                if ev.topic == "run.start":
                    state["run_total"] = ev.data.get("n_points")
                    it = worker.current_item
                    idx = q.items.index(it) + 1 if it in q.items else 0
                    state["title"] = f"{idx}/{len(q.items)} {it.title if it else ev.data.get('procedure')}"
                    state["base"] = done_points()
                    prog.update(t_run, total=state["run_total"], completed=ev.data.get("resume_from", 0),
                                description=f"run {state['title']}"[:60])
                    if ev.data.get("resume_from"):
                        prog.console.print(f"resuming {ev.data.get('path')} at point {ev.data['resume_from']}",
                                           markup=False, highlight=False)
                elif ev.topic == "queue.item" and ev.data.get("status") in ("done", "failed", "aborted",
                                                                            "interrupted"):
                    st = ev.data["status"]
                    style = "green" if st == "done" else "red"
                    prog.console.print(f"{st}: {ev.data.get('title')} → {ev.data.get('run_file') or '-'}"
                                       + (f" ({ev.data['error']})" if ev.data.get("error") and st != "done" else ""),
                                       style=style, markup=False, highlight=False)
                elif ev.topic == "suspend":
                    prog.console.print(f"suspended: {ev.data.get('reason')}", style="yellow", markup=False)
            for ev in pts_sub.drain():
                rb = ev.data.get("readbacks", {})
                T = rb.get("cryostat", {}).get("T_sample")
                F = _scalar(ev.data.get("streams", {}), "fluence") or rb.get("attenuator", {}).get("fluence")
                T = T if T is not None else _scalar(ev.data.get("streams", {}), "T")
                i = ev.data["index"] + 1
                prog.update(t_run, completed=i)
                prog.update(t_all, completed=state["base"] + i)
                state["T"], state["F"] = T, F
            parts = []
            if state["T"] is not None and state["T"] == state["T"]:
                parts.append(f"T={state['T']:.1f} K")
            if state["F"] is not None:
                parts.append(f"F={state['F']:.3g} µJ/cm²")
            parts.append(f"lab {session.clock.monotonic() / 3600:.2f} h, ≈{_fmt_h(remaining_lab())} lab left")
            prog.update(t_run, info=" ".join(parts[:-1]))
            prog.update(t_all, info=parts[-1])

        stop = threading.Event()

        def ticker() -> None:
            while not stop.wait(0.1):
                pump()

        th = threading.Thread(target=ticker, daemon=True, name="sflab-progress")
        th.start()
        try:
            worker.run_here()
        finally:
            stop.set()
            th.join()
            pump()
            pts_sub.close()
            ev_sub.close()


#: procedures that need the time tagger cabled for HBT (two detectors, no laser sync)
HBT_PROCEDURES = ("HBTCorrelation",)


def _cable_tagger(session: LabSession, procedure: str, parameters: dict[str, Any]) -> None:
    """In the simulated lab, re-cable the emulated time tagger for the next run: HBT (two detectors) for a
    g2 measurement, TCSPC (laser sync + detector) otherwise — what the physicist does with the cables."""
    if session.sim is None:
        return
    hbt = procedure in HBT_PROCEDURES or (procedure == "TimeResolvedRL" and parameters.get("method", "hbt") == "hbt")
    wiring = "hbt" if hbt else "tcspc"
    t = session.sim.vendor.get("tcspc", {})
    vendor = t.get("phlib") if "phlib" in t else t.get("tagger_module")
    attr = "wiring" if "phlib" in t else "WIRING"
    if vendor is None or getattr(vendor, attr, None) == wiring:
        return
    if "tcspc" in session.lab.connected:  # the device reads its wiring when it is opened: re-open it
        try:
            session.lab.roles["tcspc"].close()
        finally:
            session.lab.connected.discard("tcspc")
    setattr(vendor, attr, wiring)  # read when the device is next opened (PH_CloseDevice dropped the old feed)


def _campaign_exit(campaign: Any) -> int:
    st = [it.status for it in campaign.queue.items]
    if any(s in ("interrupted", "running") for s in st):
        return EXIT_INTERRUPTED
    if any(s in ("failed", "aborted") for s in st) or any(s == "queued" for s in st):
        return EXIT_FAILED
    return EXIT_OK


def _run_campaign(campaign: Any, show: bool = True) -> int:
    from .queue import QueueWorker

    session = _open_from_options(campaign.info["lab"], campaign.folder)
    worker = QueueWorker(session, campaign.queue, out_dir=campaign.folder, filename=campaign.filename)
    try:
        with handle_signals():
            _drive_queue(worker, campaign, session, show=show)
    except (KeyboardInterrupt, Exception) as exc:
        if not isinstance(exc, KeyboardInterrupt):
            log.error("campaign stopped: %s", exc)
        for it in campaign.queue.items:
            if it.status == "running":
                campaign.queue.mark(it.id, "interrupted", error=str(exc) or type(exc).__name__)
        if isinstance(exc, KeyboardInterrupt):
            session.close()
            return EXIT_INTERRUPTED
        raise
    except BaseException:  # SIGTERM (Interrupted): the runner's backstop already ran
        session.close()
        return EXIT_INTERRUPTED
    session.close()
    campaign.write_index()
    return _campaign_exit(campaign)


def _print_campaign(campaign: Any) -> None:
    t = Table(title=f"campaign {campaign.folder}")
    for col in ("#", "procedure", "title", "status", "points", "run file"):
        t.add_column(col)
    for i, it in enumerate(campaign.queue.items, 1):
        t.add_row(str(i), it.procedure, it.title, it.status, "" if it.n_points is None else str(it.n_points),
                  Path(it.run_file).name if it.run_file else "")
    console.print(t)
    console.print(f"index: {campaign.index_path}   queue: {campaign.queue.path}", markup=False, highlight=False)


@app.command()
def run(plan: Annotated[Path, typer.Argument(help="a plan: TOML (see plans/) or a Python plan script")],
        lab: LabOpt = None, sim: SimOpt = None, sample: SampleOpt = None, speed: SpeedOpt = "max",
        faults: FaultsOpt = None, seed: SeedOpt = 0, tcspc: TcspcOpt = "picoharp300",
        out: Annotated[Path | None, typer.Option(help="campaign folder (default runs/<time>_<plan>)")] = None,
        analyze_after: Annotated[bool, typer.Option("--analyze/--no-analyze",
                                                    help="SF summary of the campaign at the end")] = True,
        progress: Annotated[bool, typer.Option("--progress/--quiet", help="live progress display")] = True) -> None:
    """Run a plan (validated whole first) into a campaign folder, with a live progress display.

    Nothing moves if anything in the plan is wrong. The procedure runs go one by one with a live display
    (current run, point, T, fluence, ETA).

    Writes into the campaign folder one run file per procedure run, campaign.json (the index of every run
    file) and queue.json (the persisted queue: after a crash or reboot, `sflab resume FOLDER` continues at
    the first incomplete point). Exit codes: 0 all runs succeeded, 1 a run failed or was aborted, 2 bad plan
    or configuration (nothing moved), 130 interrupted (resumable)."""
    from .campaign import Campaign
    from .plans import format_bytes, format_duration, load_plan

    cfg = _plan_lab_config(lab, sim=bool(sim) or lab is None)
    p = load_plan(plan, cfg)
    if p.errors:
        for e in p.errors:
            err_console.print(e, style="red", soft_wrap=True, markup=False, highlight=False)
        err_console.print(f"{plan}: {len(p.errors)} error(s); nothing was run", style="red", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    opts = _lab_options(lab, sim, "", speed, faults, seed, tcspc)
    if opts["sim"]:
        opts["sample"] = _sim_sample(sample, p.sample)
    folder = (out or Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}_{plan.stem}").resolve()
    try:
        campaign = Campaign.create(folder, p, opts)
    except FileExistsError as exc:
        err_console.print(str(exc), style="red", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    console.print(f"[bold]sflab run[/bold] {plan}: {sum(not r.is_wait for r in p.runs)} runs, estimated "
                  f"{format_duration(p.lab_seconds)} lab time, {format_bytes(p.bytes)}; "
                  + ("simulated lab, sample " + opts["sample"] if opts["sim"] else f"lab {lab}")
                  + f" → {folder}", highlight=False)
    t0 = time.monotonic()
    code = _run_campaign(campaign, show=progress)
    _print_campaign(campaign)
    console.print(f"wall time {time.monotonic() - t0:.1f} s", highlight=False)
    if code == EXIT_INTERRUPTED:
        err_console.print(f"interrupted — continue with: sflab resume {folder}", style="yellow", markup=False)
    elif analyze_after and campaign.run_files():
        _analyze_paths(campaign.run_files(), report=None, as_json=False, quiet=True)
    raise typer.Exit(code)


@app.command()
def resume(target: Annotated[Path, typer.Argument(help="a campaign folder (or its campaign.json / queue.json), or "
                                                       "one run file")],
           lab: LabOpt = None, sim: SimOpt = None, sample: SampleOpt = None,
           speed: Annotated[str | None, typer.Option(help="simulated clock (default: as recorded)")] = None,
           faults: FaultsOpt = None, seed: Annotated[int | None, typer.Option(help="simulated seed")] = None,
           progress: Annotated[bool, typer.Option("--progress/--quiet", help="live progress display")] = True
           ) -> None:
    """Continue a campaign (or one run file) after a crash, kill or reboot.

    The interrupted run continues at its first incomplete point (completed points are copied, never
    re-taken — nor re-exposed to X-rays), then the rest of the queue runs.

    A campaign is reopened on the lab it was started with (the options in campaign.json; --lab, --sample,
    --speed, --faults, --seed override). A single run file is continued on the lab its provenance names."""
    from .campaign import Campaign

    if target.suffix == ".h5":
        raise typer.Exit(_resume_file(target, lab, sim, sample, speed, faults, seed, progress))
    try:
        campaign = Campaign.open(target)
    except (FileNotFoundError, ValueError) as exc:
        err_console.print(str(exc), style="red", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    o = dict(campaign.info.get("lab", {}))
    if lab is not None:
        o["config"] = str(lab.resolve())
        o["sim"] = bool(sim)
    elif sim is not None:
        o["sim"] = sim
    for k, v in (("sample", sample), ("speed", speed), ("faults", faults), ("seed", seed)):
        if v is not None:
            o[k] = v
    campaign.info["lab"] = o
    todo = campaign.queue.pending
    if not todo:
        console.print(f"{campaign.folder}: nothing left to run", highlight=False)
        _print_campaign(campaign)
        raise typer.Exit(_campaign_exit(campaign))
    console.print(f"[bold]sflab resume[/bold] {campaign.folder}: {len(todo)} runs left "
                  f"({sum(it.status != 'queued' for it in todo)} to continue)", highlight=False)
    t0 = time.monotonic()
    code = _run_campaign(campaign, show=progress)
    _print_campaign(campaign)
    console.print(f"wall time {time.monotonic() - t0:.1f} s", highlight=False)
    raise typer.Exit(code)


def _resume_file(path: Path, lab: Path | None, sim: bool | None, sample: str | None, speed: str | None,
                 faults: str | None, seed: int | None, progress: bool) -> int:
    from .procedure import validate_parameters
    from .registry import UnknownProcedure, procedure_class
    from .store import open_run

    try:
        rd = open_run(path)
        cls = procedure_class(rd.procedure)
    except (OSError, ValueError, UnknownProcedure) as exc:
        err_console.print(f"{path}: {exc}", style="red", markup=False)
        return EXIT_BAD_INPUT
    if rd.exit_status == "success":
        console.print(f"{path}: finished ({rd.n_points} points); nothing to resume", highlight=False)
        return EXIT_OK
    values, errs = validate_parameters(cls, rd.parameters)
    if errs:
        for e in errs:
            err_console.print(f"{path}: recorded {e}", style="red", markup=False)
        return EXIT_BAD_INPUT
    simulated = bool(rd.config.get("simulated")) if sim is None and lab is None else (sim if sim is not None
                                                                                      else False)
    truth = rd.truth or {}
    o = _lab_options(lab, simulated, sample or truth.get("preset") or "milano-2d-sl", speed or "max", faults,
                     seed if seed is not None else int(truth.get("seed") or 0), "picoharp300")
    session = _open_from_options(o, path.parent)
    try:
        runner = session.make_runner(cls(**values), path, resume=True, title=f"{rd.procedure} (resumed)")
        with handle_signals(runner):
            res = _run_with_progress(runner, session.bus, f"resume {path.name}")
    except ValidationError as exc:
        err_console.print(str(exc), style="red", markup=False)
        return EXIT_BAD_INPUT
    finally:
        session.close()
    console.print(f"{path}: exit status {res.exit_status}, {res.n_points} points", highlight=False)
    return _exit_code(res.exit_status)


# ============================================================================ analyze
def _expand_inputs(paths: list[Path]) -> list[Path]:
    from .campaign import Campaign

    out: list[Path] = []
    for p in paths:
        if p.is_dir() or p.suffix == ".json":
            try:
                out += Campaign.open(p).run_files()
                continue
            except FileNotFoundError:
                if p.is_dir():
                    out += sorted(x for x in p.glob("*.h5") if ".interrupted" not in x.name)
                    continue
        out.append(p)
    return out


def _summaries(runs: list[Any], recompute: bool = False) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Per-run summaries (the one stored in the file at the end of its run, unless ``recompute`` or there is
    none) and the campaign summary, always computed from the data (acq.summary)."""
    try:
        from . import summary as _summary
    except ImportError:
        _summary = None
    per: dict[str, Any] = {}
    for r in runs:
        key = r.path.name
        stored = r.analysis if isinstance(r.analysis, dict) and "verdict" in r.analysis else None
        if stored is not None and not recompute:
            per[key] = stored
            continue
        if _summary is not None:
            try:
                per[key] = _summary.summarize(r)
                continue
            except Exception as exc:
                log.error("summary of %s failed: %s", r.path, exc)
                per[key] = {"verdict": "error", "error": f"{type(exc).__name__}: {exc}"}
                continue
        per[key] = r.analysis or {"verdict": "not analysed"}
    camp = None
    if _summary is not None and hasattr(_summary, "summarize_campaign"):
        try:
            camp = _summary.summarize_campaign(runs)
        except Exception as exc:
            log.error("campaign summary failed: %s", exc)
            camp = {"verdict": "error", "error": f"{type(exc).__name__}: {exc}"}
    return per, camp


def _cell(v: Any) -> str:
    if isinstance(v, dict) and "value" in v:
        e = v.get("error")
        return f"{v['value']:.4g} ± {e:.2g}" if isinstance(e, (int, float)) and isinstance(v["value"], (int, float)) \
            else str(v["value"])
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_cell(x) for x in v[:4]) + (" …" if len(v) > 4 else "")
    if isinstance(v, dict):
        return ", ".join(f"{k}={_cell(x)}" for k, x in list(v.items())[:4])
    return str(v)


def _analyze_paths(paths: list[Path], *, report: Path | None, as_json: bool, quiet: bool = False,
                   recompute: bool = False) -> int:
    from .store import open_run

    files = _expand_inputs(paths)
    runs, bad = [], []
    for p in files:
        try:
            runs.append(open_run(p))
        except (OSError, ValueError) as exc:
            bad.append(f"{p}: {exc}")
    for b in bad:
        err_console.print(b, style="red", markup=False)
    if not runs:
        if not bad:
            err_console.print("no run files given", style="red")
        return EXIT_BAD_INPUT
    per, camp = _summaries(runs, recompute)
    verdict = (camp or {}).get("verdict") if camp else (next(iter(per.values())).get("verdict") if len(per) == 1
                                                         else None)
    out: dict[str, Any] = {"verdict": verdict, "campaign": camp, "runs": per,
                           "files": [str(r.path) for r in runs]}
    if report is not None:
        try:
            out["report"] = _write_report(runs, camp, per, report)
        except Exception as exc:
            log.error("report failed: %s", exc, exc_info=True)
            err_console.print(f"report not written: {type(exc).__name__}: {exc}", style="red", markup=False)
            out["report"] = None
    if as_json:
        print(json.dumps(out, default=str, allow_nan=True))
        return EXIT_BAD_INPUT if bad else EXIT_OK
    if camp is not None:
        _print_summary("campaign", camp, len(runs))
    if not quiet or camp is None:
        for name, sm in per.items():
            _print_summary(name, sm, None)
    if out.get("report"):
        console.print(f"report: {out['report']}", highlight=False, markup=False)
    return EXIT_BAD_INPUT if bad else EXIT_OK


def _print_summary(name: str, sm: dict[str, Any], n_runs: int | None) -> None:
    """Verdict first, then the checklist, then the scalar numbers; long tables are left to --json."""
    v = sm.get("verdict", "?")
    style = {"SF": "bold green", "not SF": "bold red"}.get(str(v), "bold yellow")
    head = f"{name}: " + (f"{n_runs} run files — " if n_runs else "")
    console.print(head, end="", highlight=False, markup=False)
    console.print(f"verdict {v}", style=style, end="", markup=False)
    extra = sm.get("confuser")
    console.print(f" (likely {extra})" if extra else "", highlight=False, markup=False)
    if sm.get("headline"):
        console.print(f"  {sm['headline']}", highlight=False, markup=False)
    items = sm.get("checklist")
    if isinstance(items, list) and items and isinstance(items[0], dict):
        t = Table(show_header=True, title="checklist (physics.md §6.2)")
        for col in ("#", "check", "result", "detail"):
            t.add_column(col)
        for it in items:
            t.add_row(str(it.get("number", "")), str(it.get("title", it.get("key", ""))), str(it.get("status", "")),
                      str(it.get("detail", ""))[:90])
        console.print(t)
    t = Table(show_header=True)
    t.add_column("quantity")
    t.add_column("value")
    for k, x in sm.items():
        if k in ("verdict", "confuser", "headline", "checklist") or x is None:
            continue
        if isinstance(x, list) and len(x) > 3 and isinstance(x[0], dict):
            t.add_row(str(k), f"{len(x)} rows (see --json)")
        elif isinstance(x, dict) and len(x) > 4 and k != "truth":
            t.add_row(str(k), f"{len(x)} entries (see --json)")
        else:
            t.add_row(str(k), _cell(x))
    console.print(t)


def _write_report(runs: list[Any], camp: dict[str, Any] | None, per: dict[str, Any], folder: Path) -> str:
    """The report folder of analysis.report (figures, report.md/.html, summary.json) from the SF verdict
    of the campaign; plus campaign-summary.json with sflab's own summaries."""
    from analysis.report import render

    folder.mkdir(parents=True, exist_ok=True)
    verdicts = _verdict_objects(runs)
    if verdicts:
        render(verdicts, folder, title="SF analysis — " + ", ".join(sorted({r.sample_name for r in runs})))
    (folder / "campaign-summary.json").write_text(json.dumps({"campaign": camp, "runs": per}, indent=1,
                                                             default=str), encoding="utf-8")
    return str(folder / ("report.html" if verdicts else "campaign-summary.json"))


def _verdict_objects(runs: list[Any]) -> dict[str, Any]:
    """``{name: analysis.sf.SFVerdict}`` for the report: the evidence of every run file pooled as in
    ``acq.summary.summarize_campaign`` (PL series + HBT g2; RL series separately)."""
    try:
        from . import summary as _summary
    except ImportError:
        return {}
    from analysis.sf import Evidence, assess

    sample = ", ".join(sorted({r.sample_name for r in runs if r.sample_name}))
    optical = Evidence(excitation="optical", sample=sample)
    xray = Evidence(excitation="xray", sample=sample)
    g2: list[Any] = []
    for r in runs:
        if "calibration" in r.streams:
            continue
        ev = _summary.evidence_from_run(r)
        g2 += ev.g2
        tgt = xray if ev.excitation == "xray" else optical
        tgt.spectra += ev.spectra
        tgt.decays += ev.decays
    out: dict[str, Any] = {}
    if optical.spectra or optical.decays:
        optical.g2 = g2
        out["PL series + HBT g2"] = assess(optical)
    if xray.spectra or (g2 and not out):
        if not out:
            xray.g2 = g2
        out["RL series" + ("" if out else " + HBT g2")] = assess(xray)
    return out


@app.command()
def analyze(runfiles: Annotated[list[Path], typer.Argument(help="run files and/or campaign folders")],
            report: Annotated[Path | None, typer.Option(help="write a report folder here (figures, report.html, "
                                                             "report.md, summary.json)")] = None,
            as_json: Annotated[bool, typer.Option("--json", help="machine-readable output on stdout")] = False,
            recompute: Annotated[bool, typer.Option(help="recompute each run's summary instead of using the one "
                                                         "stored in the file (the campaign's is always computed)")]
            = False) -> None:
    """SF analysis of run files and campaign folders, verdict first.

    The campaign verdict (SF / not SF / inconclusive, with the likely confuser), then the campaign-level
    numbers (SF fraction and τ_SF vs T, fluence exponents, onset
    temperature) and one summary per run file. Exit code 2 if a file cannot be read."""
    raise typer.Exit(_analyze_paths(runfiles, report=report, as_json=as_json, recompute=recompute))


# ============================================================================ replay
def _is_run_file(path: Path) -> bool:
    import h5py

    try:
        with h5py.File(path, "r", libver="latest", swmr=True) as f:
            return "entry" in f and "scan" in f["entry"]
    except OSError:
        return False


def _parse_params(items: list[str]) -> dict[str, Any]:
    import tomllib

    out: dict[str, Any] = {}
    for s in items:
        k, sep, v = s.partition("=")
        if not sep:
            raise typer.BadParameter(f"--param {s!r}: expected key=value")
        try:
            out[k.strip()] = tomllib.loads(f"x = {v.strip()}")["x"]
        except tomllib.TOMLDecodeError:
            out[k.strip()] = v.strip()
    return out


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
    from .procedure import validate_parameters
    from .registry import UnknownProcedure, procedure_class, procedures
    from .store import open_run

    if not file.exists():
        err_console.print(f"{file}: no such file", style="red", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    extra = _parse_params(param)
    replay_tags: Path | None = None
    if file.suffix == ".h5" and _is_run_file(file):
        rd = open_run(file)
        name = procedure or rd.procedure
        params = dict(rd.parameters) | extra
        truth = rd.truth or {}
        smp = _sim_sample(sample, str(truth.get("preset", "")))
        sd = seed if seed is not None else int(truth.get("seed") or 0)
    else:
        replay_tags = file
        known = procedures()
        name = procedure or ("HBTCorrelation" if "HBTCorrelation" in known else "EngineCheck")
        params = extra
        smp = _sim_sample(sample)
        sd = seed or 0
    try:
        cls = procedure_class(name)
    except UnknownProcedure as exc:
        err_console.print(str(exc), style="red", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    values, errs = validate_parameters(cls, params)
    if errs:
        for e in errs:
            err_console.print(str(e), style="red", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    out.mkdir(parents=True, exist_ok=True)
    try:
        session = open_lab(None, sim=True, sample=smp, speed=speed, seed=sd, tcspc=tcspc, data_dir=out,
                           replay=replay_tags)
    except (ValueError, OSError) as exc:
        err_console.print(f"{file}: cannot replay: {exc}", style="red", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    try:
        from .session import run_filename

        path = out / run_filename(name, sample=f"replay-{file.stem}")
        runner = session.make_runner(cls(**values), path, title=f"replay of {file.name}")
        with handle_signals(runner):
            res = _run_with_progress(runner, session.bus, f"replay {file.name}")
    except ValidationError as exc:
        err_console.print(str(exc), style="red", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    finally:
        session.close()
    console.print(f"replay of {file} ({name}) → {res.path}: exit status {res.exit_status}, {res.n_points} points",
                  highlight=False, markup=False)
    raise typer.Exit(_exit_code(res.exit_status))


# ============================================================================ sim serve
sim_app = typer.Typer(no_args_is_help=True, help="The simulated lab on its own, for other programs.")
app.add_typer(sim_app, name="sim")


def _port(role: str) -> Any:
    return typer.Option(f"--port-{role}", help=f"TCP port of the simulated {role} (0: any free port)")


@sim_app.command("serve")
def sim_serve(sample: Annotated[str, typer.Option(help="virtual sample preset or sample TOML file")] = "milano-2d-sl",
              speed: Annotated[str, typer.Option(help="lab seconds per wall second ('max': as fast as possible, "
                                                      "lab time moves only while a client waits)")] = "1",
              faults: FaultsOpt = None, seed: SeedOpt = 0,
              port_cryostat: Annotated[int | None, _port("cryostat")] = None,
              port_xray: Annotated[int | None, _port("xray")] = None,
              port_shutter: Annotated[int | None, _port("shutter")] = None,
              port_attenuator: Annotated[int | None, _port("attenuator")] = None,
              port_powermeter: Annotated[int | None, _port("powermeter")] = None,
              port_spectrometer: Annotated[int | None, _port("spectrometer")] = None) -> None:
    """Serve the simulated lab on loopback until Ctrl-C or SIGTERM: Lake Shore 7777, Spellman 50001,
    shutter 50002, CONEX 7778, PM100D 7779, ICL WebSocket 25010 by default. Prints one JSON line first
    (role → host, port, resource, and the lab.toml tables to reach them)."""
    import simulators

    ports = {r: p for r, p in (("cryostat", port_cryostat), ("xray", port_xray), ("shutter", port_shutter),
                               ("attenuator", port_attenuator), ("powermeter", port_powermeter),
                               ("spectrometer", port_spectrometer)) if p is not None}
    try:
        clock = make_clock(speed)
        code = simulators.serve(clock=clock, sample=_sim_sample(sample), faults=faults, seed=seed, ports=ports)
    except (ValueError, OSError) as exc:
        err_console.print(f"sim serve: {exc}", style="red", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    raise typer.Exit(code)


# ============================================================================ gui
@app.command("gui")
def gui_command(lab: LabOpt = None, sim: SimOpt = None, sample: SampleOpt = None,
                speed: Annotated[str, typer.Option(help="simulated lab clock (lab s per wall s, or 'max')")] = "1",
                faults: FaultsOpt = None, seed: SeedOpt = 0,
                queue: Annotated[Path | None, typer.Option(help="the persisted queue file (default "
                                                                "<data_dir>/queue.json)")] = None) -> None:
    """The desktop GUI on the real lab (--lab lab.toml) or the simulated one (default)."""
    import importlib

    try:
        gapp = importlib.import_module("gui.app")
    except ImportError as exc:
        err_console.print(f"the GUI is not available: {exc}", style="red", markup=False)
        raise typer.Exit(EXIT_FAILED) from None
    o = _lab_options(lab, sim, _sim_sample(sample), speed, faults, seed, "picoharp300")
    data_dir = Path("runs")
    if not o["sim"] and lab is not None:
        try:
            data_dir = Path(load_config(lab).lab["data_dir"])
        except ConfigError as exc:
            for e in exc.errors:
                err_console.print(e, style="red", markup=False)
            raise typer.Exit(EXIT_BAD_INPUT) from None
    qpath = queue or data_dir / "queue.json"
    code = gapp.main(open_session=lambda: _open_from_options(o, data_dir), queue_path=qpath)
    raise typer.Exit(int(code or 0))


# ============================================================================ demo
DEMO_PROCEDURES = ("PLTemperatureSeries", "RLTemperatureSeries", "HBTCorrelation")


def _full_demo_available() -> bool:
    from .registry import procedures

    known = procedures()
    return all(p in known for p in DEMO_PROCEDURES)


@app.command()
def demo(out: Annotated[Path, typer.Option(help="folder for the campaign (run files, index, report)")]
         = Path("demo-output"),
         engine_check: Annotated[bool | None, typer.Option(
             "--engine-check/--full", help="--engine-check: the engine check on in-memory fake instruments; "
                                           "--full: the simulated SF campaign (default when the procedures are "
                                           "installed)")] = None,
         sample: Annotated[str, typer.Option(help="virtual sample preset or file (full demo)")] = "milano-2d-sl",
         seed: SeedOpt = 0,
         speed: Annotated[str, typer.Option(help="lab clock: 'max' (as fast as possible) or lab s per wall s")]
         = "max",
         progress: Annotated[bool, typer.Option("--progress/--quiet", help="live progress display")] = True) -> None:
    """A complete simulated campaign end to end, ending with the SF verdict and a report folder.

    Full demo: a PL temperature series at several fluences, an RL (X-ray) temperature series and an HBT g2
    on the simulated lab (real drivers over loopback, accelerated clock), then the campaign analysis
    (`sflab analyze`) with a report folder. --engine-check: the run-engine check on in-memory fakes."""
    if engine_check is None:
        engine_check = not _full_demo_available()
    if engine_check:
        _engine_check_demo(out, speed)
        return
    from .campaign import DEMO_PLAN, Campaign
    from .plans import load_plan

    if not _full_demo_available():
        err_console.print(f"the full demo needs the procedures {', '.join(DEMO_PROCEDURES)}", style="red")
        raise typer.Exit(EXIT_FAILED)
    folder = (out / f"{time.strftime('%Y%m%d-%H%M%S')}_{_safe_name(sample)}").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    plan_file = folder.parent / f".demo-plan-{folder.name}.toml"
    plan_file.write_text(DEMO_PLAN.replace("@SAMPLE@", Path(sample).stem if sample.endswith(".toml") else sample))
    p = load_plan(plan_file, sim_check_config())
    if p.errors:  # a bug of sflab's, not the user's
        for e in p.errors:
            err_console.print(e, style="red", markup=False)
        raise typer.Exit(EXIT_FAILED)
    opts = _lab_options(None, True, _sim_sample(sample), speed, None, seed, "picoharp300")
    campaign = Campaign.create(folder, p, opts)
    plan_file.unlink()
    console.print(f"[bold]sflab demo[/bold] — simulated SF campaign on sample [bold]{opts['sample']}[/bold]: "
                  f"{sum(not r.is_wait for r in p.runs)} runs, {p.lab_seconds / 3600:.1f} h of lab time on the "
                  f"accelerated clock → {folder}", highlight=False)
    t0 = time.monotonic()
    code = _run_campaign(campaign, show=progress)
    wall = time.monotonic() - t0
    _print_campaign(campaign)
    if code != EXIT_OK:
        raise typer.Exit(code)
    console.print(f"campaign done in {wall:.1f} s wall", highlight=False)
    rc = _analyze_paths([folder], report=folder / "report", as_json=False, quiet=True)
    console.print(f"re-read it: [cyan]sflab analyze {folder}[/cyan]; report: [cyan]{folder / 'report'}[/cyan]",
                  highlight=False)
    raise typer.Exit(rc)


def _safe_name(s: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "-", Path(s).stem if s.endswith(".toml") else s)


def _engine_check_demo(out: Path, speed: str) -> None:
    """The run-engine check on in-memory fake instruments (what `sflab demo --engine-check` runs)."""
    from .enginecheck import EngineCheck
    from .fakes import fake_lab_roles
    from .store import open_run

    clock = make_clock(speed)
    roles, _log, _world = fake_lab_roles(clock)
    lab = Lab(roles, clock=clock)
    bus = EventBus(clock)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"engine-check-{time.strftime('%Y%m%d-%H%M%S')}.h5"
    proc = EngineCheck()
    runner = Runner(proc, lab, path, clock=clock, bus=bus, title="sflab engine check (in-memory fakes)",
                    sample={"name": "fake two-band sample (acq.fakes)", "truth": {"model": "acq.fakes"}})
    console.print("[bold]sflab demo[/bold] — engine check on in-memory fake instruments "
                  f"(lab clock: {clock!r})")
    t0 = time.monotonic()
    try:
        with handle_signals(runner):
            res = _run_with_progress(runner, bus, "engine check")
    except ValidationError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    wall = time.monotonic() - t0
    data = open_run(path)
    t = Table(title=f"run file {path}")
    t.add_column("T (K)", justify="right")
    t.add_column("spectrum peak (nm)", justify="right")
    t.add_column("decay counts", justify="right")
    t.add_column("g2 coincidences", justify="right")
    wl = data.static_axes["spectrum"]["wavelength"]
    for i in range(data.n_points):
        s = data.streams["spectrum"]
        t.add_row(f"{s['T'][i]:.1f}", f"{wl[s['counts'][i].argmax()]:.1f}",
                  f"{int(data.streams['decay']['counts'][i].sum())}", f"{int(data.streams['g2']['counts'][i].sum())}")
    console.print(t)
    console.print(f"exit status [bold]{res.exit_status}[/bold], {data.n_points} points, "
                  f"{clock.monotonic() / 3600:.2f} h of lab time in {wall:.2f} s wall; backstop: "
                  + ", ".join(f"{k} {v}" for k, v in res.backstop.items()))
    if res.analysis:
        console.print(f"analysis: red shift {res.analysis.get('red_shift_nm', float('nan')):.1f} nm between "
                      "the highest and lowest temperature")
    console.print(f"open it: [cyan]silx view {path}[/cyan]  or  [cyan]python -c \"import acq.store as s; "
                  f"print(s.open_run('{path}'))\"[/cyan]")
    raise typer.Exit(_exit_code(res.exit_status))


def _data_quality(d: Any) -> dict[str, Any]:
    from .summary import data_quality

    try:
        return data_quality(d)
    except (KeyError, ValueError, TypeError) as exc:  # an odd or partial file: say so, do not fail
        return {"error": str(exc)}


@app.command()
def inspect(runfile: Annotated[Path, typer.Argument(help="a run file")],
            as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """Show what a run file holds (also while it is being written, or after its writer died)."""
    from .store import open_run

    try:
        d = open_run(runfile)
    except (OSError, ValueError) as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    info = {"path": str(d.path), "procedure": d.procedure, "exit_status": d.exit_status, "run_uid": d.run_uid,
            "start_time": d.start_time, "end_time": d.end_time, "completed_points": d.n_points,
            "streams": {k: {f: list(v.shape) for f, v in s.items()} for k, s in d.streams.items()},
            "resumed_at": d.resumed_at, "suspensions": len(d.suspensions), "backstop": d.backstop,
            "data_quality": _data_quality(d), "analysis": d.analysis}
    if as_json:
        print(json.dumps(info, default=str))
        return
    for k, v in info.items():
        console.print(f"[bold]{k}[/bold]: {v}")


@app.command()
def repair(runfile: Annotated[Path, typer.Argument(help="a run file whose writer died (kill -9, power cut)")]
           ) -> None:
    """Rebuild a run file whose writer died into a clean, closed file with all its completed points.
    The original is kept next to it as NAME.interrupted.h5."""
    from .store import repair as _repair

    try:
        p = _repair(runfile)
    except (OSError, ValueError) as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    console.print(f"repaired: {p}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/yellow]")
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()
