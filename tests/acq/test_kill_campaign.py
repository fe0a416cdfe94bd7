"""Kill campaign: the run and its resumes die at many exact instants — after points, at every step of
resume's copy and swap, mid-point under X-ray dose, by SIGTERM and SIGINT — and after the final
resume no point is lost, no completed X-ray point was taken twice, ids are contiguous and the data of
earlier points are byte for byte what was first recorded.

Each attempt is a forked child running the queue worker (what ``sflab run`` / ``sflab resume FOLDER``
run) on the in-memory fakes with ``SFLAB_CRASH_AT`` naming the instant (acq/crashpoints.py): the child
dies there with ``os._exit(137)`` (as ``kill -9`` would: no cleanup, no backstop) or gets the signal.
"""

from __future__ import annotations

import collections
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from pymeasure.experiment import IntegerParameter

from acq import crashpoints
from acq.clock import SimClock
from acq.config import parse_config
from acq.events import EventBus
from acq.fakes import fake_lab_roles
from acq.lab import Lab
from acq.procedure import Procedure
from acq.queue import QueueWorker, RunQueue
from acq.runner import handle_signals
from acq.session import LabSession
from acq.store import Field, Stream, find_source, open_run

N = 8
KILLED, SIGNALLED, DONE = 137, 130, 0


class Dosed(Procedure):
    """Every point under X-rays; each exposure is written to a ledger before the point is committed."""

    ROLES = ("cryostat", "xray", "spectrometer")
    XRAY = True
    DEFAULT_STREAM = "spectrum"
    n = IntegerParameter("Points", minimum=1, maximum=100, default=N)
    ledger = ""

    def points(self):
        return [{"T": 100.0 - 5 * i} for i in range(self.n)]

    def streams(self):
        return [Stream("spectrum", (Field("counts", (64,), "f8"), Field("T", (), "f8", "K")), "counts",
                       ("T", "."))]

    def measure_point(self, index, point):
        lab = self.lab
        lab.cryostat.set_temperature(point["T"])
        lab.cryostat.wait_stable(point["T"], band_K=0.5, hold_s=5.0)
        lab.xray.on(30.0, 0.5)
        with open(os.environ["DOSE_LEDGER"], "a") as f:
            f.write(f"{index}\n")
        crashpoints.reached(f"dose:{index}")     # under X-rays, not yet committed
        counts = lab.spectrometer.acquire(2.0).counts[:64].astype("f8")
        lab.xray.off()
        self.emit("spectrum", counts=counts, T=point["T"])


def _fake_session(data_dir: Path) -> LabSession:
    """A session on fresh in-memory fakes: a re-taken point would differ (the RNG is seeded by the pid)."""
    clock = SimClock()
    roles, _log, world = fake_lab_roles(clock)
    world.rng = np.random.default_rng(os.getpid())
    world.tau_s = 2.0                                 # a quick stage: the test is about the file
    cfg = parse_config('[lab]\nname = "fake"\n', "<fake>")
    return LabSession(Lab(roles, clock=clock, config=cfg), clock, cfg, EventBus(clock), data_dir)


