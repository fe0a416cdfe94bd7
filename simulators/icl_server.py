"""An ICL-compatible JSON-over-WebSocket server: Horiba iHR320 monochromator + Syncerity CCD, and a second
monochromator (device index 1, a MicroHR with 150 l/mm) in front of the TCSPC detector.

Horiba's ``horiba-sdk`` talks to the vendor's ICL service (``ws://127.0.0.1:25010``) with
``{"id", "command", "parameters"}`` requests and ``{"id", "command", "results", "errors"}`` replies
(errors as ``"[E];<code>;<text>"`` with the codes of ``horiba_sdk/icl_error/error_list.json``). This
server speaks the same messages with a state model instead of the SDK's canned fake responses, so
the unmodified ``horiba-sdk`` client (and ``drivers.horiba``) runs against it:

* monochromator: open/init (homing takes lab time), wavelength (moves take lab time; mechanical
  range per grating), turret with three gratings (1800/1200/300 gr/mm), slits in mm (0–7 mm),
  shutter, mirrors, filter wheels, busy flags;
* a second monochromator (``mono_list`` index 1, "MicroHR", gratings 150/1200 l/mm) with the same
  commands; its wavelength, grating, slits A (entrance) and B (exit) and shutter are the optics of the
  world's TCSPC monochromator (``world.tcspc_monos["horiba"]``, :mod:`simulators.optics`), so what the
  TCSPC detector sees follows it when it is the one in the beam (``start_lab(tcspc_mono="horiba")``);
* CCD (1024 × 256, 26 µm pixels): exposure in timer units (ms or µs), gain and speed tokens, ROIs
  with binning (``yBin = ySize`` is full vertical binning), x-axis conversion (pixels, CCD fit
  polynomial, or the grating equation for the mono's position), chip temperature cooling down after
  ``ccd_open``, acquisition busy for exposure + read-out, dark frames with the shutter closed;
* data: the light at the collection optics (``world.collected_spectrum(λ, world.conditions())``: the emission of
  the sample in the beam, plus the white-light lamp through the holder when its shutter is open)
  through the detector chain: ``simulators.optics.Spectrograph`` (grating equation, slit line
  shape, throughput, slit transmission for a 200 µm source image) and ``simulators.ccd.CCD``
  (QE, dark current at the chip temperature, cosmic rays, binning, read noise of the speed token,
  gain of the gain token, bias, 16-bit ADC).

Lab time: busy flags clear when ``world.clock`` has passed the operation's end. In "as fast as
possible" mode a poll of a busy flag sleeps the remaining lab time on the clock (the instrument
"takes time"), so clients that poll without sleeping on the lab clock still make progress.

The server binds loopback only. It does not emit binary messages (``icl_binMode`` is accepted).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import importlib
import json
import logging
import math
import threading
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["IclServer", "IclError", "DEFAULT_PORT"]

DEFAULT_PORT = 25010
CHIP_W, CHIP_H, PIXEL_UM = 1024, 256, 26.0
FOCAL_MM = 320.0
GRATINGS = [1800, 1200, 300]
SLIT_MAX_MM = 7.0
GAINS = [{"info": "High Sensitivity", "token": 2}, {"info": "High Light", "token": 0},
         {"info": "Best Dynamic Range", "token": 1}]
E_PER_COUNT = {2: 1.0, 0: 4.0, 1: 2.0}
SPEEDS = [{"info": " 1 MHz Ultra ", "token": 2}, {"info": "500 kHz Wrap", "token": 127},
          {"info": "45 kHz       ", "token": 0}, {"info": " 1 MHz       ", "token": 1}]
PIXEL_RATE = {2: 1.0e6, 127: 5.0e5, 0: 4.5e4, 1: 1.0e6}
READ_NOISE_E = {2: 12.0, 127: 8.0, 0: 3.0, 1: 10.0}
EXPOSURE_MAX_S = 3600.0


def test_sheet(gain_token: int = 0, speed_token: int = 0) -> dict[str, float | int]:
    """The emulated Syncerity's test sheet as lab.toml spectrometer options: the gain and read-out speed
    tokens (0, 0 are its power-on settings) and their conversion gain (e⁻/count) and read noise (e⁻ rms) —
    what a lab copies from the camera's data sheet or a photon-transfer curve (docs/decisions/0014)."""
    return {"gain_token": gain_token, "speed_token": speed_token,
            "e_per_count": E_PER_COUNT[gain_token], "read_noise_e": READ_NOISE_E[speed_token]}

