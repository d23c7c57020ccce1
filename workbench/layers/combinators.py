"""Chains of layers (the machinery of :func:`~workbench.layers.net.serial`) and ``Residual``.

``Residual(*branch)``: y = x + branch(x) (He et al. 2016), the branch a chain of layers that keeps
the shape. Kernel: K' = K + K_branch, Theta' = Theta + Theta_branch, as neural-tangents'
``FanOut(2) >> parallel(Identity(), branch) >> FanInSum()``: exact in the infinite-width limit
when the branch contains a weighted layer (Dense, Conv, SelfAttention), whose fresh zero-mean weights
make the branch output uncorrelated with its input channels (Yang 2019, Tensor Programs I).
A branch without weights is refused (its output would be correlated with x).

Layout choice (diagonal or full, see :mod:`workbench.layers.base`): walking the chain from the
end, a layer's input needs the full covariance if it or a later layer mixes positions
(``needs_full``), up to the first layer that removes the position axes (Flatten, GlobalAvgPool);
the state drops to the diagonal layout as soon as nothing downstream needs the full one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax

from workbench.layers.base import KernelState, Layer, Shape, to_diagonal


def chain_shapes(layers: Sequence[Layer], in_shape: Shape) -> list[Shape]:
    """Input shape of every layer and the final output shape (len(layers) + 1 shapes)."""
    shapes = [tuple(in_shape)]
    for layer in layers:
        shapes.append(tuple(layer.output_shape(shapes[-1])))
    return shapes


def chain_num_keys(layers: Sequence[Layer]) -> int:
    return sum(layer.num_keys for layer in layers)


def chain_init(layers: Sequence[Layer], keys: jax.Array, shapes: Sequence[Shape], dtype: Any) -> tuple:
    """Per-layer params; layer i takes the next ``num_keys`` keys of ``keys`` (in order)."""
    params, start = [], 0
    for layer, shape in zip(layers, shapes):
        params.append(layer.init(keys[start:start + layer.num_keys], shape, dtype))
        start += layer.num_keys
    return tuple(params)


def chain_apply(layers: Sequence[Layer], params: Sequence[Any], x: jax.Array) -> jax.Array:
    for layer, p in zip(layers, params):
        x = layer.apply(p, x)
    return x


def chain_needs(layers: Sequence[Layer], tail: bool) -> list[bool]:
    """needs[i]: does the input of layer i need the full layout (module docstring)."""
    needs, need = [], tail
    for layer in reversed(layers):
        need = layer.needs_full if getattr(layer, "removes_spatial", False) else (need or layer.needs_full)
        needs.append(need)
    return needs[::-1]


def chain_kernel(layers: Sequence[Layer], state: KernelState, shapes: Sequence[Shape],
                 needs: Sequence[bool]) -> KernelState:
    for layer, shape, need in zip(layers, shapes, needs):
        if state.full and not need:
            state = to_diagonal(state)
        state = layer.kernel(state, shape)
    return state


class Residual(Layer):
    """x + branch(x) (module docstring); ``Residual(Conv(...), Relu(), Conv(...))``."""

    num_keys = 0

    def __init__(self, *branch: Layer) -> None:
        if not branch:
            raise ValueError("Residual needs at least one layer in its branch")
        for i, layer in enumerate(branch):
            if not isinstance(layer, Layer):
                raise TypeError(f"Residual branch entry {i} must be a layer (Dense, Conv, Relu, ...), got {layer!r}")
        if not any(layer.has_weights for layer in branch):
            raise ValueError("Residual branch must contain a weighted layer (Dense, Conv, SelfAttention): without one "
                             "the branch output is correlated with its input and the kernel is not the sum of the two")
        self.branch = tuple(branch)
        self.num_keys = chain_num_keys(self.branch)
        self.needs_full = any(layer.needs_full for layer in self.branch)
        self.has_weights = True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Residual) and other.branch == self.branch

    def __hash__(self) -> int:
        return hash(("Residual", self.branch))

    def __repr__(self) -> str:
        return self.describe()

    def describe(self) -> str:
        return "Residual(" + ", ".join(layer.describe() for layer in self.branch) + ")"

    def output_shape(self, in_shape: Shape) -> Shape:
        out = chain_shapes(self.branch, in_shape)[-1]
        if out != tuple(in_shape):
            raise self.error(in_shape, f"the branch maps it to shape {out}; x + branch(x) needs the same shape")
        return tuple(in_shape)

    def init(self, keys: jax.Array, in_shape: Shape, dtype: Any) -> tuple:
        return chain_init(self.branch, keys, chain_shapes(self.branch, in_shape), dtype)

    def apply(self, params: Sequence[Any], x: jax.Array) -> jax.Array:
        return x + chain_apply(self.branch, params, x)

    def kernel(self, state: KernelState, in_shape: Shape) -> KernelState:
        shapes = chain_shapes(self.branch, in_shape)
        out = chain_kernel(self.branch, state, shapes, [state.full] * len(self.branch))
        def add(a: jax.Array | None, b: jax.Array | None) -> jax.Array | None:
            return None if a is None else a + b

        return KernelState(add(state.nngp, out.nngp), add(state.ntk, out.ntk), add(state.var1, out.var1),
                           add(state.var2, out.var2), state.full, state.tape, state.same)
