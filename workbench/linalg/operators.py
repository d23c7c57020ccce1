"""Linear operators for the matrix-free tools of :mod:`workbench.linalg.krylov`: normalization, products
of one vector or a batch of vectors (``vmap``: each product works on a matrix of probes), and the checks
every spectral routine runs before trusting an operator: the output shape, finiteness and symmetry.

An ``operator`` is one of
* an object with ``.matvec(v)`` and ``.dim`` (e.g. :class:`workbench.hessian.CurvatureOperator`);
  if it also has ``.pure_matvec(v, *operands)`` and ``.operands``, the data travel as arguments of
  the compiled loop rather than as closure constants (no constant folding, compiled code reused);
* a pair ``(matvec, dim)`` with ``matvec`` a JAX-traceable function of a flat vector.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from workbench import config
from workbench.validation import check_positive_int
from workbench._compat import is_prng_key, keyword_only_since

__all__ = ["LinearOperator", "as_operator", "difference", "check_symmetric", "matmat", "matvec_jit",
           "symmetry_tolerance", "verify_symmetric"]


class _Op(NamedTuple):
    fn: Callable[..., jax.Array]  # fn(v, *args) -> A v
    args: tuple
    dim: int
    dtype: Any
    name: str


class _Closure:
    """A hashable wrapper of a user ``matvec(v)`` with the signature ``fn(v)`` (identity hash)."""

    def __init__(self, matvec: Callable[[jax.Array], jax.Array]) -> None:
        self.matvec = matvec

    def __call__(self, v: jax.Array) -> jax.Array:
        return self.matvec(v)


def _name(obj: Any) -> str:
    return getattr(obj, "__qualname__", None) or type(obj).__name__


def as_operator(operator: Any) -> _Op:
    """Normalize ``operator`` (object with ``.matvec``/``.dim``, or ``(matvec, dim)``) for the jitted loops."""
    if isinstance(operator, tuple) and len(operator) == 2 and callable(operator[0]):
        matvec, dim = operator
        dim = check_positive_int("dim", dim)
        return _Op(_Closure(matvec), (), dim, config.default_dtype(), f"matvec {_name(matvec)!r}")
    if hasattr(operator, "matvec") and hasattr(operator, "dim"):
        dim = check_positive_int("operator.dim", operator.dim)
        dtype = getattr(operator, "dtype", config.default_dtype())
        name = f"operator {type(operator).__name__}"
        if hasattr(operator, "pure_matvec") and hasattr(operator, "operands"):
            return _Op(operator.pure_matvec, tuple(operator.operands), dim, dtype, name)
        return _Op(_Closure(operator.matvec), (), dim, dtype, name)
    raise TypeError(
        "operator must have .matvec(v) and .dim, or be a pair (matvec, dim); "
        f"got {type(operator).__name__}"
    )


def apply(fn: Callable, v: jax.Array, args: tuple, name: str = "operator") -> jax.Array:
    """``fn(v, *args)`` with its shape checked at trace time (free at run time): a matvec must map (dim,) to (dim,)."""
    out = fn(v, *args)
    shape = getattr(out, "shape", None)
    if shape != v.shape:
        raise ValueError(
            f"{name}: the matrix-vector product returned shape {shape if shape is not None else type(out).__name__} "
            f"for a vector of shape {v.shape}; expected shape {v.shape} (a square operator of dim = {v.shape[-1]})"
        )
    return out.astype(v.dtype)


def matmat(fn: Callable, vs: jax.Array, args: tuple, name: str = "operator") -> jax.Array:
    """Rows A v_i for the rows of ``vs`` (b, dim) in one ``vmap``-ed product (shared primal work for HVPs)."""
    return jax.vmap(lambda v: apply(fn, v, args, name))(vs)


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


# ----------------------------------------------------------------------------- compiled products
def _probe_products(fn, name, sequential, probes, *args):
    if sequential:  # one probe after another in one compiled loop: the product's primal part is hoisted out
        return jax.lax.map(lambda v: apply(fn, v, args, name), probes)
    return matmat(fn, probes, args, name)


def _one_product(fn, name, v, *args):
    return apply(fn, v, args, name)


#: ``_probe_jit(fn, name, sequential, vs, *args)``: rows A v_i of ``vs`` (b, dim), one program per (fn, b), either
#: vmapped or (``sequential``) one row after another in a compiled loop. On a CPU the loop is faster: on the
#: Hessian of ``benchmarks/hessian.py`` 11-13 ms per probe against 18-20 ms vmapped (the loop hoists the
#: probe-independent forward and backward pass; vmap turns each matmul of the tangent into a batched one).
_probe_jit = jax.jit(_probe_products, static_argnums=(0, 1, 2))


def sequential_products(args: tuple) -> bool:
    """Whether batched products of an operator with these operands run best one after another: on a CPU."""
    for leaf in jax.tree_util.tree_leaves(args):
        devices = getattr(leaf, "devices", None)
        if callable(devices):
            return all(d.platform == "cpu" for d in devices())
    return jax.default_backend() == "cpu"
#: ``matvec_jit(fn, name, v, *args)`` = A v: the single-vector product program, compiled once per ``fn`` (hashable:
#: a :class:`workbench.hessian.CurvatureProduct` compares by value, so new parameters, batches or batch weights of
#: the same shapes reuse it), used by :func:`check_symmetric` and power iteration. (Lanczos computes its symmetry
#: probes inside its own loop program instead, so that a first call compiles the product once.)
matvec_jit = jax.jit(_one_product, static_argnums=(0, 1))


def symmetry_probes(key, num, dim, dtype):
    """Probes (num, dim) / sqrt(dim) for the symmetry test: row 0 Rademacher (it is also Lanczos's start vector),
    the others Gaussian. With signs alone an asymmetry in one entry pair (k, l) cancels on a probe pair whenever
    z_ik z_jl = z_jk z_il (probability 1/2 per pair: three sign pairs missed it one time in eight); with a
    Gaussian probe in every pair that happens with probability 0."""
    # row 0 drawn as before Gaussian probes were added, so Lanczos starts from the same vector for the same key
    z0 = jax.random.rademacher(key, (num, dim), dtype=jnp.int8)[:1].astype(dtype)
    rest = jax.random.normal(jax.random.fold_in(key, 1), (num - 1, dim), dtype=dtype)
    return jnp.concatenate([z0, rest]) / math.sqrt(dim)


def _unit_probes(key, num, dim, dtype):
    z = symmetry_probes(key, num, dim, dtype)
    return tuple(z[i] for i in range(num))


_unit_rademacher_jit = jax.jit(_unit_probes, static_argnums=(1, 2, 3))


def _normalized_pair(z, az):
    n = jnp.linalg.norm(z)
    return z / n, az / n


_normalized_pair_jit = jax.jit(_normalized_pair)


# ----------------------------------------------------------------------------- symmetry


def symmetry_tolerance(dtype: Any) -> float:
    """Largest asymmetry ratio |<u, Av> - <Au, v>| / ((|u| |Av| + |Au| |v|) / sqrt(dim)) taken for rounding.

    For random unit u, v the rounding error e of a computed product (|e| ~ c eps |Av|, c the growth of
    the product's rounding: up to ~1e3 for HVPs through deep nets) contributes <u, e> ~ |e| / sqrt(dim):
    a ratio of about c eps, whatever dim. A non-symmetric A gives ||A - A^T||_F / (2 ||A||_F) instead
    (E <u, B v>^2 = ||B||_F^2 / dim^2 for unit Rademacher u, v). The threshold is 1e4 eps, capped at
    1e-2: 1.2e-3 in float32, 2.2e-12 in float64.
    """
    return min(1e4 * float(np.finfo(jnp.dtype(dtype)).eps), 1e-2)


def verify_symmetric(op: _Op, z_np: np.ndarray, az_np: np.ndarray, what: str, where: str) -> None:
    """The test of :func:`check_symmetric` on probes ``z_np`` (n, dim) and their products ``az_np`` (host arrays)."""
    if not np.all(np.isfinite(az_np)):
        raise ValueError(
            f"non-finite matrix-vector product (NaN or inf) in {where} (the symmetry probes): "
            "the operator returned NaN/inf (check the loss, the parameters and the data)")
    g = z_np @ az_np.T  # g[i, j] = <x_i, A x_j>
    norms_z = np.linalg.norm(z_np, axis=1)
    norms_az = np.linalg.norm(az_np, axis=1)
    scale = (np.outer(norms_z, norms_az) + np.outer(norms_az, norms_z)) / math.sqrt(op.dim)
    asym = np.abs(g - g.T)
    tol = symmetry_tolerance(op.dtype)
    worst = float(np.max(asym / np.maximum(scale, np.finfo(np.float64).tiny)))
    if np.any(asym > tol * scale) and float(np.max(scale)) > 0:
        raise ValueError(
            f"{what} needs a symmetric operator, but {op.name} is not symmetric: on random probe pairs "
            f"|<u, Av> - <Au, v>| / ((|u| |Av| + |Au| |v|) / sqrt(dim)) = {worst:.2e} > {tol:.1e} (rounding level for "
            f"{jnp.dtype(op.dtype).name}); symmetrize it ((A + A^T)/2) or use a method for general matrices")


def _old_check_symmetric_call(a: tuple) -> tuple | None:
    """The order before this release, (op, key, what, where[, num_pairs]), mapped to the current one."""
    if len(a) >= 4 and is_prng_key(a[1]):
        return (a[0], *a[2:4]), {"key": a[1], **({"num_pairs": a[4]} if len(a) > 4 else {})}
    return None


@keyword_only_since("num_pairs", legacy_order=_old_check_symmetric_call)
def check_symmetric(op: _Op, what: str, where: str, *, key: jax.Array, num_pairs: int = 2) -> tuple[jax.Array, jax.Array]:
    """Check symmetry of ``op`` on random probe pairs (:func:`symmetry_probes`); return (q0, A q0) for reuse as a Lanczos start.

    Products with num_pairs + 1 probes [q0, p_1, ..., p_n] (one at a time through :data:`matvec_jit`); every
    pair (i, j) is tested:
    |<x_i, A x_j> - <A x_i, x_j>| <= tol (|x_i| |A x_j| + |A x_i| |x_j|) / sqrt(dim), ``tol`` from
    :func:`symmetry_tolerance`. Non-finite products raise a ValueError (step 1 of ``what``); an asymmetric
    operator raises a ValueError with the measured asymmetry. q0 = p_0 / |p_0|. ``where`` says which
    step of which routine the probes stand for (in the non-finite message).
    """
    with config.matmul_precision("highest"):
        z = _unit_rademacher_jit(key, num_pairs + 1, op.dim, jnp.dtype(op.dtype))
        # one product at a time through the shared single-vector program (no vmapped copy of the product to compile)
        az = [matvec_jit(op.fn, op.name, zi, *op.args) for zi in z]
    az_np = np.stack([np.asarray(a, dtype=np.float64) for a in az])
    z_np = np.stack([np.asarray(zi, dtype=np.float64) for zi in z])
    verify_symmetric(op, z_np, az_np, what, where)
    with config.matmul_precision("highest"):
        return _normalized_pair_jit(z[0], az[0])
