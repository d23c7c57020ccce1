"""Convolution over 1-d (n, L, C) or 2-d (n, H, W, C) inputs, channels last, shared weights.

Finite width (neural-tangents' ``stax.Conv``): W of shape (*kernel_shape, C_in, channels),
fan_in = C_in prod(kernel_shape); "ntk": W, b ~ N(0, 1), h = (w_std / sqrt(fan_in)) (x * W) + b_std b;
"standard": W ~ N(0, w_std^2 / fan_in), b ~ N(0, b_std^2), h = x * W + b. ``*`` is
``lax.conv_general_dilated`` (cross-correlation) with ``strides`` and "SAME" (zero padding, the
smaller half first, output ceil(size/stride)) or "VALID" padding.

Kernel (Novak et al. 2019; Garriga-Alonso et al. 2019; Arora et al. 2019 for the CNTK): with
offsets k over the window and the window size |F|,
K'(p, q) = w_std^2 (1/|F|) sum_k K(s p + k, s q + k) + b_std^2 (zero outside the input),
"ntk": Theta' = K' + w_std^2 (1/|F|) sum_k Theta(s p + k, s q + k);
"standard": Theta' = fan_in (1/|F|) sum_k K(..) + [1 if bias] + w_std^2 (1/|F|) sum_k Theta(..).
In the diagonal layout only p = q is tracked (exact when nothing downstream mixes positions).
The sum is separable over spatial dimensions: one :func:`~workbench.layers.base.window_mean`
per dimension (the "diagonal" convolution that neural-tangents runs as a conv with an identity filter).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
from jax import lax

from workbench.layers.base import PADDINGS, KernelState, Layer, Shape, spatial_axes, window_geometry, window_mean
from workbench.layers.dense import add_bias, affine_kernel, check_affine, init_affine
from workbench.validation import check_choice, check_positive_int

_DIMENSION_NUMBERS = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC")}


def as_tuple(name: str, value: int | Sequence[int] | None, ndim: int | None = None) -> tuple[int, ...] | None:
    """``value`` as a tuple of positive ints (an int is one spatial dimension)."""
    if value is None:
        return None
    if isinstance(value, (int,)) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, (tuple, list)) or not value:
        raise TypeError(f"{name} must be a positive int or a tuple of positive ints, got {value!r}")
    out = tuple(check_positive_int(f"{name}[{i}]", v) for i, v in enumerate(value))
    if ndim is not None and len(out) != ndim:
        raise ValueError(f"{name} must have {ndim} entries (one per spatial dimension), got {out}")
    return out


def check_window(layer: Layer, in_shape: Shape, window: tuple[int, ...], strides: tuple[int, ...],
                 padding: str) -> Shape:
    """Spatial output shape of a window op on (n, *spatial, C); errors name the layer and the shape."""
    nd = len(window)
    layer.check_rank(in_shape, (nd + 2,), "(n, L, C)" if nd == 1 else "(n, H, W, C)" if nd == 2 else "(n, ..., C)")
    out = []
    for d, (size, w, s) in enumerate(zip(in_shape[1:-1], window, strides)):
        if padding == "VALID" and w > size:
            raise layer.error(in_shape, f"the window {window} is larger than the input along spatial dimension {d} "
                                        f"({w} > {size}) under VALID padding")
        out.append(window_geometry(size, w, s, padding)[0])
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class Conv(Layer):
    """Convolution with ``channels`` outputs and a ``kernel_shape`` window (module docstring)."""

    channels: int
    kernel_shape: int | tuple[int, ...]
    strides: int | tuple[int, ...] | None = None
    padding: str = "SAME"
    w_std: float = 1.0
    b_std: float | None = 0.0
    parametrization: str = "ntk"

    num_keys = 2
    has_weights = True

    def __post_init__(self) -> None:
        check_positive_int("Conv channels", self.channels)
        ks = as_tuple("Conv kernel_shape", self.kernel_shape)
        if len(ks) not in (1, 2):
            raise ValueError(f"Conv kernel_shape must have 1 (inputs (n, L, C)) or 2 (inputs (n, H, W, C)) entries, "
                             f"got {ks}")
        object.__setattr__(self, "kernel_shape", ks)
        st = as_tuple("Conv strides", self.strides, len(ks)) if self.strides is not None else (1,) * len(ks)
        object.__setattr__(self, "strides", st)
        check_choice("Conv padding", self.padding, PADDINGS)
        check_affine("Conv", self.w_std, self.b_std, self.parametrization)

    def describe(self) -> str:
        b = "no bias" if self.b_std is None else f"b_std={self.b_std:g}"
        return (f"Conv({self.channels}, {self.kernel_shape}, strides={self.strides}, {self.padding}, "
                f"w_std={self.w_std:g}, {b}, {self.parametrization})")

    def output_shape(self, in_shape: Shape) -> Shape:
        spatial = check_window(self, in_shape, self.kernel_shape, self.strides, self.padding)
        return (in_shape[0],) + spatial + (self.channels,)

    def fan_in(self, in_shape: Shape) -> int:
        return in_shape[-1] * math.prod(self.kernel_shape)

    def init(self, keys: jax.Array, in_shape: Shape, dtype: Any) -> dict[str, jax.Array]:
        shape = self.kernel_shape + (in_shape[-1], self.channels)
        return init_affine(keys, shape, self.channels, self.fan_in(in_shape), self.w_std, self.b_std,
                           self.parametrization, dtype)

    def apply(self, params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
        h = lax.conv_general_dilated(x, params["W"], self.strides, self.padding,
                                     dimension_numbers=_DIMENSION_NUMBERS[len(self.kernel_shape)])
        if self.parametrization == "ntk":
            h = (self.w_std / math.sqrt(self.fan_in(x.shape))) * h
        return add_bias(h, params, self.b_std, self.parametrization)

    def kernel(self, state: KernelState, in_shape: Shape) -> KernelState:
        nd = len(self.kernel_shape)

        def linear(a: jax.Array, batch_ndim: int) -> jax.Array:
            for d in range(nd):
                a = window_mean(a, spatial_axes(state.full, batch_ndim, d, nd), self.kernel_shape[d], self.strides[d],
                                self.padding)
            return a

        return affine_kernel(state, linear, self.w_std, self.b_std, self.parametrization, self.fan_in(in_shape))
