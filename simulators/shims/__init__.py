"""Importable stand-ins for vendor Python packages, for programs that are not sflab.

Put this directory on ``sys.path`` (``PATH_ENTRY``; e.g. ``PYTHONPATH=$(python -m simulators.shims)``)
or run the program with ``sflab sim python SCRIPT`` and ``import TimeTagger`` gives the emulated
Swabian Time Tagger module (:mod:`simulators.timetagger`) fed by a simulated lab built at import
time. The lab is set up from environment variables, read once at import:

* ``SFLAB_SIM_SAMPLE`` — sample preset or TOML file (default ``milano-2d-sl``);
* ``SFLAB_SIM_SEED`` — random seed (default 0);
* ``SFLAB_SIM_WIRING`` — ``hbt`` (two detectors on inputs 2 and 3, no sync; default) or ``tcspc``
  (laser sync on input 1, detector on input 2);
* ``SFLAB_SIM_T_K`` — cryostat temperature (default 20 K);
* ``SFLAB_SIM_XRAY`` — ``kV,mA`` of the X-ray tube, HV on and shutter open (default ``20,1``;
  ``0,0`` leaves the tube off);
* ``SFLAB_SIM_LASER_W`` — laser power before the attenuator (default 0: laser off).

Lab time moves when the script waits on the tagger (``waitUntilFinished``, or
``TimeTagger.SFLAB_LAB.clock.sleep(s)``), never while it computes: a 10 s capture takes the CPU
time of simulating 10 s of tags.
The simulated lab object is ``TimeTagger.SFLAB_LAB`` (its ``world`` has the sample truth).
"""

from __future__ import annotations

import os

PATH_ENTRY = os.path.dirname(os.path.abspath(__file__))

__all__ = ["PATH_ENTRY", "run_script"]


def run_script(path: str, argv: list[str] | None = None) -> int:
    """Run a Python script as ``__main__`` with this directory first on ``sys.path`` (what
    ``sflab sim python SCRIPT [ARGS]`` does). Returns the script's exit code."""
    import runpy
    import sys

    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such script: {path}")
    old_argv, old_path = list(sys.argv), list(sys.path)
    sys.argv = [path, *(argv or [])]
    sys.path[:0] = [PATH_ENTRY, os.path.dirname(os.path.abspath(path))]
    try:
        runpy.run_path(path, run_name="__main__")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    finally:
        sys.argv, sys.path[:] = old_argv, old_path
    return 0
