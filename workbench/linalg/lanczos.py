"""Extremal eigenvalues of a symmetric operator by Lanczos with early stopping (and power iteration).

Lanczos (1950) with full reorthogonalization (two classical Gram-Schmidt passes against the whole basis,
Paige 1971 for why it matters), run in one compiled loop that tests for convergence itself: every
``check_every`` steps the tiny tridiagonal T_m = Q_m^T A Q_m is diagonalized on the device
(T = S diag(theta) S^T) and each wanted Ritz value gets an error bound (Parlett, *The Symmetric
Eigenvalue Problem*, 11.5-11.7; Saad, *Numerical Methods for Large Eigenvalue Problems*, Thm 3.8 and
Kato-Temple):

    residual r_i = |A y_i - theta_i y_i| = |beta_m S_{m,i}|,      gap_i = min_{j != i} |theta_i - theta_j| - r_j,
    |theta_i - lambda| <= bound_i = min(r_i, r_i^2 / gap_i)   (+ a rounding floor 10 eps ||T||).

The run stops once every wanted bound is <= ``rtol`` |theta_i| at two consecutive checks, and the host
confirms the last one in float64: a well-separated eigenvalue stops early (the quadratic r^2/gap bound), a
clustered one goes on until its residual alone is small. The gap uses the Ritz values (minus their
residuals) as stand-ins for the rest of the spectrum: it is the bound's one assumption, that no eigenvalue
between theta_i and its Ritz neighbours is still missing from the Krylov space. That assumption can fail
for a while when the start vector is nearly orthogonal to the top eigenvector: on the benchmark Hessian of
``benchmarks/hessian.py`` (top pair 1.0461, 1.0366) the top Ritz value settles on the *second* eigenvalue at
step 18 with a bound of 8.7e-5 relative, and the top one enters the Krylov space at step 19, when the bound
jumps to 2.2e-3. Asking for two consecutive passes guards against such a transient (at the price of one
check interval); no Krylov method can rule out an eigenvalue the start vector barely sees. A start vector that
sees the top eigenvectors better shortens the run: for a Hessian or GGN, :func:`top_eigenvalues` adds the loss
gradient to the random start (``start="auto"``, :func:`resolve_start`); on the same Hessian that is 25 products
to a certified 1e-4 (from 30), with the same transient at step 15 (bound 7.1e-5 against a true error of 9.3e-5,
caught by the second check).

Because the loop does not return to the host between steps, the product's vector-independent primal work
(the forward and backward pass of a Hessian-vector product) is hoisted out of it once per call: on the
benchmark Hessian a product costs 11-14 ms in the loop against 24 ms on its own.

Why hand-written rather than ``matfree.decomp.tridiag_sym`` (used before): matfree runs a fixed number
of steps and cannot resume, so checking convergence meant restarting at a doubled depth (40, 80, ...):
2x-3x the products of a resumable loop (``benchmarks/hessian.py`` shows both).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from workbench import config
from workbench.linalg.operators import (_normalized_pair_jit, _Op, apply, as_operator, check_symmetric, matvec_jit,
                                        symmetry_probes, verify_symmetric)
from workbench.validation import check_choice, check_positive_int, check_real

__all__ = ["Eigenpairs", "EIG_METHODS", "top_eigenvalues", "bottom_eigenvalues", "default_rtol", "resolve_start",
           "ritz_bounds", "ritz_vectors"]

EIG_METHODS = ("lanczos", "power")


class Eigenpairs(NamedTuple):
    """Extremal Ritz pairs: ``eigenvalues`` (k,), ``eigenvectors`` (k, dim) (unit rows), ``residuals`` (k,) Ritz
    residual norms |A y - theta y|, ``num_matvecs`` used (symmetry probes included), ``converged`` (every
    ``error_bounds`` <= rtol |theta|), ``error_bounds`` (k,) bounds on |theta - lambda| (module docstring),
    ``rtol`` the relative accuracy asked for.

    Numbers are numpy arrays on the host; ``eigenvectors`` stay a JAX array on the operator's device when Lanczos
    computed them (k x dim can be large: moving them to the host is the caller's choice, ``np.asarray``), and are a
    numpy array from the dense solver (:func:`workbench.linalg.dense.eigenpairs`), which works on the host."""

    eigenvalues: np.ndarray
    eigenvectors: jax.Array | np.ndarray
    residuals: np.ndarray
    num_matvecs: int
    converged: bool
    error_bounds: np.ndarray | None = None
    rtol: float | None = None


def default_rtol(dtype: Any) -> float:
    """1e-8 in float64, 1e-4 in float32 (relative eigenvalue accuracy)."""
    return 1e-8 if jnp.dtype(dtype) == jnp.float64 else 1e-4


# ----------------------------------------------------------------------------- compiled pieces
# One program holds the operator's product: ``_chunk`` runs steps from ``start`` in a compiled loop until its
# stopping test passes or ``stop`` (both arguments, so every run reuses it), either as Lanczos steps or, with
# ``raw``, as plain
# products A q_i stored aside: the symmetry probes go through the same program, so the product is compiled once
# per operator (a CurvatureProduct compares by value: new parameters, batches or batch weights of the same
# shapes reuse it). Inside the loop XLA hoists the product's v-independent primal work (the forward and
# backward pass of a Hessian-vector product) out of the iterations: about half the cost of a standalone product
# on the benchmark Hessian (11-14 ms against 24 ms), paid once per call. Step 0 from the probes' A q0 and the Ritz vectors are small programs that depend
# only on the basis shape. Everything sliced by a step count is sliced on the host (slicing on the device
# compiles one program per length).
def _orth(q, i, w):
    """Two Gram-Schmidt passes of w = A q_i against every row of the basis q: (next row, alpha_i, beta_i)."""
    c1 = q @ w
    w = w - c1 @ q
    c2 = q @ w
    w = w - c2 @ q
    a = c1[i] + c2[i]
    b = jnp.sqrt(jnp.vdot(w, w))
    ok = b > 0
    return jnp.where(ok, w / jnp.where(ok, b, 1.0), jnp.zeros_like(w)), a, b


#: initial Lanczos capacity (steps before the basis doubles) of an adaptive run, at least 4 k
START_CAP = 64

#: rows of the basis read together by :func:`_orth_used`
GS_BLOCK = 8


def _gs_pass(q, w, i):
    """One classical Gram-Schmidt pass of w against rows 0..i of q (the rows past i are zero): (c, w - Q^T c) with
    c_j = q_j . w, reading only the ceil((i + 1) / GS_BLOCK) blocks of rows that hold the basis so far."""
    rows = q.shape[0]
    blk = min(GS_BLOCK, rows)

    def body(b, carry):
        acc, c = carry
        start = jnp.minimum(b * blk, rows - blk)  # the last block may overlap the one before: masked below
        qb = jax.lax.dynamic_slice_in_dim(q, start, blk)
        idx = start + jnp.arange(blk)
        cb = jnp.where((idx >= b * blk) & (idx <= i), qb @ w, 0.0)
        return acc + cb @ qb, c.at[idx].add(cb)

    acc, c = jax.lax.fori_loop(0, (i + blk) // blk, body, (jnp.zeros_like(w), jnp.zeros((rows,), w.dtype)))
    return c, w - acc


def _orth_used(q, i, w):
    """:func:`_orth` reading only the rows of the basis built so far: the same numbers (rows past i are zero), a
    Gram-Schmidt cost that grows with the step instead of the buffer. The basis is large (65 rows x 76,810
    parameters = 20 MB on the benchmark Hessian) and each pass reads it, so this is memory traffic the product
    does not hide."""
    c1, w = _gs_pass(q, w, i)
    c2, w = _gs_pass(q, w, i)
    a = c1[i] + c2[i]
    b = jnp.sqrt(jnp.vdot(w, w))
    ok = b > 0
    return jnp.where(ok, w / jnp.where(ok, b, 1.0), jnp.zeros_like(w)), a, b


def _orth_step(q, alpha, beta, i, w):
    """Step i of Lanczos given w = A q_i."""
    row, a, b = _orth(q, i, w)
    return q.at[i + 1].set(row), alpha.at[i].set(a), beta.at[i].set(b)


def _step(q, alpha, beta, i, v, w):
    """Row i of the basis set to v (a no-op after step 0, which starts from an empty basis), then step i."""
    q, alpha, beta = _orth_step(q.at[i].set(v), alpha, beta, i, w)
    return q, alpha, beta, q[i + 1]


def _device_done(alpha, beta, m, k, sign, rtol, eps):
    """The stopping test of :func:`_lanczos` on the device, after ``m`` steps (m traced): every one of the ``k``
    wanted Ritz values of sign * T_m has bound min(r, r^2/gap) + 10 eps ||T|| <= max(rtol |theta|, 2 floor)
    (:func:`ritz_bounds`). T_m is the leading block of a padded matrix whose other diagonal entries sit far
    below the spectrum (so they sort last and never set a gap): one program for every m. The padded size is the
    smallest of 16, 32, ..., cap that holds m (a branch per size): an eigendecomposition of the whole (cap, cap)
    matrix at every step cost ~2.5 ms at cap 64 inside the loop, 20% of a top-1 run on the benchmark Hessian."""
    cap = alpha.shape[0]
    sizes = [size for size in (16, 32, 64, 128, 256) if size < cap] + [cap]
    if len(sizes) == 1:
        return _device_done_sized(alpha, beta, m, k, sign, rtol, eps)
    branches = [lambda a, b, size=size: _device_done_sized(a[:size], b[:size], m, k, sign, rtol, eps)
                for size in sizes]
    index = jnp.sum(jnp.asarray(sizes[:-1]) < m)  # the first size >= m
    return jax.lax.switch(index, branches, alpha, beta)


def _device_done_sized(alpha, beta, m, k, sign, rtol, eps):
    """:func:`_device_done` on the leading (len(alpha), len(alpha)) block (m <= len(alpha))."""
    cap = alpha.shape[0]
    idx = jnp.arange(cap)
    a = jnp.where(idx < m, sign * alpha, 0.0)
    off = jnp.where(idx[:-1] < m - 1, sign * beta[:-1], 0.0)
    scale = jnp.max(jnp.abs(a)) + 2.0 * jnp.max(jnp.abs(off), initial=0.0) + 1.0
    t = jnp.diag(jnp.where(idx < m, a, -4.0 * scale)) + jnp.diag(off, 1) + jnp.diag(off, -1)
    theta, s = jnp.linalg.eigh(t)
    theta, s = theta[::-1], s[:, ::-1]  # descending: the m Ritz values of sign * T_m first, the padding after
    real = idx < m
    res = jnp.where(real, jnp.abs(beta[m - 1] * s[m - 1, :]), 0.0)
    dist = jnp.abs(theta[:, None] - theta[None, :]) - res[None, :]
    dist = jnp.where(real[None, :] & (idx[:, None] != idx[None, :]), dist, jnp.inf)
    gap = jnp.min(dist, axis=1)
    quad = jnp.where(jnp.isfinite(gap) & (gap > res), res ** 2 / jnp.where(gap > 0, gap, 1.0), jnp.inf)
    floor = 10.0 * eps * jnp.max(jnp.where(real, jnp.abs(theta), 0.0))
    bound = jnp.minimum(res, quad) + floor
    ok = bound <= jnp.maximum(rtol * jnp.abs(theta), 2.0 * floor)
    return (m >= k) & jnp.all(jnp.where(idx < k, ok, True))


def _chunk(fn, name, q, alpha, beta, raw_out, start, stop, raw, k, sign, rtol, first, every, *args):
    """Steps start.. around one product w = A q_i each, until ``stop``: Lanczos steps, or (``raw``) w stored in
    raw_out[i] with q, alpha and beta untouched. Both branches are computed and selected (no conditional around the
    product, which would keep XLA from hoisting its primal part out of the loop).

    Lanczos steps also stop early, after step count m when m >= ``first`` and (m - first) % ``every`` == 0, once
    :func:`_device_done` has said at two consecutive checks that the ``k`` wanted eigenvalues (of sign * A) are
    within ``rtol`` (rtol < 0: never), or at once at a non-finite or breakdown (tiny) beta; the host then looks at
    T_m itself. Returns the state, the step count reached and whether the test was passed twice."""
    eps = jnp.finfo(q.dtype).eps
    small = 10.0 * eps * math.sqrt(q.shape[1])  # _breakdown_tol

    def body(state):
        i, q, alpha, beta, raw_out, scale, passed, _, _ = state
        w = apply(fn, q[i], args, name)
        row, a, b = _orth_used(q, i, w)
        q = q.at[i + 1].set(jnp.where(raw, q[i + 1], row))
        alpha = alpha.at[i].set(jnp.where(raw, alpha[i], a))
        beta = beta.at[i].set(jnp.where(raw, beta[i], b))
        j = jnp.minimum(i, raw_out.shape[0] - 1)
        raw_out = raw_out.at[j].set(jnp.where(raw, w, raw_out[j]))
        m = i + 1
        scale = jnp.maximum(scale, jnp.maximum(jnp.abs(a), jnp.abs(b)))
        halt = ~(jnp.isfinite(a) & jnp.isfinite(b)) | (jnp.abs(b) <= small * scale)
        check = (~raw) & (rtol >= 0) & (m >= first) & ((m - first) % every == 0)
        ok = jax.lax.cond(check, lambda: _device_done(alpha, beta, m, k, sign, rtol, eps), lambda: False)
        confirmed = check & ok & passed
        passed = jnp.where(check, ok, passed)
        return m, q, alpha, beta, raw_out, scale, passed, confirmed, (~raw) & halt

    def cond(state):
        return (state[0] < stop) & ~state[-2] & ~state[-1]

    false = jnp.asarray(False)
    init = (start, q, alpha, beta, raw_out, jnp.zeros((), q.dtype), false, false, false)
    m, q, alpha, beta, raw_out, _, _, confirmed, _ = jax.lax.while_loop(cond, body, init)
    return q, alpha, beta, raw_out, m, confirmed


def _probe_basis(key, cap, num, dim, dtype):
    """Probes z (num, dim) (``operators.symmetry_probes``, those of ``operators.check_symmetric``), and a basis
    buffer (cap + 1, dim) holding them in its first rows."""
    z = symmetry_probes(key, num, dim, dtype)
    return z, jnp.zeros((cap + 1, dim), dtype).at[:num].set(z)


def _start_vector(key, dim, dtype, probe=False, direction=None):
    """The unit start vector: a Rademacher vector (with ``probe``, the first symmetry probe: the start vector of a
    run that checks symmetry, so skipping the check keeps the run), plus ``direction`` when given, each of unit
    length. The random half keeps every eigenvector's share of a random start (to within 1/sqrt(2)), so a
    direction orthogonal to the wanted eigenvectors costs at most a step; a direction near them saves many."""
    if probe:
        z = symmetry_probes(key, 3, dim, dtype)[0]
    else:
        z = jax.random.rademacher(key, (dim,), dtype=jnp.int8).astype(dtype)
    z = z / jnp.linalg.norm(z)
    if direction is not None:
        d = direction.astype(dtype)
        n = jnp.linalg.norm(d)
        s = z + jnp.where(n > 0, d / jnp.where(n > 0, n, 1.0), 0.0)  # a zero direction (a zero gradient) adds nothing
        ns = jnp.linalg.norm(s)
        z = jnp.where(ns > 0.5, s / jnp.where(ns > 0, ns, 1.0), z)  # d near -z would cancel the random half: keep z
    return z


def _start_basis(key, cap, dim, dtype, probe=False, direction=None):
    """A basis buffer (cap + 1, dim) with :func:`_start_vector` in row 0."""
    return jnp.zeros((cap + 1, dim), dtype).at[0].set(_start_vector(key, dim, dtype, probe, direction))


def _grow(q, alpha, beta, new_cap):
    extra = new_cap - alpha.shape[0]
    return (jnp.concatenate([q, jnp.zeros((extra, q.shape[1]), q.dtype)]),
            jnp.concatenate([alpha, jnp.zeros((extra,), alpha.dtype)]),
            jnp.concatenate([beta, jnp.zeros((extra,), beta.dtype)]))


def _combine(s, q):
    return s @ q


_chunk_jit = jax.jit(_chunk, static_argnums=(0, 1), donate_argnums=(2, 3, 4, 5))
_NO_CHECK = (1, 1.0, -1.0, 1, 1)  # k, sign, rtol, first, every of a call without the device's stopping test
_step_jit = jax.jit(_step, donate_argnums=(0, 1, 2))
_probe_basis_jit = jax.jit(_probe_basis, static_argnums=(1, 2, 3, 4))
_start_basis_jit = jax.jit(_start_basis, static_argnums=(1, 2, 3, 4))
_start_vector_jit = jax.jit(_start_vector, static_argnums=(1, 2, 3))
_grow_jit = jax.jit(_grow, static_argnums=(3,))
_combine_jit = jax.jit(_combine)


def _tridiagonal(alpha: np.ndarray, beta: np.ndarray, m: int) -> np.ndarray:
    t = np.diag(alpha[:m].astype(np.float64))
    off = beta[: m - 1].astype(np.float64)
    return t + np.diag(off, 1) + np.diag(off, -1)


def ritz_bounds(theta: np.ndarray, residuals: np.ndarray, floor: float) -> np.ndarray:
    """min(r_i, r_i^2 / gap_i) + floor, gap_i = min_{j != i} |theta_i - theta_j| - r_j (module docstring)."""
    m = theta.shape[0]
    if m == 1:
        return residuals + floor
    dist = np.abs(theta[:, None] - theta[None, :]) - residuals[None, :]
    np.fill_diagonal(dist, np.inf)
    gap = np.min(dist, axis=1)
    quad = np.where(gap > residuals, residuals ** 2 / np.where(gap > 0, gap, 1.0), np.inf)
    return np.minimum(residuals, quad) + floor


class _Ritz(NamedTuple):
    theta: np.ndarray  # wanted Ritz values, ordered
    s: np.ndarray  # (m, k) their eigenvectors of T
    residuals: np.ndarray
    bounds: np.ndarray
    floor: float  # rounding floor 10 eps ||T|| included in the bounds


def _ritz(t: np.ndarray, beta_m: float, k: int, which: str, eps: float) -> _Ritz:
    theta, s = np.linalg.eigh(t)
    order = np.argsort(theta)[::-1] if which == "top" else np.argsort(theta)
    theta, s = theta[order], s[:, order]
    residuals = np.abs(beta_m * s[-1, :])
    norm_t = float(np.max(np.abs(theta))) if theta.size else 0.0
    floor = 10.0 * eps * norm_t
    bounds = ritz_bounds(theta, residuals, floor)
    return _Ritz(theta[:k], s[:, :k], residuals[:k], bounds[:k], floor)


def _breakdown_tol(dtype: Any, dim: int) -> float:
    """beta_j below this times max|T| is a Lanczos breakdown: rounding level, 10 eps sqrt(dim)."""
    return 10.0 * float(np.finfo(dtype).eps) * math.sqrt(dim)


def _lanczos(op: _Op, k: int, which: str, q: jax.Array, alpha: jax.Array, beta: jax.Array, raw: jax.Array, m: int,
             max_steps: int, rtol: float, check_every: int, fixed: bool, what: str):
    """Run Lanczos on the basis buffer q (cap + 1, dim) whose first ``m`` steps are done (m = 0: q_0 in row 0)
    until converged or ``max_steps``.

    Returns (basis rows Q (capacity + 1, dim; rows past the steps taken are unused), _Ritz, steps, converged)."""
    dim, dtype = op.dim, q.dtype
    eps = float(np.finfo(dtype).eps)
    cap = alpha.shape[0]
    sign = 1.0 if which == "top" else -1.0
    first = max_steps if fixed else min(max_steps, max(k + 1, 2 * k, 4))
    while True:
        if m < max_steps:
            if m >= cap:  # grow the basis (doubling: one recompilation per size)
                cap = min(max_steps, 2 * cap)
                q, alpha, beta = _grow_jit(q, alpha, beta, cap)
            stop = min(max_steps, cap)
            # one call runs until the device's stopping test passes (or stop): the product's primal work is
            # hoisted out of the loop once per call, and no step waits for the host
            q, alpha, beta, raw, m_dev, confirmed = _chunk_jit(op.fn, op.name, q, alpha, beta, raw, m, stop, False, k,
                                                               sign, -1.0 if fixed else rtol, first, check_every,
                                                               *op.args)
            m, confirmed = int(m_dev), bool(confirmed)
        else:
            confirmed = False
        # whole arrays to the host, sliced there (slicing on the device compiles one program per length)
        a_np, b_np = np.asarray(alpha)[:m], np.asarray(beta)[:m]
        bad = ~(np.isfinite(a_np) & np.isfinite(b_np))
        if bad.any():
            raise ValueError(
                f"non-finite matrix-vector product (NaN or inf) in {what} at Lanczos step {int(np.argmax(bad)) + 1} "
                f"of {max_steps}: the operator returned NaN/inf (check the loss, the parameters and the data)")
        scale = max(float(np.max(np.abs(a_np))), float(np.max(np.abs(b_np))), float(np.finfo(dtype).tiny))
        small = np.abs(b_np) <= _breakdown_tol(dtype, dim) * scale
        if small.any():  # invariant Krylov space: the Ritz values are exact eigenvalues (up to rounding)
            j = int(np.argmax(small)) + 1
            return q, _ritz(_tridiagonal(a_np, b_np, j), 0.0, k, which, eps), m, True
        # the host's float64 test decides (the device's float32 one may pass a hair early: then go on)
        ritz = _ritz(_tridiagonal(a_np, b_np, m), float(b_np[m - 1]), k, which, eps)
        done = ritz.theta.shape[0] >= k and bool(np.all(ritz.bounds <= np.maximum(rtol * np.abs(ritz.theta),
                                                                                   2 * ritz.floor)))
        if (done and (confirmed or m >= max_steps)) or m >= max_steps:
            return q, ritz, m, done
        first = m + check_every


def ritz_vectors(s: np.ndarray, q: jax.Array) -> jax.Array:
    """Rows y_i = sum_j S_{j,i} q_j for the columns of ``s`` (m, k), m <= rows of the basis ``q``: one program per
    (k, basis shape), whatever m (``s`` is padded with zero rows to the basis' height)."""
    pad = np.zeros((s.shape[1], q.shape[0]), dtype=np.dtype(q.dtype))
    pad[:, : s.shape[0]] = s.T
    return _combine_jit(jnp.asarray(pad), q)


# ----------------------------------------------------------------------------- power iteration
def _power(op: _Op, q0: jax.Array, w0: jax.Array, num_iters: int, tol: float, extra: int):
    """Power iteration (largest |eigenvalue|), stopping when the Rayleigh quotient's relative change < tol."""
    def mv(v, *args):
        return matvec_jit(op.fn, op.name, v, *args)

    v, w = q0, w0
    lam_old = None
    step = 1
    for step in range(1, num_iters + 1):
        if step > 1:
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
    return Eigenpairs(np.array([lam]), v[None, :], np.array([res]), step + 1 + extra, bool(res <= tol * abs(lam)),
                      np.array([res]), tol)


# ----------------------------------------------------------------------------- public
def resolve_check_symmetry(operator: Any, check_symmetry: bool | None) -> tuple[bool, bool]:
    """(check, trusted): ``check_symmetry=None`` probes symmetry unless ``operator`` says it is symmetric by
    construction (attribute ``symmetric_by_construction``, e.g. :class:`workbench.hessian.CurvatureOperator`:
    forward-over-reverse products of a scalar loss, or J^T H J); True / False force the probes on / off."""
    trusted = bool(getattr(operator, "symmetric_by_construction", False))
    if check_symmetry is None:
        return not trusted, trusted
    if not isinstance(check_symmetry, bool):
        raise TypeError(f"check_symmetry must be True, False or None (automatic), got {check_symmetry!r}")
    return check_symmetry, trusted


def resolve_start(operator: Any, start: Any, dim: int, which: str) -> jax.Array | None:
    """The direction mixed into the random start vector (:func:`_start_vector`), or None for a random start.

    ``start="auto"``: for the top eigenvalues, the operator's own ``start_direction()`` when it has one (the
    loss gradient for :func:`workbench.hessian.hessian_operator`: gradients lie mostly in the span of the top
    Hessian eigenvectors, Gur-Ari, Roberts & Dyer 2018), else none; ``None``: none; an array of shape (dim,):
    that direction (e.g. the previous top eigenvector, to warm-start a run along training)."""
    if isinstance(start, str):
        check_choice("start", start, ("auto",))
        direction = getattr(operator, "start_direction", None) if which == "top" else None
        return None if direction is None else direction()
    if start is None:
        return None
    d = jnp.asarray(start)
    if d.shape != (dim,):
        raise ValueError(f"start must be a vector of shape ({dim},) (the operator's dim), got shape {d.shape}")
    if not jnp.issubdtype(d.dtype, jnp.floating):
        raise TypeError(f"start must be a float vector, got dtype {d.dtype}")
    if not bool(jnp.all(jnp.isfinite(d))) or not bool(jnp.any(d != 0)):
        raise ValueError("start must be finite and nonzero (NaN, inf or an all-zero vector gives no direction)")
    return d


def _extremal(operator: Any, k: int, key: jax.Array | None, num_iters: int | None, tol: float | None,
              rtol: float | None, method: str, which: str, check_every: int, max_iters: int | None,
              check_symmetry: bool | None, start: Any = "auto") -> Eigenpairs:
    check_symmetry, trusted = resolve_check_symmetry(operator, check_symmetry)
    op = as_operator(operator)
    k = check_positive_int("k", k)
    what = f"{which}_eigenvalues"
    if k > op.dim:
        raise ValueError(f"k must be <= the operator dimension {op.dim}, got k={k}")
    check_choice("method", method, EIG_METHODS)
    check_every = check_positive_int("check_every", check_every)
    if rtol is not None and tol is not None:
        raise ValueError(f"give rtol or tol (its older name), not both; got rtol={rtol}, tol={tol}")
    rtol = tol if rtol is None else rtol
    rtol = default_rtol(op.dtype) if rtol is None else check_real("rtol", rtol, positive=True)
    key = jax.random.PRNGKey(0) if key is None else key
    if method == "power" and (k != 1 or which != "top"):
        raise ValueError(f"method='power' gives only the top eigenvalue (k=1); got k={k}, which={which!r}")
    fixed = num_iters is not None
    if fixed:
        steps = check_positive_int("num_iters", num_iters)
        if method == "lanczos" and steps > op.dim:
            raise ValueError(f"num_iters must be <= the operator dimension {op.dim}, got {steps}")
        if method == "lanczos" and steps < k:
            raise ValueError(f"num_iters must be >= k={k}, got {steps}")
    else:
        limit = op.dim if method == "lanczos" else 1000
        steps = limit if max_iters is None else min(check_positive_int("max_iters", max_iters, minimum=k), limit)
    where = f"power iteration at step 1" if method == "power" else f"{what} at Lanczos step 1 of {steps}"
    direction = resolve_start(operator, start, op.dim, which)  # after the cheap checks: it may cost a gradient
    with config.matmul_precision("highest"):
        if method == "power":
            extra = 0
            if check_symmetry:
                q0, w0 = check_symmetric(op, what, where, key=key)
                extra = 2
            if direction is not None or not check_symmetry:
                q0 = _start_vector_jit(key, op.dim, jnp.dtype(op.dtype), False, direction)
                w0 = matvec_jit(op.fn, op.name, q0, *op.args)
                extra += 1 if check_symmetry else 0
            return _power(op, q0, w0, steps, rtol, extra)
        dtype = jnp.dtype(op.dtype)
        cap = steps if fixed else min(steps, max(START_CAP, 4 * k))
        alpha, beta = jnp.zeros((cap,), dtype), jnp.zeros((cap,), dtype)
        if check_symmetry:  # the probes' products through the loop program itself (raw mode): one compiled product
            z, q = _probe_basis_jit(key, cap, 3, op.dim, dtype)
            raw = jnp.zeros((3, op.dim), dtype)
            q, alpha, beta, raw, _, _ = _chunk_jit(op.fn, op.name, q, alpha, beta, raw, 0, 3, True, *_NO_CHECK,
                                                     *op.args)
            verify_symmetric(op, np.asarray(z, np.float64), np.asarray(raw, np.float64), what, where)
            if direction is None:
                q0, w0 = _normalized_pair_jit(z[0], raw[0])
                q, alpha, beta, _ = _step_jit(jnp.zeros_like(q), alpha, beta, 0, q0, w0)  # step 0 from A q0
                m, extra = 1, 2
            else:  # the start mixes in a direction: the probes' products are spent on the check alone
                q = _start_basis_jit(key, cap, op.dim, dtype, True, direction)
                raw, m, extra = jnp.zeros((1, op.dim), dtype), 0, 3
        else:
            # a trusted operator starts where a checked run starts: the same Lanczos run, 2 (3) products fewer
            q = _start_basis_jit(key, cap, op.dim, dtype, trusted, direction)
            raw, m, extra = jnp.zeros((1, op.dim), dtype), 0, 0
        q, ritz, used, converged = _lanczos(op, k, which, q, alpha, beta, raw, m, steps, rtol, check_every, fixed,
                                            what)
        if ritz.theta.shape[0] < k:
            raise ValueError(
                f"the Krylov space from this start vector has dimension {ritz.theta.shape[0]} < k={k} "
                "(the operator has too few distinct eigenvalues); ask for fewer eigenvalues")
        vectors = ritz_vectors(ritz.s, q)
    return Eigenpairs(ritz.theta, vectors, ritz.residuals, used + extra, converged, ritz.bounds, rtol)


def top_eigenvalues(operator: Any, k: int = 1, *, key: jax.Array | None = None, num_iters: int | None = None,
                    tol: float | None = None, method: str = "lanczos", rtol: float | None = None,
                    check_every: int = 1, max_iters: int | None = None,
                    check_symmetry: bool | None = None, start: Any = "auto") -> Eigenpairs:
    """The ``k`` largest (algebraic) eigenvalues, descending, with Ritz vectors, residuals and error bounds.

    Lanczos with full reorthogonalization from a Rademacher start (``key``), to which ``start`` adds a
    direction of equal length (:func:`resolve_start`): by default (``"auto"``) the operator's own
    ``start_direction()``, for the Hessian and GGN operators the loss gradient, which lies mostly in the span of
    the top eigenvectors (Gur-Ari, Roberts & Dyer 2018; on the benchmark Hessian of ``benchmarks/hessian.py``
    it has 0.22 of its length on the top eigenvector, a random vector 0.004): over six keys the top eigenvalue
    took 16-25 products instead of 18-30; ``None`` starts from the random vector alone; an array of shape (dim,) is
    used as the direction (a warm start, e.g. the previous top eigenvector along training). The random half
    keeps every eigenvector in reach. The gradient costs about a third of a product and is not counted in
    ``num_matvecs``. Stopping as soon as every
    wanted Ritz value theta_i has error bound min(r_i, r_i^2/gap_i) <= ``rtol`` |theta_i| (module
    docstring; default rtol 1e-8 in float64, 1e-4 in float32; ``tol`` is its older name) at two consecutive
    checks, checked on the device every ``check_every`` steps (a check costs an eigendecomposition of the
    small tridiagonal, far less than a product), at most ``max_iters`` steps (default: dim, where the answer is exact). With
    ``num_iters``: exactly that many steps. Before the first step, symmetry is checked on random probe
    pairs (2 extra products, counted in ``num_matvecs``): a non-symmetric operator raises a ValueError, as
    does a matvec that returns the wrong shape. ``check_symmetry=None`` (default) skips the probes for an
    operator symmetric by construction (``symmetric_by_construction``: the Hessian and GGN operators of
    :func:`workbench.hessian.hessian_operator`), which then starts from the same vector; True / False force
    the check on / off.
    ``method="power"``: power iteration stopped when the Rayleigh quotient changes by < rtol
    (PyHessian's rule; slow, and stops early when top eigenvalues cluster; k = 1 only).

    A single-vector Krylov space holds each *distinct* eigenvalue once: a repeated eigenvalue
    (e.g. the null space of a low-rank GGN) is reported once, and asking for more eigenvalues than
    the Krylov space holds raises a ValueError.
    """
    return _extremal(operator, k, key, num_iters, tol, rtol, method, "top", check_every, max_iters, check_symmetry,
                     start)


def bottom_eigenvalues(operator: Any, k: int = 1, *, key: jax.Array | None = None, num_iters: int | None = None,
                       tol: float | None = None, rtol: float | None = None, check_every: int = 1,
                       max_iters: int | None = None, check_symmetry: bool | None = None,
                       start: Any = "auto") -> Eigenpairs:
    """The ``k`` smallest (algebraic) eigenvalues, ascending; as :func:`top_eigenvalues` (early stopping included),
    except that ``start="auto"`` is a random start (the gradient says nothing about the bottom of the spectrum); an
    array ``start`` is mixed in as there."""
    return _extremal(operator, k, key, num_iters, tol, rtol, "lanczos", "bottom", check_every, max_iters,
                     check_symmetry, start)
