"""Dense layer: a fully connected map over the channel (last) axis, at every position.

Finite width (neural-tangents' ``stax.Dense``; Jacot et al. 2018 for "ntk", Sohl-Dickstein et al.
2020 "On the infinite width limit of neural networks with a standard parameterization"):

* ``"ntk"``: W, b ~ N(0, 1); h = (w_std / sqrt(fan_in)) x W + b_std b;
* ``"standard"``: W ~ N(0, w_std^2 / fan_in), b ~ N(0, b_std^2); h = x W + b.

Kernel, per position pair (both parametrizations give the same NNGP):
K' = w_std^2 K + b_std^2;  "ntk": Theta' = K' + w_std^2 Theta;
"standard": Theta' = fan_in K + [1 if bias] + w_std^2 Theta (it grows with the width fan_in).
``b_std=None`` means no bias parameters (b_std = 0 in the NNGP, no +1 in the standard NTK).
Parameters: ``{"W": (fan_in, out), "b": (out,)}``, the layout of :class:`workbench.nets.MLP`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax


from workbench.layers.base import PARAMETRIZATIONS, KernelState, Layer, Shape, maybe
from workbench.validation import check_choice, check_positive_int, check_real


def check_affine(owner: str, w_std: float, b_std: float | None, parametrization: str) -> None:
    check_real(f"{owner} w_std", w_std, nonnegative=True)
    if b_std is not None:
        check_real(f"{owner} b_std", b_std, nonnegative=True)
    check_choice(f"{owner} parametrization", parametrization, PARAMETRIZATIONS)


def affine_kernel(state: KernelState, linear: Callable[[jax.Array, int], jax.Array], w_std: float,
                  b_std: float | None, parametrization: str, fan_in: int) -> KernelState:
    """The kernel rule of an affine layer whose unscaled covariance map is ``linear`` (see module docstring)."""
    w2 = float(w_std) ** 2
    b2 = 0.0 if b_std is None else float(b_std) ** 2
    nngp = ntk = None
    if state.nngp is not None:
        lin_nngp = linear(state.nngp, 2)
        nngp = w2 * lin_nngp + b2
        if parametrization == "ntk":
            ntk = nngp + w2 * linear(state.ntk, 2)
        else:
            ntk = fan_in * lin_nngp + w2 * linear(state.ntk, 2) + (0.0 if b_std is None else 1.0)

    def self_rule(var: jax.Array) -> jax.Array:
        return w2 * linear(var, 1) + b2

    return KernelState(nngp, ntk, maybe(self_rule, state.var1), maybe(self_rule, state.var2), state.full, state.tape,
                       state.same)


def init_affine(keys: jax.Array, w_shape: Shape, out: int, fan_in: int, w_std: float, b_std: float | None,
                parametrization: str, dtype: Any) -> dict[str, jax.Array]:
    """W from keys[0] and b from keys[1], N(0, 1) ("ntk") or scaled ("standard"), as MLP.init draws them."""
    w = jax.random.normal(keys[0], w_shape, dtype)
    if parametrization == "standard":
        w = w * (w_std / math.sqrt(fan_in))
    params = {"W": w}
    if b_std is not None:
        b = jax.random.normal(keys[1], (out,), dtype)
        params["b"] = b * b_std if parametrization == "standard" else b
    return params


def add_bias(h: jax.Array, params: dict[str, jax.Array], b_std: float | None, parametrization: str) -> jax.Array:
    if b_std is None:
        return h
    b = params["b"].reshape((1,) * (h.ndim - 1) + (-1,))  # explicit broadcast over batch and positions
    return h + (b_std * b if parametrization == "ntk" else b)


@dataclasses.dataclass(frozen=True)
class Dense(Layer):
    """Fully connected layer with ``out`` output channels (module docstring: formulas, conventions)."""

    out: int
    w_std: float = 1.0
    b_std: float | None = 0.0
    parametrization: str = "ntk"

    num_keys = 2
    has_weights = True

    def __post_init__(self) -> None:
        check_positive_int("Dense out (channels)", self.out)
        check_affine("Dense", self.w_std, self.b_std, self.parametrization)

    def describe(self) -> str:
        b = "no bias" if self.b_std is None else f"b_std={self.b_std:g}"
        return f"Dense({self.out}, w_std={self.w_std:g}, {b}, {self.parametrization})"

    def output_shape(self, in_shape: Shape) -> Shape:
        if len(in_shape) < 2:
            raise self.error(in_shape, "it needs inputs of rank >= 2 (n, ..., channels)")
        return in_shape[:-1] + (self.out,)

    def init(self, keys: jax.Array, in_shape: Shape, dtype: Any) -> dict[str, jax.Array]:
        fan_in = in_shape[-1]
        return init_affine(keys, (fan_in, self.out), self.out, fan_in, self.w_std, self.b_std,
                           self.parametrization, dtype)

    def apply(self, params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
        h = x @ params["W"]
        if self.parametrization == "ntk":
            h = (self.w_std / math.sqrt(x.shape[-1])) * h
        return add_bias(h, params, self.b_std, self.parametrization)

    def kernel(self, state: KernelState, in_shape: Shape) -> KernelState:
        return affine_kernel(state, lambda a, _: a, self.w_std, self.b_std, self.parametrization, in_shape[-1])


