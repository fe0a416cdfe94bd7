"""The simulated ICL against the *unmodified* horiba-sdk client."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from horiba_sdk.core.acquisition_format import AcquisitionFormat
from horiba_sdk.core.timer_resolution import TimerResolution
from horiba_sdk.core.x_axis_conversion_type import XAxisConversionType
from horiba_sdk.devices.device_manager import DeviceManager

from acq.clock import SimClock
from simulators.icl_server import IclServer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=["afap", "sim-serve-max"])
def lab(request):
    """The ICL on sflab's AFAP clock, and on the paced clock of ``sim serve --speed max`` (where the
    unmodified client's own polls set the pace of lab time)."""
    from simulators.paced_clock import PacedClock
    from simulators.world import World

    clock = SimClock() if request.param == "afap" else PacedClock(step_s=5.0, ceiling=1000.0)
    world = World(clock, sample="milano-2d-sl", tick_s=0)
    server = IclServer(world, port=0).start()
    yield world, server
    server.stop()
    world.stop()
    if hasattr(clock, "close"):
        clock.close()


def test_unmodified_horiba_sdk_client_gets_the_sample_spectrum(lab):
    world, server = lab

    async def session() -> dict:
        dm = DeviceManager(start_icl=False, icl_ip="127.0.0.1", icl_port=str(server.port))
        await dm.start()  # the SDK's own start-up (it waits 5 s of wall time after icl_binMode)
        mono = dm.monochromators[0]
        ccd = dm.charge_coupled_devices[0]
        await mono.open()
        await ccd.open()
        await mono.initialize()
        while await mono.is_busy():
            pass
        out = {"config": await mono.configuration(), "chip": await ccd.get_chip_size()}
        await mono.set_turret_grating(mono.Grating.SECOND)
        await mono.move_to_target_wavelength(515.0)
        while await mono.is_busy():
            pass
        await mono.set_slit_position(mono.Slit.A, 0.05)
        out["wavelength"] = await mono.get_current_wavelength()
        await ccd.set_timer_resolution(TimerResolution.MICROSECONDS)
        await ccd.set_exposure_time(500)
        await ccd.set_acquisition_format(1, AcquisitionFormat.SPECTRA_IMAGE)
        await ccd.set_region_of_interest(1, 0, 0, 1024, 256, 1, 256)
        await ccd.set_x_axis_conversion_type(XAxisConversionType.FROM_ICL_SETTINGS_INI)
        await ccd.set_center_wavelength(0, 515.0)
        out["temperature"] = await ccd.get_chip_temperature()
        await ccd.acquisition_start(open_shutter=True)
        while await ccd.get_acquisition_busy():
            pass
        out["light"] = await ccd.get_acquisition_data()
        await ccd.acquisition_start(open_shutter=False)
        while await ccd.get_acquisition_busy():
            pass
        out["dark"] = await ccd.get_acquisition_data()
        with pytest.raises(Exception, match="Error from the ICL: CCD error: invalid value"):
            await ccd.set_exposure_time(-5)
        with pytest.raises(Exception, match="MONO error: invalid parameter"):
            await mono.move_to_target_wavelength(5000.0)
        await ccd.close()
        await mono.close()
        await dm.stop()
        return out

    out = asyncio.run(session())
    assert [g["grooveDensity"] for g in out["config"]["gratings"]] == [1800, 1200, 300]
    assert (out["chip"].width, out["chip"].height) == (1024, 256)
    assert out["wavelength"] == 515.0
    roi = out["light"]["acquisition"][0]["roi"][0]
    x = np.asarray(roi["xData"][0])
    y = np.asarray(roi["yData"][0], float)
    dark = np.asarray(out["dark"]["acquisition"][0]["roi"][0]["yData"][0], float)
    assert x.size == y.size == 1024 and x[0] < 515.0 < x[-1]
    np.testing.assert_allclose(x, server.wavelength_axis(), atol=1e-6)  # the spectrograph's axis
    assert y.max() < 65535, "the test spectrum must not saturate"
    assert dark.mean() == pytest.approx(500, abs=5) and dark.std() < 20  # bias + read noise only
    signal = y - dark.mean()
    # where the sample physics put the emission
    fine = np.linspace(x[0], x[-1], 50_000)
    truth = world.sample.emission_spectrum(fine, world.conditions())
    assert abs(x[np.argmax(signal)] - fine[np.argmax(truth)]) < 0.3  # nm (~5 pixels of 0.057 nm)
    w = np.clip(signal, 0, None)
    centroid = (x * w).sum() / w.sum()
    centroid_truth = (fine * truth).sum() / truth.sum()
    assert abs(centroid - centroid_truth) < 0.5
    assert out["temperature"] < 20.0  # cooling since ccd_open


def test_error_and_unknown_command_shapes(lab):
    _, server = lab
    reply = json.loads(server.handle_text(json.dumps({"id": 7, "command": "ccd_bogus", "parameters": {}})))
    assert reply == {"id": 7, "command": "ccd_bogus", "results": {}, "errors": ["[E];-2;ICL error: unknown command "
                                                                                 "(ccd_bogus)"]}
    reply = json.loads(server.handle_text(json.dumps({"id": 8, "command": "ccd_setRoi", "parameters": {
        "index": 0, "roiIndex": 1, "xOrigin": 0, "yOrigin": 0, "xSize": 1024, "ySize": 256, "xBin": 1,
        "yBin": 256}})))
    assert reply["errors"][0].startswith("[E];-305;CCD error: not open")
    server.handle_text(json.dumps({"id": 9, "command": "ccd_open", "parameters": {"index": 0}}))
    reply = json.loads(server.handle_text(json.dumps({"id": 10, "command": "ccd_setRoi", "parameters": {
        "index": 0, "roiIndex": 1, "xOrigin": 0, "yOrigin": 0, "xSize": 1024, "ySize": 256, "xBin": 3,
        "yBin": 256}})))
    assert reply["errors"][0].startswith("[E];-318;CCD error: invalid value")


def test_busy_flags_follow_lab_time_at_finite_speed():
    from simulators.world import World

    clock = SimClock(speed=1000)  # finite speed: the server reports busy until lab time has passed
    world = World(clock, sample="milano-2d-sl", tick_s=0)
    s = IclServer(world, port=0)
    s.handle_text(json.dumps({"id": 1, "command": "mono_open", "parameters": {"index": 0}}))
    s.handle_text(json.dumps({"id": 2, "command": "mono_init", "parameters": {"index": 0}}))
    busy = json.loads(s.handle_text(json.dumps({"id": 3, "command": "mono_isBusy", "parameters": {"index": 0}})))
    assert busy["results"]["busy"] is True
    clock.sleep(25.0)
    busy = json.loads(s.handle_text(json.dumps({"id": 4, "command": "mono_isBusy", "parameters": {"index": 0}})))
    assert busy["results"]["busy"] is False
    world.stop()


def test_the_packages_default_ports_are_the_servers_own():
    """simulators.DEFAULT_PORTS is each protocol server's DEFAULT_PORT and the ICL's: written once each."""
    import simulators
    from simulators import icl_server
    from simulators.servers import SERVER_CLASSES

    assert simulators.DEFAULT_PORTS == {**{r: c.DEFAULT_PORT for r, c in SERVER_CLASSES.items()},
                                        "spectrometer": icl_server.DEFAULT_PORT}
    assert len(set(simulators.DEFAULT_PORTS.values())) == len(simulators.DEFAULT_PORTS)
