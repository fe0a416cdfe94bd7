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
             data_dir: Path | None = None, bus: EventBus | None = None) -> LabSession:
    """A connected-on-demand lab: the real one from ``config`` (``lab.toml``), or — with no config or
    ``sim=True`` — the simulated lab (``simulators.start_lab``) reached through the same drivers over
    loopback, on an accelerated clock. Raises ConfigError on a bad configuration (nothing contacted)."""
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
        lab = Lab.from_config(cfg, clock, inject=simlab.inject)
    except BaseException:
        simlab.stop()
        raise
    session = LabSession(lab, clock, cfg, bus or EventBus(clock), data_dir or Path("runs"), sim=simlab,
                         sample=simlab.sample_info())
    session.on_close.append(simlab.stop)
    return session


def _is_lab_config(text: str) -> bool:
    import tomllib

    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return True  # let the config parser report the syntax error with its line
    from .lab import ROLES

    return any(k in raw for k in ("lab", "safety", *ROLES))


@app.command()
def check(file: Annotated[Path, typer.Argument(help="a lab configuration (lab.toml) or a plan (TOML or .py)")]
          ) -> None:
    """Validate a lab configuration or a plan before anything moves (no instrument is contacted)."""
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
    try:
        from . import plans  # noqa: F401  (arrives with the procedures issue)
    except ImportError:
        err_console.print(f"[red]{file}: not a lab configuration (no [lab], [safety] or role section), and "
                          "this sflab has no plan support installed[/red]")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    raise typer.Exit(plans.check_command(file, console, err_console))


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


@app.command()
def demo(out: Annotated[Path, typer.Option(help="folder for the run files")] = Path("demo-output"),
         engine_check: Annotated[bool, typer.Option(
             "--engine-check/--full", help="engine check on in-memory fake instruments")] = True,
         speed: Annotated[str, typer.Option(help="lab clock: 'max' (as fast as possible) or lab s per wall s")]
         = "max") -> None:
    """Run a complete simulated measurement end to end and show where its run file is.

    Today this is the engine check: a temperature series (290 → 20 K) with X-ray on/off safe sequences,
    CCD spectra, TCSPC decays and g2 per point, on in-memory fake instruments on the accelerated clock,
    written to a NeXus/SWMR run file and re-read. Open it with `silx view` or h5py."""
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
            "analysis": d.analysis}
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
