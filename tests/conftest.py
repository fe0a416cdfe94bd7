"""Suite-wide: the longest test files are collected first.

``make test`` runs ``pytest -n 3 --dist loadfile --no-loadscope-reorder``: xdist hands whole files to the three
workers in collection order, two each to start with and then one to whichever worker runs out — longest first,
that is close to the best packing (measured on 2 idle cores: 124, 142 and 136 s of test time on the three
workers, suite 158 s). Without ``--no-loadscope-reorder`` xdist re-sorts the files by their number of tests and
this order is lost: it was lost until 2 December 2026 (106, 151 and 111 s; suite 166 s). The order below is
from the junit times of the suite on 2 idle cores; a file not listed keeps its place after these. Only the
order changes, never what runs or what it asserts.
"""

from __future__ import annotations

#: longest first (seconds per file, ``make test`` on 2 idle cores, 2 December 2026)
LONGEST_FIRST = (
    "tests/integration/test_demo.py",              # ~78 (in-process demo of 8 runs + analyze --report; session 7)
    "tests/integration/test_fault_campaign.py",    # ~45 (mostly waiting out link timeouts)
    "tests/simulators/test_sim_serve_clients.py",  # ~25
    "tests/procedures/test_pl.py",                 # ~25 (makes the milano series test_xray.py reads)
    "tests/acq/test_interop.py",                   # ~24
    "tests/simulators/test_faults_injection.py",   # ~19
    "tests/gui/test_stop_and_validate.py",         # ~13
    "tests/analysis/test_verdict_presets.py",      # ~13
    "tests/acq/test_serve.py",                     # ~12
    "tests/acq/test_kill_campaign.py",             # ~12
    "tests/procedures/test_xray.py",               # ~12
    "tests/procedures/test_reference_absorption.py",  # ~12 (reads the shared milano series)
    "tests/simulators/test_icl_server.py",         # ~10
    "tests/gui/test_window.py",                    # ~9
    "tests/simulators/test_xray_safety.py",        # ~8
    "tests/integration/test_fuzz_inputs.py",       # ~7
    "tests/analysis/test_g2.py",                   # ~6.5
    "tests/gui/test_sim_session.py",               # ~6.5
    "tests/procedures/test_resume.py",             # ~6.4
    "tests/analysis/test_quality.py",              # ~5
    "tests/analysis/test_report.py",               # ~5
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
