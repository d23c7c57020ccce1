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
    if isinstance(value, (bool, str, bytes)):  # float("1") would accept text
        raise TypeError(f"{name} must be a real number, got {value!r} of type {type(value).__name__}")
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
            f"{name} contains {len(bad)} non-finite value(s) (NaN or inf), first at index "
            f"{tuple(int(i) for i in bad[0])}; "
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
    if isinstance(x, (str, bytes)) or (isinstance(x, np.ndarray) and x.dtype.kind in "SU"):
        raise TypeError(f"{name} must be a {kind} or array of {kind}s, got the text {x!r}")
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
# ----------------------------------------------------------------------------- bad-input helpers (issue 20)
def reject_text(name: str, value: Any) -> None:
    """``TypeError`` naming ``name`` if ``value`` is text (``"1"`` must not pass where a number goes)."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a number or an array of numbers, got the string {value!r}")


def check_number_array(name: str, x: Any, *, ndim: int | Sequence[int] | None = None, allow_empty: bool = False,
                       finite: bool = True, as_float64: bool = True) -> np.ndarray:
    """``x`` as a float64 NumPy array: text, booleans and objects are a ``TypeError``; the number of
    dimensions, emptiness and (with ``finite``) NaN/inf a ``ValueError``; each message names ``name``.
    ``as_float64=False`` checks the same without the float64 copy and returns ``np.asarray(x)`` (its own dtype):
    for callers that keep their input's dtype and only want it checked (a copy of a large input costs memory)."""
    reject_text(name, x)
    if not is_concrete(x):  # under jit: only what the abstract value knows (dtype, shape)
        if not jax.numpy.issubdtype(x.dtype, jax.numpy.number) or jax.numpy.iscomplexobj(x):
            raise TypeError(f"{name} must hold real numbers, got dtype {x.dtype}")
        if ndim is not None and x.ndim not in ((ndim,) if isinstance(ndim, int) else tuple(ndim)):
            raise ValueError(f"{name} must be a {ndim}-d array, got shape {x.shape}")
        return x
    try:
        raw = np.asarray(x)
    except (TypeError, ValueError) as exc:  # ragged nested sequences
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__} ({exc})") from None
    if raw.dtype.kind not in "iufc" or raw.dtype.kind == "c":
        what = "booleans" if raw.dtype.kind == "b" else f"dtype {raw.dtype}"
        raise TypeError(f"{name} must hold real numbers, got {what}")
    arr = raw.astype(float) if as_float64 else raw
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            raise ValueError(f"{name} must be a {' or '.join(map(str, allowed))}-d array, got shape {arr.shape}")
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if finite:
        check_finite(name, arr)
    return arr


def check_int_tuple(name: str, values: Any, *, minimum: int, maximum: int | None = None,
                    distinct: bool = False, min_length: int = 1) -> tuple[int, ...]:
    """A tuple of integers in [minimum, maximum], each checked like a size (``name[i]`` in the message)."""
    reject_text(name, values)
    try:
        items = list(values)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of integers, got {type(values).__name__}") from None
    out = tuple(check_positive_int(f"{name}[{i}]", v, minimum=minimum) for i, v in enumerate(items))
    if maximum is not None and any(v > maximum for v in out):
        raise ValueError(f"{name} must hold integers in [{minimum}, {maximum}], got {out}")
    if distinct and len(set(out)) != len(out):
        raise ValueError(f"{name} must hold distinct integers, got {out}")
    if len(out) < min_length:
        raise ValueError(f"{name} must hold at least {min_length} integer(s), got {out}")
    return out


def check_params_finite(name: str, params: Any) -> None:
    """``ValueError`` naming the layer and entry if a concrete parameter pytree (a list of per-layer dicts,
    or any pytree) holds NaN or inf; skipped under tracing."""
    leaves = jax.tree_util.tree_leaves_with_path(params)
    for path, leaf in leaves:
        if not is_concrete(leaf):
            return
        arr = np.asarray(leaf)
        if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
            where = "".join(str(p) for p in path)
            layer = path[0].idx if path and hasattr(path[0], "idx") else None
            label = f"layer {layer} ({where})" if layer is not None else where or "the parameters"
            n_bad = int(np.sum(~np.isfinite(arr)))
            raise ValueError(f"{name}: {label} holds {n_bad} non-finite value(s) (NaN or inf); the parameters "
                             "must be finite (a diverged training? check its diverged flag)")


def check_memory(name: str, num_bytes: float, available: float, what: str) -> None:
    """``MemoryError``-free refusal: a ``ValueError`` naming ``name`` when an allocation of ``num_bytes``
    would exceed the ``available`` bytes, with both in GiB."""
    if num_bytes > available:
        raise ValueError(f"{name}: {what} needs about {num_bytes / 2 ** 30:.3g} GiB, more than the "
                         f"{available / 2 ** 30:.3g} GiB available; ask for less")


def available_memory(device: Any = None) -> int:
    """Bytes free for a new allocation: ``device``'s (default: the first JAX device's) limit minus its use where
    the backend reports it (accelerators), else the host's ``MemAvailable``."""
    try:
        stats = (device or jax.devices()[0]).memory_stats()
    except Exception:  # not every backend implements memory_stats
        stats = None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def check_allocation(name: str, num_bytes: float, what: str, *, fraction: float = 0.8) -> None:
    """Refuse (``ValueError`` naming ``name``, with the estimate in GiB) an allocation of ``num_bytes`` that
    exceeds ``fraction`` of :func:`available_memory`, before anything is allocated."""
    if num_bytes > 2 ** 28:  # below 256 MiB nothing to estimate: skip the system query
        check_memory(name, num_bytes, fraction * available_memory(), what)


def check_scalar_output(name: str, value: Any) -> None:
    """``ValueError`` naming ``name`` if a function that must return one number returned an array."""
    shape = np.shape(value)
    if shape != ():
        raise ValueError(f"{name} must return a scalar (one number, e.g. the mean loss over the batch), "
                         f"got an output of shape {shape}")
