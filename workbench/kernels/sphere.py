"""Mercer eigenvalues of dot-product kernels on the sphere S^{dim-1} (docs/theory.md#3-dot-product-kernels-on-the-sphere).

A kernel k(x, x') = kappa(x.x') on S^{d-1} with the uniform probability measure has the spherical
harmonics of degree k as eigenfunctions, with multiplicity N(d, k) = (2k + d - 2)/k C(k + d - 3, d - 2)
(N(d, 0) = 1) and eigenvalue (Funk-Hecke formula)

    mu_k = Gamma(d/2) / (sqrt(pi) Gamma((d-1)/2)) * int_{-1}^{1} kappa(t) P_k(t) (1 - t^2)^{(d-3)/2} dt,

with P_k the Gegenbauer polynomial C_k^{((d-2)/2)} normalized to P_k(1) = 1 (Legendre for d = 3,
Chebyshev T_k for d = 2). Trace identity: kappa(1) = sum_k N(d, k) mu_k.

NTK and NNGP kernels of relu nets are smooth inside (-1, 1) but behave like sqrt(1 - t) at the
ends, which spoils Gauss-Jacobi convergence; the integral is done by tanh-sinh (double
exponential) quadrature, t = tanh(pi/2 sinh s), whose error decays exponentially in the number
of nodes even with such endpoint behaviour. The weight (1 - t^2)^{(d-3)/2} = cosh(pi/2 sinh s)^{3-d}
is computed in logs, so no cancellation occurs near t = +-1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax.numpy as jnp
import numpy as np
import scipy.special

from workbench.kernels.analytic import dot_product_kernel
from workbench import config
from workbench.nets import MLP
from workbench.validation import check_choice, check_positive_int
from workbench.validation import check_memory

#: half-width of the tanh-sinh interval in s: pi/2 sinh(4) ~ 43, beyond which every weight is < 1e-18
_S_MAX = 4.0


def _degrees(degrees: int | Sequence[int] | np.ndarray) -> np.ndarray:
    deg = np.atleast_1d(np.asarray(degrees))
    if deg.dtype.kind not in "iu" or deg.ndim != 1 or deg.size == 0 or np.any(deg < 0):
        raise ValueError(f"degrees must be non-negative integers (a scalar or 1-d sequence), got {degrees!r}")
    return deg.astype(int)


def sphere_multiplicities(dim: int, degrees: int | Sequence[int] | np.ndarray) -> np.ndarray:
    """N(dim, k): the number of independent spherical harmonics of degree k on S^{dim-1} (float array).

    N(d, k) = (2k + d - 2)/k * C(k + d - 3, d - 2), N(d, 0) = 1; N(3, k) = 2k + 1, N(2, k) = 2 (k >= 1).
    """
    dim = check_positive_int("dim", dim, minimum=2)
    deg = _degrees(degrees)
    out = np.empty(deg.shape, float)
    for i, k in enumerate(deg.tolist()):
        out[i] = 1.0 if k == 0 else (2 * k + dim - 2) * math.comb(k + dim - 3, dim - 2) / k
    return out


def gegenbauer_normalized(k: int, dim: int, t: np.ndarray) -> np.ndarray:
    """P_k(t) = C_k^{(dim-2)/2}(t) / C_k^{(dim-2)/2}(1) (Legendre for dim = 3, Chebyshev T_k for dim = 2)."""
    if dim == 2:
        return scipy.special.eval_chebyt(k, t)
    if dim == 3:
        return scipy.special.eval_legendre(k, t)
    lam = (dim - 2) / 2
    return scipy.special.eval_gegenbauer(k, lam, t) / scipy.special.eval_gegenbauer(k, lam, 1.0)


def tanh_sinh_nodes(dim: int, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes t in [-1, 1] and weights w with sum_i w_i f(t_i) ~ int f(t) (1 - t^2)^{(dim-3)/2} dt."""
    s = np.arange(-_S_MAX, _S_MAX + step / 2, step)
    y = 0.5 * np.pi * np.sinh(s)
    t = np.tanh(y)
    ay = np.abs(y)
    log_cosh_y = ay + np.log1p(np.exp(-2 * ay)) - math.log(2.0)
    log_w = math.log(0.5 * np.pi * step) + np.log(np.cosh(s)) - (dim - 1) * log_cosh_y
    return t, np.exp(log_w)


