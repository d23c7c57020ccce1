"""Input checks shared by every public function (numbers, arrays, (x, y) pairs, seeds, learning rates,
matrices): each raises a clear error that names the argument, the bad value and what is allowed.

Checks on values (finiteness, positive semi-definiteness) run only on concrete arrays;
under ``jit`` tracing they are skipped, and shape checks still run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["check_array", "check_choice", "check_data_pair", "check_finite", "check_lrs", "check_matrix_rank2",
           "check_positive_int", "check_real", "check_seeds", "check_square_symmetric", "is_concrete",
           "scalar_or_array"]


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


def check_array(name: str, x: Any, *, positive: bool = False, nonnegative: bool = False,
                allow_inf: bool = False) -> np.ndarray:
    """``x`` (a number or array of numbers) as a non-empty float64 numpy array, checked finite (or +-inf
    where ``allow_inf``) and > 0 (``positive``) or >= 0 (``nonnegative``). The shape is kept (0-d stays 0-d)."""
    kind = "positive number" if positive else "non-negative number" if nonnegative else "number"
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a {kind} or array of {kind}s, got {x!r}") from None
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    if np.any(np.isnan(arr)) or (not allow_inf and np.any(np.isinf(arr))):
        raise ValueError(f"{name} must be finite, got {x!r}")
    if positive and np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0, got {x!r}")
    if nonnegative and np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0, got {x!r}")
    return arr


def check_data_pair(name: str, data: Any) -> tuple[jax.Array, jax.Array]:
    """``data`` as a pair ``(x, y)`` of JAX arrays with one row per example: both at least 1-d, equal
    non-zero leading sizes, finite values."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{name} must be a pair (x, y) of arrays, got {type(data).__name__}")
    x, y = jnp.asarray(data[0]), jnp.asarray(data[1])
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(f"{name}: x and y need a leading example axis, got shapes {x.shape} and {y.shape}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{name}: x and y must have equal leading sizes, got shapes {x.shape} and {y.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} has no examples")
    check_finite(f"{name} x", x)
    check_finite(f"{name} y", y)
    return x, y


def check_seeds(seeds: Any, *, name: str = "seeds") -> np.ndarray:
    """Seeds as a 1-d int64 array of distinct non-negative integers.

    The one meaning of an int across the workbench: ``seeds=n`` is a *count*, the seeds 0, 1, ..., n - 1;
    a sequence lists the seeds themselves (``[7]`` is the single seed 7). Seed s means ``PRNGKey(s)``.
    """
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        return np.arange(check_positive_int(name, seeds), dtype=np.int64)
    try:
        seq = list(np.atleast_1d(np.asarray(seeds)).ravel()) if not isinstance(seeds, (str, bytes)) else None
    except (TypeError, ValueError):
        seq = None
    if seq is None or np.ndim(seeds) > 1:
        raise TypeError(f"{name} must be a count (int) or a 1-d sequence of integers, got {seeds!r}")
    if not seq:
        raise ValueError(f"{name} must not be empty")
    for s in seq:
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)) or s < 0:
            raise ValueError(f"{name} must be non-negative integers, got {seeds!r}")
    if len(set(int(s) for s in seq)) != len(seq):
        raise ValueError(f"{name} must be distinct, got {seeds!r}")
    return np.asarray(seq, dtype=np.int64)


def check_lrs(lrs: Any, *, grid: bool = False) -> np.ndarray:
    """Learning rates as a non-empty 1-d float64 array, finite and > 0 (a number gives one learning rate).

    ``grid=True`` (sweeps): the values must also be distinct and come back sorted ascending; otherwise the
    given order is kept.
    """
    arr = np.atleast_1d(check_array("lrs", lrs, positive=True))
    if arr.ndim != 1:
        raise ValueError(f"lrs must be a number or a 1-d grid of learning rates, got shape {arr.shape}")
    if grid:
        if len(np.unique(arr)) != arr.size:
            raise ValueError(f"lrs must be distinct, got {arr.tolist()}")
        arr = np.sort(arr)
    return arr


def scalar_or_array(x: Any) -> float | np.ndarray:
    """The output rule of docs/conventions.md: a 0-d result is a Python ``float``, anything else a float64
    numpy array of the broadcast shape (a 1-element input array stays an array)."""
    arr = np.asarray(x, dtype=np.float64)
    return float(arr) if arr.ndim == 0 else arr
