"""Grids of the learning-rate/batch-size modules: batch-size checks, log-spaced lr grids, and the scalar-out rule."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from workbench import validation
from workbench._compat import warn_deprecated
from workbench.validation import check_allocation, check_positive_int, check_real

ArrayLike = Any


def _out(x: np.ndarray) -> np.ndarray | float:
    """Scalars come back as Python floats, arrays as float64 arrays (docs/conventions.md)."""
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
    """Deprecated: use :func:`workbench.validation.check_lrs` with ``grid=True`` (sorted, distinct, > 0)."""
    warn_deprecated("workbench.lr_batch.check_lrs", "workbench.validation.check_lrs(lrs, grid=True)")
    return validation.check_lrs(lrs, grid=True)


def lr_grid(lr_min: float, lr_max: float, num: int) -> np.ndarray:
    """``num`` log-spaced learning rates from ``lr_min`` to ``lr_max`` (inclusive)."""
    lr_min = check_real("lr_min", lr_min, positive=True)
    lr_max = check_real("lr_max", lr_max, positive=True)
    num = check_positive_int("num", num, minimum=2)
    if lr_max <= lr_min:
        raise ValueError(f"lr_max must be > lr_min, got lr_min={lr_min:g}, lr_max={lr_max:g}")
    check_allocation("num", 8.0 * num, f"a grid of {num:,} learning rates")
    return np.geomspace(lr_min, lr_max, num)
