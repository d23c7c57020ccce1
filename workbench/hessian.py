"""Matrix-free Hessian and generalized Gauss-Newton (GGN) operators of a loss at a batch.

Conventions
-----------
* A loss is ``loss_fn(params, batch) -> scalar``; ``params`` is any pytree of float arrays and
  ``batch`` a tuple of arrays with equal leading sizes (usually ``(x, y)``). The operators act
  on *flat* parameter vectors in the order of :func:`jax.flatten_util.ravel_pytree`
  (:func:`flatten_params`, :func:`unflatten_like`).
* The Hessian is H = d^2 loss / d theta^2 of exactly the loss given: with the output losses
  below (a *mean* over the examples of the batch), H_B = (1/B) sum_i Hess l_i.
* The GGN (Schraudolph 2002; Martens 2020, "New insights and perspectives on the natural
  gradient method", sec. 8) needs the model output and the loss on outputs as separate pieces:
  supply ``loss_fn = ComposedLoss(apply_fn, output_loss)`` with ``apply_fn(params, x) -> f``
  of shape (n, out_dim) and ``output_loss(f, y) -> scalar``. Then
  G = J^T (d^2 output_loss / d f^2) J, J = d f(X) / d theta; G is positive semi-definite
  whenever ``output_loss`` is convex in f (MSE, softmax cross-entropy). A ``ComposedLoss``
  is itself a ``loss_fn`` (``loss(params, (x, y)) = output_loss(apply_fn(params, x), y)``), so
  the same object serves ``kind="hessian"`` and ``kind="ggn"``.
* Output losses shipped here: :func:`mse_output_loss` = (1/n) sum_i 1/2 |f_i - y_i|^2 and
  :func:`cross_entropy_output_loss` = -(1/n) sum_i sum_k y_ik log softmax(f_i)_k (``y`` holds
  target probabilities, e.g. one-hot rows).

Compilation: every product is a module-level ``jax.jit`` function with ``loss_fn`` static and the
parameters, the batch and the vector passed as arguments (closing over them would make XLA
constant-fold the data for seconds). Compiled code is therefore cached per ``loss_fn`` object
(and per array shapes): reuse the same ``loss_fn`` (e.g. the one from :func:`mlp_loss`, which is
cached) across widget changes and nothing recompiles.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from workbench import losses
from workbench.validation import check_choice, check_finite, check_positive_int

__all__ = ["KINDS", "OUTPUT_LOSSES", "check_batch", "ComposedLoss", "cross_entropy_output_loss", "CurvatureOperator",
           "CurvatureProduct", "flatten_params", "ggn_vp", "hessian_operator", "hvp", "loss_and_grad", "mlp_loss",
           "mse_output_loss", "num_params", "per_example_grads", "unflatten_like"]

Batch = tuple[jax.Array, ...]
KINDS = ("hessian", "ggn")
OUTPUT_LOSSES = losses.LOSSES


# ----------------------------------------------------------------------------- losses
def mse_output_loss(f: jax.Array, y: jax.Array) -> jax.Array:
    """(1/n) sum_i 1/2 |f_i - y_i|^2 for outputs ``f`` and targets ``y`` of shape (n, out_dim)."""
    return losses.mse(f, y, reduction="mean")


def cross_entropy_output_loss(f: jax.Array, y: jax.Array) -> jax.Array:
    """-(1/n) sum_i sum_k y_ik log softmax(f_i)_k: logits ``f`` (n, C), target probabilities ``y`` (n, C)
    (or the other target forms of :func:`workbench.losses.per_example_loss`)."""
    return losses.cross_entropy(f, y, reduction="mean")


_OUTPUT_LOSS_FNS = {"mse": mse_output_loss, "cross_entropy": cross_entropy_output_loss}


@dataclasses.dataclass(frozen=True)
class ComposedLoss:
    """``loss(params, (x, y)) = output_loss(apply_fn(params, x), y)``: a loss with its GGN split.

    ``apply_fn(params, x) -> f`` of shape (n, out_dim); ``output_loss(f, y) -> scalar``, convex
    in ``f`` for the GGN to be positive semi-definite. Hashable (by the two functions), so it can
    be a static argument of ``jax.jit`` and compiled code is reused across calls.
    """

    apply_fn: Callable[[Any, jax.Array], jax.Array]
    output_loss: Callable[[jax.Array, jax.Array], jax.Array]

    def __call__(self, params: Any, batch: Batch) -> jax.Array:
        x, y = batch[0], batch[1]
        return self.output_loss(self.apply_fn(params, x), y)


@functools.lru_cache(maxsize=64)
def mlp_loss(net: Any, loss: str = "mse") -> ComposedLoss:
    """The :class:`ComposedLoss` of ``net.apply`` with ``"mse"`` or ``"cross_entropy"`` (cached per net).

    ``net`` is any hashable object with ``apply(params, x)`` (e.g. :class:`workbench.nets.MLP`).
    Returning the same object for the same arguments keeps jit caches warm across widget changes.
    """
    check_choice("loss", loss, OUTPUT_LOSSES)
    if not hasattr(net, "apply"):
        raise TypeError(f"net must have an apply(params, x) method, got {type(net).__name__}")
    return ComposedLoss(net.apply, _OUTPUT_LOSS_FNS[loss])


# ----------------------------------------------------------------------------- pytrees
def flatten_params(params: Any) -> jax.Array:
    """The parameters as one flat vector (order of :func:`jax.flatten_util.ravel_pytree`)."""
    return ravel_pytree(params)[0]


def unflatten_like(params: Any, flat: jax.Array) -> Any:
    """A flat vector of length ``num_params(params)`` back into the pytree structure of ``params``."""
    ref, unravel = ravel_pytree(params)
    if np.shape(flat) != ref.shape:
        raise ValueError(f"flat must have shape {ref.shape} (the number of parameters), got shape {np.shape(flat)}")
    return unravel(flat)


def num_params(params: Any) -> int:
    """Number of scalar parameters in the pytree ``params``."""
    return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(params)))


# ----------------------------------------------------------------------------- checks
def check_batch(batch: Any) -> Batch:
    """``batch`` as a tuple of arrays with equal leading sizes (>= 1), finite; else a clear error."""
    if not isinstance(batch, (tuple, list)) or len(batch) == 0:
        raise TypeError(f"batch must be a non-empty tuple of arrays such as (x, y), got {type(batch).__name__}")
    sizes = []
    for i, a in enumerate(batch):
        shape = np.shape(a)
        if len(shape) == 0:
            raise ValueError(f"batch[{i}] must have a leading example axis, got a scalar")
        sizes.append(shape[0])
        check_finite(f"batch[{i}]", a)
    if len(set(sizes)) != 1:
        raise ValueError(f"batch arrays must have equal leading sizes (one row per example), got sizes {sizes}")
    if sizes[0] < 1:
        raise ValueError("batch must hold at least one example, got leading size 0")
    return tuple(jnp.asarray(a) for a in batch)


def _check_loss(loss_fn: Any, params: Any, batch: Batch) -> None:
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(params, batch), got {type(loss_fn).__name__}")
    out = jax.eval_shape(loss_fn, params, batch)
    if not hasattr(out, "shape") or out.shape != ():
        shape = getattr(out, "shape", type(out).__name__)
        raise ValueError(f"loss_fn(params, batch) must return a scalar, got shape {shape}")


def _check_params(params: Any) -> None:
    leaves = jax.tree_util.tree_leaves(params)
    if not leaves:
        raise ValueError("params must hold at least one array, got an empty pytree")
    for leaf in leaves:
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
            raise TypeError(f"params leaves must be float arrays, got dtype {jnp.result_type(leaf)}")
    check_finite("params", flatten_params(params))


# ----------------------------------------------------------------------------- jitted products
def _check_vector(params: Any, v: Any) -> jax.Array:
    """``v`` as a flat vector of length num_params(params), finite where concrete (skipped under tracing)."""
    v = v if isinstance(v, jax.core.Tracer) else jnp.asarray(v)
    if v.shape != (num_params(params),):
        raise ValueError(f"v must be a flat vector of shape ({num_params(params)},) (one entry per parameter), "
                         f"got shape {v.shape}")
    check_finite("v", v)
    return v


def hvp(loss_fn: Callable, params: Any, batch: Batch, v: jax.Array) -> jax.Array:
    """H v, H the Hessian of ``loss_fn(., batch)`` at ``params``; ``v`` flat (forward-over-reverse).
    A concrete ``v`` of the wrong shape or holding NaN/inf is refused (a ``ValueError`` naming ``v``)."""
    return _hvp(loss_fn, params, batch, _check_vector(params, v))


def ggn_vp(loss_fn: ComposedLoss, params: Any, batch: Batch, v: jax.Array) -> jax.Array:
    """G v = J^T H_out J v for a :class:`ComposedLoss`; ``v`` flat, checked as in :func:`hvp`."""
    return _ggn_vp(loss_fn, params, batch, _check_vector(params, v))


@functools.partial(jax.jit, static_argnames=("loss_fn",))
def _hvp(loss_fn: Callable, params: Any, batch: Batch, v: jax.Array) -> jax.Array:
    flat, unravel = ravel_pytree(params)
    grad = jax.grad(lambda p: loss_fn(unravel(p), batch))
    return jax.jvp(grad, (flat,), (v.astype(flat.dtype),))[1]


@functools.partial(jax.jit, static_argnames=("loss_fn",))
def _ggn_vp(loss_fn: ComposedLoss, params: Any, batch: Batch, v: jax.Array) -> jax.Array:
    flat, unravel = ravel_pytree(params)
    x, y = batch[0], batch[1]
    model = lambda p: loss_fn.apply_fn(unravel(p), x)  # noqa: E731
    f, jv = jax.jvp(model, (flat,), (v.astype(flat.dtype),))
    out_grad = jax.grad(lambda g: loss_fn.output_loss(g, y))
    h_jv = jax.jvp(out_grad, (f,), (jv,))[1]
    _, vjp = jax.vjp(model, flat)
    return vjp(h_jv)[0]


# the compiled-code caches of the checked public products are those of the jitted ones (reuse is tested)
hvp._cache_size = _hvp._cache_size  # type: ignore[attr-defined]
ggn_vp._cache_size = _ggn_vp._cache_size  # type: ignore[attr-defined]


@functools.partial(jax.jit, static_argnames=("loss_fn", "kind"))
def _matmat(loss_fn: Callable, kind: str, params: Any, batch: Batch, vs: jax.Array) -> jax.Array:
    fn = _hvp if kind == "hessian" else _ggn_vp
    return jax.vmap(lambda v: fn(loss_fn, params, batch, v))(vs)


@functools.partial(jax.jit, static_argnames=("loss_fn",))
def loss_and_grad(loss_fn: Callable, params: Any, batch: Batch) -> tuple[jax.Array, jax.Array]:
    """The loss and its flat gradient at ``params``."""
    flat, unravel = ravel_pytree(params)
    return jax.value_and_grad(lambda p: loss_fn(unravel(p), batch))(flat)


@functools.partial(jax.jit, static_argnames=("loss_fn",))
def _per_example_grads(loss_fn: Callable, params: Any, batch: Batch) -> jax.Array:
    flat, unravel = ravel_pytree(params)

    def one(*example):
        single = tuple(a[None] for a in example)
        return jax.grad(lambda p: loss_fn(unravel(p), single))(flat)

    return jax.vmap(one)(*batch)


def per_example_grads(loss_fn: Callable, params: Any, batch: Any) -> jax.Array:
    """Gradients of the loss of each 1-example batch, shape (B, P), flat in :func:`flatten_params` order.

    Row i is grad_theta loss_fn(params, (x[i:i+1], y[i:i+1])): with a *mean* loss this is the
    per-example gradient g_i, and the batch gradient is (1/B) sum_i g_i. Batched with ``jax.vmap``.
    """
    batch = check_batch(batch)
    _check_params(params)
    _check_loss(loss_fn, params, tuple(a[:1] for a in batch))
    return _per_example_grads(loss_fn, params, batch)


# ----------------------------------------------------------------------------- operator
@dataclasses.dataclass(frozen=True)
class CurvatureProduct:
    """The pure product ``(v, params, batch) -> A v`` (A the Hessian or GGN of ``loss_fn``).

    Hashable by value (``kind`` and ``loss_fn``), so algorithms jitted with it as a static
    argument compile once per loss and reuse the compiled code for new parameters and batches.
    """

    kind: str
    loss_fn: Callable

    def __call__(self, v: jax.Array, params: Any, batch: Batch) -> jax.Array:
        fn = _hvp if self.kind == "hessian" else _ggn_vp
        return fn(self.loss_fn, params, batch, v)


@dataclasses.dataclass(frozen=True, eq=False)
class CurvatureOperator:
    """A symmetric P x P curvature matrix (Hessian or GGN) of ``loss_fn`` at ``params`` and ``batch``.

    ``matvec(v)`` for flat ``v`` of length ``dim``; ``matmat(V)`` for rows V of shape (m, dim)
    (vmapped); ``dense()`` the full matrix (chunked, small models only). For matrix-free
    algorithms compiled around the product, ``pure_matvec(v, params, batch)`` is a jitted pure
    function and ``operands = (params, batch)`` its data: pass them as arguments, never as
    closure constants (see :mod:`workbench.linalg.krylov`).
    """

    loss_fn: Callable
    params: Any
    batch: Batch
    kind: str
    dim: int
    #: forward-over-reverse products of a scalar loss (or J^T H_f J with H_f from autodiff) are symmetric up to
    #: rounding whatever the loss: Lanczos skips its symmetry probes for them (``check_symmetry=None``)
    symmetric_by_construction: ClassVar[bool] = True

    @property
    def operands(self) -> tuple[Any, Batch]:
        return (self.params, self.batch)

    @property
    def pure_matvec(self) -> CurvatureProduct:
        return CurvatureProduct(self.kind, self.loss_fn)

    @property
    def dtype(self) -> jnp.dtype:
        return flatten_params(self.params).dtype

    def start_direction(self) -> jax.Array:
        """The flat loss gradient at ``params`` and ``batch``: the direction Lanczos mixes into its random start
        for the top eigenvalues (:func:`workbench.linalg.lanczos.resolve_start`). Gradients lie mostly in the span
        of the top Hessian eigenvectors (Gur-Ari, Roberts & Dyer 2018, arXiv:1812.04754)."""
        return loss_and_grad(self.loss_fn, self.params, self.batch)[1]

    def _check_vector(self, v: Any, *, matrix: bool) -> jax.Array:
        v = jnp.asarray(v)
        want = "(m, dim)" if matrix else "(dim,)"
        if v.ndim != (2 if matrix else 1) or v.shape[-1] != self.dim:
            raise ValueError(f"v must have shape {want} with dim = {self.dim}, got shape {v.shape}")
        return v

    def matvec(self, v: jax.Array) -> jax.Array:
        """The product with a flat vector ``v`` of length ``dim``."""
        v = self._check_vector(v, matrix=False)
        return self.pure_matvec(v, self.params, self.batch)

    def matmat(self, vs: jax.Array) -> jax.Array:
        """Products with the rows of ``vs`` (m, dim), returned as rows (m, dim) (vmapped)."""
        vs = self._check_vector(vs, matrix=True)
        return _matmat(self.loss_fn, self.kind, self.params, self.batch, vs)

    def dense(self, chunk_size: int = 256) -> jax.Array:
        """The full symmetric matrix, built from products with ``chunk_size`` unit vectors at a time.

        Memory dim^2 floats: for models of up to a few thousand parameters. The result is
        symmetrized ((A + A^T)/2) to remove rounding asymmetry of order machine epsilon.
        """
        chunk_size = check_positive_int("chunk_size", chunk_size)
        chunk_size = min(chunk_size, self.dim)
        num_chunks = -(-self.dim // chunk_size)
        # Pad to whole chunks so every chunk has one shape (one compilation).
        eye = jnp.eye(num_chunks * chunk_size, self.dim, dtype=self.dtype)
        blocks = [self.matmat(eye[i:i + chunk_size]) for i in range(0, num_chunks * chunk_size, chunk_size)]
        a = jnp.concatenate(blocks, axis=0)[: self.dim]
        return 0.5 * (a + a.T)

    def __repr__(self) -> str:
        return f"CurvatureOperator(kind={self.kind!r}, dim={self.dim}, batch_size={self.batch[0].shape[0]})"


def hessian_operator(loss_fn: Callable, params: Any, batch: Any, kind: str = "hessian") -> CurvatureOperator:
    """The Hessian (``kind="hessian"``) or GGN (``kind="ggn"``) of ``loss_fn`` at ``params`` and ``batch``.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``; for ``kind="ggn"`` a :class:`ComposedLoss`
        (``apply_fn`` and ``output_loss`` separately, e.g. from :func:`mlp_loss`).
      params: parameter pytree (float arrays, finite).
      batch: tuple of arrays with equal leading sizes, e.g. ``(x, y)``.
      kind: ``"hessian"`` or ``"ggn"``.

    Returns:
      A :class:`CurvatureOperator` with ``.matvec``, ``.matmat``, ``.dim``, ``.dense()``.

    Example:
      >>> from workbench.nets import MLP
      >>> net = MLP(depth=1, width=8, activation="tanh")
      >>> params = net.init(jax.random.PRNGKey(0), in_dim=3)
      >>> x = jnp.ones((4, 3)); y = jnp.zeros((4, 1))
      >>> op = hessian_operator(mlp_loss(net, "mse"), params, (x, y), kind="ggn")
      >>> op.dense().shape
      (41, 41)
    """
    check_choice("kind", kind, KINDS)
    batch = check_batch(batch)
    _check_params(params)
    if kind == "ggn" and not isinstance(loss_fn, ComposedLoss):
        raise TypeError(
            "kind='ggn' needs the model output and the loss on outputs separately: pass "
            "loss_fn=ComposedLoss(apply_fn, output_loss) (or mlp_loss(net, loss)), "
            f"got {type(loss_fn).__name__}"
        )
    _check_loss(loss_fn, params, batch)
    params = jax.tree_util.tree_map(jnp.asarray, params)
    return CurvatureOperator(loss_fn, params, batch, kind, num_params(params))