ERRORS = {
    -2: "ICL error: unknown command", -305: "CCD error: not open", -307: "CCD error: invalid device index",
    -309: "CCD error: acquiring", -311: "CCD error: not ready for acquisition",
    -315: "CCD error: command not supported", -317: "CCD error: invalid token", -318: "CCD error: invalid value",
    -320: "CCD error: acquisition already running", -324: "CCD error: missing parameter",
    -505: "MONO error: not initialized", -506: "MONO error: not open", -508: "MONO error: invalid device index",
    -513: "MONO error: invalid parameter", -521: "MONO error: missing parameter",
}


class IclError(Exception):
    def __init__(self, code: int, detail: str = ""):
        self.code = code
        text = ERRORS.get(code, "error")
        super().__init__(f"[E];{code};{text}{(' (' + detail + ')') if detail else ''}")


class _Mono:
    model = "iHR320"
    serial = "SIM-iHR320-0001"
    device_type = "HORIBA Scientific iHR"
    focal_mm = FOCAL_MM
    gratings = GRATINGS

    def __init__(self) -> None:
        self.open = False
        self.initialized = False
        self.wavelength = 0.0
        self.grating = 1
        self.slits = {1: 0.1, 2: 0.1, 3: 0.1, 4: 0.1}
        self.mirrors = {0: 0, 1: 0}
        self.filters = {1: 1, 2: 1}
        self.shutter_open = False
        self.busy_until = 0.0


class _Slits(dict):  # type: ignore[type-arg]
    """Slit widths (mm) of the TCSPC monochromator, by ICL location: A (1) entrance, B (2) exit; what the
    detector sees follows these two (``simulators.optics.ScanningMonochromator``)."""

    def __init__(self, model: Any) -> None:
        super().__init__({1: model.entrance_um * 1e-3, 2: model.exit_um * 1e-3, 3: 0.1, 4: 0.1})
        self.model = model

    def __getitem__(self, k: int) -> float:
        if k == 1:
            return float(self.model.entrance_um) * 1e-3
        if k == 2:
            return float(self.model.exit_um) * 1e-3
        return float(super().__getitem__(k))

    def __setitem__(self, k: int, v: float) -> None:
        super().__setitem__(k, v)
        if k == 1:
            self.model.entrance_um = float(v) * 1e3
        elif k == 2:
            self.model.exit_um = float(v) * 1e3


class _TcspcMono(_Mono):
    """ICL device 1: the MicroHR in front of the TCSPC detector ([000] TR-RL, 150 l/mm), its optics the
    world's ``tcspc_monos["horiba"]`` (wavelength, grating, slits A/B, shutter move what the detector sees)."""

    model = "MicroHR"
    serial = "SIM-MicroHR-0002"
    device_type = "HORIBA Scientific MicroHR"

    def __init__(self, optics: Any) -> None:
        self._optics = optics
        power_up = (optics.wavelength_nm, optics.grating, optics.shutter_open)
        super().__init__()
        optics.wavelength_nm, optics.grating, optics.shutter_open = power_up
        self.slits = _Slits(optics)
        self.focal_mm = float(optics.focal_mm)
        self.gratings = [int(g) for g in optics.gratings_lpmm]

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("wavelength", "grating", "shutter_open") and "_optics" in self.__dict__:
            o = self._optics
            if name == "wavelength":
                o.wavelength_nm = float(value)
            elif name == "grating":
                o.grating = int(value)
            else:
                o.shutter_open = bool(value)
            return
        super().__setattr__(name, value)

    def __getattribute__(self, name: str) -> Any:
        if name in ("wavelength", "grating", "shutter_open"):
            o = object.__getattribute__(self, "_optics")
            return {"wavelength": o.wavelength_nm, "grating": o.grating, "shutter_open": o.shutter_open}[name]
        return object.__getattribute__(self, name)


class _CCD:
    def __init__(self) -> None:
        self.open = False
        self.t_open = 0.0
        self.exposure = 1000  # timer units
        self.timer_res = 0  # 0 = ms, 1 = µs
        self.gain = 0
        self.speed = 0
        self.parallel_speed = 0
        self.acq_format = 1
        self.n_rois = 1
        self.rois: dict[int, dict[str, int]] = {1: dict(xOrigin=0, yOrigin=0, xSize=CHIP_W, ySize=CHIP_H,
                                                        xBin=1, yBin=CHIP_H)}
        self.x_conv = 0
        self.fit = [0.0, 1.0, 0.0, 0.0, 0.0]
        self.center = {"monoIndex": 0, "wavelength": 0.0}
        self.acq_count = 1
        self.clean = (1, 238)
        self.busy_until = 0.0
        self.acquiring = False
        self.data: dict[str, Any] | None = None
        self.n_acq = 0
        self.em_gain = 0


