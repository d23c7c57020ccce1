"""Gradient-noise measurements on a model: exact |G|^2, tr(Sigma), G^T H G, tr(H Sigma) from per-example
gradients, and McCandlish's two-batch-size estimates from random batches (McCandlish et al. 2018).

Conventions as in :mod:`workbench.lr_batch.theory` (docs/theory.md#9-learning-rate-and-batch-size): the loss is the mean of per-example
losses and Sigma the population (1/n) per-example gradient covariance.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from workbench import config
from workbench.hessian import hessian_operator, per_example_grads
from workbench.lr_batch.analysis import TwoBatchEstimate, noise_scale_estimate
from workbench.lr_batch.theory import NoiseScale, noise_scale
from workbench.validation import check_data_pair, check_positive_int
from workbench._compat import keyword_only_since

__all__ = ["batch_grad_sq_norms", "gradient_noise_stats", "two_batch_noise_scale"]


def gradient_noise_stats(loss_fn: Callable, params: Any, data: Any, *, chunk_size: int = 64) -> NoiseScale:
    """Exact |G|^2, tr(Sigma), G^T H G and tr(H Sigma) of a mean loss over the ``data`` (x, y), with
    the McCandlish scales (eps_max, B_noise, B_simple) derived from them.

    ``loss_fn(params, (x, y))`` must be the *mean* of per-example losses (e.g. :func:`workbench.hessian.mlp_loss`).
    Per-example gradients g_i come from :func:`workbench.hessian.per_example_grads` (vmapped), Hessian-vector
    products from :func:`workbench.hessian.hessian_operator` on the full data:
    tr(H Sigma) = (1/n) sum_i (g_i - G)^T H (g_i - G), done as ``chunk_size`` HVPs at a time.
    Cost: n + 1 full-data HVPs, so for small data sets (n up to a few thousand).
    """
    x, y = check_data_pair("data", data)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    with config.matmul_precision("highest"):
        grads = per_example_grads(loss_fn, params, (x, y))  # (n, P)
        n = grads.shape[0]
        g = jnp.mean(grads, axis=0)
        dev = grads - g[None, :]
        op = hessian_operator(loss_fn, params, (x, y), kind="hessian")
        hg = op.matvec(g)
        chunk = min(chunk_size, n)
        pad = (-n) % chunk
        dev_p = jnp.concatenate([dev, jnp.zeros((pad, dev.shape[1]), dev.dtype)]) if pad else dev
        quad = 0.0
        for i in range(0, n + pad, chunk):
            block = dev_p[i:i + chunk]
            quad += float(jnp.sum(block * op.matmat(block)))
        g2 = float(g @ g)
        tr_sigma = float(jnp.sum(dev * dev)) / n
        g_h_g = float(g @ hg)
    return noise_scale(g2, tr_sigma, g_h_g, quad / n, num_data=float(n))


def _sq_norm_runner(loss_fn: Callable, batch_size: int, replace: bool):
    @jax.jit
    def run(params, x, y, keys):
        n = x.shape[0]

        def one(k):
            idx = jax.random.choice(k, n, (batch_size,), replace=replace)
            grads = jax.grad(loss_fn)(params, (x[idx], y[idx]))
            return sum(jnp.sum(leaf ** 2) for leaf in jax.tree_util.tree_leaves(grads))

        return jax.lax.map(one, keys)

    return run


@keyword_only_since("key")
def batch_grad_sq_norms(loss_fn: Callable, params: Any, data: Any, batch_size: int, num_draws: int, *,
                        key: jax.Array, replace: bool = False) -> np.ndarray:
    """|G_B|^2 of ``num_draws`` random batches of size B (gradient of the mean loss on the batch), shape (num_draws,).

    Batches are drawn without replacement within a batch (``replace=False``: E|G_B|^2 = |G|^2 + c_B tr(Sigma))
    or with replacement (``replace=True``: |G|^2 + tr(Sigma)/B); independent across draws.
    """
    x, y = check_data_pair("data", data)
    n = int(x.shape[0])
    batch_size = check_positive_int("batch_size", batch_size)
    if not replace and batch_size > n:
        raise ValueError(f"batch_size must not exceed the number of examples ({n}) without replacement, "
                         f"got {batch_size}")
    num_draws = check_positive_int("num_draws", num_draws)
    keys = jax.random.split(key, num_draws)
    return np.asarray(_sq_norm_runner(loss_fn, batch_size, bool(replace))(params, x, y, keys))


def two_batch_noise_scale(loss_fn: Callable, params: Any, data: Any, b_small: int, b_big: int, *,
                          num_draws: int, key: jax.Array, replace: bool = False) -> TwoBatchEstimate:
    """McCandlish's two-batch-size estimates of |G|^2, tr(Sigma) and B_simple from ``num_draws`` random
    batches of each size (:func:`batch_grad_sq_norms`, :func:`noise_scale_estimate`), with standard errors.
    Without replacement the sampling factor c_B of the data set size is used (num_data = n)."""
    x, y = check_data_pair("data", data)
    k1, k2 = jax.random.split(key)
    small = batch_grad_sq_norms(loss_fn, params, (x, y), b_small, num_draws, key=k1, replace=replace)
    big = batch_grad_sq_norms(loss_fn, params, (x, y), b_big, num_draws, key=k2, replace=replace)
    return noise_scale_estimate(small, big, b_small, b_big, math.inf if replace else float(x.shape[0]))