def _forked(spec: str | None, body) -> int:
    """``body()`` (returning an exit code) in a forked child with crash hook ``spec``; its exit code."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            if spec:
                os.environ[crashpoints.ENV] = spec
            else:
                os.environ.pop(crashpoints.ENV, None)
            code = body()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _attempt(folder: Path, spec: str | None) -> int:
    """One `sflab run` / `sflab resume` of the campaign, on fresh fakes, in a forked child."""
    def body() -> int:
        q = RunQueue(folder / "queue.json")
        w = QueueWorker(_fake_session(folder), q, out_dir=folder, filename=lambda it, i: "run.h5")
        try:
            with handle_signals():
                w.run_here()
            # as `sflab run` exits: 130 when a run was interrupted (resumable), else 0
            return SIGNALLED if any(it.status == "interrupted" for it in q.items) else DONE
        except BaseException:   # SIGTERM / Ctrl-C: the runner recorded 'interrupted'
            return SIGNALLED

    return _forked(spec, body)


def _hashes(d) -> dict[int, str]:
    c = d.streams["spectrum"]["counts"]
    return {int(d.point_id[i]): hashlib.sha256(c[i].tobytes()).hexdigest() for i in range(d.n_points)}


def _copy_steps(n: int) -> list[str]:
    return (["copy:begin", "copy:skeleton"] + [f"copy:point:{i}" for i in range(n)]
            + ["copy:logged", "copy:closed", "swap:backup", "swap:replaced", "resume:reopened", "resume:marked"])


@pytest.mark.timeout(240)
def test_kill_campaign_no_point_lost_no_dose_repeated(tmp_path, monkeypatch):
    monkeypatch.setenv("DOSE_LEDGER", str(tmp_path / "dose.txt"))
    q = RunQueue(tmp_path / "queue.json")
    q.add(f"{__name__}:Dosed", {"n": N}, "dosed series")
    run = tmp_path / "run.h5"
    # (crash spec, expected exit code, completed points after the attempt)
    plan: list[tuple[str | None, int, int]] = [("run:point:1", KILLED, 2)]
    plan += [(s, KILLED, 2) for s in _copy_steps(2)]                     # every step of the copy
    plan += [("run:point:2=TERM", SIGNALLED, 3),                          # SIGTERM right after a point
             ("dose:3", KILLED, 3),                                       # killed mid-point under dose
             ("run:point:3=INT", SIGNALLED, 4),                           # Ctrl-C
             ("run:point:4", KILLED, 5)]
    plan += [(s, KILLED, 5) for s in _copy_steps(5)]                     # every step again, 5 points
    plan += [("copy:point:2=TERM", SIGNALLED, 5),                         # SIGTERM during the copy
             ("run:point:6", KILLED, 7),
             (None, DONE, N)]
    first_seen: dict[int, str] = {}
    for spec, code, n in plan:
        got = _attempt(tmp_path, spec)
        assert got == code, f"attempt {spec!r}: exit {got}, expected {code}"
        # at every instant the run file itself is complete and readable, with every point so far
        d = open_run(run)
        assert d.n_points == n, f"after {spec!r}: {d.n_points} points in {run.name}, expected {n}"
        best, _ = find_source(run)
        assert best is not None and best.n_points == n
        assert list(d.point_id) == list(range(n))
        for pid, h in _hashes(d).items():
            assert first_seen.setdefault(pid, h) == h, f"point {pid} changed (re-taken?) after {spec!r}"
    final = open_run(run)
    assert final.exit_status == "success" and final.n_points == N
    np.testing.assert_array_equal(final.point_id, np.arange(N))
    assert np.all(np.diff(final.timestamp) > 0), "timestamps go back across a resume"
    doses = collections.Counter(int(x) for x in (tmp_path / "dose.txt").read_text().split())
    # each point exposed exactly once — except point 3, whose exposure was cut by the kill before it
    # was recorded (the file says it is measured again)
    assert doses == {i: (2 if i == 3 else 1) for i in range(N)}
    notes = [e["message"] for e in final.events if e["kind"] == "resume"]
    assert any("point 3, if it was in progress when the run stopped, is measured again" in m for m in notes)
    assert final.resumed_at and final.resumed_at[-1] == 7
    assert not (tmp_path / ".run.h5.rebuild.h5").exists()   # the last resume's copy was swapped in
    kills = len(plan) - 1
    print(f"kill campaign: {kills} kill instants ({sum(c == KILLED for _, c, _ in plan)} os._exit, "
          f"{sum(c == SIGNALLED for _, c, _ in plan)} signals), {len(final.resumed_at)} resumes recorded")


@pytest.mark.timeout(120)
def test_resume_of_an_unreadable_file_continues_from_its_backup(tmp_path, monkeypatch):
    """The file itself is damaged after a resume died having made its backup: the next resume takes
    the most complete readable version (the backup), keeps the damaged file, and re-takes nothing."""
    monkeypatch.setenv("DOSE_LEDGER", str(tmp_path / "dose.txt"))
    q = RunQueue(tmp_path / "queue.json")
    q.add(f"{__name__}:Dosed", {"n": 4}, "dosed series")
    run = tmp_path / "run.h5"
    assert _attempt(tmp_path, "run:point:1") == KILLED
    assert _attempt(tmp_path, "swap:backup") == KILLED     # backup linked, not yet swapped
    before = _hashes(open_run(run))
    size = run.stat().st_size
    data = run.read_bytes()
    run.unlink()                                            # break the link: damage only this name
    run.write_bytes(data[: size // 2])                      # cut at 50 %: unreadable
    assert _attempt(tmp_path, None) == DONE
    d = open_run(run)
    assert d.exit_status == "success" and d.n_points == 4 and list(d.point_id) == [0, 1, 2, 3]
    assert {k: v for k, v in _hashes(d).items() if k in before} == before
    doses = collections.Counter(int(x) for x in (tmp_path / "dose.txt").read_text().split())
    assert doses == {0: 1, 1: 1, 2: 1, 3: 1}
    assert any("run.interrupted" in (e.get("source") or "") for e in d.events if e["kind"] == "resume")
    kept = [p for p in tmp_path.glob("run.interrupted*.h5")]
    assert any(p.stat().st_size == size // 2 for p in kept), "the damaged file is kept"


@pytest.mark.timeout(120)
def test_unreadable_xray_run_without_backup_is_not_retaken_unless_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("DOSE_LEDGER", str(tmp_path / "dose.txt"))
    q = RunQueue(tmp_path / "queue.json")
    it = q.add(f"{__name__}:Dosed", {"n": 3}, "dosed series")
    run = tmp_path / "run.h5"
    assert _attempt(tmp_path, "run:point:0") == KILLED
    run.write_bytes(run.read_bytes()[:4096])                # damaged, and no backup exists
    assert _attempt(tmp_path, None) == DONE                 # the worker refuses, the queue says why
    item = RunQueue(tmp_path / "queue.json").get(it.id)
    assert item.status == "failed" and "re-take them only on purpose" in item.error and "truncated" in item.error
    assert (tmp_path / "dose.txt").read_text().split() == ["0"]
    q = RunQueue(tmp_path / "queue.json")
    q.mark(it.id, "interrupted", retake=True)               # the operator asks for it explicitly
    assert _attempt(tmp_path, None) == DONE
    d = open_run(run)
    assert d.exit_status == "success" and d.n_points == 3
    assert any(e["kind"] == "retake" and "X-ray dose again" in e["message"] for e in d.events)
    assert list(tmp_path.glob("run.unreadable*.h5"))        # the damaged file is kept


PLAN = f"""\
title = "kill campaign through the CLI"

