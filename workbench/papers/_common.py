"""Small shared pieces of the paper entries: the empirical NTK of a scalar MLP and the run context."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from workbench import config
from workbench.nets import MLP


@functools.lru_cache(maxsize=64)
def _ntk_fn(net: MLP):
    def ntk(params, x):
        grads = jax.vmap(jax.grad(lambda p, xi: net.apply(p, xi[None, :])[0, 0]), in_axes=(None, 0))(params, x)
        leaves = [g.reshape(x.shape[0], -1) for g in jax.tree_util.tree_leaves(grads)]
        return sum(g @ g.T for g in leaves)

    return jax.jit(ntk)


def ntk_matrix(net: MLP, params, x: jax.Array) -> np.ndarray:
    """Plain J J^T of the scalar output of ``net`` at ``params`` on ``x`` (n, n) (Jacot et al. 2018)."""
    return np.asarray(_ntk_fn(net)(params, x))


@contextlib.contextmanager
def verification() -> Iterator[tuple[str, str]]:
    """float64 and highest matmul precision for the block; yields (device report, precision)."""
    with config.precision("float64"), config.matmul_precision("highest"):
        yield config.device_report(), "float64"


def keys(key: int, n: int) -> list[jax.Array]:
    """``n`` independent PRNG keys derived from the integer seed ``key``."""
    return list(jax.random.split(jax.random.PRNGKey(key), n))


__all__ = ["keys", "ntk_matrix", "verification"]