class IclServer:
    """The simulated ICL. ``IclServer(world, host="127.0.0.1", port=25010)``; ``start()``/``stop()``;
    ``.port`` (the bound port; give 0 for any free one) and ``.url``."""

    DEFAULT_PORT = DEFAULT_PORT

    def __init__(self, world: Any, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT, seed: int | None = None,
                 source_image_um: float = 200.0, optics_efficiency: float = 0.5):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the simulated ICL binds loopback only")
        self.world = world
        self.clock = world.clock
        self.host = host
        self.port = int(port)
        self.seed = int(getattr(world, "rng_seed", 0) if seed is None else seed)
        self.source_image_um = source_image_um
        self.optics_efficiency = optics_efficiency
        self.mono = _Mono()
        monos = getattr(world, "tcspc_monos", None)
        #: ICL monochromator devices by index: 0 the spectrograph's iHR320, 1 (when the world has one) the
        #: MicroHR in front of the TCSPC detector
        self.monos: list[_Mono] = [self.mono] + ([_TcspcMono(monos["horiba"])] if monos and "horiba" in monos else [])
        self.ccd = _CCD()
        self.lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.log: list[str] = []  # commands received, for tests

    # -- server lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def resource(self) -> str:
        return self.url

    def start(self) -> IclServer:
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name="icl-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("simulated ICL did not start within 10 s")
        if self._error is not None:
            raise RuntimeError(f"simulated ICL could not start on {self.host}:{self.port}: {self._error}")
        log.info("simulated ICL listening on %s", self.url)
        return self

    def _run(self) -> None:
        import websockets

        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def main() -> None:
            try:
                self._server = await websockets.serve(self._handler, self.host, self.port, max_size=None)
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:  # noqa: BLE001 - reported to start()
                self._error = exc
            finally:
                self._ready.set()

        loop.run_until_complete(main())
        if self._error is None:
            loop.run_forever()
        loop.close()

    def stop(self) -> None:
        loop = self._loop
        if loop is None or self._thread is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()
            loop.stop()

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), loop)
        except RuntimeError:  # loop already closed
            pass
        self._thread.join(5)
        self._thread = None
        self._loop = None

    def __enter__(self) -> IclServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    async def _handler(self, websocket: Any, path: str = "") -> None:
        key = ("icl", id(websocket))
        note = getattr(self.clock, "client_request", None)
        try:
            async for message in websocket:
                if isinstance(message, bytes):
                    continue
                if note is not None:  # a paced clock (sim serve --speed max): this client sets the pace too
                    note(key)
                reply = self.handle_text(message)
                await websocket.send(reply)
        finally:
            gone = getattr(self.clock, "client_gone", None)
            if gone is not None:
                gone(key)

    # -- message handling -------------------------------------------------------------------------------
    def handle_text(self, message: str) -> str:
        try:
            req = json.loads(message)
            cid, command = req.get("id", 0), str(req["command"])
            params = req.get("parameters") or {}
        except (ValueError, KeyError, TypeError):
            return json.dumps({"id": 0, "command": "", "results": {}, "errors": ["[E];-1;ICL error: no parser found"]})
        self.log.append(command)
        try:
            with self.lock:
                if hasattr(self.world, "advance"):
                    self.world.advance()
                fn = getattr(self, "_cmd_" + command, None)
                if fn is None:
                    raise IclError(-2, command)
                results = fn(params) or {}
            errors: list[str] = []
        except IclError as exc:
            results, errors = {}, [str(exc)]
        except Exception as exc:  # noqa: BLE001 - the ICL reports, it does not crash
            log.exception("simulated ICL: %s failed", command)
            results, errors = {}, [f"[E];-323;CCD error: command execution exception ({exc})"]
        return json.dumps({"id": cid, "command": command, "results": results, "errors": errors})

    # helpers
    def _now(self) -> float:
        return float(self.clock.monotonic())

    def _afap(self) -> bool:
        return bool(getattr(self.clock, "afap", False))

    def _wait_if_afap(self, until: float) -> None:
        remaining = until - self._now()
        if remaining > 0 and self._afap():
            self.clock.sleep(remaining)

    @staticmethod
    def _p(params: dict, key: str, code: int) -> Any:
        if key not in params:
            raise IclError(code, f"missing '{key}'")
        return params[key]

    def _mono_dev(self, params: dict, need_open: bool = True) -> _Mono:
        i = int(params.get("index", 0))
        if not 0 <= i < len(self.monos):
            raise IclError(-508)
        m = self.monos[i]
        if need_open and not m.open:
            raise IclError(-506)
        return m

    def _ccd_dev(self, params: dict, need_open: bool = True) -> _CCD:
        if int(params.get("index", 0)) != 0:
            raise IclError(-307)
        if need_open and not self.ccd.open:
            raise IclError(-305)
        return self.ccd

    # -- ICL ------------------------------------------------------------------------------------------
    def _cmd_icl_info(self, p: dict) -> dict:
        return {"nodeAlias": "ICL", "nodeApiVersion": 300, "nodeBuilt": "sflab simulator",
                "nodeDescription": "Instrument Control Library (sflab simulation)", "nodeId": 1,
                "nodeVersion": "2.0.0.108.sflab"}

    def _cmd_icl_binMode(self, p: dict) -> dict:
        if p.get("mode", "all") not in ("all", "none", "data", "preview"):
            raise IclError(-2, "invalid bin mode")
        return {}

    def _cmd_icl_shutdown(self, p: dict) -> dict:
        return {"state": "Shutting down"}

    # -- discovery ------------------------------------------------------------------------------------
    def _cmd_mono_discover(self, p: dict) -> dict:
        return {"count": len(self.monos)}

    def _cmd_mono_list(self, p: dict) -> dict:
        return {"devices": [{"deviceType": m.device_type, "index": i, "serialNumber": m.serial}
                            for i, m in enumerate(self.monos)]}

    def _cmd_mono_listCount(self, p: dict) -> dict:
        return {"count": len(self.monos)}

    def _cmd_ccd_discover(self, p: dict) -> dict:
        return {"count": 1}

    def _cmd_ccd_list(self, p: dict) -> dict:
        return {"devices": [{"deviceType": "HORIBA Scientific Syncerity", "index": 0, "productId": 13,
                             "serialNumber": "Camera SN:  SIM-0001"}]}

    def _cmd_ccd_listCount(self, p: dict) -> dict:
        return {"count": 1}

    def _cmd_saq3_discover(self, p: dict) -> dict:
        return {"count": 0}

    def _cmd_saq3_list(self, p: dict) -> dict:
        return {"devices": []}

    # -- monochromator ------------------------------------------------------------------------------
    def _cmd_mono_open(self, p: dict) -> dict:
        self._mono_dev(p, need_open=False).open = True
        return {}

    def _cmd_mono_close(self, p: dict) -> dict:
        self._mono_dev(p, need_open=False).open = False
        return {}

    def _cmd_mono_isOpen(self, p: dict) -> dict:
        return {"open": self._mono_dev(p, need_open=False).open}

    def _cmd_mono_isBusy(self, p: dict) -> dict:
        m = self._mono_dev(p)
        self._wait_if_afap(m.busy_until)
        return {"busy": self._now() < m.busy_until}

    def _cmd_mono_init(self, p: dict) -> dict:
        m = self._mono_dev(p)
        m.busy_until = self._now() + 20.0
        m.initialized = True
        m.wavelength = 0.0
        return {}

    def _cmd_mono_isInitialized(self, p: dict) -> dict:
        m = self._mono_dev(p)
        return {"initialized": m.initialized and self._now() >= m.busy_until}

    def _cmd_mono_getConfig(self, p: dict) -> dict:
        m = self._mono_dev(p)
        return {"configuration": {
            "filterWheels": [{"location": 1}, {"location": 2}],
            "gratings": [{"blaze": 0, "grooveDensity": g, "positionIndex": i} for i, g in enumerate(m.gratings)],
            "mirrors": [{"location": 0}, {"location": 1}],
            "monoModel": m.model, "focalLength": m.focal_mm,
            "ports": [{"monoPortLocation": 1, "slitType": 2}, {"monoPortLocation": 2, "slitType": 2},
                      {"monoPortLocation": 4, "slitType": 2}],
            "procuctId": "257", "serialNumber": m.serial}}

    def _need_init(self, m: _Mono) -> None:
        if not m.initialized:
            raise IclError(-505)

    def max_wavelength(self, grating_index: int | None = None, mono: _Mono | None = None) -> float:
        m = self.mono if mono is None else mono
        g = m.gratings[m.grating if grating_index is None else grating_index]
        return 1500.0 * 1200.0 / g

    def _cmd_mono_getPosition(self, p: dict) -> dict:
        m = self._mono_dev(p)
        self._need_init(m)
        return {"wavelength": m.wavelength}

    def _cmd_mono_setPosition(self, p: dict) -> dict:
        m = self._mono_dev(p)
        self._need_init(m)
        m.wavelength = float(self._p(p, "wavelength", -521))
        return {}

    def _cmd_mono_moveToPosition(self, p: dict) -> dict:
        m = self._mono_dev(p)
        self._need_init(m)
        wl = float(self._p(p, "wavelength", -521))
        if not 0.0 <= wl <= self.max_wavelength(mono=m):
            raise IclError(-513, f"{wl} nm outside 0..{self.max_wavelength(mono=m):g} nm for this grating")
        m.busy_until = max(m.busy_until, self._now()) + 0.2 + abs(wl - m.wavelength) / 200.0
        m.wavelength = wl
        return {}

    def _cmd_mono_getGratingPosition(self, p: dict) -> dict:
        m = self._mono_dev(p)
        self._need_init(m)
        return {"position": m.grating}

    def _cmd_mono_moveGrating(self, p: dict) -> dict:
        m = self._mono_dev(p)
        self._need_init(m)
        pos = int(self._p(p, "position", -521))
        if not 0 <= pos < len(m.gratings):
            raise IclError(-513, f"grating position {pos}")
        if m.wavelength > self.max_wavelength(pos, mono=m):
            raise IclError(-513, f"{m.wavelength} nm is beyond the range of grating {pos}")
        if pos != m.grating:
            m.busy_until = max(m.busy_until, self._now()) + 8.0
        m.grating = pos
        return {"position": pos}

    def _cmd_mono_getSlitPositionInMM(self, p: dict) -> dict:
        m = self._mono_dev(p)
        loc = int(self._p(p, "locationId", -521))
        if loc not in m.slits:
            raise IclError(-513, f"slit {loc}")
        return {"position": m.slits[loc]}

    def _cmd_mono_moveSlitMM(self, p: dict) -> dict:
        m = self._mono_dev(p)
        loc = int(self._p(p, "locationId", -521))
        pos = float(self._p(p, "position", -521))
        if loc not in m.slits or not 0.0 <= pos <= SLIT_MAX_MM:
            raise IclError(-513, f"slit {loc} to {pos} mm (0..{SLIT_MAX_MM} mm)")
        m.busy_until = max(m.busy_until, self._now()) + 0.1 + abs(pos - m.slits[loc]) / 2.0
        m.slits[loc] = pos
        return {}

    def _cmd_mono_getSlitStepPosition(self, p: dict) -> dict:
        m = self._mono_dev(p)
        loc = int(self._p(p, "locationId", -521))
        if loc not in m.slits:
            raise IclError(-513, f"slit {loc}")
        return {"position": int(round(m.slits[loc] * 1000))}

    def _cmd_mono_moveSlit(self, p: dict) -> dict:
        pos = int(self._p(p, "position", -521))
        return self._cmd_mono_moveSlitMM({**p, "position": pos / 1000.0})

    def _cmd_mono_getMirrorPosition(self, p: dict) -> dict:
        m = self._mono_dev(p)
        return {"position": m.mirrors.get(int(self._p(p, "locationId", -521)), 0)}

    def _cmd_mono_moveMirror(self, p: dict) -> dict:
        m = self._mono_dev(p)
        m.mirrors[int(self._p(p, "locationId", -521))] = int(self._p(p, "position", -521))
        return {}

    def _cmd_mono_getFilterWheelPosition(self, p: dict) -> dict:
        m = self._mono_dev(p)
        return {"position": m.filters.get(int(self._p(p, "locationId", -521)), 1)}

    def _cmd_mono_moveFilterWheel(self, p: dict) -> dict:
        m = self._mono_dev(p)
        pos = int(self._p(p, "position", -521))
        if not 1 <= pos <= 6:
            raise IclError(-513, f"filter position {pos}")
        m.filters[int(self._p(p, "locationId", -521))] = pos
        return {}

    def _cmd_mono_shutterOpen(self, p: dict) -> dict:
        self._mono_dev(p).shutter_open = True
        return {}

    def _cmd_mono_shutterClose(self, p: dict) -> dict:
        self._mono_dev(p).shutter_open = False
        return {}

    def _cmd_mono_getShutterStatus(self, p: dict) -> dict:
        return {"location": 0, "position": 1 if self._mono_dev(p).shutter_open else 0}

    # -- CCD -------------------------------------------------------------------------------------------
    def _cmd_ccd_open(self, p: dict) -> dict:
        c = self._ccd_dev(p, need_open=False)
        if not c.open:
            c.open = True
            c.t_open = self._now()
        return {}

    def _cmd_ccd_close(self, p: dict) -> dict:
        self._ccd_dev(p, need_open=False).open = False
        return {}

    def _cmd_ccd_isOpen(self, p: dict) -> dict:
        return {"open": self._ccd_dev(p, need_open=False).open}

    def _cmd_ccd_restart(self, p: dict) -> dict:
        self._ccd_dev(p)
        return {}

    def _cmd_ccd_getConfig(self, p: dict) -> dict:
        c = self._ccd_dev(p)
        return {"configuration": {
            "centerWavelength": c.center["wavelength"], "chipHSpacing": int(PIXEL_UM * 10), "chipHeight": CHIP_H,
            "chipName": "CCD30-11-1-275", "chipSerialNumber": "SIM-0001", "chipVSpacing": int(PIXEL_UM * 10),
            "chipWidth": CHIP_W, "deviceType": "HORIBA Scientific Syncerity", "fitParameters": list(c.fit),
            "gains": GAINS, "speeds": SPEEDS, "hardwareAvgAvailable": "false", "lineScan": "false",
            "productId": "13", "serialNumber": "Camera SN:  SIM-0001",
            "minExposureTime_ms": 0, "maxExposureTime_ms": int(EXPOSURE_MAX_S * 1000),
            "supportedFeatures": {"cf_ROIs": "true", "cf_Spectra": "true", "cf_Image": "true"},
            "triggers": [], "signals": [], "version": "Syncerity Ver 1.001.7.1 (sflab simulation)"}}

    def _cmd_ccd_getChipSize(self, p: dict) -> dict:
        self._ccd_dev(p)
        return {"x": CHIP_W, "y": CHIP_H}

    def chip_temperature(self) -> float:
        c = self.ccd
        if not c.open:
            return 20.0
        return -50.0 + 70.0 * math.exp(-(self._now() - c.t_open) / 90.0)

    def _cmd_ccd_getChipTemperature(self, p: dict) -> dict:
        self._ccd_dev(p)
        return {"temperature": round(self.chip_temperature(), 2)}

    def _cmd_ccd_getGain(self, p: dict) -> dict:
        c = self._ccd_dev(p)
        return {"info": next(g["info"] for g in GAINS if g["token"] == c.gain), "token": c.gain}

    def _cmd_ccd_setGain(self, p: dict) -> dict:
        c = self._ccd_dev(p)
        tok = int(self._p(p, "token", -324))
        if tok not in E_PER_COUNT:
            raise IclError(-317, f"gain token {tok}")
        c.gain = tok
        return {}

    def _cmd_ccd_getSpeed(self, p: dict) -> dict:
        c = self._ccd_dev(p)
        return {"info": next(s["info"] for s in SPEEDS if s["token"] == c.speed), "token": c.speed}

    def _cmd_ccd_setSpeed(self, p: dict) -> dict:
        c = self._ccd_dev(p)
        tok = int(self._p(p, "token", -324))
        if tok not in PIXEL_RATE:
            raise IclError(-317, f"speed token {tok}")
        c.speed = tok
        return {}

    def _cmd_ccd_getParallelSpeed(self, p: dict) -> dict:
        return {"token": self._ccd_dev(p).parallel_speed}

    def _cmd_ccd_setParallelSpeed(self, p: dict) -> dict:
        self._ccd_dev(p).parallel_speed = int(self._p(p, "token", -324))
        return {}

    def _cmd_ccd_getFitParams(self, p: dict) -> dict:
        return {"fitParameters": list(self._ccd_dev(p).fit)}

    def _cmd_ccd_setFitParams(self, p: dict) -> dict:
        c = self._ccd_dev(p)
        raw = self._p(p, "params", -324)
        try:
            vals = [float(v) for v in (raw.split(",") if isinstance(raw, str) else raw)]
        except ValueError as exc:
            raise IclError(-318, str(exc)) from exc
        if len(vals) != 5:
            raise IclError(-318, "5 fit parameters expected")
        c.fit = vals
        return {}

    def _cmd_ccd_getTimerResolution(self, p: dict) -> dict:
        return {"resolutionToken": self._ccd_dev(p).timer_res}

    def _cmd_ccd_setTimerResolution(self, p: dict) -> dict:
        c = self._ccd_dev(p)
        tok = int(self._p(p, "resolutionToken", -324))
        if tok not in (0, 1):
            raise IclError(-317, f"timer resolution token {tok}")
        c.timer_res = tok
        return {}

    def exposure_s(self) -> float:
        c = self.ccd
        return c.exposure * (1e-3 if c.timer_res == 0 else 1e-6)

    def _cmd_ccd_getExposureTime(self, p: dict) -> dict:
        return {"time": self._ccd_dev(p).exposure}

    def _cmd_ccd_setExposureTime(self, p: dict) -> dict:
        c = self._ccd_dev(p)
        t = self._p(p, "time", -324)
        unit = 1e-3 if c.timer_res == 0 else 1e-6
        if not isinstance(t, int | float) or t < 0 or t != int(t) or t * unit > EXPOSURE_MAX_S:
            raise IclError(-318, f"exposure {t} timer units (0..{EXPOSURE_MAX_S:g} s)")
        c.exposure = int(t)
        return {}

    def _cmd_ccd_setAcqFormat(self, p: dict) -> dict:
        c = self._ccd_dev(p)
        fmt = int(self._p(p, "format", -324))
        n = int(self._p(p, "numberOfRois", -324))
        if fmt not in (1, 2, 3) or not 1 <= n <= 16:
            raise IclError(-318, f"format {fmt}, {n} ROIs")
        c.acq_format, c.n_rois, c.rois = fmt, n, {}
        return {}

    def _cmd_ccd_setRoi(self, p: dict) -> dict:
        c = self._ccd_dev(p)
        try:
            r = {k: int(p[k]) for k in ("roiIndex", "xOrigin", "yOrigin", "xSize", "ySize", "xBin", "yBin")}
        except KeyError as exc:
            raise IclError(-324, str(exc)) from exc
        idx = r.pop("roiIndex")
        ok = (1 <= idx <= c.n_rois and 0 <= r["xOrigin"] and 0 <= r["yOrigin"] and r["xSize"] >= 1
              and r["ySize"] >= 1 and r["xOrigin"] + r["xSize"] <= CHIP_W and r["yOrigin"] + r["ySize"] <= CHIP_H
              and 1 <= r["xBin"] <= r["xSize"] and 1 <= r["yBin"] <= r["ySize"]
              and r["xSize"] % r["xBin"] == 0 and r["ySize"] % r["yBin"] == 0)
        if not ok:
            raise IclError(-318, f"ROI {r} on a {CHIP_W}x{CHIP_H} chip")
        c.rois[idx] = r
        return {}

    def _cmd_ccd_setXAxisConversionType(self, p: dict) -> dict:
        c = self._ccd_dev(p)
        t = int(self._p(p, "type", -324))
        if t not in (0, 1, 2):
            raise IclError(-318, f"conversion type {t}")
        c.x_conv = t
        return {}

    def _cmd_ccd_getXAxisConversionType(self, p: dict) -> dict:
        return {"type": self._ccd_dev(p).x_conv}

    def _cmd_ccd_setCenterWavelength(self, p: dict) -> dict:
        c = self._ccd_dev(p)
        c.center = {"monoIndex": int(p.get("monoIndex", 0)), "wavelength": float(self._p(p, "wavelength", -324))}
        return {}

    def _cmd_ccd_setAcqCount(self, p: dict) -> dict:
        c = self._ccd_dev(p)
        n = int(self._p(p, "count", -324))
        if not 1 <= n <= 1000:
            raise IclError(-318, f"count {n}")
        c.acq_count = n
        return {}

    def _cmd_ccd_getAcqCount(self, p: dict) -> dict:
        return {"count": self._ccd_dev(p).acq_count}

    def _cmd_ccd_getCleanCount(self, p: dict) -> dict:
        c = self._ccd_dev(p)
        return {"count": c.clean[0], "mode": c.clean[1]}

    def _cmd_ccd_setCleanCount(self, p: dict) -> dict:
        c = self._ccd_dev(p)
        c.clean = (int(self._p(p, "count", -324)), int(self._p(p, "mode", -324)))
        return {}

    def _cmd_ccd_getDataSize(self, p: dict) -> dict:
        c = self._ccd_dev(p)
        return {"size": int(sum(r["xSize"] // r["xBin"] * (r["ySize"] // r["yBin"]) for r in c.rois.values()))}

    def _cmd_ccd_getEMGain(self, p: dict) -> dict:
        return {"gain": self._ccd_dev(p).em_gain}

    def _cmd_ccd_setEMGain(self, p: dict) -> dict:
        raise IclError(-315, "not an EMCCD")

    def _cmd_ccd_getAcquisitionReady(self, p: dict) -> dict:
        c = self._ccd_dev(p)
        return {"ready": bool(c.rois) and self._now() >= c.busy_until}

    def _cmd_ccd_getAcquisitionBusy(self, p: dict) -> dict:
        c = self._ccd_dev(p)
        self._wait_if_afap(c.busy_until)
        return {"isBusy": self._now() < c.busy_until}

    def _cmd_ccd_acquisitionAbort(self, p: dict) -> dict:
        c = self._ccd_dev(p)
        if self._now() < c.busy_until:
            c.busy_until = self._now()
            c.data = None
        return {}

    def readout_s(self) -> float:
        c = self.ccd
        n = sum((r["xSize"] // r["xBin"]) * (r["ySize"] // r["yBin"]) for r in c.rois.values())
        return n / PIXEL_RATE[c.speed] + 0.005

    def _cmd_ccd_acquisitionStart(self, p: dict) -> dict:
        c = self._ccd_dev(p)
        if self._now() < c.busy_until:
            raise IclError(-320)
        if not c.rois:
            raise IclError(-318, "no ROI defined (ccd_setAcqFormat then ccd_setRoi)")
        open_shutter = bool(p.get("openShutter", True))
        exposure = self.exposure_s()
        t_start = self._now()
        c.busy_until = t_start + c.acq_count * (exposure + self.readout_s())
        c.data = self._acquire(open_shutter, exposure, t_start)
        return {}

    def _cmd_ccd_getAcquisitionData(self, p: dict) -> dict:
        c = self._ccd_dev(p)
        self._wait_if_afap(c.busy_until)
        if self._now() < c.busy_until:
            raise IclError(-309)
        if c.data is None:
            raise IclError(-311, "no acquisition data")
        return c.data

    # -- physics ----------------------------------------------------------------------------------------
    def spectrograph(self) -> Any:
        """The detector chain's spectrograph (``simulators.optics``) at the current grating and slit."""
        optics = importlib.import_module("simulators.optics")
        return optics.Spectrograph(grating_lpmm=GRATINGS[self.mono.grating], focal_mm=FOCAL_MM, pixel_um=PIXEL_UM,
                                   n_pixels=CHIP_W, slit_um=self.mono.slits[1] * 1000.0,
                                   throughput=self.optics_efficiency)

    def wavelength_axis(self) -> np.ndarray:
        """Wavelength (nm) of each chip column at the mono's current position and grating."""
        return np.asarray(self.spectrograph().wavelength_axis(max(self.mono.wavelength, 1e-3)), float)

    def x_axis(self, roi: dict[str, int]) -> list[float]:
        c = self.ccd
        cols = np.arange(roi["xOrigin"], roi["xOrigin"] + roi["xSize"], dtype=float)
        centres = cols.reshape(-1, roi["xBin"]).mean(axis=1)
        if c.x_conv == 0:
            return [float(v) for v in centres]
        if c.x_conv == 1:
            return [float(v) for v in np.polyval(list(reversed(c.fit)), centres)]
        wl = self.wavelength_axis()
        return [float(v) for v in np.interp(centres, np.arange(CHIP_W), wl)]

    def photon_rate(self, light: bool) -> np.ndarray:
        """Photons/s per chip pixel (CHIP_H × CHIP_W) arriving at the CCD."""
        if not light:
            return np.zeros((CHIP_H, CHIP_W))
        spec = self.spectrograph()
        cond = self.world.conditions()
        col = spec.column_rates(lambda lam: self.world.collected_spectrum(lam, cond), max(self.mono.wavelength, 1e-3),
                                source_image_um=self.source_image_um)
        return np.asarray(spec.chip_rates(col, n_rows=CHIP_H), float)

    def _acquire(self, light: bool, exposure_s: float, t_start: float) -> dict:
        c = self.ccd
        c.n_acq += 1
        rng = np.random.default_rng([self.seed, c.n_acq])
        rate = self.photon_rate(light)
        acquisitions = []
        for a in range(c.acq_count):
            rois = []
            for idx in sorted(c.rois):
                r = c.rois[idx]
                counts = self._expose(rate, exposure_s, rng, r, light)
                rois.append({"roiIndex": idx, "xOrigin": r["xOrigin"], "yOrigin": r["yOrigin"],
                             "xSize": r["xSize"], "ySize": r["ySize"], "xBinning": r["xBin"],
                             "yBinning": r["yBin"], "xData": [self.x_axis(r)],
                             "yData": [[int(v) for v in row] for row in counts]})
            acquisitions.append({"acqIndex": a + 1, "roi": rois})
        stamp = _dt.datetime.fromtimestamp(float(self.clock.now()), _dt.UTC)
        return {"acquisition": acquisitions, "timestamp": stamp.strftime("%Y.%m.%d %H:%M:%S.%f")[:-3],
                "exposure_s": exposure_s, "shutterOpen": light}

    def _expose(self, rate: np.ndarray, exposure_s: float, rng: np.random.Generator, r: dict[str, int],
                light: bool = True) -> np.ndarray:
        """Counts (rows × cols after binning) of one ROI, from ``simulators.ccd.CCD``."""
        c = self.ccd
        ccd_mod = importlib.import_module("simulators.ccd")
        cam = ccd_mod.CCD(n_cols=CHIP_W, n_rows=CHIP_H, pixel_um=PIXEL_UM, gain_e_per_count=E_PER_COUNT[c.gain],
                          read_noise_e=READ_NOISE_E[c.speed], chip_temp_C=self.chip_temperature())
        wl = self.wavelength_axis() if light else None
        return np.asarray(cam.expose(rate, exposure_s, rng, roi=(r["xOrigin"], r["yOrigin"], r["xSize"], r["ySize"]),
                                     binning=(r["xBin"], r["yBin"]), wavelength_nm=wl, shutter_open=light))