[[step]]
procedure = "{__name__}:Dosed"
n = 5
"""


def _cli(folder: Path, args: list[str], spec: str | None) -> int:
    """``sflab <args>`` in a forked child: the real command (argument parsing, campaign, queue worker,
    signal handling, exit code) on the in-memory fakes instead of the simulated lab's servers."""
    from acq import cli, workflows

    def body() -> int:
        # the one place the commands open a lab (acq.workflows.open_session)
        workflows.open_session = lambda _opts, data_dir, **_kw: _fake_session(data_dir)  # type: ignore[assignment]
        try:
            return int(cli.app(args, standalone_mode=False) or 0)   # click returns typer.Exit's code
        except SystemExit as e:
            return int(e.code or 0)
        except Exception as e:  # click's standalone_mode=False hands back typer.Exit's code
            return int(getattr(e, "exit_code", 1))

    return _forked(spec, body)


@pytest.mark.timeout(240)
def test_kill_sflab_run_and_sflab_resume(tmp_path, monkeypatch):
    monkeypatch.setenv("DOSE_LEDGER", str(tmp_path / "dose.txt"))
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    folder = tmp_path / "campaign"
    run = folder / f"000_{Dosed.__qualname__}.h5"
    resume = ["resume", str(folder), "--quiet"]
    steps = [(["run", str(plan), "--out", str(folder), "--quiet", "--no-analyze"], "run:point:1", KILLED, 2),
             (resume, "copy:point:1", KILLED, 2),
             (resume, "swap:backup", KILLED, 2),
             (resume, "swap:replaced", KILLED, 2),
             (resume, "resume:marked", KILLED, 2),
             (resume, "run:point:2=TERM", SIGNALLED, 3),
             (resume, "run:point:3=INT", SIGNALLED, 4),
             (resume, None, DONE, 5)]
    first_seen: dict[int, str] = {}
    for args, spec, code, n in steps:
        got = _cli(tmp_path, args, spec)
        assert got == code, f"sflab {args[0]} with {spec!r}: exit {got}, expected {code}"
        if not run.exists():
            run = next(folder.glob("000_*.h5"))
        d = open_run(run)
        assert d.n_points == n and list(d.point_id) == list(range(n)), (spec, d.n_points)
        for pid, h in _hashes(d).items():
            assert first_seen.setdefault(pid, h) == h, f"point {pid} changed after {spec!r}"
    final = open_run(run)
    assert final.exit_status == "success" and final.n_points == 5
    assert np.all(np.diff(final.timestamp) > 0)
    doses = collections.Counter(int(x) for x in (tmp_path / "dose.txt").read_text().split())
    assert doses == {i: 1 for i in range(5)}, doses
    print(f"CLI kill campaign: {len(steps) - 1} kill instants of sflab run / sflab resume")
