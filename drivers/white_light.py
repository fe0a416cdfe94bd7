"""Role interface: the white-light source of the in-situ transmission (``WhiteLight``, role ``white_light``).

A halogen lamp behind the cryostat shines through the sample holder into the collection optics (physics.md
P6, in situ instead of the spectrophotometer); it burns continuously and a shutter gates it. The backend
:class:`SC10WhiteLight` drives that shutter with a Thorlabs SC10 controller in manual mode, through the same
driver as the X-ray and laser shutters (:class:`drivers.shutter.SC10Shutter`: open/close verified by
``closed?``, never a blind ``ens`` toggle). :class:`FakeWhiteLight` keeps the state in memory.

Safe state: the shutter closed (no lamp light on the sample, so no white light under a PL or RL spectrum).
Readback ``lamp_open`` (1 open, 0 closed); the backstop confirms it is 0.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from typing import Any, ClassVar

from ._link import LINK_OPTIONS, Link
from .base import Clock, Option, Role
from .shutter import SC10, SC10Shutter

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

__all__ = ["WhiteLight", "SC10WhiteLight", "FakeWhiteLight"]


class WhiteLight(Role):
    ROLE = "white_light"
    READBACKS = {"lamp_open": ""}
    #: readbacks the backstop requires after ``make_safe`` (acq.backstop.confirm_safe)
    SAFE_READBACKS: ClassVar[dict[str, float]] = {"lamp_open": 0.0}

    @property
    @abstractmethod
    def is_open(self) -> bool:
        """Measure whether the lamp's shutter is open."""

    @abstractmethod
    def open_shutter(self) -> None:
        """Open the lamp's shutter and check it is open."""

    @abstractmethod
    def close_shutter(self) -> None:
        """Close the lamp's shutter and check it is closed."""

    def make_safe(self) -> None:
        self.close_shutter()

    def readback(self) -> dict[str, float]:
        return {"lamp_open": 1.0 if self.is_open else 0.0}


class SC10WhiteLight(WhiteLight):
    """The lamp's shutter on a Thorlabs SC10 (manual mode; docs/shutter.md)."""

    OPTIONS = {
        "lamp": Option(str, "halogen", doc="what the lamp is (recorded in the run file), e.g. 'Thorlabs SLS201L'"),
        **LINK_OPTIONS,
    }

    def __init__(self, resource: str = "", *, clock: Clock | None = None, **options: Any) -> None:
        opts = self.opts = self.checked_options(options)
        super().__init__(resource, clock=clock, **opts)
        self.shutter = SC10Shutter(Link("SC10 lamp shutter", resource, self._open,
                                        timeout_s=opts["timeout_s"], retries=opts["retries"]))

    @classmethod
    def attach(cls, inst: SC10, *, clock: Clock | None = None, **options: Any) -> SC10WhiteLight:
        """Wrap an existing :class:`~drivers.shutter.SC10` (e.g. built by ``expected_protocol``)."""
        self = cls("<attached>", clock=clock, **options)
        self.shutter = SC10Shutter(Link.attach("SC10 lamp shutter", inst))
        return self

    def _open(self) -> SC10:
        return SC10(self.resource, visa_library="@py", timeout=int(self.opts["timeout_s"] * 1000))

    def connect(self) -> None:
        """Check the controller answers, then close the shutter."""
        self.shutter.link.call("id?", lambda i: i.identity)
        self.shutter.close()

    def close(self) -> None:
        self.shutter.link.close()

    @property
    def is_open(self) -> bool:
        return not self.shutter.is_closed

    def open_shutter(self) -> None:
        self.shutter.open()

    def close_shutter(self) -> None:
        self.shutter.close()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "options": dict(self.opts)}


class FakeWhiteLight(WhiteLight):
    """In memory: the shutter state as last set."""

    OPTIONS = {"lamp": Option(str, "fake", doc="what the lamp is")}

    def __init__(self, resource: str = "", *, clock: Clock | None = None, **options: Any) -> None:
        super().__init__(resource, clock=clock, **self.checked_options(options))
        self._open_state = False

    @property
    def is_open(self) -> bool:
        return self._open_state

    def open_shutter(self) -> None:
        self._open_state = True

    def close_shutter(self) -> None:
        self._open_state = False
