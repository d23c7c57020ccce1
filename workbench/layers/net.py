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
the inputs (float64 if x64 is enabled and the inputs are float64) in two passes:

1. self pass, once per input: the input's covariance with itself through the layers, recording
   on a tape only what the pair rules read (per-position variances; the attention matrices);
2. pair pass, per pair of inputs: NNGP and NTK, reading the tapes of the two inputs.

The pairs are handed to the device in blocks of ``block_size`` inputs per side (for x2=None only
the upper triangle of blocks, and of pairs within a diagonal block; the kernel is symmetric) and
assembled on the host; inside a block, the device holds the position-by-position kernels of only
as many pairs (and the self-pass of as many inputs) as fit in ``memory_limit`` bytes (default
:data:`DEFAULT_MEMORY`), looping over the rest. So the peak memory does not grow with the block
or with N (beyond the N x N result), and no self-covariance is computed more than once.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from workbench.kernels.analytic import Kernels
from workbench.layers.base import KernelState, Layer, Shape, Tape, _diagonal
from workbench.layers.combinators import (
    chain_apply,
    chain_init,
    chain_kernel,
    chain_needs,
    chain_num_keys,
    chain_shapes,
)
from workbench.validation import check_finite, check_params_finite, check_positive_int

#: default byte budget of the kernels in flight on the device (see the module docstring): small, since
#: the pairs are independent and a chunk of a few MB already vectorizes; raise it on accelerators
DEFAULT_MEMORY = 2**23
#: default number of inputs per side in one device call
DEFAULT_BLOCK = 256
#: arrays of the per-pair size alive at once in the pair pass (nngp, ntk, padded copies for the
#: convolutions, the arc-cosine intermediates): 15.8 in XLA's buffer assignment for the Myrtle-5 CNN
_LIVE_ARRAYS = 16
#: XLA options of the two kernel programs: the CPU backend's newer fusion emitters hold about twice
#: the compile-time memory (98 -> 41 MB for the Myrtle-5 pair program) and compile slower, for
#: ~20% faster execution; the kernel programs are compiled once per shape, so memory wins here.
#: Dropped automatically where the installed XLA does not know the option.
_COMPILER_OPTIONS = {"xla_cpu_use_fusion_emitters": False}


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
        xs2 = x1 if x2 is None else x2
        n2 = xs2.shape[0]
        limit = DEFAULT_MEMORY if memory_limit is None else check_positive_int("memory_limit", memory_limit)
        if block_size is not None:
            check_positive_int("block_size", block_size)
        b = DEFAULT_BLOCK if block_size is None else block_size
        b1, b2 = min(b, n1), min(b, n2)
        per_pair = max((math.prod(s[1:-1]) ** (2 if need else 1) for s, need in zip(shapes, needs)), default=1)
        per_pair = max(per_pair, math.prod(shapes[-1][1:-1]))
        chunk = max(1, limit // (_LIVE_ARRAYS * per_pair * x1.dtype.itemsize))
        unit = tuple((1,) + tuple(s[1:]) for s in shapes)  # the batch size is not part of the compiled program
        blocks1 = _blocks(x1, b1)
        blocks2 = blocks1 if x2 is None else _blocks(xs2, b2)
        self_pass, pair_pass = _programs()
        tapes1 = [self_pass(self, unit, needs, min(chunk, b1), blk) for blk in blocks1]
        tapes2 = tapes1 if x2 is None else [self_pass(self, unit, needs, min(chunk, b2), blk) for blk in blocks2]
        m = b1 * b2
        chunk = min(chunk, m)
        pair_fn = partial(pair_pass, self, unit, needs, chunk)
        out_nngp = out_ntk = None
        for i, (xa, ta) in enumerate(zip(blocks1, tapes1)):
            r1 = min(b1, n1 - i * b1)
            for j, (xb, tb) in enumerate(zip(blocks2, tapes2)):
                if x2 is None and j < i:
                    continue
                r2 = min(b2, n2 - j * b2)
                ia, ib = np.divmod(np.arange(r1 * r2), r2)
                if x2 is None and i == j:
                    keep = ia <= ib
                    ia, ib = ia[keep], ib[keep]
                count = ia.size
                pad = -(-m // chunk) * chunk - count
                ia, ib = np.pad(ia, (0, pad)), np.pad(ib, (0, pad))
                same = (ia == ib) & (x2 is None and i == j)  # pairs of one input with itself
                nn, nt = pair_fn(xa, xb, ta, tb, jnp.asarray(ia, np.int32), jnp.asarray(ib, np.int32),
                                 jnp.asarray(same), jnp.asarray(count, np.int32))
                nn, nt = np.asarray(nn)[:count], np.asarray(nt)[:count]
                if out_nngp is None:
                    out_nngp = np.zeros((n1, n2) + nn.shape[1:], nn.dtype)
                    out_ntk = np.zeros_like(out_nngp)
                ia, ib = ia[:count] + i * b1, ib[:count] + j * b2
                out_nngp[ia, ib], out_ntk[ia, ib] = nn, nt
                if x2 is None:
                    out_nngp[ib, ia], out_ntk[ib, ia] = nn, nt
        return Kernels(jnp.asarray(out_nngp), jnp.asarray(out_ntk))


def _blocks(x: jax.Array, b: int) -> list[jax.Array]:
    """x in blocks of b rows, the last one padded with copies of row 0 (its pairs are never computed)."""
    out = []
    for i in range(0, x.shape[0], b):
        blk = x[i:i + b]
        if blk.shape[0] < b:
            blk = jnp.concatenate([blk, jnp.broadcast_to(x[:1], (b - blk.shape[0],) + x.shape[1:])])
        out.append(blk)
    return out


def _chain(net: Net, shapes: tuple, needs: tuple, state: KernelState) -> KernelState:
    return chain_kernel(net.layers, state, shapes, needs)


@functools.cache
def _compiler_options() -> dict:
    try:
        jax.jit(lambda v: v + 1, compiler_options=_COMPILER_OPTIONS)(jnp.zeros(1)).block_until_ready()
        return dict(_COMPILER_OPTIONS)
    except Exception:  # noqa: BLE001 - an XLA without the option: compile with its defaults
        return {}


@functools.cache
def _programs() -> tuple:
    """The jitted self and pair passes (built on first use, with :func:`_compiler_options`)."""
    opts = _compiler_options()
    return (jax.jit(_self_pass, static_argnums=(0, 1, 2, 3), compiler_options=opts),
            jax.jit(_pair_pass, static_argnums=(0, 1, 2, 3), compiler_options=opts))


def _self_pass(net: Net, shapes: tuple, needs: tuple, chunk: int, x: jax.Array) -> tuple[jax.Array, ...]:
    """The tape of every input of the block x (``chunk`` inputs at a time): a tuple of (b, ...) arrays."""
    full = bool(needs[0]) if needs else False

    def one(xi: jax.Array) -> tuple[jax.Array, ...]:
        var = _input_state(xi[None], xi[None], full).var1
        tape = Tape()
        _chain(net, shapes, needs, KernelState(None, None, var, None, full, tape))
        return tuple(e[0] for e in tape.entries)

    return jax.lax.map(one, x, batch_size=chunk)


def _pair_pass(net: Net, shapes: tuple, needs: tuple, chunk: int, x1: jax.Array, x2: jax.Array, tape1: tuple,
               tape2: tuple, ia: jax.Array, ib: jax.Array, same: jax.Array,
               count: jax.Array) -> tuple[jax.Array, jax.Array]:
    """NNGP and NTK of the pairs (x1[ia[k]], x2[ib[k]]), k < count, ``chunk`` pairs at a time.

    ``same[k]``: the pair is one input with itself (the rules then use K12 = K11 at equal positions).
    """
    full = bool(needs[0]) if needs else False

    def one(xa, xb, ta, tb, sm) -> tuple[jax.Array, jax.Array]:
        nngp = _input_state(xa[None], xb[None], full).nngp
        tape = Tape.replaying([e[None] for e in ta], [e[None] for e in tb])
        state = KernelState(nngp, jnp.zeros_like(nngp), None, None, full, tape, sm.reshape(1, 1))
        state = _chain(net, shapes, needs, state)
        nn, nt = (_diagonal(state.nngp, 2), _diagonal(state.ntk, 2)) if state.full else (state.nngp, state.ntk)
        return nn[0, 0], nt[0, 0]

    out_shape = jax.eval_shape(one, x1[0], x2[0], tuple(e[0] for e in tape1), tuple(e[0] for e in tape2), same[0])
    m = ia.shape[0]
    outs = tuple(jnp.zeros((m,) + o.shape, o.dtype) for o in out_shape)

    def body(k, outs):
        sa = jax.lax.dynamic_slice_in_dim(ia, k * chunk, chunk)
        sb = jax.lax.dynamic_slice_in_dim(ib, k * chunk, chunk)
        sm = jax.lax.dynamic_slice_in_dim(same, k * chunk, chunk)
        res = jax.vmap(one)(x1[sa], x2[sb], tuple(e[sa] for e in tape1), tuple(e[sb] for e in tape2), sm)
        return tuple(jax.lax.dynamic_update_slice_in_dim(o, r, k * chunk, 0) for o, r in zip(outs, res))

    return jax.lax.fori_loop(0, (count + chunk - 1) // chunk, body, outs)


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
