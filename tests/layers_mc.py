"""Shared helpers of the tests of workbench.layers: Monte-Carlo kernels of finite networks."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np


def flat_jacobian(net, params, x: jax.Array, unit: int = 0) -> jax.Array:
    """d f_unit(x_a) / d params as a dense (n, P) matrix (jax.jacrev, every leaf raveled)."""
    jac = jax.jit(jax.jacrev(lambda p: net.apply(p, x)[:, unit]))(params)  # one program, not per-op eager
    return jnp.concatenate([leaf.reshape(x.shape[0], -1) for leaf in jax.tree_util.tree_leaves(jac)], axis=1)


@partial(jax.jit, static_argnums=(0,))
def _one_draw(net, key, x):
    params = net.init(key, x.shape)
    f = net.apply(params, x).reshape(x.shape[0], -1)
    nngp = f @ f.T / f.shape[1]  # average over the (iid) output units
    j = flat_jacobian(net, params, x)
    return nngp, j @ j.T  # the NTK of output unit 0


def monte_carlo(net, x: jax.Array, seeds: int, seed0: int = 0) -> dict[str, np.ndarray]:
    """Mean and standard error over ``seeds`` initializations of the empirical NNGP and NTK."""
    draws = [_one_draw(net, jax.random.PRNGKey(seed0 + s), x) for s in range(seeds)]
    nngp = np.stack([np.asarray(d[0]) for d in draws])
    ntk = np.stack([np.asarray(d[1]) for d in draws])
    se = lambda a: a.std(axis=0, ddof=1) / np.sqrt(a.shape[0])  # noqa: E731
    return {"nngp": nngp.mean(0), "nngp_se": se(nngp), "ntk": ntk.mean(0), "ntk_se": se(ntk)}
