"""A Python plan: dense temperature steps around the expected SF onset, coarse elsewhere, and a fluence
series at each dense temperature — logic a TOML plan cannot say.

    sflab check plans/temperature_steps.py
    sflab run plans/temperature_steps.py

``plan(p)`` only builds the list of runs (nothing moves while it runs); ``p.lab_config`` is the lab
configuration the plan is checked against, for limits.
"""

ONSET_K = 60.0   # expected SF onset of this sample (from a previous campaign)


def plan(p):
    p.sample("milano-2d-sl")
    p.title = "dense steps around the SF onset"
    coarse = [295.0, 250.0, 200.0, 150.0, 120.0]
    dense = [round(ONSET_K + d, 1) for d in (30, 20, 15, 10, 5, 0, -5, -10, -20, -30, -40)]
    lowest = 4.0
    if p.lab_config is not None and "cryostat" in p.lab_config.roles:
        lowest = max(lowest, float(p.lab_config.roles["cryostat"].options.get("min_K", lowest)))
    temps = [t for t in coarse + dense + [10.0, 5.0] if t >= lowest]
    p.run("FluenceCalibration", title="fluence calibration")
    p.run("PLTemperatureSeries", title="PL, dense around the onset", temperatures=temps,
          fluences=p.range(0.3, 6.0, 3, log=True), hold_s=120)
    for t in dense[::3]:
        p.run("FluenceSeries", title=f"fluence series at {t:g} K", temperature=t,
              fluences=p.range(0.1, 6.0, 8, log=True))
    p.wait(1800, note="warm-up pause")
