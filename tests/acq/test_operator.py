"""A manual sample holder's prompt to the operator (issue 15, "a recorded operator prompt in the GUI/CLI"):
the run engine writes it to the run file's event log, hands it to the front end and waits for its answer in
wall time (the lab clock does not run ahead while a person works); Abort acts while it waits; without a front
end the driver waits its own ``wait_s``."""

import math
import threading

from acq.clock import SimClock
from acq.lab import Lab
from acq.procedure import Procedure
from acq.runner import Runner
from acq.store import Field, Stream, open_run
from drivers.sample_stage import ManualSampleStage


class Swap(Procedure):
    ROLES = ("sample_stage",)
    DEFAULT_STREAM = "s"

    def points(self):
        return [{"pos": "reference"}, {"pos": "sample"}]

    def streams(self):
        return [Stream("s", (Field("x", (), "f8"),), "x", ())]

    def measure_point(self, index, point):
        self.lab.sample_stage.move_to_position(point["pos"])
        self.emit("s", x=float(index))


def _runner(tmp_path, operator=None, wait_s=0.0):
    clock = SimClock(math.inf)
    lab = Lab({"sample_stage": ManualSampleStage(clock=clock, wait_s=wait_s)}, clock=clock)
    return Runner(Swap(), lab, tmp_path / "run.h5", clock=clock, operator=operator, analyze=False), clock


def test_prompts_are_answered_by_the_front_end_and_recorded(tmp_path):
    asked: list[str] = []
    lab_t: list[float] = []
    box: dict = {}

    def operator(text):
        asked.append(text)
        ev = threading.Event()
        lab_t.append(box["clock"].monotonic())
        threading.Timer(0.3, ev.set).start()     # the person presses Done a little later
        return ev

    r, clock = _runner(tmp_path, operator)
    box["clock"] = clock
    res = r.run()
    assert res.exit_status == "success" and res.n_points == 2
    assert asked == ["move the sample holder to 'reference' (12.500 mm)",
                     "move the sample holder to 'sample' (0.000 mm)"]
    msgs = [e["message"] for e in open_run(tmp_path / "run.h5").events if e["kind"] == "operator"]
    assert msgs[0].startswith("operator prompt before point 0: move the sample holder to 'reference'")
    assert msgs[1] == "operator done: move the sample holder to 'reference' (12.500 mm)"
    assert len(msgs) == 4
    # the wait was in wall time: the AFAP lab clock did not race ahead while the operator worked
    assert clock.monotonic() - lab_t[0] < 5.0
    assert r.lab.sample_stage.ask is None   # the engine's hook is removed after the run


def test_abort_acts_while_the_operator_is_asked(tmp_path):
    asked = threading.Event()
    never = threading.Event()

    def operator(text):
        asked.set()
        return never

    r, _ = _runner(tmp_path, operator)
    out: dict = {}
    th = threading.Thread(target=lambda: out.setdefault("res", r.run()))
    th.start()
    assert asked.wait(30)
    r.abort("operator went home")
    th.join(30)
    assert not th.is_alive() and out["res"].exit_status == "aborted" and out["res"].n_points == 0


def test_without_a_front_end_the_driver_waits_its_wait_s(tmp_path):
    r, clock = _runner(tmp_path, None, wait_s=30.0)

    def mine(text):
        return True

    r.lab.sample_stage.ask = mine            # a program's own hook: the engine's replaces it for the run only
    res = r.run()
    assert r.lab.sample_stage.ask is mine
    assert res.exit_status == "success"
    assert clock.monotonic() >= 60.0        # two prompts, 30 lab s each
    msgs = [e["message"] for e in open_run(tmp_path / "run.h5").events if e["kind"] == "operator"]
    assert len(msgs) == 2 and all(m.startswith("operator prompt") for m in msgs)


def test_the_terminal_answers_with_enter(monkeypatch):
    """acq.progress.Progress.operator (what `sflab run` on a terminal installs): the prompt on the console,
    Enter answers it."""
    import io

    from rich.console import Console

    from acq.events import EventBus
    from acq.progress import Progress

    out = io.StringIO()
    typed: list[str] = []
    monkeypatch.setattr("builtins.input", lambda *a: typed.append("enter") or "")
    p = Progress(EventBus(SimClock(math.inf)), Console(file=out, force_terminal=False, width=200))
    ev = p.operator("move the sample holder to 'blank' (25.000 mm)")
    assert ev.is_set() and typed == ["enter"]
    assert "operator: move the sample holder to 'blank' (25.000 mm) — press Enter when done" in out.getvalue()
