"""Input checks shared by every public function: each raises a clear error that names
the argument, the bad value and what is allowed.

Checks on values (finiteness, positive semi-definiteness) run only on concrete arrays;
under ``jit`` tracing they are skipped, and shape checks still run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np


def is_concrete(x: Any) -> bool:
    """True if ``x`` holds values (not a JAX tracer inside ``jit``/``vmap``/``grad``)."""
    return not isinstance(x, jax.core.Tracer)


def check_positive_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """``value`` as an int, or a ``ValueError``/``TypeError`` if it is not an integer >= minimum."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r} of type {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def check_real(name: str, value: Any, *, positive: bool = False, nonnegative: bool = False,
               allow_inf: bool = False) -> float:
    """``value`` as a float, checked finite (unless ``allow_inf``) and of the requested sign."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r} of type {type(value).__name__}") from None
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise ValueError(f"{name} must be finite, got {v}")
    if positive and not v > 0:
        raise ValueError(f"{name} must be > 0, got {v}")
    if nonnegative and not v >= 0:
        raise ValueError(f"{name} must be >= 0, got {v}")
    return v


def check_choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    """``value`` if it is one of ``allowed``, else a ``ValueError`` listing the allowed values."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")
    return value


def check_finite(name: str, x: Any) -> None:
    """Raise ``ValueError`` if the concrete array ``x`` holds NaN or inf (skipped under tracing)."""
    if not is_concrete(x):
        return
    arr = np.asarray(x)
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))
        raise ValueError(
            f"{name} contains {len(bad)} non-finite value(s) (NaN or inf), first at index {tuple(bad[0])}; "
            "inputs must be finite"
        )


def check_matrix_rank2(name: str, x: Any, *, features: int | None = None) -> None:
    """Check that ``x`` has shape (n, features) (features only if given)."""
    shape = np.shape(x)
    if len(shape) != 2:
        raise ValueError(f"{name} must be a 2-d array of shape (n, features), got shape {shape}")
    if features is not None and shape[1] != features:
        raise ValueError(f"{name} has {shape[1]} features but {features} are expected (shape {shape})")


def check_square_symmetric(name: str, k: Any, *, rtol: float = 1e-6) -> np.ndarray:
    """Check that a concrete matrix is square, finite and symmetric to ``rtol`` (relative to its max)."""
    arr = np.asarray(k)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {arr.shape}")
    check_finite(name, arr)
    scale = float(np.max(np.abs(arr))) if arr.size else 0.0
    asym = float(np.max(np.abs(arr - arr.T))) if arr.size else 0.0
    if asym > rtol * max(scale, np.finfo(float).tiny):
        raise ValueError(f"{name} is not symmetric: max |K - K^T| = {asym:.3g} > {rtol:g} * max|K| = {rtol * scale:.3g}")
    return arr
