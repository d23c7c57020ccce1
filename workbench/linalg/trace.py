"""Stochastic trace estimation of a matrix-free operator, with a standard error and an optional target.

Products run ``batch_size`` probes at a time through one compiled program, in which a Hessian-vector
product's primal forward and backward pass is computed once for the whole batch: on accelerators a
``vmap``-ed product (each product works on a matrix of probes), on CPUs a loop over the probes (faster
there: see ``operators._probe_jit``). Estimators:

* Hutchinson (1989): tr(A) ~ (1/m) sum_i z_i^T A z_i, Rademacher z_i; stderr = sample std / sqrt(m).
* Hutch++ (Meyer, Musco, Musco & Woodruff 2021): a sketch Y = A S of s Rademacher probes, Q = orth(Y),
  tr(Q^T A Q) exactly (s products), plus Hutchinson on (I - QQ^T) A (I - QQ^T); stderr is that of the
  Hutchinson part (the sketch part is exact given Q).
* XTrace (Epperly, Tropp & Webber 2024; matfree's implementation), fixed budget only.
* ``"auto"``: Hutchinson's first two probe batches double as a pilot for Hutch++ (see
  :func:`hutchinson_trace` for the rule).

With ``target_stderr`` (absolute) or ``target_rel_stderr`` (relative to the running estimate) the
probes run batch by batch until the standard error is reached (at least 2 batches, so that the
sample variance means something) or the budget ``num_samples`` is spent.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from matfree import stochtrace

from workbench import config
from workbench.linalg.operators import _Op, _probe_jit, as_operator, sequential_products
from workbench.validation import check_choice, check_positive_int, check_real
from workbench._compat import keyword_only_since

__all__ = ["TRACE_METHODS", "TraceEstimate", "hutchinson_trace", "squared_norms"]

TRACE_METHODS = ("hutchinson", "hutch++", "xtrace", "auto")


class TraceEstimate(NamedTuple):
    """``trace`` estimate, its standard error ``stderr``, the ``num_matvecs`` used and the ``method`` that ran
    (for ``"auto"``: the one chosen); ``converged``: the target standard error was reached (None without a
    target); ``tail_fraction``: the pilot's estimate of ||(I - P) A||_F^2 / ||A||_F^2 (``"auto"`` only)."""

    trace: float
    stderr: float
    num_matvecs: int
    method: str
    converged: bool | None = None
    tail_fraction: float | None = None


