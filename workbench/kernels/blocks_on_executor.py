"""The blocked empirical NTK on an executor: one task per b x b block (upper triangle when ``x2=None``), each
computed on a worker's default device by the same jitted block function as in process, placed into a host
array here as blocks arrive. Called by :func:`workbench.kernels.empirical.empirical_ntk` with ``executor=``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from workbench.executors import run_tasks
from workbench.kernels.empirical import _block_fn
from workbench.nets import MLP

__all__ = ["blocked_on_executor"]


def _block_pairs(n1: int, n2: int, b: int, symmetric: bool) -> list[tuple[int, int]]:
    return [(i, j) for i in range(0, n1, b) for j in range(i if symmetric else 0, n2, b)]


def blocked_on_executor(executor: Any, method: str, fn: Callable | None, net: MLP | None, output: str, params: Any,
                        x1: jax.Array, x2: jax.Array | None, n1: int, n2: int, k: int, b: int,
                        dtype: Any) -> tuple[np.ndarray, bool]:
    """The blocked kernel with one task per block on ``executor``, placed into the host array as blocks arrive."""
    if method == "structured":
        fn, net = None, dataclasses.replace(net, width=1)
    shared = {"apply_fn": fn, "net": net, "method": method, "output": output, "block": b, "params": params,
              "x1": np.asarray(x1), "x2": None if x2 is None else np.asarray(x2)}
    pairs = _block_pairs(n1, n2, b, x2 is None)
    shape = (n1, n2) if output == "trace" else (n1, n2, k, k)
    result = np.empty(shape, dtype=dtype)
    for t, (blk, blk_ok) in run_tasks(executor, _block_task, shared, pairs, progress=False, desc="kernel blocks"):
        if not blk_ok:
            return result, False
        i, j = pairs[t]
        result[i:i + b, j:j + b] = blk
        if x2 is None and j != i:
            result[j:j + b, i:i + b] = np.swapaxes(blk, 0, 1) if output == "trace" else blk.transpose(1, 0, 3, 2)
    return result, True


def _block_task(shared: dict[str, Any], i: int, j: int) -> tuple[np.ndarray, bool]:
    """Worker side: the (i, j) block of the kernel on the worker's default device."""
    s, b = shared, shared["block"]
    block = _block_fn(s["method"], s["apply_fn"], s["net"], s["output"])
    x1 = jnp.asarray(s["x1"])
    x2 = x1 if s["x2"] is None else jnp.asarray(s["x2"])
    xj = None if s["x2"] is None and i == j else x2[j:j + b]
    blk, ok = block(s["params"], x1[i:i + b], xj)
    return np.asarray(blk), bool(ok)
