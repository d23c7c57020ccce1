"""The layer protocol, the kernel state that layers transform, and the window sums they share.

A layer is a frozen dataclass with

* ``output_shape(in_shape) -> out_shape``: shape inference on the shape of one batch
  ``(n, *spatial, channels)`` (channels last, as in neural-tangents' ``stax``); raises
  :class:`LayerShapeError` naming the layer and the shape when the input does not fit;
* ``num_keys``: how many PRNG keys ``init`` consumes; ``init(keys, in_shape) -> params``;
* ``apply(params, x)``: the finite-width forward pass;
* ``kernel(state, in_shape) -> state``: the infinite-width rule on a :class:`KernelState`;
* ``needs_full``: True if the rule needs the covariance between different positions.

The kernel state holds, for a block of inputs x1 (n1 of them) and x2 (n2), the NNGP and NTK
per pair of inputs and, for the activations' variances, the covariance of each input with
itself. Two layouts (neural-tangents' ``diagonal_spatial``):

* diagonal (``full=False``): ``nngp[a, b, *p]`` = K(x1_a at position p, x2_b at position p),
  ``var1[a, *p]``; exact for networks whose readout flattens (Flatten then Dense): every layer
  before it maps same-position covariances to same-position covariances;
* full (``full=True``): ``nngp[a, b, *p, *q]`` between position p of x1_a and q of x2_b,
  ``var1[a, *p, *q]``; needed before pooling, global pooling and attention, which mix positions.

All covariances are per channel (averaged over channels), as in Lee et al. 2018, Novak et al.
2019 ("Bayesian deep convolutional networks with many channels are Gaussian processes") and
neural-tangents (Novak et al. 2020).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

Shape = tuple[int, ...]
PADDINGS = ("SAME", "VALID")
PARAMETRIZATIONS = ("ntk", "standard")


class LayerShapeError(ValueError):
    """An input shape a layer cannot take (the message names the layer and the shape)."""


class Tape:
    """Self-statistics of the inputs that the pair rules read (e.g. per-position variances), in layer order.

    The self pass (:meth:`recording`) appends fn(var) for every request of
    :meth:`KernelState.self_stats`; the pair pass (:meth:`replaying`) hands back the recorded
    entries of x1 and of x2 in the same order (layer code is traced in the same order in both).
    """

    def __init__(self, side1: list | None = None, side2: list | None = None) -> None:
        self.entries: list[jax.Array] = [] if side1 is None else list(side1)
        self.side2 = None if side2 is None else list(side2)
        self.recording = side1 is None
        self.pos = 0

    @classmethod
    def replaying(cls, side1: Sequence[jax.Array], side2: Sequence[jax.Array]) -> Tape:
        if len(side1) != len(side2):
            raise ValueError(f"tapes of x1 and x2 differ in length ({len(side1)} != {len(side2)})")
        return cls(list(side1), list(side2))

    def take(self, fn, var: jax.Array | None) -> tuple[jax.Array, jax.Array]:
        if self.recording:
            s = fn(var)
            self.entries.append(s)
            return s, s
        if self.pos >= len(self.entries):
            raise RuntimeError("the pair pass asked for more self-statistics than the self pass recorded")
        s1, s2 = self.entries[self.pos], self.side2[self.pos]
        self.pos += 1
        return s1, s2


@dataclasses.dataclass
class KernelState:
    """Kernels of a block of input pairs after some layers (see the module docstring for layouts).

    ``nngp``, ``ntk``: (n1, n2, *S); ``var1``: (n1, *S); ``var2``: (n2, *S), with S the spatial
    shape (diagonal layout) or the spatial shape twice (full layout). ``full`` says which.

    Three uses (a layer rule updates every field that is not None):

    * one pass (``tape=None``): all four arrays;
    * self pass (:func:`workbench.layers.net` runs it once per input): ``var1`` only, ``tape``
      recording the statistics that the pair rules will need;
    * pair pass: ``nngp`` and ``ntk`` only (var1 = var2 = None), the statistics replayed from the
      tapes of x1 and x2. The pair pass never holds the self-covariances: it is what keeps the
      memory of the position-by-position kernels at the pairs in flight.
    """

    nngp: jax.Array | None
    ntk: jax.Array | None
    var1: jax.Array | None
    var2: jax.Array | None
    full: bool
    tape: Tape | None = None
    #: pair pass only: a boolean per pair (broadcastable against nngp), True where x1 and x2 are the same
    #: input, so that the rules may use K(x, x)(p, p) = var(x)(p) exactly (see ``Relu``: the arc-cosine
    #: derivative kernel turns a 1e-16 difference into 1e-8 at angle 0)
    same: jax.Array | None = None

    def replace(self, **kw: Any) -> KernelState:
        return dataclasses.replace(self, **kw)

    def map(self, fn) -> KernelState:
        """Apply one linear map (over the spatial axes) to every array of the state."""
        return self.replace(nngp=maybe(fn, self.nngp, 2), ntk=maybe(fn, self.ntk, 2), var1=maybe(fn, self.var1, 1),
                            var2=maybe(fn, self.var2, 1))

    def self_stats(self, fn) -> tuple[jax.Array, jax.Array]:
        """(fn(var1), fn(var2)): a statistic of each input's self-covariance (n, *S) that a pair rule needs.

        Computed (one pass), computed and recorded (self pass) or replayed from the tapes (pair pass).
        """
        if self.tape is None:
            return fn(self.var1), fn(self.var2)
        return self.tape.take(fn, self.var1)

    def position_variances(self) -> tuple[jax.Array, jax.Array]:
        """Per-position variances of x1 and x2, shapes (n1, *spatial) and (n2, *spatial)."""
        full = self.full
        return self.self_stats(lambda v: _diagonal(v, 1) if full else v)

    def pair_variances(self) -> tuple[jax.Array, jax.Array]:
        """(k11, k22) broadcastable against nngp: k11[a, 1, *p, 1...] = var(x1_a at p), k22[1, b, 1..., *q].

        (Diagonal layout: k11 = d1[:, None], k22 = d2[None, :].)
        """
        d1, d2 = self.position_variances()
        return pair_broadcast(d1, d2, self.full)


def maybe(fn, a: jax.Array | None, *args: Any) -> jax.Array | None:
    """fn(a, *args), or None for an absent array of the state."""
    return None if a is None else fn(a, *args)


def pair_broadcast(d1: jax.Array, d2: jax.Array, full: bool) -> tuple[jax.Array, jax.Array]:
    """Per-position statistics (n1, *S), (n2, *S) broadcast against a pair array (n1, n2, *S[, *S])."""
    if not full:
        return d1[:, None], d2[None, :]
    one = (1,) * (d1.ndim - 1)
    return d1.reshape(d1.shape[:1] + (1,) + d1.shape[1:] + one), d2.reshape((1,) + d2.shape[:1] + one + d2.shape[1:])


def self_broadcast(d: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per-position statistics (n, *S) as the (p, q) factors of a full-layout self-covariance (n, *S, *S)."""
    one = (1,) * (d.ndim - 1)
    return d.reshape(d.shape + one), d.reshape(d.shape[:1] + one + d.shape[1:])


