"""Suite-wide: the longest test files are collected first.

``make test`` runs ``pytest -n 2 --dist loadfile``: xdist hands whole files to the two workers in
collection order. Collected alphabetically, the demo campaign (about 80 s on one core) came last and ran
alone while the other worker idled; longest-first keeps both workers busy to the end. The order below is
from ``--durations`` of the suite on 2 cores; a file not listed keeps its place after these. Only the
order changes, never what runs or what it asserts.
"""

from __future__ import annotations

#: longest first (seconds per file, ``make test`` on 2 idle cores, 2 December 2026)
LONGEST_FIRST = (
    "tests/integration/test_demo.py",              # ~45 s (idle, in-process demo; 66–75 s beside 2 CPU hogs)
    "tests/integration/test_fault_campaign.py",    # ~70
    "tests/procedures/test_pl.py",                 # ~55
    "tests/acq/test_interop.py",                   # ~40
    "tests/procedures/test_xray.py",               # ~37
    "tests/simulators/test_sim_serve_clients.py",  # ~19
    "tests/simulators/test_faults_injection.py",   # ~19
    "tests/analysis/test_verdict_presets.py",      # ~17
    "tests/acq/test_kill_campaign.py",             # ~17
    "tests/gui/test_stop_and_validate.py",         # ~17
    "tests/acq/test_serve.py",                     # ~16
    "tests/gui/test_window.py",                    # ~15
    "tests/procedures/test_resume.py",             # ~11
    "tests/analysis/test_g2.py",                   # ~11
    "tests/analysis/test_report.py",               # ~11
    "tests/gui/test_sim_session.py",               # ~10
)


def pytest_collection_modifyitems(session, config, items):  # noqa: ARG001 - pytest hook signature
    rank = {f: i for i, f in enumerate(LONGEST_FIRST)}
    last = len(rank)

    def key(item):
        path = item.nodeid.split("::", 1)[0]
        return rank.get(path, last)

    items.sort(key=key)   # stable: within a file, and among the files not listed, the order is kept


def made_once(tmp_path_factory, name: str, make):
    """``make(folder)`` once per test session, by whichever xdist worker asks first; the others wait on a file
    lock and get the pickled result (pytest-xdist's documented recipe for a session-wide fixture). For a run
    file that several test files read but never write: the simulated series behind it costs ≈ 8 s of CPU,
    which on a loaded 2-core machine is the suite's bound."""
    import os
    import pickle

    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent            # shared by the session's workers
    folder = root / f"shared-{name}"
    done = folder / "result.pickle"
    with FileLock(str(folder) + ".lock"):
        if done.exists():
            return pickle.loads(done.read_bytes())
        folder.mkdir(exist_ok=True)
        value = make(folder)
        done.write_bytes(pickle.dumps(value))
        return value
