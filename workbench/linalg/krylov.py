"""Matrix-free spectral tools for symmetric operators: Lanczos eigenpairs, trace estimators, SLQ densities.

Every function takes ``operator``, one of
* an object with ``.matvec(v)`` and ``.dim`` (e.g. :class:`workbench.hessian.CurvatureOperator`);
  if it also has ``.pure_matvec(v, *operands)`` and ``.operands``, the data travel as arguments of
  the compiled loop rather than as closure constants (no constant folding, compiled code reused);
* a pair ``(matvec, dim)`` with ``matvec`` a JAX-traceable function of a flat vector.

The Krylov loops are matfree's (Kraemer et al. 2024): ``matfree.decomp.tridiag_sym`` with full
reorthogonalization (Lanczos 1950; Paige 1971 for why reorthogonalization matters), compiled with
the whole loop inside one ``jax.jit``. Each result carries its error estimate:

* :func:`top_eigenvalues` / :func:`bottom_eigenvalues`: Ritz values with Ritz residual norms
  |A y - theta y| = |beta_m s_m| (Parlett, *The Symmetric Eigenvalue Problem*, 13.2); there is an exact
  eigenvalue within each residual of its Ritz value (Kahan-Parlett-Jiang bound).
* :func:`hutchinson_trace`: Hutchinson (1989) with Rademacher probes, Hutch++ (Meyer, Musco, Musco
  & Woodruff 2021) or XTrace (Epperly, Tropp & Webber 2024, via matfree), with a standard error.
* :func:`slq_density`: stochastic Lanczos quadrature (Golub & Meurant 2009; Ubaru, Chen & Saad 2017;
  Ghorbani, Krishnan & Xiao 2019 for Hessians): the spectral density (1/P) sum_i delta(x - lambda_i)
  as an average over probes of Gauss quadrature rules, broadened by a Gaussian of width ``sigma``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from matfree import decomp, stochtrace

from workbench import config
from workbench.validation import check_choice, check_positive_int, check_real

TRACE_METHODS = ("hutchinson", "hutch++", "xtrace")
EIG_METHODS = ("lanczos", "power")


# ----------------------------------------------------------------------------- operator plumbing
class _Op(NamedTuple):
    fn: Callable[..., jax.Array]  # fn(v, *args) -> A v
    args: tuple
    dim: int
    dtype: Any


class _Closure:
    """A hashable wrapper of a user ``matvec(v)`` with the signature ``fn(v)`` (identity hash)."""

    def __init__(self, matvec: Callable[[jax.Array], jax.Array]) -> None:
        self.matvec = matvec

    def __call__(self, v: jax.Array) -> jax.Array:
        return self.matvec(v)


def as_operator(operator: Any) -> _Op:
    """Normalize ``operator`` (object with ``.matvec``/``.dim``, or ``(matvec, dim)``) for the jitted loops."""
    if isinstance(operator, tuple) and len(operator) == 2 and callable(operator[0]):
        matvec, dim = operator
        dim = check_positive_int("dim", dim)
        return _Op(_Closure(matvec), (), dim, config.default_dtype())
    if hasattr(operator, "matvec") and hasattr(operator, "dim"):
        dim = check_positive_int("operator.dim", operator.dim)
        dtype = getattr(operator, "dtype", config.default_dtype())
        if hasattr(operator, "pure_matvec") and hasattr(operator, "operands"):
            return _Op(operator.pure_matvec, tuple(operator.operands), dim, dtype)
        return _Op(_Closure(operator.matvec), (), dim, dtype)
    raise TypeError(
        "operator must have .matvec(v) and .dim, or be a pair (matvec, dim); "
        f"got {type(operator).__name__}"
    )


@dataclasses.dataclass(frozen=True)
class _DifferenceProduct:
    fa: Callable[..., jax.Array]
    fb: Callable[..., jax.Array]
    num_a: int

    def __call__(self, v: jax.Array, *args: Any) -> jax.Array:
        return self.fa(v, *args[: self.num_a]) - self.fb(v, *args[self.num_a:])


@dataclasses.dataclass(frozen=True, eq=False)
class LinearOperator:
    """A symmetric operator given by a pure product ``pure_matvec(v, *operands)`` and its data."""

    pure_matvec: Callable[..., jax.Array]
    operands: tuple
    dim: int
    dtype: Any

    def matvec(self, v: jax.Array) -> jax.Array:
        return self.pure_matvec(v, *self.operands)


def difference(a: Any, b: Any) -> LinearOperator:
    """The operator A - B (same dimension), keeping both operands as jit arguments."""
    oa, ob = as_operator(a), as_operator(b)
    if oa.dim != ob.dim:
        raise ValueError(f"operators must have the same dimension, got {oa.dim} and {ob.dim}")
    return LinearOperator(_DifferenceProduct(oa.fn, ob.fn, len(oa.args)), oa.args + ob.args, oa.dim, oa.dtype)


def _key(key: jax.Array | None) -> jax.Array:
    return jax.random.PRNGKey(0) if key is None else key


def _rademacher(key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    return jax.random.rademacher(key, shape, dtype=jnp.int8).astype(dtype)


# ----------------------------------------------------------------------------- Lanczos
class Eigenpairs(NamedTuple):
    """Extremal Ritz pairs: ``eigenvalues`` (k,), ``eigenvectors`` (k, dim) (unit rows), ``residuals``
    (k,) Ritz residual norms |A y - theta y|, ``num_matvecs`` used, ``converged`` (residual <= tol |theta|)."""

    eigenvalues: np.ndarray
    eigenvectors: jax.Array
    residuals: np.ndarray
    num_matvecs: int
    converged: bool


def _tridiag(fn: Callable, num_steps: int, v0: jax.Array, *args: Any):
    algo = decomp.tridiag_sym(num_steps, reortho="full", materialize=True, custom_vjp=False)
    res = algo(fn, v0, *args)
    beta = jnp.sqrt(jnp.vdot(res.residual, res.residual))
    return res.Q_tall, res.J_small, beta


_tridiag_jit = jax.jit(_tridiag, static_argnums=(0, 1))


def _first_nonfinite_step(t: np.ndarray) -> int | None:
    diag = np.diag(t)
    off = np.concatenate([np.diag(t, 1), [0.0]])
    bad = ~(np.isfinite(diag) & np.isfinite(off))
    return int(np.argmax(bad)) if bad.any() else None


def _lanczos(op: _Op, num_steps: int, key: jax.Array, what: str):
    """Run ``num_steps`` Lanczos steps from a Rademacher start; handle breakdown and non-finite products."""
    v0 = _rademacher(key, (op.dim,), op.dtype)
    q, t, beta = _tridiag_jit(op.fn, num_steps, v0, *op.args)
    t = np.asarray(t)
    bad = _first_nonfinite_step(t)
    if bad is not None:
        # Either the operator returned NaN/inf, or the Krylov space became exactly invariant at step
        # bad (beta = 0) and the next normalization divided 0 by 0. Tell them apart with one product.
        probe = jax.jit(op.fn)(v0 / jnp.linalg.norm(v0), *op.args)
        diag = np.diag(t)
        if bool(jnp.all(jnp.isfinite(probe))) and np.isfinite(diag[bad]):
            return q[: bad + 1], t[: bad + 1, : bad + 1], 0.0
        raise ValueError(
            f"non-finite matrix-vector product (NaN or inf) in {what} at Lanczos step {bad + 1} of {num_steps}: "
            "the operator returned NaN/inf (check the loss, the parameters and the data)"
        )
    # Near-breakdown: a tiny beta_j means span(q_0..q_j) is invariant to rounding; the vectors after it
    # are normalized rounding noise that is not orthogonal to the basis. Keep the steps up to j.
    off = np.abs(np.diag(t, 1))
    scale = float(np.max(np.abs(t))) if t.size else 0.0
    small = off <= _breakdown_tol(t.dtype, op.dim) * max(scale, np.finfo(t.dtype).tiny)
    if small.any():
        j = int(np.argmax(small))
        return q[: j + 1], t[: j + 1, : j + 1], 0.0
    return q, t, float(beta)


def _breakdown_tol(dtype: Any, dim: int) -> float:
    """beta_j below this times max|T| is a Lanczos breakdown: rounding level, 10 eps sqrt(dim)."""
    return 10.0 * float(np.finfo(dtype).eps) * math.sqrt(dim)


def _ritz(q: jax.Array, t: np.ndarray, beta: float, k: int, which: str):
    theta, s = np.linalg.eigh(t)
    order = np.argsort(theta)[::-1] if which == "top" else np.argsort(theta)
    idx = order[:k]
    residuals = np.abs(beta * s[-1, idx])
    vectors = jnp.asarray(s[:, idx].T, dtype=q.dtype) @ q  # (k, dim)
    return theta[idx], vectors, residuals


def _default_tol(dtype: Any) -> float:
    return 1e-7 if jnp.dtype(dtype) == jnp.float64 else 1e-3


def _power(op: _Op, num_iters: int, key: jax.Array, tol: float):
    """Power iteration (largest |eigenvalue|), stopping when the Rayleigh quotient's relative change < tol."""
    mv = jax.jit(op.fn)
    v = _rademacher(key, (op.dim,), op.dtype)
    v = v / jnp.linalg.norm(v)
    lam_old = None
    for step in range(1, num_iters + 1):
        w = mv(v, *op.args)
        lam = float(jnp.vdot(v, w))
        if not np.isfinite(lam):
            raise ValueError(f"non-finite matrix-vector product (NaN or inf) in power iteration at step {step}")
        v_new = w / jnp.linalg.norm(w)
        if lam_old is not None and abs(lam - lam_old) <= tol * abs(lam):
            v = v_new
            break
        lam_old, v = lam, v_new
    w = mv(v, *op.args)
    lam = float(jnp.vdot(v, w))
    res = float(jnp.linalg.norm(w - lam * v))
    return Eigenpairs(np.array([lam]), v[None, :], np.array([res]), step + 1, bool(res <= tol * abs(lam)))