def _diagonal(x: jax.Array, batch_ndim: int) -> jax.Array:
    """The same-position entries x[..., *p, *p] of a full-layout array (batch axes first)."""
    s = (x.ndim - batch_ndim) // 2
    spatial = x.shape[batch_ndim:batch_ndim + s]
    size = math.prod(spatial)
    flat = x.reshape(x.shape[:batch_ndim] + (size, size))
    return jnp.diagonal(flat, axis1=-2, axis2=-1).reshape(x.shape[:batch_ndim] + spatial)


def to_diagonal(state: KernelState) -> KernelState:
    """Drop the covariances between different positions (full -> diagonal layout)."""
    if not state.full:
        return state
    return KernelState(maybe(_diagonal, state.nngp, 2), maybe(_diagonal, state.ntk, 2),
                       maybe(_diagonal, state.var1, 1), maybe(_diagonal, state.var2, 1), False, state.tape,
                       state.same)


# ----------------------------------------------------------------------------- window sums
def window_geometry(size: int, window: int, stride: int, padding: str) -> tuple[int, int, int]:
    """(out, pad_lo, pad_hi) of a window along one axis, as ``lax.conv_general_dilated`` pads.

    SAME: out = ceil(size / stride), total padding max((out - 1) stride + window - size, 0), split
    with the smaller half first; VALID: out = (size - window) // stride + 1, no padding.
    """
    if padding == "SAME":
        out = -(-size // stride)
        total = max((out - 1) * stride + window - size, 0)
        return out, total // 2, total - total // 2
    return (size - window) // stride + 1, 0, 0


def _pad(x: jax.Array, axes: Sequence[int], lo: int, hi: int) -> jax.Array:
    if lo == 0 and hi == 0:
        return x
    widths = [(0, 0)] * x.ndim
    for a in axes:
        widths[a] = (lo, hi)
    return jnp.pad(x, widths)


def window_mean(x: jax.Array, axes: Sequence[int], window: int, stride: int, padding: str) -> jax.Array:
    """(1/window) sum_k x_padded[..., stride i + k, ...] with the SAME offset k on every axis in ``axes``.

    One axis: average pooling of a diagonal-layout kernel (and of each half of a full-layout one).
    Two axes (position p of x1 and q of x2 along one spatial dimension): the covariance rule of a
    convolution, K'(p, q) = mean_k K(p + k, q + k) (weight sharing correlates equal offsets only).
    Zero padding, division by the full window (neural-tangents' ``normalize_edges=False``).
    """
    size = x.shape[axes[0]]
    out, lo, hi = window_geometry(size, window, stride, padding)
    x = _pad(x, axes, lo, hi)
    total = None
    for k in range(window):
        start = [0] * x.ndim
        limit = list(x.shape)
        strides = [1] * x.ndim
        for a in axes:
            start[a] = k
            limit[a] = k + (out - 1) * stride + 1
            strides[a] = stride
        piece = lax.slice(x, start, limit, strides)
        total = piece if total is None else total + piece
    return total / window


def describe_shape(shape: Shape) -> str:
    return "(" + ", ".join("n" if i == 0 else str(d) for i, d in enumerate(shape)) + ")"


class Layer:
    """Base class of the layers (frozen dataclasses); see the module docstring for the protocol."""

    needs_full: bool = False
    num_keys: int = 0
    has_weights: bool = False

    def describe(self) -> str:  # pragma: no cover - every layer overrides
        return type(self).__name__ + "()"

    def error(self, in_shape: Shape, what: str) -> LayerShapeError:
        return LayerShapeError(f"{self.describe()} cannot take inputs of shape {describe_shape(in_shape)}: {what}")

    def check_rank(self, in_shape: Shape, ranks: Sequence[int], layout: str) -> None:
        if len(in_shape) not in ranks:
            raise self.error(in_shape, f"it needs inputs of rank {' or '.join(map(str, ranks))} ({layout}), "
                                       f"got rank {len(in_shape)}")

    def output_shape(self, in_shape: Shape) -> Shape:
        return in_shape

    def init(self, keys: jax.Array, in_shape: Shape, dtype: Any) -> Any:
        return ()

    def apply(self, params: Any, x: jax.Array) -> jax.Array:  # pragma: no cover - every layer overrides
        raise NotImplementedError

    def kernel(self, state: KernelState, in_shape: Shape) -> KernelState:  # pragma: no cover
        raise NotImplementedError


def spatial_axes(full: bool, batch_ndim: int, dim: int, ndim_spatial: int) -> tuple[int, ...]:
    """The axes of spatial dimension ``dim`` in a kernel array (full or diagonal layout) with ``batch_ndim`` batch axes."""
    if full:
        return (batch_ndim + dim, batch_ndim + ndim_spatial + dim)
    return (batch_ndim + dim,)
