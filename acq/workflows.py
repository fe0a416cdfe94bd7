"""What the ``sflab`` commands do, below their argument parsing: run a campaign's queue, continue one
run file, replay a recording, the demo campaign and the engine check. Each returns an exit code
(:data:`EXIT_OK` …) and prints through the console it is given; ``acq.cli`` only parses and prints.

Exit codes scripts can trust: 0 success, 1 run failed (or aborted), 2 bad input (nothing moved),
130 interrupted (Ctrl-C / SIGTERM; the backstop ran).
"""

from __future__ import annotations

import logging
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from rich.console import Console

from .campaign import DEMO_PLAN, Campaign
from .clock import make_clock
from .composition import LabOptions, sim_check_config
from .config import ConfigError
from .display import why
from .events import EventBus
from .lab import Lab
from .names import run_filename, safe_name
from .plans import Plan, load_plan
from .procedure import validate_parameters
from .progress import Progress
from .queue import QueueWorker
from .registry import UnknownProcedure, procedure_class, procedures
from .runner import Runner, RunResult, ValidationError, handle_signals
from .session import LabSession
from .store import open_run

log = logging.getLogger(__name__)

__all__ = ["EXIT_OK", "EXIT_FAILED", "EXIT_BAD_INPUT", "EXIT_INTERRUPTED", "BadInput", "exit_code",
           "campaign_exit", "open_session", "run_campaign", "resume_file", "replay_file", "demo_plan",
           "demo_procedures", "engine_check", "sample_folder_name", "is_lab_config", "parse_params",
           "setup_logging"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class BadInput(Exception):
    """Bad input found before anything moved: print ``lines`` and exit with :data:`EXIT_BAD_INPUT`."""

    def __init__(self, *lines: str) -> None:
        super().__init__("\n".join(lines))
        self.lines = list(lines)


def setup_logging(verbose: int) -> None:
    """``-v`` info, ``-vv`` debug; the chatty libraries stay at errors unless asked for debug."""
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("pymeasure", "pyvisa", "numba", "matplotlib", "h5py", "websockets", "asyncio"):
        logging.getLogger(noisy).setLevel(max(level, logging.ERROR))


def exit_code(status: str) -> int:
    return {"success": EXIT_OK, "interrupted": EXIT_INTERRUPTED}.get(status, EXIT_FAILED)


def campaign_exit(campaign: Campaign) -> int:
    st = [it.status for it in campaign.queue.items]
    if any(s in ("interrupted", "running") for s in st):
        return EXIT_INTERRUPTED
    if any(s in ("failed", "aborted") for s in st) or any(s == "queued" for s in st):
        return EXIT_FAILED
    return EXIT_OK


def sample_folder_name(sample: str) -> str:
    """A file-name-safe form of a sample name or of a sample TOML file's stem."""
    return safe_name(Path(sample).stem if sample.endswith(".toml") else sample)


def open_session(opts: LabOptions, data_dir: Path, *, replay: Path | None = None) -> LabSession:
    """``opts.open`` with a bad configuration turned into :class:`BadInput` (nothing was contacted)."""
    try:
        return opts.open(data_dir, replay=replay)
    except ConfigError as exc:
        raise BadInput(*exc.errors) from None


def _run_with_progress(runner: Runner, bus: EventBus, console: Console, title: str, show: bool = True
                       ) -> RunResult:
    return Progress(bus, console, title=title, show=show).run(runner.run)


def run_campaign(campaign: Campaign, console: Console, *, show: bool = True) -> int:
    """Run the campaign's queue here with the live display; the exit code of the campaign."""
    session = open_session(LabOptions.from_dict(campaign.info["lab"]), campaign.folder)
    worker = QueueWorker(session, campaign.queue, out_dir=campaign.folder, filename=campaign.filename)
    display = Progress(session.bus, console, clock=session.clock, queue=campaign.queue,
                       current_item=lambda: worker.current_item, title="run", show=show)
    if show and sys.stdin is not None and sys.stdin.isatty():
        session.operator = display.operator   # a manual sample holder's prompts are answered here
    try:
        with handle_signals():
            display.run(worker.run_here)
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
    return campaign_exit(campaign)


def resume_file(path: Path, console: Console, *, lab: Path | None, sim: bool | None, sample: str | None,
                speed: str | None, faults: str | None, seed: int | None, show: bool) -> int:
    """Continue one run file on the lab its provenance names (options override)."""
    from .store import find_source

    rd, cands = find_source(path)
    if rd is None:
        raise BadInput(*(f"{c.path}: {c.problem}" for c in cands), f"{path}: no readable version to resume")
    if rd.path != path:
        console.print(f"{path}: unreadable; continuing from its most complete backup {rd.path.name} "
                      f"({rd.n_points} points)", highlight=False, markup=False, soft_wrap=True)
    try:
        cls = procedure_class(rd.procedure)
    except UnknownProcedure as exc:
        raise BadInput(f"{rd.path}: {exc}") from None
    if rd.exit_status == "success" and rd.path == path:
        console.print(f"{path}: finished ({rd.n_points} points); nothing to resume", highlight=False)
        return EXIT_OK
    values, errs = validate_parameters(cls, rd.parameters)
    if errs:
        raise BadInput(*(f"{path}: recorded {e}" for e in errs))
    simulated = bool(rd.config.get("simulated")) if sim is None and lab is None else bool(sim)
    truth = rd.truth or {}
    opts = LabOptions.choose(lab, simulated, sample=sample or truth.get("preset") or None, speed=speed,
                             faults=faults, seed=seed if seed is not None else int(truth.get("seed") or 0))
    session = open_session(opts, path.parent)
    try:
        runner = session.make_runner(cls(**values), path, resume=True, title=f"{rd.procedure} (resumed)")
        runner.resume_source = rd
        with handle_signals(runner):
            res = _run_with_progress(runner, session.bus, console, f"resume {path.name}", show)
    except ValidationError as exc:
        raise BadInput(str(exc)) from None
    finally:
        session.close()
    console.print(f"{path}: exit status {res.exit_status}, {res.n_points} points{why(res)}", highlight=False,
                  markup=False, soft_wrap=True)
    return exit_code(res.exit_status)


def replay_file(file: Path, console: Console, *, procedure: str | None, params: dict[str, Any],
                sample: str | None, speed: str, seed: int | None, tcspc: str, out: Path) -> int:
    """Re-run a PTU / Photon-HDF5 recording (played by the simulated time tagger) or an sflab run file
    (its procedure and parameters, on its recorded virtual sample and seed) on the simulated lab."""
    from .composition import resolve_sample

    if not file.exists():
        raise BadInput(f"{file}: no such file")
    from .store import is_run_file, recording_problem

    problem = recording_problem(file)
    if problem:
        raise BadInput(f"{file}: {problem}")
    replay_tags: Path | None = None
    try:
        if file.suffix == ".h5" and is_run_file(file):
            rd = open_run(file)
            name = procedure or rd.procedure
            params = dict(rd.parameters) | params
            truth = rd.truth or {}
            smp = resolve_sample(sample, str(truth.get("preset", "")))
            sd = seed if seed is not None else int(truth.get("seed") or 0)
        else:
            replay_tags = file
            name = procedure or ("HBTCorrelation" if "HBTCorrelation" in procedures() else "EngineCheck")
            smp = resolve_sample(sample)
            sd = seed or 0
        cls = procedure_class(name)
    except (ValueError, UnknownProcedure) as exc:
        raise BadInput(str(exc)) from None
    values, errs = validate_parameters(cls, params)
    if errs:
        raise BadInput(*(str(e) for e in errs))
    out.mkdir(parents=True, exist_ok=True)
    try:
        session = LabOptions(sim=True, sample=smp, speed=speed, seed=sd, tcspc=tcspc).open(out, replay=replay_tags)
    except (ValueError, OSError) as exc:
        raise BadInput(f"{file}: cannot replay: {exc}") from None
    try:
        path = out / run_filename(name, sample=f"replay-{file.stem}")
        runner = session.make_runner(cls(**values), path, title=f"replay of {file.name}")
        with handle_signals(runner):
            res = _run_with_progress(runner, session.bus, console, f"replay {file.name}")
    except ValidationError as exc:
        raise BadInput(str(exc)) from None
    finally:
        session.close()
    console.print(f"replay of {file} ({name}) → {res.path}: exit status {res.exit_status}, {res.n_points} points"
                  f"{why(res)}",
                  highlight=False, markup=False, soft_wrap=True)
    return exit_code(res.exit_status)


def is_lab_config(text: str) -> bool:
    """Is this TOML a lab configuration (rather than a plan)? Invalid TOML counts as one, so that the
    configuration parser reports the syntax error with its line."""
    from .lab import ROLES

    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return True
    return any(k in raw for k in ("lab", "safety", *ROLES))


def parse_params(items: list[str]) -> dict[str, Any]:
    """``["key=value", …]`` with TOML values (a bare word stays a string); ValueError names a bad item."""
    out: dict[str, Any] = {}
    for s in items:
        k, sep, v = s.partition("=")
        if not sep:
            raise ValueError(f"--param {s!r}: expected key=value")
        try:
            out[k.strip()] = tomllib.loads(f"x = {v.strip()}")["x"]
        except tomllib.TOMLDecodeError:
            out[k.strip()] = v.strip()
    return out


# ------------------------------------------------------------------------------------------- demo
def demo_procedures() -> list[str]:
    """The procedures the demo plan runs (read from the plan itself)."""
    return [str(s["procedure"]) for s in tomllib.loads(DEMO_PLAN).get("step", [])]


def demo_plan(sample: str, folder: Path) -> Plan:
    """The demo plan for ``sample``, validated in memory (named ``folder/plan.toml``, the copy the campaign
    keeps)."""
    name = Path(sample).stem if sample.endswith(".toml") else sample
    return load_plan(folder / "plan.toml", sim_check_config(), text=DEMO_PLAN.replace("@SAMPLE@", name))


def engine_check(out: Path, speed: str, console: Console, *, show: bool = True) -> int:
    """The run-engine check on in-memory fake instruments (``sflab demo --engine-check``)."""
    from rich.table import Table

    from .enginecheck import EngineCheck
    from .fakes import fake_lab_roles

    clock = make_clock(speed)
    roles, _log, _world = fake_lab_roles(clock)
    lab = Lab(roles, clock=clock)
    bus = EventBus(clock)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"engine-check-{time.strftime('%Y%m%d-%H%M%S')}.h5"
    runner = Runner(EngineCheck(), lab, path, clock=clock, bus=bus, title="sflab engine check (in-memory fakes)",
                    sample={"name": "fake two-band sample (acq.fakes)", "truth": {"model": "acq.fakes"}})
    console.print("[bold]sflab demo[/bold] — engine check on in-memory fake instruments "
                  f"(lab clock: {clock!r})")
    t0 = time.monotonic()
    try:
        with handle_signals(runner):
            res = _run_with_progress(runner, bus, console, "engine check", show)
    except ValidationError as exc:
        raise BadInput(str(exc)) from None
    wall = time.monotonic() - t0
    data = open_run(path)
    t = Table(title=f"run file {path}")
    for col in ("T (K)", "spectrum peak (nm)", "decay counts", "g2 coincidences"):
        t.add_column(col, justify="right")
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
                  f"print(s.open_run('{path}'))\"[/cyan]", soft_wrap=True)
    return exit_code(res.exit_status)
