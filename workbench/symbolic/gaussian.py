"""Numerical expectations over a bivariate Gaussian, the independent side of the kernel derivations.

``(u, v) ~ N(0, [[K11, K12], [K12, K22]])`` is written through its Cholesky factor,
u = a z1, v = b z1 + c z2 with a = sqrt(K11), b = K12/a, c = sqrt(K22 - b^2) and z ~ N(0, I).

* :func:`pair_monte_carlo`: E[f(u) g(v)] by Monte Carlo in JAX, with its standard error.
* :func:`pair_gauss_hermite`: E[f(u) g(v)] by a tensor Gauss-Hermite rule (numpy), with an
  error estimate from the same rule at twice the nodes.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from workbench.validation import check_positive_int


def _cholesky(k11: np.ndarray, k22: np.ndarray, k12: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    k11, k22, k12 = (np.asarray(x, dtype=float) for x in (k11, k22, k12))
    if np.any(k11 <= 0) or np.any(k22 <= 0):
        raise ValueError(f"K11 and K22 must be > 0, got K11={k11}, K22={k22}")
    if np.any(k12 ** 2 > k11 * k22 * (1 + 1e-12)):
        raise ValueError(f"the covariance must be positive semi-definite: need K12^2 <= K11 K22, got K12={k12}")
    a = np.sqrt(k11)
    b = k12 / a
    c = np.sqrt(np.maximum(k22 - b ** 2, 0.0))
    return a, b, c


def pair_monte_carlo(f: Callable, g: Callable, k11: np.ndarray, k22: np.ndarray, k12: np.ndarray, *,
                     samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Monte-Carlo mean of f(u) g(v) at each covariance, and its standard error (sample std / sqrt(samples)).

    The same draws z are used at every covariance (common random numbers); f and g are JAX functions.
    """
    samples = check_positive_int("samples", samples, minimum=2)
    a, b, c = (jnp.asarray(x)[:, None] for x in _cholesky(k11, k22, k12))
    z = jax.random.normal(jax.random.PRNGKey(seed), (2, samples), dtype=a.dtype)
    vals = f(a * z[0][None, :]) * g(b * z[0][None, :] + c * z[1][None, :])
    mean = jnp.mean(vals, axis=1)
    se = jnp.std(vals, axis=1, ddof=1) / np.sqrt(samples)
    return np.asarray(mean, dtype=float), np.asarray(se, dtype=float)


def _gh_rule(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.hermite_e.hermegauss(nodes)  # weight exp(-x^2/2)
    return x, w / np.sqrt(2 * np.pi)


def pair_gauss_hermite(f: Callable, g: Callable, k11: np.ndarray, k22: np.ndarray, k12: np.ndarray, *,
                       nodes: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """E[f(u) g(v)] by a ``nodes`` x ``nodes`` Gauss-Hermite rule, and |Q(nodes) - Q(2 nodes)| as error estimate.

    The returned value is the finer rule's; for smooth integrands the rule converges geometrically, so
    the difference bounds the coarse rule's error and, a fortiori, the fine rule's. f and g act on numpy arrays.
    """
    nodes = check_positive_int("nodes", nodes, minimum=2)
    a, b, c = _cholesky(k11, k22, k12)

    def rule(n: int) -> np.ndarray:
        x, w = _gh_rule(n)
        z1 = x[None, :, None]
        z2 = x[None, None, :]
        vals = f(a[:, None, None] * z1) * g(b[:, None, None] * z1 + c[:, None, None] * z2)
        return np.einsum("pij,i,j->p", np.broadcast_to(vals, (a.shape[0], n, n)), w, w)

    coarse, fine = rule(nodes), rule(2 * nodes)
    return fine, np.abs(fine - coarse)
