"""Output losses l(f_i, y_i) of one example and their reductions over a batch (docs/theory.md#14-losses-hessians-and-gauss-newton).
One home for the losses
that training (:mod:`workbench.training`), the Hessian operators (:mod:`workbench.hessian`) and the
Hessian study use.

Per-example losses (outputs ``f`` of shape (n, out_dim), targets ``y``):

* ``"mse"``: l_i = 1/2 |f_i - y_i|^2 (targets (n, out_dim)).
* ``"cross_entropy"``: softmax cross entropy l_i = -sum_k y_ik log softmax(f_i)_k for targets (n, C) of
  class probabilities, or with (n, 1) integer class labels stored as numbers; for one output (C = 1) the
  logistic loss l_i = log(1 + exp(-y_i f_i)) with labels y_i = +-1.

Reductions (explicit, no default hidden in a name): ``"sum"``: L = sum_i l_i; ``"mean"``: L = (1/n) sum_i l_i
over the n examples (the per-example mean of the gradient-noise and Hessian conventions). Note that the
``loss="mean"`` of :mod:`workbench.dynamics` (and neural-tangents) divides the MSE by the number of *entries*
n * out_dim instead: that is :func:`mse` with ``reduction="sum"`` divided by ``f.size``.

The functions are jit-traceable: the string arguments and the shapes (known at trace time, so free under
``jit``) are checked here: ``f`` and ``y`` of shape (n, k) with one row per example (equal shapes for MSE), so that
a (n,) target against (n, 1) outputs cannot broadcast to an (n, n) loss silently.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from workbench.validation import check_choice

__all__ = ["LOSSES", "REDUCTIONS", "cross_entropy", "mse", "output_loss", "per_example_loss"]

LOSSES = ("mse", "cross_entropy")
REDUCTIONS = ("sum", "mean")


def _check_shapes(loss: str, f: Any, y: Any) -> None:
    fs, ys = jnp.shape(f), jnp.shape(y)
    if len(fs) != 2 or len(ys) != 2 or fs[0] != ys[0]:
        raise ValueError(f"{loss}: outputs f and targets y must have shapes (n, k) and (n, k') with one row per "
                         f"example, got f {fs} and y {ys}")
    if loss == "mse" and fs != ys:
        raise ValueError(f"mse: outputs f and targets y must have the same shape, got f {fs} and y {ys}")


def per_example_loss(loss: str, f: Any, y: Any) -> jax.Array:
    """The per-example losses l_i, shape (n,): ``"mse"`` or ``"cross_entropy"`` (see the module docstring)."""
    check_choice("loss", loss, LOSSES)
    _check_shapes(loss, f, y)
    if loss == "mse":
        return 0.5 * jnp.sum((f - y) ** 2, axis=-1)
    if f.shape[-1] == 1:  # binary, labels +-1: log(1 + exp(-y f))
        return jax.nn.softplus(-y[:, 0] * f[:, 0])
    if y.shape[-1] == 1:  # integer class labels stored as numbers
        return optax.softmax_cross_entropy_with_integer_labels(f, y[:, 0].astype(jnp.int32))
    return optax.softmax_cross_entropy(f, y)


def mse(f: Any, y: Any, *, reduction: str) -> jax.Array:
    """1/2 sum_i |f_i - y_i|^2 (``"sum"``) or that divided by the number of examples n (``"mean"``)."""
    check_choice("reduction", reduction, REDUCTIONS)
    _check_shapes("mse", f, y)
    total = 0.5 * jnp.sum((f - y) ** 2)
    return total if reduction == "sum" else total / f.shape[0]


def cross_entropy(f: Any, y: Any, *, reduction: str) -> jax.Array:
    """Softmax (or, for one output, logistic) cross entropy summed (``"sum"``) or averaged (``"mean"``)
    over the examples."""
    check_choice("reduction", reduction, REDUCTIONS)
    per = per_example_loss("cross_entropy", f, y)
    return jnp.sum(per) if reduction == "sum" else jnp.mean(per)


def output_loss(loss: str, f: Any, y: Any, *, reduction: str) -> jax.Array:
    """:func:`mse` or :func:`cross_entropy` by name."""
    check_choice("loss", loss, LOSSES)
    return mse(f, y, reduction=reduction) if loss == "mse" else cross_entropy(f, y, reduction=reduction)
