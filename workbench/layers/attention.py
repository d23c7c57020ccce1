"""Multi-head softmax self-attention over the positions of a sequence or image.

Finite width (neural-tangents' ``stax.GlobalSelfAttention`` with n_chan_key = n_chan_val =
n_chan_out = ``channels``, ``n_heads = heads``; Hron et al. 2020, "Infinite attention: NNGP and NTK
for deep attention networks"): positions flattened to P, input x of shape (P, C_in); per head h
K_h = x W^K_h, Q_h = x W^Q_h, V_h = x W^V_h (all entries N(0, 1), (C_in, channels));
G_h = softmax_rows( w_query_std w_key_std Q_h K_h^T / (C_in channels^a) ), a = 1 with
``linear_scaling=True`` (and then, as in neural-tangents, the query weights are TIED to the key
weights, Q_h = K_h: independent ones would make the logits vanish), a = 1/2 otherwise;
y = concat_h(G_h V_h) W^O w_value_std w_out_std / sqrt(channels heads C_in) + b_std b.

Kernel (``linear_scaling=True`` only; with a = 1/2 the limit has no closed form): the logits
converge to w_q w_k K(x, x)(i, j), so G(x) = softmax_j(w_q w_k K(x, x)(i, j)) is deterministic and
K'(x1, x2)(i, l) = (w_v w_o)^2 sum_{j, k} G(x1)_{ij} K(x1, x2)(j, k) G(x2)_{lk} + b_std^2,
Theta' = (w_v w_o)^2 G(x1) Theta G(x2)^T + b_std^2 + 2 (K' - b_std^2)
(value and output weights each contribute K' - b_std^2; the key weights' share vanishes).
It needs the full position-by-position covariance. ``b_std=None``: no bias.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp

from workbench.layers.base import KernelState, Layer, Shape, maybe
from workbench.validation import check_positive_int, check_real


@dataclasses.dataclass(frozen=True)
class SelfAttention(Layer):
    """Self-attention with ``heads`` heads of ``channels`` finite channels (module docstring)."""

    heads: int
    w_key_std: float = 1.0
    w_query_std: float = 1.0
    w_value_std: float = 1.0
    w_out_std: float = 1.0
    b_std: float | None = 0.0
    linear_scaling: bool = True
    channels: int = 64

    needs_full = True
    num_keys = 5
    has_weights = True

    def __post_init__(self) -> None:
        check_positive_int("SelfAttention heads", self.heads)
        check_positive_int("SelfAttention channels", self.channels)
        for name in ("w_key_std", "w_query_std", "w_value_std", "w_out_std"):
            check_real(f"SelfAttention {name}", getattr(self, name), nonnegative=True)
        if self.b_std is not None:
            check_real("SelfAttention b_std", self.b_std, nonnegative=True)
        if not isinstance(self.linear_scaling, bool):
            raise TypeError(f"SelfAttention linear_scaling must be True or False, got {self.linear_scaling!r}")

    def describe(self) -> str:
        b = "no bias" if self.b_std is None else f"b_std={self.b_std:g}"
        return (f"SelfAttention(heads={self.heads}, channels={self.channels}, w_key_std={self.w_key_std:g}, "
                f"w_query_std={self.w_query_std:g}, w_value_std={self.w_value_std:g}, "
                f"w_out_std={self.w_out_std:g}, {b}, linear_scaling={self.linear_scaling})")

    def output_shape(self, in_shape: Shape) -> Shape:
        if len(in_shape) < 3:
            raise self.error(in_shape, "attention needs inputs with a position axis, (n, L, C) or (n, H, W, C); "
                                       "got no position axis")
        return in_shape[:-1] + (self.channels,)

    def init(self, keys: jax.Array, in_shape: Shape, dtype: Any) -> dict[str, jax.Array]:
        c_in, ch, h = in_shape[-1], self.channels, self.heads
        p = {"key": jax.random.normal(keys[0], (h, c_in, ch), dtype),
             "value": jax.random.normal(keys[2], (h, c_in, ch), dtype),
             "out": jax.random.normal(keys[3], (h * ch, ch), dtype)}
        if not self.linear_scaling:
            p["query"] = jax.random.normal(keys[1], (h, c_in, ch), dtype)
        if self.b_std is not None:
            p["b"] = jax.random.normal(keys[4], (ch,), dtype)
        return p

    def apply(self, params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
        n, c_in, ch = x.shape[0], x.shape[-1], self.channels
        flat = x.reshape(n, -1, c_in)  # (n, P, C_in)
        keys = jnp.einsum("npc,hcd->hnpd", flat, params["key"])
        queries = keys if self.linear_scaling else jnp.einsum("npc,hcd->hnpd", flat, params["query"])
        values = jnp.einsum("npc,hcd->hnpd", flat, params["value"])
        scale = self.w_query_std * self.w_key_std / (c_in * ch ** (1.0 if self.linear_scaling else 0.5))
        g = jax.nn.softmax(scale * jnp.einsum("hnpd,hnqd->hnpq", queries, keys), axis=-1)
        heads = jnp.einsum("hnpq,hnqd->nphd", g, values).reshape(n, flat.shape[1], self.heads * ch)
        y = heads @ params["out"] * (self.w_value_std * self.w_out_std / math.sqrt(ch * self.heads * c_in))
        if self.b_std is not None:
            y = y + self.b_std * params["b"].reshape(1, 1, -1)
        return y.reshape(x.shape[:-1] + (ch,))

    def kernel(self, state: KernelState, in_shape: Shape) -> KernelState:
        if not self.linear_scaling:
            raise ValueError(f"{self.describe()}: the infinite-width kernel of softmax attention with 1/sqrt(channels) "
                             "logit scaling has no closed form (Hron et al. 2020); use linear_scaling=True")
        if not state.full:
            raise ValueError("SelfAttention needs the full position-by-position covariance")
        P = math.prod(in_shape[1:-1])
        qk = self.w_query_std * self.w_key_std
        ov2 = (self.w_value_std * self.w_out_std) ** 2
        b2 = 0.0 if self.b_std is None else float(self.b_std) ** 2
        g1, g2 = state.self_stats(lambda v: jax.nn.softmax(qk * v.reshape(v.shape[0], P, P), axis=-1))

        def pair(a: jax.Array) -> jax.Array:
            n1, n2 = a.shape[:2]
            return jnp.einsum("aij,abjk,blk->abil", g1, a.reshape(n1, n2, P, P), g2).reshape(a.shape)

        def own(a: jax.Array, g: jax.Array) -> jax.Array:
            return ov2 * jnp.einsum("aij,ajk,alk->ail", g, a.reshape(a.shape[0], P, P), g).reshape(a.shape) + b2

        nngp = ntk = None
        if state.nngp is not None:
            nngp = ov2 * pair(state.nngp) + b2
            ntk = ov2 * pair(state.ntk) + b2 + 2 * (nngp - b2)
        return KernelState(nngp, ntk, maybe(own, state.var1, g1), maybe(own, state.var2, g2), True, state.tape,
                           state.same)