def _rademacher(key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    return jax.random.rademacher(key, shape, dtype=jnp.int8).astype(dtype)


def _products(op: _Op, vs: jax.Array) -> jax.Array:
    """A v_i for the rows of ``vs`` in one jitted program (compiled once per batch shape): vmapped, or on a CPU
    one row after another (``operators.sequential_products``)."""
    return _probe_jit(op.fn, op.name, sequential_products(op.args), vs, *op.args)


def _check_finite_samples(vals: np.ndarray, method: str) -> None:
    bad = ~np.isfinite(vals)
    if bad.any():
        raise ValueError(
            f"non-finite matrix-vector product (NaN or inf) in {method} trace estimation at probe "
            f"{int(np.argmax(bad)) + 1} of {len(vals)}: the operator returned NaN/inf"
        )


def _stderr(vals: np.ndarray) -> float:
    return float(np.std(vals, ddof=1) / math.sqrt(len(vals))) if len(vals) > 1 else math.inf


class _Target(NamedTuple):
    absolute: float | None
    relative: float | None

    def reached(self, mean: float, se: float) -> bool:
        ok = self.absolute is None or se <= self.absolute
        return ok and (self.relative is None or se <= self.relative * abs(mean))

    @property
    def active(self) -> bool:
        return self.absolute is not None or self.relative is not None


def _run_probes(op: _Op, key: jax.Array, budget: int, batch: int, target: _Target, method: str,
                offset: float = 0.0, basis: jax.Array | None = None, start: list | None = None,
                first_index: int = 0) -> tuple[np.ndarray, int, bool | None]:
    """Hutchinson samples z^T A z (z deflated by ``basis`` if given), batch by batch, until ``budget`` samples or
    the target standard error of offset + mean is reached. ``start``: samples already taken (kept)."""
    vals = list(start or [])
    i = first_index
    converged = None
    while len(vals) < budget:
        b = min(batch, budget - len(vals))
        z = _rademacher(jax.random.fold_in(key, i), (b, op.dim), op.dtype)
        if basis is not None:
            z = z - (z @ basis) @ basis.T
        az = _products(op, z)
        new = np.asarray(jnp.sum(z * az, axis=1))
        _check_finite_samples(np.concatenate([np.asarray(vals), new]), method)
        vals.extend(new.tolist())
        i += 1
        if target.active and len(vals) >= 2 * batch:
            arr = np.asarray(vals)
            converged = target.reached(offset + float(arr.mean()), _stderr(arr))
            if converged:
                break
    if target.active and converged is None:
        arr = np.asarray(vals)
        converged = len(arr) > 1 and target.reached(offset + float(arr.mean()), _stderr(arr))
    return np.asarray(vals), i, converged


def _orth(y: jax.Array) -> jax.Array:
    """Orthonormal basis (dim, s) of the rows of y (s, dim)."""
    q, _ = jnp.linalg.qr(y.T)
    return q


def _sketch_part(op: _Op, q: jax.Array, batch: int) -> tuple[float, int]:
    """tr(Q^T A Q) with Q (dim, s): s products, ``batch`` at a time (the probes' program, not one more shape)."""
    qt = q.T
    aq = jnp.concatenate([_products(op, qt[i:i + batch]) for i in range(0, qt.shape[0], batch)])
    return float(jnp.sum(qt * aq)), q.shape[1]


def _hutchpp(op: _Op, key: jax.Array, budget: int, batch: int, target: _Target, y: jax.Array,
             used: int) -> TraceEstimate:
    """Hutch++ from a sketch y = A S (rows) whose ``used`` products are already spent."""
    q = _orth(y)
    exact, cost = _sketch_part(op, q, batch)
    _check_finite_samples(np.array([exact]), "hutch++")
    used += cost
    vals, _, conv = _run_probes(op, jax.random.fold_in(key, 10 ** 6), max(budget - used, 2), batch, target,
                                "hutch++", offset=exact, basis=q)
    return TraceEstimate(exact + float(vals.mean()), _stderr(vals), used + len(vals), "hutch++", conv)


def _xtrace_core(fn, num_samples, key, dim_marker, *args):
    sampler = stochtrace.sampler_normal(dim_marker, num=num_samples)
    integrand = stochtrace.leave_one_out_xtrace()
    est = stochtrace.estimator_leave_one_out_mean_and_sem(integrand, sampler)
    return est(fn, key, *args)


_xtrace_jit = jax.jit(_xtrace_core, static_argnums=(0, 1))


@keyword_only_since("key")
def hutchinson_trace(operator: Any, num_samples: int, *, key: jax.Array | None = None, method: str = "auto",
                     batch_size: int = 16, target_stderr: float | None = None,
                     target_rel_stderr: float | None = None) -> TraceEstimate:
    """Stochastic estimate of tr(A) with a standard error, using at most ``num_samples`` products.

    * ``"hutchinson"``: (1/m) sum_i z_i^T A z_i, z_i Rademacher; stderr = std/sqrt(m).
    * ``"hutch++"``: without a target, m/3 products sketch the range Q of A, m/3 give tr(Q^T A Q)
      exactly, Hutchinson on (I - QQ^T) A (I - QQ^T) with the rest (Meyer et al. 2021); with a
      target, the sketch has 2 ``batch_size`` probes and the deflated probes run until the target.
    * ``"xtrace"`` (Epperly et al. 2024; matfree): m/2 Gaussian probes, each used twice; stderr =
      std of the leave-one-out estimates / sqrt(m/2). Fixed budget only (no target).
    * ``"auto"``: the first two Hutchinson batches S_1, S_2 (b = ``batch_size`` probes each) give both
      the Hutchinson samples and a pilot for Hutch++: with Q_1 = orth(A S_1), the tail fraction
      rho = sum |(I - Q_1 Q_1^T) A s|^2 / sum |A s|^2 over s in S_2 estimates ||(I - P) A||_F^2 / ||A||_F^2.
      Hutchinson's per-probe variance v_h = 2 (||A||_F^2 - sum_i A_ii^2) is measured on the 2b samples;
      Hutch++ with the sketch [S_1, S_2] costs 2b more products (tr(Q^T A Q)) and then has per-probe
      variance v_pp ~ rho v_h (||(I-P) A (I-P)||_F^2 <= rho ||A||_F^2; pessimistic, as the real sketch is
      twice the pilot's). The method with the smaller predicted error is run: at a fixed budget m,
      v_pp / (m - 4b) < v_h / m; with a target tau, 4b + v_pp / tau^2 < v_h / tau^2. So Hutch++ is chosen
      when the top 2b eigen-directions carry most of the Frobenius mass (fast spectral decay, e.g. a
      Hessian's outliers), Hutchinson when the spectrum is flat (deflation cannot pay its 2b products).

    ``target_stderr`` / ``target_rel_stderr``: stop as soon as the standard error is at most this
    (absolute / relative to |trace|); ``num_samples`` is then the budget, and ``converged`` says whether
    the target was met. Probes run ``batch_size`` at a time through one compiled product program.
    """
    op = as_operator(operator)
    num_samples = check_positive_int("num_samples", num_samples, minimum=2)
    batch_size = check_positive_int("batch_size", batch_size)
    check_choice("method", method, TRACE_METHODS)
    target = _Target(None if target_stderr is None else check_real("target_stderr", target_stderr, positive=True),
                     None if target_rel_stderr is None else check_real("target_rel_stderr", target_rel_stderr,
                                                                          positive=True))
    key = jax.random.PRNGKey(0) if key is None else key
    with config.matmul_precision("highest"):
        if method == "hutchinson":
            vals, _, conv = _run_probes(op, key, num_samples, batch_size, target, method)
            return TraceEstimate(float(vals.mean()), _stderr(vals), len(vals), method, conv)
        if method == "hutch++":
            if target.active:
                s = min(2 * batch_size, max(num_samples // 3, 1))
            else:
                s = max(num_samples // 3, 1)
            if 2 * s > op.dim:
                raise ValueError(f"hutch++ needs num_samples/3 <= dim/2 = {op.dim / 2:g}, got num_samples={num_samples}")
            sk = _rademacher(jax.random.fold_in(key, 2 * 10 ** 6), (s, op.dim), op.dtype)
            y = jnp.concatenate([_products(op, sk[i:i + batch_size]) for i in range(0, s, batch_size)])
            _check_finite_samples(np.asarray(jnp.sum(sk * y, axis=1)), method)
            budget = num_samples if target.active else max(num_samples, 2 * s + 2)
            return _hutchpp(op, key, budget, batch_size, target, y, s)
        if method == "auto":
            return _auto(op, key, num_samples, batch_size, target)
        if target.active:
            raise ValueError("method='xtrace' runs a fixed budget: use target_stderr with 'hutchinson', 'hutch++' "
                             "or 'auto'")
        half = max(num_samples // 2, 2)
        if half > op.dim:
            raise ValueError(f"xtrace needs num_samples/2 <= dim = {op.dim}, got num_samples={num_samples}")
        marker = jnp.zeros((op.dim,), op.dtype)
        with jax.numpy_rank_promotion("allow"):  # matfree's XTrace relies on implicit rank promotion
            mean, sem = _xtrace_jit(op.fn, half, key, marker, *op.args)
        _check_finite_samples(np.array([float(mean), float(sem)]), method)
        return TraceEstimate(float(mean), float(sem), 2 * half, method)


def _auto(op: _Op, key: jax.Array, budget: int, batch: int, target: _Target) -> TraceEstimate:
    b = min(batch, op.dim // 4, budget // 6)
    if b < 2:  # too small a budget or dimension to pay for a sketch
        vals, _, conv = _run_probes(op, key, budget, batch, target, "hutchinson")
        return TraceEstimate(float(vals.mean()), _stderr(vals), len(vals), "hutchinson", conv)
    s1 = _rademacher(jax.random.fold_in(key, 0), (b, op.dim), op.dtype)
    s2 = _rademacher(jax.random.fold_in(key, 1), (b, op.dim), op.dtype)
    y1, y2 = _products(op, s1), _products(op, s2)
    first = np.asarray(jnp.concatenate([jnp.sum(s1 * y1, axis=1), jnp.sum(s2 * y2, axis=1)]))
    _check_finite_samples(first, "auto")
    q1 = _orth(y1)
    tail = y2 - (y2 @ q1) @ q1.T
    frob = float(jnp.sum(y2 * y2))
    rho = float(jnp.sum(tail * tail)) / frob if frob > 0 else 1.0
    v_h = float(np.var(first, ddof=1))
    v_pp = rho * v_h  # deflation keeps the fraction rho of the Frobenius mass that drives the variance
    if target.active:
        tau = min(t for t in (target.absolute, None if target.relative is None else
                              target.relative * abs(float(first.mean()))) if t is not None)
        tau = max(tau, 1e-300)
        use_pp = 4 * b + v_pp / tau ** 2 < max(v_h / tau ** 2, 2 * b)
    else:
        use_pp = budget > 4 * b + 2 and v_pp / (budget - 4 * b) < v_h / budget
    if use_pp:
        est = _hutchpp(op, key, budget, batch, target, jnp.concatenate([y1, y2]), 2 * b)
    else:
        vals, _, conv = _run_probes(op, key, budget, batch, target, "hutchinson", start=first.tolist(), first_index=2)
        est = TraceEstimate(float(vals.mean()), _stderr(vals), len(vals), "hutchinson", conv)
    return est._replace(tail_fraction=rho)


@keyword_only_since("key")
def squared_norms(operator: Any, num_probes: int, *, key: jax.Array | None = None, batch_size: int = 16) -> np.ndarray:
    """|A z_i|^2 for Rademacher probes z_i, shape (num_probes,): each an unbiased estimate of ||A||_F^2
    = tr(A^T A) (Hutchinson applied to A^2)."""
    op = as_operator(operator)
    num_probes = check_positive_int("num_probes", num_probes, minimum=2)
    batch_size = check_positive_int("batch_size", batch_size)
    key = jax.random.PRNGKey(0) if key is None else key
    out = []
    with config.matmul_precision("highest"):
        for i, start in enumerate(range(0, num_probes, batch_size)):
            b = min(batch_size, num_probes - start)
            z = _rademacher(jax.random.fold_in(key, i), (b, op.dim), op.dtype)
            az = _products(op, z)
            out.append(np.asarray(jnp.sum(az * az, axis=1)))
    vals = np.concatenate(out)
    _check_finite_samples(vals, "squared_norms")
    return vals
