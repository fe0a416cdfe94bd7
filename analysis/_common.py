"""Shared helpers: values with uncertainties, Poisson deviance, JSON conversion."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Value", "poisson_deviance", "deviance_residuals", "to_jsonable", "ResultMixin"]


@dataclass(frozen=True)
class Value:
    """A fitted quantity with its 1-sigma uncertainty (``nan`` when unknown)."""

    value: float
    error: float = math.nan

    def __float__(self) -> float:
        return float(self.value)

    def to_dict(self) -> dict[str, float | None]:
        return {"value": _num(self.value), "error": _num(self.error)}

    def significance(self) -> float:
        """value / error (``nan`` if the error is unknown or zero)."""
        if not np.isfinite(self.error) or self.error <= 0:
            return math.nan
        return float(self.value / self.error)

    def __str__(self) -> str:
        if not np.isfinite(self.error):
            return f"{self.value:.4g}"
        return f"{self.value:.4g} ± {self.error:.2g}"


def _num(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def poisson_deviance(n: np.ndarray, mu: np.ndarray) -> float:
    """Poisson deviance 2 Σ [mu − n + n ln(n/mu)] (Baker & Cousins); bins with n = 0 give 2 mu."""
    n = np.asarray(n, dtype=float)
    mu = np.maximum(np.asarray(mu, dtype=float), 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(n > 0, n * np.log(n / mu), 0.0)
    return float(2.0 * np.sum(mu - n + term))


def deviance_residuals(n: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Signed square-root terms of :func:`poisson_deviance` (their squares sum to it; ≈ N(0, 1) per bin for a
    good fit with enough counts)."""
    n = np.asarray(n, dtype=float)
    mu = np.maximum(np.asarray(mu, dtype=float), 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(n > 0, n * np.log(n / mu), 0.0)
    return np.sign(n - mu) * np.sqrt(np.maximum(2.0 * (mu - n + term), 0.0))


def to_jsonable(obj: Any) -> Any:
    """Convert dataclasses / numpy containers to plain JSON types (NaN/inf become ``None``)."""
    if hasattr(obj, "to_dict") and callable(obj.to_dict) and not isinstance(obj, type):
        return to_jsonable(obj.to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return _num(float(obj))
    return obj


class ResultMixin:
    """``to_dict()`` for frozen result dataclasses; fields named in ``_array_fields`` are left out
    unless ``arrays=True`` (they hold the data and model curves used by the report)."""

    _array_fields: tuple[str, ...] = ()

    def to_dict(self, arrays: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if not arrays and f.name in self._array_fields:
                continue
            out[f.name] = to_jsonable(getattr(self, f.name))
        return out
