"""``serial(*layers) -> Net``: a network with a finite-width forward pass and infinite-width kernels.

``Net.init(key, input_shape)`` (``input_shape`` = the batch shape (n, *spatial, channels), n may
be -1) returns a tuple with one entry per layer (a dict of arrays, or () for parameter-free layers).
The key is split into as many keys as the layers draw (2 per Dense/Conv, 5 per SelfAttention) and
handed out in order: ``serial(Dense, act, ..., Dense)`` draws exactly what
:meth:`workbench.nets.MLP.init` draws, so with params converted by :func:`mlp_params` (the MLP's
list of layer dicts, with () for each activation) both give the same outputs for the same key.

``Net.kernels(x1, x2=None)``: the infinite-width NNGP and NTK of one output unit
(:class:`workbench.kernels.analytic.Kernels`, each (n1, n2)); for a net whose output keeps its
position axes, the kernel between equal positions, (n1, n2, *spatial). Computed in the dtype of
the inputs (float64 if x64 is enabled and the inputs are float64), in blocks of at most
``block_size`` inputs per side, assembled on the host (for x2=None only the upper triangle of
blocks; the kernel is symmetric). The default block size keeps the largest per-block kernel state
under ``memory_limit`` bytes (default 1 GiB).
"""

from __future__ import annotations

import dataclasses
import math
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from workbench.kernels.analytic import Kernels
from workbench.layers.base import KernelState, Layer, Shape, _diagonal
from workbench.layers.combinators import (
    chain_apply,
    chain_init,
    chain_kernel,
    chain_needs,
    chain_num_keys,
    chain_shapes,
)
from workbench.validation import check_finite, check_params_finite, check_positive_int

#: default byte budget of one block's kernel state (see the module docstring)
DEFAULT_MEMORY = 2**30
#: arrays of the per-pair size alive at once inside a layer rule (nngp, ntk, expectations, temporaries)
_LIVE_ARRAYS = 10


def _input_state(x1: jax.Array, x2: jax.Array, full: bool) -> KernelState:
    """Per-channel input covariances x.x'/C at equal positions (diagonal) or all position pairs (full)."""
    n1, n2, c = x1.shape[0], x2.shape[0], x1.shape[-1]
    spatial = x1.shape[1:-1]
    a, b = x1.reshape(n1, -1, c), x2.reshape(n2, -1, c)
    hi = jax.lax.Precision.HIGHEST
    if full:
        nngp = jnp.einsum("apc,bqc->abpq", a, b, precision=hi).reshape((n1, n2) + spatial * 2) / c
        v1 = jnp.einsum("apc,aqc->apq", a, a, precision=hi).reshape((n1,) + spatial * 2) / c
        v2 = jnp.einsum("apc,aqc->apq", b, b, precision=hi).reshape((n2,) + spatial * 2) / c
    else:
        nngp = jnp.einsum("apc,bpc->abp", a, b, precision=hi).reshape((n1, n2) + spatial) / c
        v1 = jnp.sum(a * a, axis=-1).reshape((n1,) + spatial) / c
        v2 = jnp.sum(b * b, axis=-1).reshape((n2,) + spatial) / c
    return KernelState(nngp, jnp.zeros_like(nngp), v1, v2, full)  # no parameters below the input: Theta = 0


