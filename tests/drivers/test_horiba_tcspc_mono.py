"""The second Horiba monochromator (ICL device 1, the MicroHR in front of the TCSPC detector): the unmodified
horiba-sdk opens and moves it on the simulated ICL, and drivers.horiba.HoribaMonochromator drives it next to
the spectrograph's own connection."""

from __future__ import annotations

import asyncio

import pytest

from acq.clock import SimClock
from drivers.base import OptionError
from drivers.horiba import HoribaMonochromator, HoribaSpectrometer
from simulators.icl_server import IclServer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def icl():
    from simulators.world import World

    world = World(SimClock(), sample="milano-2d-sl", tick_s=0, tcspc_mono="horiba")
    server = IclServer(world, port=0).start()
    yield world, server
    server.stop()
    world.stop()


def test_unmodified_sdk_lists_opens_and_moves_the_second_mono(icl):
    from horiba_sdk.devices.device_manager import DeviceManager
    from horiba_sdk.devices.single_devices.monochromator import Monochromator

    world, server = icl

    async def go() -> tuple:
        dm = DeviceManager(start_icl=False, icl_ip="127.0.0.1", icl_port=str(server.port),
                           enable_binary_messages=False)
        await dm.communicator.open()
        await dm.discover_devices()
        monos = dm.monochromators
        mono = monos[1]
        await mono.open()
        cfg = await mono.configuration()
        await mono.initialize()
        while await mono.is_busy():
            await asyncio.sleep(0)
        await mono.move_to_target_wavelength(536.8)
        await mono.set_slit_position(Monochromator.Slit.A, 0.06)
        wl = await mono.get_current_wavelength()
        await mono.close()
        await dm.communicator.close()
        return len(monos), cfg["monoModel"], wl

    n, model, wl = asyncio.run(go())
    assert (n, model, wl) == (2, "MicroHR", 536.8)
    optics = world.tcspc_monos["horiba"]
    assert optics.wavelength_nm == 536.8 and optics.entrance_um == pytest.approx(60.0)
    assert world.tcspc_passband().center_nm == 536.8


def test_driver_next_to_the_spectrograph(icl):
    world, server = icl
    url = f"ws://127.0.0.1:{server.port}"
    spec = HoribaSpectrometer(url, clock=world.clock, icl_settle_s=0.0, exposure_s=0.01)
    mono = HoribaMonochromator(url, clock=world.clock, icl_settle_s=0.0)
    spec.connect()
    mono.connect()
    try:
        assert mono.grating_lpmm == 150.0 and mono.rld_nm_per_mm == pytest.approx(52.8)
        spec.move_to(515.0)
        mono.move_to(523.3)
        assert mono.set_bandpass(3.0) == pytest.approx(3.0)
        assert mono.window_nm() == pytest.approx((521.8, 524.8))
        assert spec.center_nm == 515.0                       # device 0 untouched
        pb = world.tcspc_passband()
        assert pb.center_nm == pytest.approx(523.3) and pb.fwhm_nm == pytest.approx(3.0, rel=0.2)
        assert mono.readback() == {"wavelength_nm": 523.3, "bandpass_nm": pytest.approx(3.0)}
        with pytest.raises(OptionError):
            mono.move_to(20000.0)
        mono.make_safe()
        assert not world.tcspc_passband().open
    finally:
        mono.close()
        spec.close()
