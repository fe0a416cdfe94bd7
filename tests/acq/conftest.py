import numpy as np
import pytest

from acq.store import Field, Stream


@pytest.fixture
def streams():
    return [
        Stream("spectrum", (Field("counts", (1024,), "f4", "counts"), Field("T", (), "f8", "K")),
               signal="counts", axes=("T", "wavelength"),
               static={"wavelength": (np.linspace(480, 560, 1024), "nm")}),
        Stream("decay", (Field("counts", (4096,), "u4", "counts"),), signal="counts", axes=(".", "t"),
               static={"t": (np.arange(4096) * 16.0, "ps")}, sidecar=True),
        Stream("g2", (Field("counts", (2000,), "f8", ""),), signal="counts", axes=(".", "tau"),
               static={"tau": ((np.arange(2000) - 1000) * 10.0, "ps")}),
    ]


def point_data(i):
    """Deterministic content of point i (so a reader can verify it is intact)."""
    return {
        "spectrum": {"counts": np.full(1024, i, dtype="f4"), "T": 300.0 - i},
        "decay": {"counts": (np.arange(4096) + i).astype("u4")},
        "g2": {"counts": np.full(2000, 1.0 + i / 1000)},
    }