def _kappa(kernel: Callable | MLP, dim: int, which: str) -> Callable[[np.ndarray], np.ndarray]:
    if isinstance(kernel, MLP):
        # Always float64, whatever the session's precision: in float32 the round-off of kappa(t) (~1e-7) swamps
        # mu_k beyond the first few degrees, and the fitted spectral tail of the learning curves goes wrong.
        def kappa(t: np.ndarray) -> np.ndarray:
            with config.precision("float64"):
                return np.asarray(dot_product_kernel(kernel, jnp.asarray(t, jnp.float64), dim, which=which), float)

        return kappa
    if callable(kernel):
        return lambda t: np.asarray(kernel(t), dtype=float)
    raise TypeError(f"kernel must be a vectorized function of the cosine t or an MLP, got {type(kernel).__name__}")


def sphere_eigenvalues(kernel: Callable[[np.ndarray], np.ndarray] | MLP, dim: int,
                       degrees: int | Sequence[int] | np.ndarray, *, which: str = "ntk",
                       step: float | None = None) -> np.ndarray:
    """Mercer eigenvalues mu_k of kappa(x.x') on S^{dim-1} (uniform probability measure), one per degree.

    Args:
      kernel: a vectorized function kappa(t) of the cosine t in [-1, 1], or an :class:`MLP`, whose
        infinite-width kernel between unit vectors of R^dim is used (its NTK, or with
        ``which="nngp"`` its NNGP; see :func:`workbench.kernels.analytic.dot_product_kernel`).
      dim: the ambient dimension d (the sphere is S^{d-1}), >= 2.
      degrees: the degrees k (non-negative integers).
      which: ``"ntk"`` or ``"nngp"`` (for an MLP).
      step: tanh-sinh step in s (default min(1/64, 1/(8 max k))). The result is accurate to about
        1e-14 * max |kappa| in absolute terms (round-off in the oscillating integrand), so tiny
        eigenvalues of smooth kernels (mu_k < 1e-4 mu_0) have larger relative errors.

    Returns:
      float64 array of mu_k, same length as ``degrees``. Funk-Hecke with normalized Gegenbauer
      polynomials (module docstring); the eigenvalue of each of the N(d, k) harmonics of degree k.
    """
    dim = check_positive_int("dim", dim, minimum=2)
    check_choice("which", which, ("ntk", "nngp"))
    deg = _degrees(degrees)
    if step is None:
        step = min(1.0 / 64, 1.0 / (8 * max(int(deg.max()), 1)))
    elif not (isinstance(step, (int, float)) and 0 < step <= 0.5):
        raise ValueError(f"step must be a number in (0, 0.5], got {step!r}")
    # refuse before allocating: the rule has 2 S_MAX / step + 1 nodes, and about 8 float64 arrays of that
    # length live at once (s, y, t, |y|, log-weights, weights, kappa(t), one Gegenbauer evaluation)
    from workbench.kernels.empirical import available_memory

    num_nodes = 2 * _S_MAX / step + 1
    check_memory("degrees", num_nodes * 8 * 8, available_memory(),
                 f"the quadrature for degree {int(deg.max())} ({num_nodes:.3g} nodes at step {step:.3g})")
    kappa = _kappa(kernel, dim, which)
    t, w = tanh_sinh_nodes(dim, step)
    values = kappa(t)
    if values.shape != t.shape:
        raise ValueError(f"kernel must be vectorized: kappa(t) for t of shape {t.shape} returned shape {values.shape}")
    if not np.all(np.isfinite(values)):
        bad = t[~np.isfinite(values)][0]
        raise ValueError(f"kernel is not finite on [-1, 1] (e.g. at t = {bad!r})")
    const = math.exp(math.lgamma(dim / 2) - math.lgamma((dim - 1) / 2)) / math.sqrt(math.pi)
    return np.array([const * np.sum(w * values * gegenbauer_normalized(int(k), dim, t)) for k in deg])


def relu_ntk_two_layer(t: np.ndarray) -> np.ndarray:
    """Normalized two-layer relu NTK without bias, kappa(u) = u kappa0(u) + kappa1(u) (Bietti & Mairal 2019).

    kappa0(u) = 1 - arccos(u)/pi, kappa1(u) = (u (pi - arccos u) + sqrt(1 - u^2))/pi; kappa(1) = 2.
    """
    u = np.clip(np.asarray(t, float), -1.0, 1.0)
    acos = np.arccos(u)
    k0 = 1 - acos / np.pi
    k1 = (u * (np.pi - acos) + np.sqrt(1 - u * u)) / np.pi
    return u * k0 + k1
