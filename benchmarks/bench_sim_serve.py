"""``sim serve --speed max`` figures with unmodified QCoDeS (< 60 s).

1. ``LakeshoreModel336.snapshot(update=True)`` wall time next to the baseline of one ``*IDN?``
   round trip measured in the same run (ratio = snapshot / round trip), with a 0.3 s VISA timeout:
   QCoDeS' HTRSET? group for outputs 3 and 4 gets no reply from a 336 and waits out ten timeouts
   (50 s at QCoDeS' default 5 s; docs/simulator.md).
2. A setpoint ramp to 80 K at 10 K/min polled every 0.1 s (QCoDeS' own wait cycle) and then
   ``blocking_t(80)``: wall seconds, lab seconds, polls, and the lab speed the client set.
"""

from __future__ import annotations

import time


def main() -> None:
    from qcodes.instrument_drivers.Lakeshore import LakeshoreModel336

    from simulators import start_lab
    from simulators.paced_clock import PacedClock

    clock = PacedClock()
    lab = start_lab(clock=clock, ports={"cryostat": 0, "spectrometer": 0})
    ls = LakeshoreModel336("bench_ls336", lab.servers["cryostat"].resource, visalib="@py", timeout=0.3)
    try:
        t0 = time.perf_counter()
        for _ in range(20):
            ls.ask("*IDN?")
        rt = (time.perf_counter() - t0) / 20
        t0 = time.perf_counter()
        ls.snapshot(update=True)
        snap = time.perf_counter() - t0
        print(f"snapshot(update=True)    {snap:6.2f} s  = {snap / rt:7.0f} × one *IDN? round trip ({rt * 1e3:.2f} ms)")
        out = ls.output_1
        out.output_range("high")
        out.setpoint_ramp_rate(10.0)
        out.setpoint_ramp_enabled(True)
        lab0, t0, polls = clock.monotonic(), time.perf_counter(), 0
        T0 = ls.A.temperature()
        out.setpoint(80.0)
        while out.setpoint_ramp_status():
            ls.A.temperature()
            polls += 1
            time.sleep(0.1)
        wall, lab_s = time.perf_counter() - t0, clock.monotonic() - lab0
        print(f"ramp {T0:.1f} -> 80 K, 10 K/min {wall:6.1f} s wall, {lab_s:.0f} s lab, {polls} polls, "
              f"{lab_s / wall:.1f} lab s per wall s (step {clock.step_s:g} s)")
        out.range_limits([10.0, 50.0, 400.0])
        t0 = time.perf_counter()
        out.blocking_t(80.0)
        print(f"blocking_t(80)           {time.perf_counter() - t0:6.2f} s wall, A = {ls.A.temperature():.2f} K")
    finally:
        ls.close()
        lab.stop()
        clock.close()


if __name__ == "__main__":
    main()
