"""Average pooling, global average pooling and flattening (neural-tangents' ``stax`` conventions).

* ``AvgPool(window, strides=None, padding="VALID")``: y(p) = (1/|w|) sum_{k in window} x(s p + k),
  zero padding under "SAME", always divided by the full window size |w| (``normalize_edges=False``);
  ``strides=None`` means stride 1 (as in neural-tangents, not the window). Kernel, separable over
  dimensions: K'(p, q) = (1/|w|^2) sum_{k, l} K(s p + k, s q + l), and the same for Theta (no
  parameters). It needs the full position-by-position covariance.
* ``GlobalAvgPool()``: y = mean over all positions; K' = mean_{p, q} K(p, q) (Novak et al. 2019).
* ``Flatten()``: y = x reshaped to (n, positions * channels), no rescaling; its kernel (per output
  unit, as a following Dense divides by that fan-in) is the mean of the same-position kernel,
  K' = mean_p K(p, p) (so a Flatten readout only needs the diagonal layout).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from workbench.layers.base import PADDINGS, KernelState, Layer, Shape, _diagonal, maybe, spatial_axes, window_mean
from workbench.layers.conv import as_tuple, check_window
from workbench.validation import check_choice


@dataclasses.dataclass(frozen=True)
class AvgPool(Layer):
    """Average pooling over ``window`` (module docstring)."""

    window: int | tuple[int, ...]
    strides: int | tuple[int, ...] | None = None
    padding: str = "VALID"

    needs_full = True

    def __post_init__(self) -> None:
        w = as_tuple("AvgPool window", self.window)
        if len(w) not in (1, 2):
            raise ValueError(f"AvgPool window must have 1 or 2 entries, got {w}")
        object.__setattr__(self, "window", w)
        st = as_tuple("AvgPool strides", self.strides, len(w)) if self.strides is not None else (1,) * len(w)
        object.__setattr__(self, "strides", st)
        check_choice("AvgPool padding", self.padding, PADDINGS)

    def describe(self) -> str:
        return f"AvgPool({self.window}, strides={self.strides}, {self.padding})"

    def output_shape(self, in_shape: Shape) -> Shape:
        spatial = check_window(self, in_shape, self.window, self.strides, self.padding)
        return (in_shape[0],) + spatial + (in_shape[-1],)

    def apply(self, params, x: jax.Array) -> jax.Array:
        nd = len(self.window)
        for d in range(nd):
            x = window_mean(x, (1 + d,), self.window[d], self.strides[d], self.padding)
        return x

    def kernel(self, state: KernelState, in_shape: Shape) -> KernelState:
        nd = len(self.window)

        def pool(a: jax.Array, batch_ndim: int) -> jax.Array:
            for d in range(nd):
                for axis in spatial_axes(state.full, batch_ndim, d, nd):
                    a = window_mean(a, (axis,), self.window[d], self.strides[d], self.padding)
            return a

        return state.map(pool)


def _check_spatial(layer: Layer, in_shape: Shape) -> None:
    if len(in_shape) < 3:
        raise layer.error(in_shape, "it needs inputs with at least one position axis, (n, L, C) or (n, H, W, C)")


@dataclasses.dataclass(frozen=True)
class GlobalAvgPool(Layer):
    """Mean over all positions: (n, *spatial, C) -> (n, C) (module docstring)."""

    needs_full = True
    removes_spatial = True

    def describe(self) -> str:
        return "GlobalAvgPool()"

    def output_shape(self, in_shape: Shape) -> Shape:
        _check_spatial(self, in_shape)
        return (in_shape[0], in_shape[-1])

    def apply(self, params, x: jax.Array) -> jax.Array:
        return jnp.mean(x, axis=tuple(range(1, x.ndim - 1)))

    def kernel(self, state: KernelState, in_shape: Shape) -> KernelState:
        if not state.full:  # cannot happen inside a Net (it asks for the full layout); guard for direct use
            raise ValueError("GlobalAvgPool needs the full position-by-position covariance")
        return state.map(lambda a, b: jnp.mean(a, axis=tuple(range(b, a.ndim)))).replace(full=False)


@dataclasses.dataclass(frozen=True)
class Flatten(Layer):
    """Reshape (n, *spatial, C) -> (n, prod(spatial) C), no rescaling (module docstring)."""

    removes_spatial = True

    def describe(self) -> str:
        return "Flatten()"

    def output_shape(self, in_shape: Shape) -> Shape:
        if len(in_shape) < 2:
            raise self.error(in_shape, "it needs inputs of rank >= 2 (n, ..., channels)")
        return (in_shape[0], math.prod(in_shape[1:]))

    def apply(self, params, x: jax.Array) -> jax.Array:
        return x.reshape(x.shape[0], -1)

    def kernel(self, state: KernelState, in_shape: Shape) -> KernelState:
        def mean_diag(a: jax.Array, b: int) -> jax.Array:
            if state.full:
                a = _diagonal(a, b)
            return jnp.mean(a, axis=tuple(range(b, a.ndim))) if a.ndim > b else a

        return KernelState(maybe(mean_diag, state.nngp, 2), maybe(mean_diag, state.ntk, 2),
                           maybe(mean_diag, state.var1, 1), maybe(mean_diag, state.var2, 1), False, state.tape,
                           state.same)