def _extremal(operator: Any, k: int, key: jax.Array | None, num_iters: int | None, tol: float | None,
              method: str, which: str) -> Eigenpairs:
    op = as_operator(operator)
    k = check_positive_int("k", k)
    if k > op.dim:
        raise ValueError(f"k must be <= the operator dimension {op.dim}, got k={k}")
    check_choice("method", method, EIG_METHODS)
    tol = _default_tol(op.dtype) if tol is None else check_real("tol", tol, positive=True)
    key = _key(key)
    if method == "power":
        if k != 1 or which != "top":
            raise ValueError(f"method='power' gives only the top eigenvalue (k=1); got k={k}, which={which!r}")
        iters = 1000 if num_iters is None else check_positive_int("num_iters", num_iters)
        return _power(op, iters, key, tol)
    if num_iters is not None:
        steps = check_positive_int("num_iters", num_iters)
        if steps > op.dim:
            raise ValueError(f"num_iters must be <= the operator dimension {op.dim}, got {steps}")
        if steps < k:
            raise ValueError(f"num_iters must be >= k={k}, got {steps}")
        schedule = [steps]
    else:
        # Adaptive: double the Krylov depth until every Ritz residual is <= tol |theta| (or depth = dim).
        steps = min(op.dim, max(2 * k + 20, 40))
        schedule = [steps]
        while schedule[-1] < op.dim:
            schedule.append(min(op.dim, 2 * schedule[-1]))
    used = 0
    with config.matmul_precision("highest"):
        for steps in schedule:
            q, t, beta = _lanczos(op, steps, key, f"{which}_eigenvalues")
            used += t.shape[0]
            theta, vecs, res = _ritz(q, t, beta, min(k, t.shape[0]), which)
            converged = bool(np.all(res <= tol * np.maximum(np.abs(theta), np.finfo(t.dtype).tiny)))
            if converged or beta == 0.0:
                converged = True
                break
    if theta.shape[0] < k:
        raise ValueError(
            f"the Krylov space from this start vector has dimension {theta.shape[0]} < k={k} "
            "(the operator has too few distinct eigenvalues); ask for fewer eigenvalues"
        )
    return Eigenpairs(theta, vecs, res, used, converged)


