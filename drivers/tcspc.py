"""Role interface: TCSPC / time tagger (``TCSPC``).

Backends: ``drivers.picoharp300`` (PHLib via ctypes), ``drivers.swabian`` (Time Tagger API).
Safe state: stop any measurement. ``count_rates()`` feeds the count-rate suspender.
"""

from __future__ import annotations

from abc import abstractmethod

from .base import Role


class TCSPC(Role):
    ROLE = "tcspc"
    READBACKS = {"rate_ch0": "1/s", "rate_ch1": "1/s"}

    @abstractmethod
    def count_rates(self) -> dict[str, float]:
        """Measure counts per second per channel (keys as in READBACKS)."""
