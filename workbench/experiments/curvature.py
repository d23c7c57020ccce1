"""Curvature measurements on a model for the stability theories: the top Hessian eigenpair, per-example
curvatures along it (Wu, Ma & E 2018) and the per-example Hessian entry variance of the batch-Hessian model
(Granziol et al. 2022, docs/theory.md#8-the-batch-hessian).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from workbench import config
from workbench.hessian import hessian_operator, hvp
from workbench.linalg.krylov import top_eigenvalues
from workbench.validation import check_data_pair, check_positive_int

__all__ = ["CurvatureStats", "curvature_stats"]


class CurvatureStats(NamedTuple):
    """Curvature of a mean loss at one point, for the stability theories.

    lambda1: top Hessian eigenvalue (Lanczos); direction: its unit eigenvector (flat);
    curv_mean, curv_std: mean and population std over examples of h_i = v^T H_i v along it
    (the a and s of the 1-d SGD stability limit, Wu, Ma & E 2018);
    sigma2: per-entry variance of the per-example Hessians, (1/P^2)(1/n) sum_i ||H_i - H||_F^2
    (Hutchinson, Rademacher probes), the sigma^2 of the batch-Hessian model (docs/theory.md#8-the-batch-hessian),
    with its standard error; num_params, num_data.
    """

    lambda1: float
    direction: np.ndarray
    curv_mean: float
    curv_std: float
    sigma2: float
    sigma2_se: float
    num_params: int
    num_data: int


def _per_example_hvps(loss_fn: Callable):
    @jax.jit
    def run(params, x, y, vs):
        def one_vector(v):
            return jax.vmap(lambda xi, yi: hvp(loss_fn, params, (xi[None], yi[None]), v))(x, y)  # (n, P)

        return jax.lax.map(one_vector, vs)  # (k, n, P)

    return run


def curvature_stats(loss_fn: Callable, params: Any, data: Any, *, num_probes: int = 8,
                    key: jax.Array | None = None, dense_max: int = 1500) -> CurvatureStats:
    """Top eigenpair of H, per-example curvatures along it, and the per-example Hessian entry variance
    sigma^2 = E_z mean_i |(H_i - H) z|^2 / P^2 (Rademacher z, unbiased).

    H is :func:`workbench.hessian.hessian_operator` on the full data; its top eigenpair comes from the
    dense matrix (``numpy.linalg.eigh``, exact) when P <= ``dense_max`` and from Lanczos
    (:func:`workbench.linalg.krylov.top_eigenvalues`) otherwise. Per-example products are n HVPs per
    vector (:func:`workbench.hessian.hvp` vmapped over examples): for small data sets and models.
    """
    x, y = check_data_pair("data", data)
    num_probes = check_positive_int("num_probes", num_probes, minimum=2)
    dense_max = check_positive_int("dense_max", dense_max, minimum=0)
    key = jax.random.PRNGKey(0) if key is None else key
    k_lanczos, k_probe = jax.random.split(key)
    with config.matmul_precision("highest"):
        op = hessian_operator(loss_fn, params, (x, y), kind="hessian")
        if op.dim <= dense_max:
            # chunk 64 matches gradient_noise_stats' products: the compiled matmat is reused
            w, vecs = np.linalg.eigh(np.asarray(op.dense(chunk_size=64), dtype=np.float64))
            lam, v = float(w[-1]), jnp.asarray(vecs[:, -1], op.dtype)
        else:
            eig = top_eigenvalues(op, 1, key=k_lanczos)
            lam, v = float(np.asarray(eig.eigenvalues)[0]), jnp.asarray(eig.eigenvectors)[0]
        v = v / jnp.linalg.norm(v)
        z = jax.random.rademacher(k_probe, (num_probes, op.dim), dtype=v.dtype)
        hvs = _per_example_hvps(loss_fn)(params, x, y, jnp.concatenate([v[None, :], z]))  # (1 + k, n, P)
        h = np.asarray(hvs[0] @ v)  # h_i = v^T H_i v
        dev = hvs[1:] - jnp.mean(hvs[1:], axis=1, keepdims=True)
        per_probe = np.asarray(jnp.mean(jnp.sum(dev ** 2, axis=2), axis=1)) / op.dim ** 2
    if lam <= 0:
        raise ValueError(f"the top Hessian eigenvalue is {lam:g} <= 0: no stability limit exists at these parameters")
    return CurvatureStats(lam, np.asarray(v), float(h.mean()), float(h.std()), float(per_probe.mean()),
                          float(per_probe.std(ddof=1) / math.sqrt(num_probes)), int(op.dim), int(x.shape[0]))
