"""Crash hooks for the kill campaign: named steps at which a test makes the process die.

``SFLAB_CRASH_AT`` is a comma-separated list of step names (``copy:point:3``, ``swap:replaced``,
``run:point:5`` …). When the code reaches a listed step, :func:`reached` ends the process at once with
``os._exit(137)`` — no ``finally``, no flush, no backstop: what ``kill -9`` does, but at an exact
instant instead of a timed one. A step written ``name=TERM`` or ``name=INT`` sends that signal to the
process instead, in the calling thread at that instant (the signal handlers run, as they do for a real
SIGTERM / Ctrl-C).

The variable is read at every call (it is cheap) so a test can set it in a forked child. Unset, every
hook is a dictionary lookup and nothing else. Steps are listed in docs/run-files.md.
"""

from __future__ import annotations

import os
import signal

__all__ = ["reached", "ENV"]

ENV = "SFLAB_CRASH_AT"


def reached(step: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    for item in spec.split(","):
        name, _, how = item.strip().partition("=")
        if name != step:
            continue
        if how in ("TERM", "INT"):
            # raise_signal (C raise()) signals the calling thread, so the handler runs here and now; os.kill
            # of the process let the kernel hand the signal to any thread, and the main thread acted on it
            # only later — under load a Ctrl-C sent at point 3 was once lost (exit 0, expected 130)
            signal.raise_signal(signal.SIGTERM if how == "TERM" else signal.SIGINT)
            return
        os._exit(137)
