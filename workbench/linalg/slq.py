"""Stochastic Lanczos quadrature (SLQ) spectral densities, at a fixed or an adaptive Lanczos depth.

SLQ (Golub & Meurant 2009; Ubaru, Chen & Saad 2017; Ghorbani, Krishnan & Xiao 2019 for Hessians): for a
Rademacher probe z, m Lanczos steps from z/|z| (full reorthogonalization) give the tridiagonal
T_m = S diag(theta) S^T, and the m-point Gauss rule with nodes theta_j and weights S_{0j}^2 satisfies

    sum_j S_{0j}^2 f(theta_j) ~ z^T f(A) z / |z|^2,   exact for polynomials f of degree <= 2m - 1,

so the probe average of the rules estimates the spectral density (1/P) sum_i delta(x - lambda_i) of the
P x P operator; it is shown broadened by a Gaussian of width sigma (docs/theory.md, section 13).

Adaptive depth (``rtol``): the broadened density phi_m(x) = mean_probes sum_j w_j N(x; theta_j, sigma^2)
is a probe-average of tr f_x(A) estimates for the test functions f_x = N(x; ., sigma^2). Every
``check_every`` steps the run compares phi_m with phi_{m - check_every} (both from the same tridiagonal)
and stops when their total-variation distance (1/2) int |phi_m - phi_{m'}| dx <= ``rtol``: the density the
user sees no longer changes with depth. Gauss quadrature converges geometrically in m for such analytic f
(the rate set by sigma over the spectrum's width, Ubaru et al. 2017, Thm 4.1), so a small change between
successive depths means a small distance to the infinite-depth (exact-given-the-probes) density; the tests
check this against dense eigendecompositions. A spectrum of a few clusters (or outliers over a narrow
bulk) stops after a few steps; a spread-out spectrum at a small sigma needs depth ~ width / sigma.

Implementation: the probes run ``batch_size`` at a time, each batch as ``b`` independent Lanczos
recurrences in one compiled loop (a vmapped product and a vmapped Gram-Schmidt step per step) whose bounds
are arguments, so the checks every ``check_every`` steps reuse one program. An exact
breakdown (the probe's Krylov space is invariant, e.g. fewer distinct eigenvalues than steps) is not an
error: the rule is exact there, and its nodes are padded with weight 0.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from workbench import config
from workbench.linalg.lanczos import _breakdown_tol, _orth_step, resolve_check_symmetry
from workbench.linalg.operators import _Op, apply, as_operator, check_symmetric, matmat, sequential_products
from workbench.validation import check_positive_int, check_real
from workbench._compat import keyword_only_since

__all__ = ["SpectralDensity", "gaussian_broadening", "slq_density"]

_CHECK_GRID = 512  # grid points of the total-variation check (spacing ~ 0.2 sigma at the default sigma)


class SpectralDensity(NamedTuple):
    """SLQ estimate of the spectral density (1/P) sum_i delta(x - lambda_i).

    ``grid`` and ``density`` (Gaussian-broadened, width ``sigma``; integrates to 1 over the real line);
    ``nodes`` and ``weights`` (num_probes, depth): one Gauss quadrature rule per probe (weights sum
    to 1 per probe; a probe that stopped earlier, or whose Krylov space became invariant, has its extra
    nodes at weight 0); ``moments`` (m1, m2) = estimates of tr(A)/P and tr(A^2)/P (of the quadrature, before
    broadening, which adds sigma^2 to m2) and their standard errors ``moment_stderr`` over probes;
    ``num_matvecs`` products computed; ``depths`` (num_probes,) the Lanczos steps each probe ran;
    ``converged`` (adaptive depth only, else None): every probe batch met ``rtol`` before ``num_steps``;
    ``depth_change`` the last total-variation change between successive checked depths (adaptive only).
    """

    grid: np.ndarray
    density: np.ndarray
    nodes: np.ndarray
    weights: np.ndarray
    sigma: float
    moments: np.ndarray
    moment_stderr: np.ndarray
    num_matvecs: int
    depths: np.ndarray | None = None
    converged: bool | None = None
    depth_change: float | None = None


def _rademacher(key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    return jax.random.rademacher(key, shape, dtype=jnp.int8).astype(dtype)


def _unit_probes(key, num, dim, dtype):
    z = _rademacher(key, (num, dim), dtype)
    return z / jnp.linalg.norm(z, axis=1, keepdims=True)


def _batch_basis(v0, num_steps):
    """Basis buffers (b, num_steps + 1, dim) with the unit probes v0 (b, dim) in row 0."""
    b, dim = v0.shape
    return jnp.zeros((b, num_steps + 1, dim), v0.dtype).at[:, 0].set(v0)


def _batch_chunk(fn, name, sequential, q, alpha, beta, start, stop, *args):
    """Steps start..stop-1 of b independent recurrences: the b products of a step (vmapped, or with ``sequential``
    one after another: faster on CPUs, see ``operators._probe_jit``; XLA hoists the product's primal part out of
    the loop either way), then a vmapped Gram-Schmidt step. start and stop are arguments: one program per shape."""

    def body(i, state):
        q, alpha, beta = state
        if sequential:
            w = jax.lax.map(lambda v: apply(fn, v, args, name), q[:, i])
        else:
            w = matmat(fn, q[:, i], args, name)
        return jax.vmap(_orth_step, in_axes=(0, 0, 0, None, 0))(q, alpha, beta, i, w)

    return jax.lax.fori_loop(start, stop, body, (q, alpha, beta))


_unit_probes_jit = jax.jit(_unit_probes, static_argnums=(1, 2, 3))
_batch_basis_jit = jax.jit(_batch_basis, static_argnums=(1,))
_batch_chunk_jit = jax.jit(_batch_chunk, static_argnums=(0, 1, 2), donate_argnums=(3, 4, 5))


def gaussian_broadening(grid: np.ndarray, nodes: np.ndarray, weights: np.ndarray, sigma: float) -> np.ndarray:
    """(1/num_probes) sum_probes sum_j w_j N(x; theta_j, sigma^2) on ``grid``."""
    x = np.asarray(grid)[:, None, None]
    g = np.exp(-0.5 * ((x - nodes[None]) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    return np.sum(g * weights[None], axis=(1, 2)) / nodes.shape[0]


def _rules(alpha: np.ndarray, beta: np.ndarray, m: int, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Gauss rules (nodes, weights), each (b, m), of the first m steps of b recurrences (rows of alpha, beta).

    A recurrence whose beta_j (j < m - 1) is below ``tol`` x max|T| broke down: its rule has j + 1 nodes,
    padded with copies of its last node at weight 0."""
    b = alpha.shape[0]
    nodes, weights = np.empty((b, m)), np.zeros((b, m))
    for p in range(b):
        a, off = alpha[p, :m].astype(np.float64), beta[p, : m - 1].astype(np.float64)
        scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(off), initial=0.0)), np.finfo(np.float64).tiny)
        small = np.abs(off) <= tol * scale
        n = int(np.argmax(small)) + 1 if small.any() else m
        t = np.diag(a[:n]) + np.diag(off[: n - 1], 1) + np.diag(off[: n - 1], -1)
        theta, s = np.linalg.eigh(t)
        nodes[p, :n], nodes[p, n:] = theta, theta[-1]
        weights[p, :n] = s[0, :] ** 2
    return nodes, weights


