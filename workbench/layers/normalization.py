"""Layer normalization (neural-tangents' ``stax.LayerNorm(axis, eps=1e-12)``; Ba et al. 2016).

Finite width: y = (x - mean_A x) / sqrt(var_A x + eps) over the axes A (``axis``; -1 is the
channels; a tuple may add position axes, never the batch axis 0).

Kernel (infinite channels, so the channel mean vanishes and the variance is deterministic):
with m(x, p) the variance K(x, x)(p, p) averaged over the position axes in A (itself if A is
only the channels), K'(p, q) = K(p, q) / sqrt((m(x1, p) + eps)(m(x2, q) + eps)), and the same
division of Theta. Normalizing over the channels is required (as in neural-tangents): without it
the output does not converge to a deterministic kernel.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from workbench.layers.base import KernelState, Layer, Shape, _diagonal, maybe, pair_broadcast, self_broadcast
from workbench.validation import check_real

EPS = 1e-12


def _norm_axes(layer: "LayerNorm", in_shape: Shape) -> tuple[int, ...]:
    axes = layer.axis if isinstance(layer.axis, tuple) else (layer.axis,)
    rank = len(in_shape)
    out = []
    for a in axes:
        if not -rank <= a < rank:
            raise layer.error(in_shape, f"axis {a} is out of range for rank {rank}")
        out.append(a % rank)
    if 0 in out:
        raise layer.error(in_shape, "normalizing over the batch axis 0 would couple the inputs; use axes >= 1")
    if rank - 1 not in out:
        raise layer.error(in_shape, f"axis={layer.axis} must include the channel axis -1 (normalization over "
                                    "channels is what makes the infinite-width kernel deterministic)")
    for a in out:
        if in_shape[a] < 2:
            raise layer.error(in_shape, f"the normalized axis {a} has size {in_shape[a]}: the variance over it is 0")
    return tuple(sorted(set(out)))


@dataclasses.dataclass(frozen=True)
class LayerNorm(Layer):
    """Normalize over ``axis`` (int or tuple; must include -1) with ``eps`` (module docstring)."""

    axis: int | tuple[int, ...] = -1
    eps: float = EPS

    def __post_init__(self) -> None:
        ax = self.axis
        if isinstance(ax, list):
            ax = tuple(ax)
            object.__setattr__(self, "axis", ax)
        items = ax if isinstance(ax, tuple) else (ax,)
        if not items or any(isinstance(a, bool) or not isinstance(a, int) for a in items):
            raise TypeError(f"LayerNorm axis must be an int or a tuple of ints, got {self.axis!r}")
        check_real("LayerNorm eps", self.eps, nonnegative=True)

    def describe(self) -> str:
        return f"LayerNorm(axis={self.axis})"

    def output_shape(self, in_shape: Shape) -> Shape:
        if len(in_shape) < 2:
            raise self.error(in_shape, "it needs inputs of rank >= 2 (n, ..., channels)")
        _norm_axes(self, in_shape)
        return in_shape

    def apply(self, params, x: jax.Array) -> jax.Array:
        axes = _norm_axes(self, x.shape)
        mean = jnp.mean(x, axis=axes, keepdims=True)
        var = jnp.var(x, axis=axes, keepdims=True)
        return (x - mean) / jnp.sqrt(var + self.eps)

    def kernel(self, state: KernelState, in_shape: Shape) -> KernelState:
        spatial = tuple(a for a in _norm_axes(self, in_shape) if a < len(in_shape) - 1)  # 1-based position axes
        full, eps = state.full, self.eps

        def scale(var: jax.Array) -> jax.Array:  # sqrt(m + eps) per position, (n, *spatial)
            d = _diagonal(var, 1) if full else var
            if spatial:
                d = jnp.broadcast_to(jnp.mean(d, axis=spatial, keepdims=True), d.shape)
            return jnp.sqrt(d + eps)

        s1, s2 = state.self_stats(scale)
        pair = jnp.multiply(*pair_broadcast(s1, s2, full))

        def own(var: jax.Array, s: jax.Array) -> jax.Array:
            return var / (jnp.multiply(*self_broadcast(s)) if full else s * s)

        return KernelState(maybe(jnp.divide, state.nngp, pair), maybe(jnp.divide, state.ntk, pair),
                           maybe(own, state.var1, s1), maybe(own, state.var2, s2), full, state.tape, state.same)
