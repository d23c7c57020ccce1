"""Input checks shared by the learning-rate/batch-size modules (arrays of batch sizes, learning rates, seeds)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from workbench.validation import check_positive_int, check_real

ArrayLike = Any

# ============================================================================ input helpers


def _positive_array(name: str, x: ArrayLike, *, allow_inf: bool = False) -> np.ndarray:
    """``x`` as a float64 array, checked finite (or +inf if allowed) and > 0."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a positive number or array of positive numbers, got {x!r}") from None
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    if np.any(np.isnan(arr)) or (not allow_inf and np.any(np.isinf(arr))):
        raise ValueError(f"{name} must be finite, got {x!r}")
    if np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0, got {x!r}")
    return arr


def _nonnegative_array(name: str, x: ArrayLike) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number or array of numbers, got {x!r}") from None
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {x!r}")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0, got {x!r}")
    return arr


def _out(x: np.ndarray) -> np.ndarray | float:
    """Scalars come back as Python floats, arrays as float64 arrays."""
    return float(x) if np.ndim(x) == 0 else x


def check_batch_sizes(batch_sizes: ArrayLike, num_data: float = math.inf) -> np.ndarray:
    """Batch sizes as a sorted int array: non-empty, integers >= 1, none larger than ``num_data``."""
    arr = np.atleast_1d(np.asarray(batch_sizes))
    if arr.size == 0:
        raise ValueError("batch_sizes must not be empty")
    if arr.dtype.kind not in "iu" and not (arr.dtype.kind == "f" and np.all(np.isfinite(arr))
                                             and np.all(arr == np.round(arr))):
        raise TypeError(f"batch_sizes must be integers >= 1, got {batch_sizes!r}")
    arr = arr.astype(np.int64)
    if np.any(arr < 1):
        raise ValueError(f"batch_sizes must be integers >= 1, got {arr.tolist()}")
    if np.any(arr > num_data):
        raise ValueError(f"batch_sizes must not exceed the number of training examples ({num_data:g}), "
                         f"got {arr.tolist()}")
    if len(set(arr.tolist())) != arr.size:
        raise ValueError(f"batch_sizes must be distinct, got {arr.tolist()}")
    return np.sort(arr)


def check_lrs(lrs: ArrayLike) -> np.ndarray:
    """Learning rates as a sorted, distinct, positive, finite float64 array."""
    arr = np.atleast_1d(_positive_array("lrs", lrs))
    if arr.ndim != 1:
        raise ValueError(f"lrs must be a 1-d grid of learning rates, got shape {arr.shape}")
    if len(np.unique(arr)) != arr.size:
        raise ValueError(f"lrs must be distinct, got {arr.tolist()}")
    return np.sort(arr)


def lr_grid(lr_min: float, lr_max: float, num: int) -> np.ndarray:
    """``num`` log-spaced learning rates from ``lr_min`` to ``lr_max`` (inclusive)."""
    lr_min = check_real("lr_min", lr_min, positive=True)
    lr_max = check_real("lr_max", lr_max, positive=True)
    num = check_positive_int("num", num, minimum=2)
    if lr_max <= lr_min:
        raise ValueError(f"lr_max must be > lr_min, got lr_min={lr_min:g}, lr_max={lr_max:g}")
    return np.geomspace(lr_min, lr_max, num)


def _seed_array(seeds: int | Sequence[int]) -> np.ndarray:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        n = check_positive_int("seeds", seeds)
        return np.arange(n)
    arr = np.atleast_1d(np.asarray(seeds))
    if arr.size == 0 or arr.dtype.kind not in "iu" or arr.ndim != 1:
        raise ValueError(f"seeds must be a positive count or a non-empty 1-d list of integers, got {seeds!r}")
    return arr.astype(np.int64)