def top_eigenvalues(operator: Any, k: int = 1, *, key: jax.Array | None = None, num_iters: int | None = None,
                    tol: float | None = None, method: str = "lanczos") -> Eigenpairs:
    """The ``k`` largest (algebraic) eigenvalues, descending, with Ritz vectors and residuals.

    Lanczos with full reorthogonalization from a Rademacher start (``key``). With ``num_iters``
    given, exactly that many steps; otherwise the depth doubles from max(2k + 20, 40) until every
    Ritz residual |A y - theta y| <= ``tol`` |theta| (default 1e-7 in float64, 1e-3 in float32) or
    the depth reaches ``dim`` (exact). Each reported eigenvalue is within its residual of an exact one.
    ``method="power"``: power iteration stopped when the Rayleigh quotient changes by < tol
    (PyHessian's rule; converges slowly and stops early when top eigenvalues cluster; k = 1 only).

    A single-vector Krylov space holds each *distinct* eigenvalue once: a repeated eigenvalue
    (e.g. the null space of a low-rank GGN) is reported once, and asking for more eigenvalues than
    the Krylov space holds raises a ValueError.
    """
    return _extremal(operator, k, key, num_iters, tol, method, "top")


def bottom_eigenvalues(operator: Any, k: int = 1, *, key: jax.Array | None = None, num_iters: int | None = None,
                       tol: float | None = None) -> Eigenpairs:
    """The ``k`` smallest (algebraic) eigenvalues, ascending; as :func:`top_eigenvalues`."""
    return _extremal(operator, k, key, num_iters, tol, "lanczos", "bottom")