@dataclasses.dataclass(frozen=True)
class Net:
    """A chain of layers (build it with :func:`serial`); see the module docstring."""

    layers: tuple[Layer, ...]

    # ------------------------------------------------------------------ structure
    def describe(self) -> str:
        return "serial(\n" + "".join(f"  {layer.describe()},\n" for layer in self.layers) + ")"

    def output_shape(self, input_shape: Shape) -> Shape:
        """Shape of the output for a batch of ``input_shape`` (errors name the layer and the shape)."""
        return self._shapes(input_shape)[-1]

    def _shapes(self, input_shape: Any) -> list[Shape]:
        if not isinstance(input_shape, (tuple, list)) or len(input_shape) < 2:
            raise ValueError(f"input_shape must be a batch shape (n, ..., channels) of length >= 2, got {input_shape!r}")
        shape = tuple(int(d) for d in input_shape)
        if any(d < 1 for d in shape[1:]):
            raise ValueError(f"input_shape must have positive sizes after the batch axis, got {shape}")
        return chain_shapes(self.layers, (max(shape[0], 1),) + shape[1:])

    # ------------------------------------------------------------------ finite width
    def init(self, key: jax.Array, input_shape: Shape, dtype: Any = None) -> tuple:
        """Parameters for inputs of batch shape ``input_shape`` (deterministic in ``key``)."""
        shapes = self._shapes(input_shape)
        dtype = jnp.result_type(float) if dtype is None else dtype
        total = chain_num_keys(self.layers)
        keys = jax.random.split(key, total) if total else jnp.zeros((0, 2), jnp.uint32)
        return chain_init(self.layers, keys, shapes, dtype)

    def apply(self, params: tuple, x: jax.Array, *, check: bool = True) -> jax.Array:
        """Outputs of the finite network for the batch ``x`` of shape (n, *spatial, channels).

        ``check=True`` (default): concrete parameters (outside ``jit``) holding NaN or inf are refused, naming
        the layer, as :meth:`workbench.nets.MLP.apply` does; under tracing the check is skipped.
        """
        if not isinstance(params, (tuple, list)) or len(params) != len(self.layers):
            raise ValueError(f"params must be a tuple of {len(self.layers)} per-layer entries (from Net.init), "
                             f"got {type(params).__name__} of length {len(params) if hasattr(params, '__len__') else '?'}")
        if check:
            check_params_finite("params", params)
        self._shapes(tuple(np.shape(x)))
        check_finite("x", x)
        return chain_apply(self.layers, params, x)

    # ------------------------------------------------------------------ infinite width
    def kernels(self, x1: jax.Array, x2: jax.Array | None = None, *, block_size: int | None = None,
                memory_limit: int | None = None) -> Kernels:
        """Infinite-width NNGP and NTK of one output unit between ``x1`` and ``x2`` (default x1).

        Example:
          >>> import jax.numpy as jnp
          >>> from workbench.layers import serial, Conv, Relu, GlobalAvgPool, Dense
          >>> net = serial(Conv(8, (3, 3), w_std=2**0.5), Relu(), GlobalAvgPool(), Dense(1))
          >>> net.kernels(jnp.ones((2, 4, 4, 3))).ntk.shape
          (2, 2)
        """
        x1 = jnp.asarray(x1)
        x1 = x1.astype(jnp.result_type(x1, float))
        shapes = self._shapes(tuple(x1.shape))
        check_finite("x1", x1)
        if x2 is not None:
            x2 = jnp.asarray(x2, x1.dtype)
            if x2.shape[1:] != x1.shape[1:]:
                raise ValueError(f"x2 must have the feature shape of x1, {x1.shape[1:]}, got {x2.shape[1:]}")
            check_finite("x2", x2)
        needs = tuple(chain_needs(self.layers, False))
        n1 = x1.shape[0]
        n2 = n1 if x2 is None else x2.shape[0]
        if block_size is None:
            limit = DEFAULT_MEMORY if memory_limit is None else check_positive_int("memory_limit", memory_limit)
            per_pair = max((math.prod(s[1:-1]) ** (2 if need else 1) for s, need in zip(shapes, needs)), default=1)
            per_pair = max(per_pair, math.prod(shapes[-1][1:-1]))
            block_size = max(1, int(math.sqrt(limit / (_LIVE_ARRAYS * per_pair * x1.dtype.itemsize))))
        else:
            block_size = check_positive_int("block_size", block_size)
        block = partial(_kernel_block, self, tuple(shapes), needs)
        if n1 <= block_size and n2 <= block_size:
            nngp, ntk = block(x1, x1 if x2 is None else x2)
            return Kernels(nngp, ntk)
        return _blocked(block, x1, x2, block_size)


@partial(jax.jit, static_argnums=(0, 1, 2))
def _kernel_block(net: Net, shapes: tuple, needs: tuple, x1: jax.Array, x2: jax.Array) -> tuple[jax.Array, jax.Array]:
    state = _input_state(x1, x2, bool(needs[0]) if needs else False)
    state = chain_kernel(net.layers, state, shapes, needs)
    if state.full:
        return _diagonal(state.nngp, 2), _diagonal(state.ntk, 2)
    return state.nngp, state.ntk


def _blocked(block, x1: jax.Array, x2: jax.Array | None, b: int) -> Kernels:
    n1 = x1.shape[0]
    xs2 = x1 if x2 is None else x2
    n2 = xs2.shape[0]
    starts1, starts2 = range(0, n1, b), range(0, n2, b)
    out_nngp = out_ntk = None
    for i in starts1:
        for j in starts2:
            if x2 is None and j < i:
                continue
            nn, nt = block(x1[i:i + b], xs2[j:j + b])
            nn, nt = np.asarray(nn), np.asarray(nt)
            if out_nngp is None:
                out_nngp = np.zeros((n1, n2) + nn.shape[2:], nn.dtype)
                out_ntk = np.zeros_like(out_nngp)
            out_nngp[i:i + b, j:j + b], out_ntk[i:i + b, j:j + b] = nn, nt
            if x2 is None and j > i:
                perm = (1, 0) + tuple(range(2, nn.ndim))
                out_nngp[j:j + b, i:i + b] = nn.transpose(perm)
                out_ntk[j:j + b, i:i + b] = nt.transpose(perm)
    return Kernels(jnp.asarray(out_nngp), jnp.asarray(out_ntk))


def serial(*layers: Layer) -> Net:
    """The network layers[0] -> layers[1] -> ... (see the module docstring)."""
    if not layers:
        raise ValueError("serial needs at least one layer")
    for i, layer in enumerate(layers):
        if isinstance(layer, Net):
            layers = layers[:i] + layer.layers + layers[i + 1:]
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(f"serial: entry {i} must be a layer (Dense, Conv, Relu, ...), got {layer!r}")
    return Net(tuple(layers))


def mlp_params(params: list[dict[str, jax.Array]]) -> tuple:
    """:class:`workbench.nets.MLP` params -> the params of the equivalent ``serial(Dense, act, ..., Dense)``."""
    out: list[Any] = []
    for i, p in enumerate(params):
        if i:
            out.append(())
        out.append(dict(p))
    return tuple(out)