def _check_sigma(nodes: np.ndarray, sigma: float | None) -> float:
    span = float(nodes.max() - nodes.min())
    if sigma is not None:
        return sigma
    return 0.01 * span if span > 0 else 1e-3 * max(abs(float(nodes.max())), 1.0)


def _tv_change(new: tuple[np.ndarray, np.ndarray], old: tuple[np.ndarray, np.ndarray], sigma: float | None) -> float:
    """(1/2) int |phi_new - phi_old| dx of the two probe-averaged broadened densities (trapezoid on a grid
    spanning both rules' nodes +- 6 sigma: the Gaussian tails outside hold < 1e-8 of the mass)."""
    s = _check_sigma(new[0], sigma)
    lo = min(new[0].min(), old[0].min()) - 6 * s
    hi = max(new[0].max(), old[0].max()) + 6 * s
    grid = np.linspace(lo, hi, max(_CHECK_GRID, int(math.ceil((hi - lo) / (0.25 * s))) + 1))
    diff = gaussian_broadening(grid, *new, s) - gaussian_broadening(grid, *old, s)
    return 0.5 * float(np.trapezoid(np.abs(diff), grid))


def _run_batch(op: _Op, v0: jax.Array, num_steps: int, rtol: float | None, check_every: int, sigma: float | None,
               first: int, total: int) -> tuple[np.ndarray, np.ndarray, int, float | None]:
    """Lanczos from the unit rows of ``v0`` (b, dim): (alpha, beta) on the host (b, depth), depth, last change."""
    b, dim = v0.shape
    dtype = v0.dtype
    q = _batch_basis_jit(v0, num_steps)
    alpha, beta = jnp.zeros((b, num_steps), dtype), jnp.zeros((b, num_steps), dtype)
    tol = _breakdown_tol(dtype, dim)
    m = 0
    target = num_steps if rtol is None else min(num_steps, max(2 * check_every, 3))
    change = None
    while True:
        q, alpha, beta = _batch_chunk_jit(op.fn, op.name, sequential_products(op.args), q, alpha, beta, m, target,
                                          *op.args)
        m = target
        a_np, b_np = np.asarray(alpha)[:, :m], np.asarray(beta)[:, :m]
        bad = ~(np.isfinite(a_np).all(axis=1) & np.isfinite(b_np).all(axis=1))
        if bad.any():
            raise ValueError(f"non-finite matrix-vector product (NaN or inf) in slq_density for probe "
                             f"{first + int(np.argmax(bad)) + 1} of {total}: the operator returned NaN/inf")
        if rtol is None or m >= num_steps:
            if rtol is not None:
                change = _tv_change(_rules(a_np, b_np, m, tol), _rules(a_np, b_np, m - check_every, tol), sigma)
            return a_np, b_np, m, change
        change = _tv_change(_rules(a_np, b_np, m, tol), _rules(a_np, b_np, m - check_every, tol), sigma)
        if change <= rtol:
            return a_np, b_np, m, change
        target = min(m + check_every, num_steps)


