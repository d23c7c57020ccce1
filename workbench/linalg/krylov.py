"""Matrix-free spectral tools for symmetric operators: Lanczos eigenpairs, trace estimators, SLQ densities.

Every function takes ``operator``, one of
* an object with ``.matvec(v)`` and ``.dim`` (e.g. :class:`workbench.hessian.CurvatureOperator`);
  if it also has ``.pure_matvec(v, *operands)`` and ``.operands``, the data travel as arguments of
  the compiled loop rather than as closure constants (no constant folding, compiled code reused);
* a pair ``(matvec, dim)`` with ``matvec`` a JAX-traceable function of a flat vector.

This module is the public face; the parts live in
* :mod:`workbench.linalg.operators`: normalization, batched products, shape and symmetry checks;
* :mod:`workbench.linalg.lanczos`: :func:`top_eigenvalues` / :func:`bottom_eigenvalues`, Lanczos with full
  reorthogonalization that stops as soon as the Ritz error bound min(r, r^2/gap) meets ``rtol``
  (Parlett, *The Symmetric Eigenvalue Problem*, 11.7), each result carrying its bounds and product count;
* :mod:`workbench.linalg.trace`: :func:`hutchinson_trace` (Hutchinson 1989, Hutch++ of Meyer, Musco,
  Musco & Woodruff 2021, XTrace of Epperly, Tropp & Webber 2024, or an automatic choice), batched
  through ``vmap``, with a standard error and an optional target standard error;
* here: :func:`slq_density`, stochastic Lanczos quadrature (Golub & Meurant 2009; Ubaru, Chen & Saad
  2017; Ghorbani, Krishnan & Xiao 2019 for Hessians) on matfree's Lanczos (Kraemer et al. 2024):
  the spectral density (1/P) sum_i delta(x - lambda_i) as an average over probes of Gauss quadrature
  rules, broadened by a Gaussian of width ``sigma``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from matfree import decomp

from workbench import config
from workbench.linalg.lanczos import EIG_METHODS, Eigenpairs, bottom_eigenvalues, default_rtol, top_eigenvalues
from workbench.linalg.operators import LinearOperator, _Op, apply, as_operator, check_symmetric, difference
from workbench.linalg.trace import TRACE_METHODS, TraceEstimate, hutchinson_trace, squared_norms
from workbench.validation import check_positive_int, check_real
from workbench._compat import keyword_only_since

__all__ = ["EIG_METHODS", "TRACE_METHODS", "Eigenpairs", "LinearOperator", "SpectralDensity", "TraceEstimate",
           "as_operator", "bottom_eigenvalues", "default_rtol", "difference", "gaussian_broadening",
           "hutchinson_trace", "slq_density", "squared_norms", "top_eigenvalues"]


def _key(key: jax.Array | None) -> jax.Array:
    return jax.random.PRNGKey(0) if key is None else key


def _rademacher(key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    return jax.random.rademacher(key, shape, dtype=jnp.int8).astype(dtype)


# ----------------------------------------------------------------------------- SLQ density
class SpectralDensity(NamedTuple):
    """SLQ estimate of the spectral density (1/P) sum_i delta(x - lambda_i).

    ``grid`` and ``density`` (Gaussian-broadened, width ``sigma``; integrates to 1 over the real line);
    ``nodes`` and ``weights`` (num_probes, num_steps): one Gauss quadrature rule per probe (weights sum
    to 1 per probe); ``moments`` (m1, m2) = estimates of tr(A)/P and tr(A^2)/P (of the quadrature, before
    broadening, which adds sigma^2 to m2) and their standard errors ``moment_stderr`` over probes.
    """

    grid: np.ndarray
    density: np.ndarray
    nodes: np.ndarray
    weights: np.ndarray
    sigma: float
    moments: np.ndarray
    moment_stderr: np.ndarray
    num_matvecs: int


def _slq_core(fn, name, num_steps, num_probes, batch_size, key, marker, *args):
    dim, dtype = marker.shape[0], marker.dtype
    z = _rademacher(key, (num_probes, dim), dtype)
    algo = decomp.tridiag_sym(num_steps, reortho="full", materialize=True, custom_vjp=False)

    def one(v):
        t = algo(lambda u, *a: apply(fn, u, a, name), v, *args).J_small
        theta, s = jnp.linalg.eigh(t)
        return theta, s[0, :] ** 2

    return jax.lax.map(one, z, batch_size=batch_size)


_slq_jit = jax.jit(_slq_core, static_argnums=(0, 1, 2, 3, 4))


def gaussian_broadening(grid: np.ndarray, nodes: np.ndarray, weights: np.ndarray, sigma: float) -> np.ndarray:
    """(1/num_probes) sum_probes sum_j w_j N(x; theta_j, sigma^2) on ``grid``."""
    x = np.asarray(grid)[:, None, None]
    g = np.exp(-0.5 * ((x - nodes[None]) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    return np.sum(g * weights[None], axis=(1, 2)) / nodes.shape[0]


@keyword_only_since("key", "grid")
def slq_density(operator: Any, num_steps: int, num_probes: int, *, key: jax.Array | None = None,
                grid: Any = 512, sigma: float | None = None, batch_size: int = 4,
                check_symmetry: bool = True) -> SpectralDensity:
    """Stochastic Lanczos quadrature density of a symmetric operator on ``grid``.

    Each Rademacher probe z runs ``num_steps`` Lanczos steps (full reorthogonalization) from
    z/|z|; the tridiagonal T = S diag(theta) S^T gives nodes theta_j and weights S_{0j}^2, so that
    sum_j w_j f(theta_j) ~ z^T f(A) z / |z|^2. The density is the probe average of these rules
    broadened by N(0, sigma^2); ``sigma`` defaults to 1% of the node range. ``grid`` is an array of
    points or a number of points spanning the node range +- 5 sigma. The operator's symmetry is checked
    first on random probe pairs (2 extra products; ``check_symmetry=False`` skips it).
    """
    op = as_operator(operator)
    num_steps = check_positive_int("num_steps", num_steps, minimum=2)
    num_probes = check_positive_int("num_probes", num_probes, minimum=2)
    batch_size = check_positive_int("batch_size", batch_size)
    if num_steps > op.dim:
        raise ValueError(f"num_steps must be <= the operator dimension {op.dim}, got {num_steps}")
    key = _key(key)
    marker = jnp.zeros((op.dim,), op.dtype)
    with config.matmul_precision("highest"):
        if check_symmetry:
            check_symmetric(op, "slq_density", f"slq_density for probe 1 of {num_probes}",
                            key=jax.random.fold_in(key, 7))
        nodes, weights = _slq_jit(op.fn, op.name, num_steps, num_probes, batch_size, key, marker, *op.args)
    nodes, weights = np.asarray(nodes), np.asarray(weights)
    bad = ~(np.isfinite(nodes).all(axis=1) & np.isfinite(weights).all(axis=1))
    if bad.any():
        raise ValueError(
            f"non-finite matrix-vector product (NaN or inf) in slq_density for probe {int(np.argmax(bad)) + 1} "
            f"of {num_probes} (or an exact Lanczos breakdown: use num_steps below the number of distinct eigenvalues)"
        )
    span = float(nodes.max() - nodes.min())
    if sigma is None:
        sigma = 0.01 * span if span > 0 else 1e-3 * max(abs(float(nodes.max())), 1.0)
    sigma = check_real("sigma", sigma, positive=True)
    if np.ndim(grid) == 0:
        n = check_positive_int("grid", grid, minimum=2)
        grid = np.linspace(nodes.min() - 5 * sigma, nodes.max() + 5 * sigma, n)
    grid = np.asarray(grid, dtype=float)
    if grid.ndim != 1 or grid.size < 2 or not np.all(np.isfinite(grid)):
        raise ValueError(f"grid must be a finite 1-d array of >= 2 points or a number of points, got shape {grid.shape}")
    m1 = np.sum(weights * nodes, axis=1)
    m2 = np.sum(weights * nodes ** 2, axis=1)
    per_probe = np.stack([m1, m2])
    moments = per_probe.mean(axis=1)
    stderr = per_probe.std(axis=1, ddof=1) / math.sqrt(num_probes)
    density = gaussian_broadening(grid, nodes, weights, sigma)
    return SpectralDensity(grid, density, nodes, weights, float(sigma), moments, stderr, num_steps * num_probes)
