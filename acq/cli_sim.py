"""``sflab sim …`` — the simulated lab on its own, for other programs (QCoDeS, pymeasure, horiba-sdk, scripts
written for the Swabian ``TimeTagger`` API). Parses and prints; the lab is composed by :mod:`acq.composition`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .composition import SIM_TCSPC_MONOS, resolve_sample, run_sim_script, serve_simulated_lab
from .display import fail as _fail

__all__ = ["sim_app", "TcspcMonoOpt"]

#: ``--tcspc-mono`` of ``sflab run``, ``demo`` and ``sim serve`` (checked by acq.composition.check_sim_choices)
TcspcMonoOpt = Annotated[str, typer.Option(
    "--tcspc-mono", help=f"simulated TCSPC monochromator in front of the TCSPC detector: {', '.join(SIM_TCSPC_MONOS)} "
                         "(cornerstone: Oriel Cornerstone 260; horiba: the ICL's second device, a MicroHR; none: "
                         "the detector sees all light)")]

sim_app = typer.Typer(no_args_is_help=True, help="The simulated lab on its own, for other programs.")


def _port(role: str) -> Any:
    name = role.replace("_", " ")
    return typer.Option(f"--port-{role.replace('_', '-')}", help=f"TCP port of the simulated {name} (0: any free port)")


@sim_app.command("serve")
def sim_serve(sample: Annotated[str, typer.Option(help="virtual sample preset or sample TOML file")] = "milano-2d-sl",
              speed: Annotated[str, typer.Option(help="lab seconds per wall second, or 'max': as fast as the "
                                                      "slowest client allows (see below)")] = "1",
              max_step: Annotated[float, typer.Option(help="with --speed max: lab seconds a client may see pass "
                                                          "between two of its requests")] = 2.0,
              faults: Annotated[str | None, typer.Option(help="simulated faults, e.g. 'xray.garbage=0.05'")] = None,
              seed: Annotated[int, typer.Option(help="random seed of the simulated lab")] = 0,
              tcspc_mono: TcspcMonoOpt = "cornerstone",
              port_cryostat: Annotated[int | None, _port("cryostat")] = None,
              port_xray: Annotated[int | None, _port("xray")] = None,
              port_shutter: Annotated[int | None, _port("shutter")] = None,
              port_laser_shutter: Annotated[int | None, _port("laser_shutter")] = None,
              port_attenuator: Annotated[int | None, _port("attenuator")] = None,
              port_powermeter: Annotated[int | None, _port("powermeter")] = None,
              port_tcspc_mono: Annotated[int | None, _port("tcspc_mono")] = None,
              port_sample_stage: Annotated[int | None, _port("sample_stage")] = None,
              port_lamp_shutter: Annotated[int | None, _port("lamp_shutter")] = None,
              port_spectrometer: Annotated[int | None, _port("spectrometer")] = None) -> None:
    """Serve the simulated lab on loopback until Ctrl-C or SIGTERM: Lake Shore 7777, Spellman 50001,
    X-ray shutter (SC10) 50002, laser shutter (SC10) 50003, CONEX 7778, PM100D 7779, TCSPC monochromator
    (Cornerstone 260) 7780, sample stage (CONEX-CC: sample, isolated-NC reference, blank) 7781, white-light
    lamp shutter (SC10) 50004, ICL WebSocket 25010 (its second monochromator, index 1, is the MicroHR) by
    default. Both monochromators answer; --tcspc-mono says which is in the TCSPC beam (and in the lab.toml
    tables). Prints one JSON line first
    (role → host, port, resource, and the lab.toml tables to reach them).

    Lab time always moves. With a number it runs at that many lab seconds per wall second. With
    'max' it runs as fast as the slowest client allows: never more than --max-step lab seconds past
    the latest request of any connected client (one that is silent for 2 s no longer counts), and
    200 lab s per wall s with nobody talking — so a client polling a temperature sees it move."""
    roles = ("cryostat", "xray", "shutter", "laser_shutter", "attenuator", "powermeter", "tcspc_mono",
             "sample_stage", "lamp_shutter", "spectrometer")
    given = (port_cryostat, port_xray, port_shutter, port_laser_shutter, port_attenuator, port_powermeter,
             port_tcspc_mono, port_sample_stage, port_lamp_shutter, port_spectrometer)
    ports: dict[str, int | None] = {r: p for r, p in zip(roles, given, strict=True) if p is not None}
    try:
        code = serve_simulated_lab(speed=speed, max_step=max_step, sample=resolve_sample(sample), faults=faults,
                                   seed=seed, ports=ports, tcspc_mono=tcspc_mono)
    except (ValueError, OSError) as exc:
        _fail(f"sim serve: {exc}")
    raise typer.Exit(code)


@sim_app.command("python", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def sim_python(ctx: typer.Context,
               script: Annotated[Path, typer.Argument(help="the Python script to run (its arguments follow)")]) -> None:
    """Run a Python script whose 'import TimeTagger' gets the emulated Swabian tagger.

    The emulated Swabian Time Tagger runs on a simulated sample (switches: SFLAB_SIM_* variables,
    docs/simulator.md)."""
    try:
        code = run_sim_script(script, list(ctx.args))
    except FileNotFoundError as exc:
        _fail(f"sim python: {exc}")
    raise typer.Exit(code)