# ----------------------------------------------------------------------------- traces
class TraceEstimate(NamedTuple):
    """``trace`` estimate, its standard error ``stderr``, the ``num_matvecs`` used and the ``method``."""

    trace: float
    stderr: float
    num_matvecs: int
    method: str


def _map_matvec(fn: Callable, vs: jax.Array, args: tuple, batch_size: int) -> jax.Array:
    return jax.lax.map(lambda v: fn(v, *args), vs, batch_size=batch_size)


def _hutchinson_core(fn, num_samples, batch_size, key, marker, *args):
    z = _rademacher(key, (num_samples, marker.shape[0]), marker.dtype)
    az = _map_matvec(fn, z, args, batch_size)
    return jnp.sum(z * az, axis=1)


def _hutchpp_core(fn, num_sketch, num_rest, batch_size, key, dim_marker, *args):
    dim = dim_marker.shape[0]
    dtype = dim_marker.dtype
    ks, kg = jax.random.split(key)
    s = _rademacher(ks, (num_sketch, dim), dtype)
    y = _map_matvec(fn, s, args, batch_size)  # rows A s_i
    q, _ = jnp.linalg.qr(y.T)  # (dim, num_sketch)
    aq = _map_matvec(fn, q.T, args, batch_size)  # rows A q_j
    exact = jnp.sum(q.T * aq)
    g = _rademacher(kg, (num_rest, dim), dtype)
    g = g - (g @ q) @ q.T  # (I - QQ^T) g
    ag = _map_matvec(fn, g, args, batch_size)
    ag = ag - (ag @ q) @ q.T
    return exact, jnp.sum(g * ag, axis=1)


def _xtrace_core(fn, num_samples, batch_size, key, dim_marker, *args):
    del batch_size  # matfree's XTrace vmaps all probes at once
    sampler = stochtrace.sampler_normal(dim_marker, num=num_samples)
    integrand = stochtrace.leave_one_out_xtrace()
    est = stochtrace.estimator_leave_one_out_mean_and_sem(integrand, sampler)
    return est(fn, key, *args)


_hutch_jit = jax.jit(_hutchinson_core, static_argnums=(0, 1, 2))
_hutchpp_jit = jax.jit(_hutchpp_core, static_argnums=(0, 1, 2, 3))
_xtrace_jit = jax.jit(_xtrace_core, static_argnums=(0, 1, 2))