@keyword_only_since("key", "grid")
def slq_density(operator: Any, num_steps: int, num_probes: int, *, key: jax.Array | None = None,
                grid: Any = 512, sigma: float | None = None, batch_size: int = 4, check_symmetry: bool | None = None,
                rtol: float | None = None, check_every: int = 4) -> SpectralDensity:
    """Stochastic Lanczos quadrature density of a symmetric operator on ``grid`` (module docstring).

    Each Rademacher probe z runs ``num_steps`` Lanczos steps (full reorthogonalization) from z/|z|; the
    tridiagonal T = S diag(theta) S^T gives nodes theta_j and weights S_{0j}^2, so that
    sum_j w_j f(theta_j) ~ z^T f(A) z / |z|^2. The density is the probe average of these rules
    broadened by N(0, sigma^2); ``sigma`` defaults to 1% of the node range. ``grid`` is an array of
    points or a number of points spanning the node range +- 5 sigma. The operator's symmetry is checked
    first on random probe pairs (2 extra products; as in :func:`workbench.linalg.top_eigenvalues`,
    ``check_symmetry=None`` skips it for an operator symmetric by construction, False always).

    ``rtol``: adaptive depth. ``num_steps`` becomes the largest depth; every ``check_every`` steps each
    batch of ``batch_size`` probes compares its broadened density at depths m and m - ``check_every``
    and stops when their total-variation distance is <= ``rtol`` (e.g. 1e-3: the shown density moves
    by at most 0.1% of its mass). ``depths``, ``converged`` and ``depth_change`` report what happened.
    """
    check_symmetry, _ = resolve_check_symmetry(operator, check_symmetry)
    op = as_operator(operator)
    num_steps = check_positive_int("num_steps", num_steps, minimum=2)
    num_probes = check_positive_int("num_probes", num_probes, minimum=2)
    batch_size = check_positive_int("batch_size", batch_size)
    check_every = check_positive_int("check_every", check_every)
    if rtol is not None:
        rtol = check_real("rtol", rtol, positive=True)
    if sigma is not None:
        sigma = check_real("sigma", sigma, positive=True)
    if num_steps > op.dim:
        raise ValueError(f"num_steps must be <= the operator dimension {op.dim}, got {num_steps}")
    if rtol is not None and num_steps <= check_every:
        raise ValueError(f"an adaptive depth (rtol) needs num_steps > check_every = {check_every}, got {num_steps}")
    key = jax.random.PRNGKey(0) if key is None else key
    b = min(batch_size, num_probes)
    num_batches = -(-num_probes // b)
    with config.matmul_precision("highest"):
        if check_symmetry:
            check_symmetric(op, "slq_density", f"slq_density for probe 1 of {num_probes}",
                            key=jax.random.fold_in(key, 7))
        v0 = _unit_probes_jit(key, num_probes, op.dim, jnp.dtype(op.dtype))
        if num_batches * b > num_probes:  # pad the last batch (repeat probes, dropped below): one program shape
            v0 = jnp.concatenate([v0, v0[: num_batches * b - num_probes]])
        runs = [_run_batch(op, v0[i * b:(i + 1) * b], num_steps, rtol, check_every, sigma, i * b, num_probes)
                for i in range(num_batches)]
    depth = max(r[2] for r in runs)
    tol = _breakdown_tol(jnp.dtype(op.dtype), op.dim)
    nodes, weights, depths = [], [], []
    for a_np, b_np, m, _ in runs:
        nd, wt = _rules(a_np, b_np, m, tol)
        pad = depth - m
        nodes.append(np.concatenate([nd, np.repeat(nd[:, -1:], pad, axis=1)], axis=1))
        weights.append(np.concatenate([wt, np.zeros((wt.shape[0], pad))], axis=1))
        depths.append(np.full(wt.shape[0], m))
    nodes = np.concatenate(nodes)[:num_probes]
    weights = np.concatenate(weights)[:num_probes]
    depths = np.concatenate(depths)[:num_probes]
    sigma = _check_sigma(nodes, sigma)
    if np.ndim(grid) == 0:
        n = check_positive_int("grid", grid, minimum=2)
        grid = np.linspace(nodes.min() - 5 * sigma, nodes.max() + 5 * sigma, n)
    grid = np.asarray(grid, dtype=float)
    if grid.ndim != 1 or grid.size < 2 or not np.all(np.isfinite(grid)):
        raise ValueError("grid must be a finite 1-d array of >= 2 points or a number of points, "
                         f"got shape {grid.shape}")
    m1 = np.sum(weights * nodes, axis=1)
    m2 = np.sum(weights * nodes ** 2, axis=1)
    per_probe = np.stack([m1, m2])
    moments = per_probe.mean(axis=1)
    stderr = per_probe.std(axis=1, ddof=1) / math.sqrt(num_probes)
    density = gaussian_broadening(grid, nodes, weights, sigma)
    matvecs = int(sum(b * r[2] for r in runs))
    if rtol is None:
        return SpectralDensity(grid, density, nodes, weights, float(sigma), moments, stderr, matvecs, depths)
    change = max(r[3] for r in runs)
    converged = all(r[3] <= rtol for r in runs)
    return SpectralDensity(grid, density, nodes, weights, float(sigma), moments, stderr, matvecs, depths, converged,
                           float(change))
