"""The GUI's memory is bounded by its buffers, not by the number of points, and every point the engine
publishes is either shown or counted as dropped by the GUI inbox: a short warm-up run, then a run of 1000
points (spectrum 1024 px + decay 4096 bins + g2 2000 bins each, 28.6 kB) through the real runner on the
fakes, as fast as the engine writes them.

Nothing here depends on wall time or machine load; the event-loop latency figures are in ``make bench``
(benchmarks/bench_gui.py), reported with the load average beside them."""

import logging
import tracemalloc

import pytest

from tests.gui.procs import all_procedures

log = logging.getLogger(__name__)
N = 1000
POINT_BYTES = 4 * 1024 + 4 * 4096 + 4 * 2000
LONG = 120_000     # ms: a waitUntil on state fails only on a real hang


def _queue_fast_run(win, n=N):
    qp = win.queue_panel
    qp.select_procedure("tests.gui.procs:FastStream")
    qp.form.set_values({"n": n})
    return qp.add_current()


def _run_to_end(qtbot, win, item, n, dropped_before):
    win.queue_panel.start()
    qtbot.waitUntil(lambda: win.queue.get(item.id).status not in ("queued", "running") and not win.run_active(),
                    timeout=LONG)
    # every published point reaches the model or is counted as dropped (the pump drains on its own timer)
    qtbot.waitUntil(lambda: win.model.n_seen + win.pump.dropped - dropped_before >= n, timeout=LONG)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_bounded_memory_and_every_point_seen_or_counted_as_dropped(qtbot, fake_session, tmp_path):
    from gui.app import MainWindow

    session, _log, _world = fake_session
    win = MainWindow(session, tmp_path / "queue.json", procedures=all_procedures, poll_s=0.2)
    win.ask_close = lambda: True      # pytest-qt closes the window before fixture teardown: never a modal dialog
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: session.lab.connected == set(session.lab.roles), timeout=LONG)

    # ---- run 1: a warm-up of 200 points (first paints, caches, the run machinery's one-off allocations)
    n1 = 200
    item = _queue_fast_run(win, n1)
    _run_to_end(qtbot, win, item, n1, 0)
    assert win.queue.get(item.id).status == "done"
    dropped1 = win.pump.dropped
    seen1 = win.model.n_seen
    assert seen1 >= 1 and seen1 + dropped1 == n1
    buffers = win.model.nbytes

    # ---- run 2 (100 points) under tracemalloc, so the buffers a run allocates at its start are traced and
    # their release at the start of run 3 nets out; then run 3: 1000 points, growth measured over it alone
    tracemalloc.start()
    warm = _queue_fast_run(win, 100)
    _run_to_end(qtbot, win, warm, 100, dropped1)
    dropped1 = win.pump.dropped
    base, _ = tracemalloc.get_traced_memory()
    item2 = _queue_fast_run(win)
    _run_to_end(qtbot, win, item2, N, dropped1)
    current, _peak = tracemalloc.get_traced_memory()
    top = tracemalloc.take_snapshot().statistics("lineno")[:5]
    tracemalloc.stop()
    growth = current - base
    seen, dropped = win.model.n_seen, win.pump.dropped - dropped1
    print(f"\n[gui memory] live buffers {win.model.nbytes / 1e6:.2f} MB (after {n1} points {buffers / 1e6:.2f} MB); "
          f"traced Python memory growth {growth / 1e6:.2f} MB while {N * POINT_BYTES / 1e6:.1f} MB of point data "
          f"passed through; {seen} points shown, {dropped} dropped by the GUI inbox")
    assert win.queue.get(item2.id).status == "done"
    assert seen >= 1 and seen + dropped == N                 # all seen, or counted as dropped
    assert win.model.nbytes == buffers                       # preallocated: 200 or 1000 points, the same buffers
    assert growth < 3e6, "\n".join(str(s) for s in top)      # 1000 retained points would be 28.6 MB
    win.ask_close = lambda: True
    win.close()