def hutchinson_trace(operator: Any, num_samples: int, key: jax.Array | None = None, *, method: str = "hutchinson",
                     batch_size: int = 16) -> TraceEstimate:
    """Stochastic trace estimate with a standard error, using ``num_samples`` matrix-vector products.

    * ``"hutchinson"``: tr(A) ~ (1/m) sum_i z_i^T A z_i, z_i Rademacher; stderr = std/sqrt(m).
    * ``"hutch++"`` (Meyer et al. 2021): m/3 products sketch the range Q of A, tr(Q^T A Q) exactly
      (m/3 products), Hutchinson on (I - QQ^T) A (I - QQ^T) with the remaining m/3 probes; stderr is
      that of the Hutchinson part (the sketch part is exact given Q).
    * ``"xtrace"`` (Epperly et al. 2024; matfree's implementation): m/2 Gaussian probes, each used
      twice (m products in all); stderr = std of the leave-one-out estimates / sqrt(m/2), the paper's
      error estimate.

    Products are batched ``batch_size`` at a time with ``jax.lax.map``.
    """
    op = as_operator(operator)
    num_samples = check_positive_int("num_samples", num_samples, minimum=2)
    batch_size = check_positive_int("batch_size", batch_size)
    check_choice("method", method, TRACE_METHODS)
    key = _key(key)
    marker = jnp.zeros((op.dim,), op.dtype)
    with config.matmul_precision("highest"):
        if method == "hutchinson":
            vals = np.asarray(_hutch_jit(op.fn, num_samples, batch_size, key, marker, *op.args))
            _check_finite_samples(vals, method)
            return TraceEstimate(float(vals.mean()), float(vals.std(ddof=1) / math.sqrt(len(vals))),
                                 num_samples, method)
        if method == "hutch++":
            third = max(num_samples // 3, 1)
            if 2 * third > op.dim:
                raise ValueError(f"hutch++ needs num_samples/3 <= dim/2 = {op.dim / 2:g}, got num_samples={num_samples}")
            rest = max(num_samples - 2 * third, 2)
            exact, vals = _hutchpp_jit(op.fn, third, rest, batch_size, key, marker, *op.args)
            vals = np.asarray(vals)
            _check_finite_samples(np.append(vals, float(exact)), method)
            return TraceEstimate(float(exact) + float(vals.mean()), float(vals.std(ddof=1) / math.sqrt(len(vals))),
                                 2 * third + rest, method)
        half = max(num_samples // 2, 2)
        if half > op.dim:
            raise ValueError(f"xtrace needs num_samples/2 <= dim = {op.dim}, got num_samples={num_samples}")
        with jax.numpy_rank_promotion("allow"):  # matfree's XTrace relies on implicit rank promotion
            mean, sem = _xtrace_jit(op.fn, half, batch_size, key, marker, *op.args)
        _check_finite_samples(np.array([float(mean), float(sem)]), method)
        return TraceEstimate(float(mean), float(sem), 2 * half, method)


def _squared_norms_core(fn, num_probes, batch_size, key, marker, *args):
    z = _rademacher(key, (num_probes, marker.shape[0]), marker.dtype)
    az = _map_matvec(fn, z, args, batch_size)
    return jnp.sum(az * az, axis=1)


_squared_norms_jit = jax.jit(_squared_norms_core, static_argnums=(0, 1, 2))


def squared_norms(operator: Any, num_probes: int, key: jax.Array | None = None, *, batch_size: int = 16) -> np.ndarray:
    """|A z_i|^2 for Rademacher probes z_i, shape (num_probes,): each an unbiased estimate of ||A||_F^2
    = tr(A^T A) (Hutchinson applied to A^2)."""
    op = as_operator(operator)
    num_probes = check_positive_int("num_probes", num_probes, minimum=2)
    batch_size = check_positive_int("batch_size", batch_size)
    marker = jnp.zeros((op.dim,), op.dtype)
    with config.matmul_precision("highest"):
        vals = np.asarray(_squared_norms_jit(op.fn, num_probes, batch_size, _key(key), marker, *op.args))
    _check_finite_samples(vals, "squared_norms")
    return vals


def _check_finite_samples(vals: np.ndarray, method: str) -> None:
    bad = ~np.isfinite(vals)
    if bad.any():
        raise ValueError(
            f"non-finite matrix-vector product (NaN or inf) in {method} trace estimation at probe "
            f"{int(np.argmax(bad)) + 1} of {len(vals)}: the operator returned NaN/inf"
        )


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


def _slq_core(fn, num_steps, num_probes, batch_size, key, marker, *args):
    dim, dtype = marker.shape[0], marker.dtype
    z = _rademacher(key, (num_probes, dim), dtype)
    algo = decomp.tridiag_sym(num_steps, reortho="full", materialize=True, custom_vjp=False)

    def one(v):
        t = algo(fn, v, *args).J_small
        theta, s = jnp.linalg.eigh(t)
        return theta, s[0, :] ** 2

    return jax.lax.map(one, z, batch_size=batch_size)


_slq_jit = jax.jit(_slq_core, static_argnums=(0, 1, 2, 3))


def gaussian_broadening(grid: np.ndarray, nodes: np.ndarray, weights: np.ndarray, sigma: float) -> np.ndarray:
    """(1/num_probes) sum_probes sum_j w_j N(x; theta_j, sigma^2) on ``grid``."""
    x = np.asarray(grid)[:, None, None]
    g = np.exp(-0.5 * ((x - nodes[None]) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    return np.sum(g * weights[None], axis=(1, 2)) / nodes.shape[0]


def slq_density(operator: Any, num_steps: int, num_probes: int, key: jax.Array | None = None,
                grid: Any = 512, *, sigma: float | None = None, batch_size: int = 4) -> SpectralDensity:
    """Stochastic Lanczos quadrature density of a symmetric operator on ``grid``.

    Each Rademacher probe z runs ``num_steps`` Lanczos steps (full reorthogonalization) from
    z/|z|; the tridiagonal T = S diag(theta) S^T gives nodes theta_j and weights S_{0j}^2, so that
    sum_j w_j f(theta_j) ~ z^T f(A) z / |z|^2. The density is the probe average of these rules
    broadened by N(0, sigma^2); ``sigma`` defaults to 1% of the node range. ``grid`` is an array of
    points or a number of points spanning the node range +- 5 sigma.
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
        nodes, weights = _slq_jit(op.fn, num_steps, num_probes, batch_size, key, marker, *op.args)
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
