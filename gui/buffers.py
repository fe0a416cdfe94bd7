"""Preallocated ring buffers for live plots: memory is fixed by the capacity, not by the run length.

:class:`Ring` holds scalar series (time, T, count rates …), :class:`RowRing` holds per-point arrays
(the spectra of the waterfall). Appending copies into the preallocated storage; nothing keeps a
reference to the arrays that arrived on the bus.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Ring", "RowRing"]


class Ring:
    """Fixed-capacity float series with several named columns sharing one write index."""

    def __init__(self, capacity: int, columns: tuple[str, ...]) -> None:
        self.capacity = int(capacity)
        self.columns = tuple(columns)
        self._data = np.full((len(self.columns), self.capacity), np.nan)
        self._n = 0          # total appended
        self._col = {c: i for i, c in enumerate(self.columns)}

    def __len__(self) -> int:
        return min(self._n, self.capacity)

    @property
    def nbytes(self) -> int:
        return self._data.nbytes

    @property
    def total(self) -> int:
        return self._n

    def clear(self) -> None:
        self._data.fill(np.nan)
        self._n = 0

    def append(self, **values: float) -> None:
        j = self._n % self.capacity
        self._data[:, j] = np.nan
        for k, v in values.items():
            i = self._col.get(k)
            if i is not None:
                try:
                    self._data[i, j] = float(v)
                except (TypeError, ValueError):
                    pass
        self._n += 1

    def last(self, column: str) -> float:
        if not self._n:
            return float("nan")
        return float(self._data[self._col[column], (self._n - 1) % self.capacity])

    def column(self, column: str) -> np.ndarray:
        """The stored values in arrival order (a new array; at most ``capacity`` long)."""
        row = self._data[self._col[column]]
        if self._n <= self.capacity:
            return row[: self._n].copy()
        j = self._n % self.capacity
        return np.concatenate((row[j:], row[:j]))


class RowRing:
    """Fixed number of rows of a fixed width (reallocated only when the width changes)."""

    def __init__(self, capacity: int, width: int = 0, dtype: str = "f4") -> None:
        self.capacity = int(capacity)
        self.dtype = dtype
        self._rows = np.zeros((self.capacity, max(int(width), 1)), dtype=dtype)
        self._key = np.full(self.capacity, np.nan)
        self.width = int(width)
        self._n = 0

    def __len__(self) -> int:
        return min(self._n, self.capacity)

    @property
    def nbytes(self) -> int:
        return self._rows.nbytes + self._key.nbytes

    def clear(self, width: int | None = None) -> None:
        if width is not None and width != self.width:
            self._rows = np.zeros((self.capacity, max(int(width), 1)), dtype=self.dtype)
            self.width = int(width)
        else:
            self._rows.fill(0)
        self._key.fill(np.nan)
        self._n = 0

    def append(self, row: np.ndarray, key: float = float("nan")) -> None:
        row = np.asarray(row).ravel()
        if row.size != self.width:
            self.clear(row.size)
        j = self._n % self.capacity
        self._rows[j] = row
        self._key[j] = key
        self._n += 1

    def image(self) -> np.ndarray:
        """Rows in arrival order (a view when the ring has not wrapped)."""
        if self._n <= self.capacity:
            return self._rows[: self._n]
        j = self._n % self.capacity
        return np.concatenate((self._rows[j:], self._rows[:j]))

    def keys(self) -> np.ndarray:
        if self._n <= self.capacity:
            return self._key[: self._n].copy()
        j = self._n % self.capacity
        return np.concatenate((self._key[j:], self._key[:j]))
