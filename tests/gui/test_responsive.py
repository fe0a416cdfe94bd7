"""The GUI stays responsive while acquisition streams points quickly, and its memory is bounded by its
buffers, not by the number of points: two runs of 1000 points (spectrum 1024 px + decay 4096 bins + g2
2000 bins each, 28.6 kB) through the real runner on the fakes, as fast as the engine writes them."""

import logging
import time
import tracemalloc

import pytest
from qtpy import QtCore

from tests.gui.procs import all_procedures

log = logging.getLogger(__name__)
N = 1000
POINT_BYTES = 4 * 1024 + 4 * 4096 + 4 * 2000


def _queue_fast_run(win, n=N):
    qp = win.queue_panel
    qp.select_procedure("tests.gui.procs:FastStream")
    qp.form.set_values({"n": n})
    return qp.add_current()


@pytest.mark.timeout(120)
def test_event_loop_latency_and_bounded_memory_while_1000_points_arrive(qtbot, fake_session, tmp_path):
    from gui.app import MainWindow

    session, _log, _world = fake_session
    win = MainWindow(session, tmp_path / "queue.json", procedures=all_procedures, poll_s=0.2)
    win.ask_close = lambda: True      # pytest-qt closes the window before fixture teardown: never a modal dialog
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: session.lab.connected == set(session.lab.roles), timeout=5000)

    # ---- run 1: event-loop latency (a 10 ms timer; lateness = gap between ticks minus the interval)
    item = _queue_fast_run(win)
    gaps: list[float] = []
    last = [time.perf_counter()]
    measuring = [False]

    def beat() -> None:
        now = time.perf_counter()
        if measuring[0]:
            gaps.append(now - last[0] - 0.010)
        last[0] = now

    timer = QtCore.QTimer()
    timer.setInterval(10)
    timer.timeout.connect(beat)
    timer.start()
    win.queue_panel.start()
    qtbot.waitUntil(lambda: win.model.n_seen >= 1, timeout=20000)
    qtbot.wait(300)                              # the first paint of the live tab is not "streaming"
    measuring[0] = True
    t0 = time.perf_counter()
    n0 = win.model.n_seen
    qtbot.waitUntil(lambda: not win.run_active(), timeout=60000)
    wall = time.perf_counter() - t0
    qtbot.wait(200)
    timer.stop()
    assert win.queue.get(item.id).status == "done"
    seen, dropped = win.model.n_seen, win.pump.dropped
    assert seen + dropped == N and seen >= 0.9 * N
    g = sorted(gaps)
    med, p95, p99, worst = g[len(g) // 2], g[int(0.95 * len(g))], g[int(0.99 * len(g))], g[-1]
    print(f"\n[gui latency] {N - n0} points in {wall:.2f} s ({(N - n0) / wall:.0f} points/s): event-loop lateness "
          f"median {1e3 * med:.1f} ms, 95th percentile {1e3 * p95:.1f} ms, 99th percentile {1e3 * p99:.1f} ms, "
          f"max {1e3 * worst:.1f} ms "
          f"({sum(x > 0.1 for x in g)} of {len(g)} ticks over 100 ms); {win.live.redraws} redraws; "
          f"{dropped} points dropped by the GUI inbox")

    # ---- run 2: memory (tracemalloc slows Python down, so it is not on during the latency run)
    buffers = win.model.nbytes
    item2 = _queue_fast_run(win)
    win.queue_panel.start()
    qtbot.waitUntil(lambda: win.queue.get(item2.id).status == "running" and 200 <= win.model.n_seen < N - 300,
                    timeout=30000)
    buffers_200 = win.model.nbytes
    n_start = win.model.n_seen
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    qtbot.waitUntil(lambda: not win.run_active(), timeout=90000)
    qtbot.wait(300)
    current, _peak = tracemalloc.get_traced_memory()
    top = tracemalloc.take_snapshot().statistics("lineno")[:5]
    tracemalloc.stop()
    growth = current - base
    passed = (N - n_start) * POINT_BYTES
    print(f"[gui memory] live buffers {win.model.nbytes / 1e6:.2f} MB (run 1 end {buffers / 1e6:.2f} MB, "
          f"run 2 at {n_start} points {buffers_200 / 1e6:.2f} MB); traced Python memory growth "
          f"{growth / 1e6:.2f} MB while {passed / 1e6:.1f} MB of point data passed through")
    assert win.queue.get(item2.id).status == "done"
    assert win.model.nbytes == buffers_200 == buffers        # preallocated: independent of the points
    assert growth < 3e6, "\n".join(str(s) for s in top)      # 800 retained points would be 23 MB

    # On the shared 2-core test machine (load average 5–8) the scheduler alone produces a few ticks of
    # 100–400 ms; the GUI's own work per tick is a few ms (median lateness < 1 ms). The bound is therefore on
    # the 95th percentile, with the worst tick kept under a second; the printed numbers are in docs/gui.md.
    assert p95 < 0.100, f"95th percentile of event-loop lateness {1e3 * p95:.0f} ms"
    assert worst < 1.0, f"max event-loop lateness {1e3 * worst:.0f} ms"
    win.ask_close = lambda: True
    win.close()
