"""The exact diagonal of an MLP's loss Hessian (or GGN) by second-order backpropagation, and its exact trace.

A stochastic trace estimator needs m ~ 2 ||H||_F^2 / (tr H)^2 / rel_err^2 probes; on a flat Hessian
spectrum (the usual case at initialization) that is hundreds of Hessian-vector products for 1%. For the
workbench's :class:`workbench.nets.MLP` the diagonal itself is cheap, because the examples of the batch do
not interact and every layer is linear in its own weights (the scheme of Becker & LeCun 1989, "Improving
the convergence of back-propagation learning with second order methods", made exact as in BackPACK's
``DiagHessian``: Dangel, Kunstner & Hennig 2020, ICLR). With h_l the pre-activations of layer l (readout
l = L, ``h_L = f``), c_l, d_l the parametrization's weight and bias multipliers (ntk: w_std/sqrt(fan_in),
b_std; standard and mup: 1, 1) and a_{l-1} the layer's input:

    d^2 loss / dW_l[j, i]^2 = c_l^2 sum_n a_{l-1, n j}^2 (H_{h_l, n})_{ii},
    d^2 loss / db_l[i]^2    = d_l^2 sum_n (H_{h_l, n})_{ii},

where H_{h_l, n} = d^2 loss / dh_{l, n}^2 (one example) follows from the output loss's Hessian by the
backward recursion (J_l = dh_{l+1}/dh_l = c_{l+1} W_{l+1}^T diag(phi'(h_l)))

    H_{h_L} = d^2 loss / df^2,    H_{h_l} = J_l^T H_{h_{l+1}} J_l + diag(phi''(h_l) * dloss/da_l).

The first term is carried as A_l H_f A_l^T with A_l of shape (width, out_dim) (the GGN part; cost
O(n width^2 out_dim) per layer), the second (the "residual" part, absent from the GGN) as a diagonal for
the top hidden layer and as a full (width, width) matrix per example below it: O(n width^3) per layer for
depth >= 3, computed in chunks of examples so memory stays bounded.

Convention (``docs/theory.md`` section 14): the Hessian of exactly the loss of :func:`workbench.hessian.mlp_loss`
(a mean over the batch), the same operator as :func:`workbench.hessian.hessian_operator`; the diagonal comes in
the parameters' pytree structure, and its flat form (:func:`workbench.hessian.flatten_params`) is diag(H) of that
operator.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from workbench.hessian import KINDS, ComposedLoss, check_batch
from workbench.linalg.trace import TraceEstimate
from workbench.nets import MLP
from workbench.validation import check_choice, check_positive_int

__all__ = ["exact_trace", "hessian_diagonal"]

_HIGHEST = jax.lax.Precision.HIGHEST
# Elements of the largest per-chunk array (the (chunk, width, width) residual blocks of depth >= 3):
# 2^23 float32 = 32 MiB, so a chunk stays well inside the cache-friendly range and memory is bounded.
_CHUNK_ELEMENTS = 2 ** 23


def _mlp_of(loss_fn: Any) -> MLP:
    apply_fn = getattr(loss_fn, "apply_fn", None)
    net = getattr(apply_fn, "__self__", None)
    if not isinstance(loss_fn, ComposedLoss) or not isinstance(net, MLP):
        raise TypeError(
            "the exact Hessian diagonal needs the ComposedLoss of a workbench MLP, as made by "
            f"workbench.hessian.mlp_loss(net, loss); got {loss_fn!r}. For other models use the stochastic "
            "estimators (workbench.linalg.hutchinson_trace on workbench.hessian.hessian_operator)"
        )
    return net


def _multipliers(net: MLP, fan_in: int) -> tuple[float, float]:
    if net.parametrization == "ntk":
        return net.w_std / math.sqrt(fan_in), float(net.b_std or 0.0)
    return 1.0, 1.0


def _derivatives(phi: Any, h: jax.Array) -> tuple[jax.Array, jax.Array]:
    """phi'(h) and phi''(h) of an elementwise activation, by forward-mode autodiff."""
    ones = jnp.ones_like(h)

    def d1(u):
        return jax.jvp(phi, (u,), (ones,))[1]

    first, second = jax.jvp(d1, (h,), (ones,))
    return first, second


def _chunk_diagonal(net: MLP, output_loss: Any, kind: str, n_total: jax.Array, params: list[dict[str, jax.Array]],
                    x: jax.Array, y: jax.Array, mask: jax.Array) -> list[dict[str, jax.Array]]:
    """Sum over the (masked) examples of one chunk of the diagonal contributions, per layer."""
    depth = net.depth
    phi = net.phi
    # forward pass: the pre-activations h_l of every layer and each layer's input a_{l-1}
    hs = net.preactivations(params, x)
    inputs = [x, *(phi(h) for h in hs[:-1])]
    f = hs[-1]

    # the output loss per example: total loss = (1/N) sum_n output_loss(f_n[None], y_n[None])
    def one(fn, yn):
        return output_loss(fn[None], yn[None])

    weight = mask / n_total
    g = jax.vmap(jax.grad(one))(f, y) * weight[:, None]                      # dloss/df, (B, C)
    h_f = jax.vmap(jax.hessian(one))(f, y) * weight[:, None, None]            # d2loss/df2, (B, C, C)

    diags: list[jax.Array] = [None] * (depth + 1)   # diag(H_{h_l}) per example, (B, fan_out_l)
    diags[depth] = jnp.diagonal(h_f, axis1=1, axis2=2)
    a_mat = None            # A_l: (B, n_l, C); A_L = I
    resid = None            # None, ("diag", (B, n)) or ("full", (B, n, n))
    g_h = g                 # dloss/dh_{l+1}
    for layer in range(depth - 1, -1, -1):
        w_next = params[layer + 1]["W"]                                       # (n_l, n_{l+1})
        c_next, _ = _multipliers(net, w_next.shape[0])
        d1, d2 = _derivatives(phi, hs[layer])                                 # (B, n_l)
        # GGN part: A_l = c phi' (W A_{l+1}); diag(A_l H_f A_l^T)
        if a_mat is None:
            wa = jnp.broadcast_to(w_next, (f.shape[0],) + w_next.shape)
        else:
            wa = jnp.einsum("jk,bkc->bjc", w_next, a_mat, precision=_HIGHEST)
        a_mat = c_next * d1[:, :, None] * wa
        diag = jnp.einsum("bjc,bcd,bjd->bj", a_mat, h_f, a_mat, precision=_HIGHEST)
        if kind == "hessian":
            g_a = c_next * jnp.einsum("bk,jk->bj", g_h, w_next, precision=_HIGHEST)   # dloss/da_l
            own = d2 * g_a                                                    # diag(phi'' dloss/da_l)
            need_full = layer >= 1     # the layer below needs the whole matrix of this one
            scale = (c_next ** 2) * d1                                        # c^2 phi'_j (phi'_k applied below)
            # W R W^T of the layer above's residual R: the whole matrix when the layer below needs it, else its diagonal
            new_full = None
            if resid is None:
                new_diag = own
            elif need_full:
                new_full = (jnp.einsum("jk,bk,lk->bjl", w_next, resid[1], w_next, precision=_HIGHEST)
                            if resid[0] == "diag" else
                            jnp.einsum("jk,bkm,lm->bjl", w_next, resid[1], w_next, precision=_HIGHEST))
            elif resid[0] == "diag":
                new_diag = scale * d1 * jnp.einsum("jk,bk->bj", w_next ** 2, resid[1], precision=_HIGHEST) + own
            else:
                wr = jnp.einsum("jk,bkm->bjm", w_next, resid[1], precision=_HIGHEST)
                new_diag = scale * d1 * jnp.einsum("bjm,jm->bj", wr, w_next, precision=_HIGHEST) + own
            if new_full is not None:
                full = scale[:, :, None] * new_full * d1[:, None, :] + jax.vmap(jnp.diag)(own)
                resid = ("full", full)
                diag = diag + jnp.diagonal(full, axis1=1, axis2=2)
            else:
                resid = ("diag", new_diag)
                diag = diag + new_diag
            g_h = d1 * g_a
        diags[layer] = diag

    out = []
    for layer, p in enumerate(params):
        c, d = _multipliers(net, p["W"].shape[0])
        entry = {"W": (c ** 2) * jnp.einsum("bj,bi->ji", inputs[layer] ** 2, diags[layer], precision=_HIGHEST)}
        if "b" in p:
            entry["b"] = (d ** 2) * jnp.sum(diags[layer], axis=0)
        out.append(entry)
    return out


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _diagonal_jit(net: MLP, output_loss: Any, kind: str, chunk: int, params: Any, x: jax.Array, y: jax.Array):
    n = x.shape[0]
    n_chunks = -(-n // chunk)
    pad = n_chunks * chunk - n
    mask = jnp.concatenate([jnp.ones((n,), x.dtype), jnp.zeros((pad,), x.dtype)])
    xp = jnp.concatenate([x, jnp.zeros((pad,) + x.shape[1:], x.dtype)])
    yp = jnp.concatenate([y, jnp.broadcast_to(y[:1], (pad,) + y.shape[1:])]) if pad else y
    n_total = jnp.asarray(n, x.dtype)

    def body(carry, xs):
        xc, yc, mc = xs
        part = _chunk_diagonal(net, output_loss, kind, n_total, params, xc, yc, mc)
        return jax.tree_util.tree_map(jnp.add, carry, part), None

    zero = jax.tree_util.tree_map(jnp.zeros_like, params)
    stacked = (xp.reshape((n_chunks, chunk) + x.shape[1:]), yp.reshape((n_chunks, chunk) + y.shape[1:]),
               mask.reshape(n_chunks, chunk))
    total, _ = jax.lax.scan(body, zero, stacked)
    return total


def _default_chunk(net: MLP, n: int, out_dim: int) -> int:
    """Examples per chunk: the largest per-example block is width^2 (depth >= 3, full residual) or
    width * out_dim^2; keep chunk * block <= 2^23 elements."""
    block = net.width * max(out_dim, 1) ** 2
    if net.depth >= 3:
        block = max(block, net.width ** 2)
    return int(max(1, min(n, _CHUNK_ELEMENTS // max(block, 1))))


def hessian_diagonal(loss_fn: ComposedLoss, params: Any, batch: Any, kind: str = "hessian",
                     chunk_size: int | None = None) -> Any:
    """diag(H) (``kind="hessian"``) or diag(G) (``kind="ggn"``) of an MLP's loss, exactly, in ``params``' structure.

    ``loss_fn`` must be ``workbench.hessian.mlp_loss(net, loss)`` for a :class:`workbench.nets.MLP` ``net``
    (MSE or cross-entropy, a mean over the batch); ``batch = (x, y)``. Cost: O(n P out_dim) for the GGN
    part, plus O(n width^3 (depth - 2)) for the Hessian's residual part when depth >= 3. ``chunk_size``:
    examples per compiled chunk (default: a (chunk, width, width) block of at most 2^23 elements).
    See the module docstring for the recursion (Becker & LeCun 1989; Dangel et al. 2020).
    """
    net = _mlp_of(loss_fn)
    check_choice("kind", kind, KINDS)
    x, y = check_batch(batch)[:2]
    in_dim = net._check_params(params)
    if np.ndim(x) != 2 or np.shape(x)[1] != in_dim:
        raise ValueError(f"x must have shape (n, {in_dim}) for these parameters, got shape {np.shape(x)}")
    if np.ndim(y) != 2 or np.shape(y)[1] != net.out_dim:
        raise ValueError(f"y must have shape (n, {net.out_dim}) (targets per output), got shape {np.shape(y)}")
    n = int(np.shape(x)[0])
    chunk = (_default_chunk(net, n, net.out_dim) if chunk_size is None
             else check_positive_int("chunk_size", chunk_size, minimum=1))
    chunk = min(chunk, n)
    dtype = jnp.result_type(*jax.tree_util.tree_leaves(params))
    return _diagonal_jit(net, loss_fn.output_loss, kind, chunk, params, jnp.asarray(x, dtype), jnp.asarray(y, dtype))


def exact_trace(loss_fn: ComposedLoss, params: Any, batch: Any, kind: str = "hessian",
                chunk_size: int | None = None) -> TraceEstimate:
    """tr(H) (or tr(G)) of an MLP's loss as the sum of :func:`hessian_diagonal`: exact, so ``stderr = 0``.

    Returned as a :class:`workbench.linalg.TraceEstimate` (``method="exact_diagonal"``, no Hessian-vector
    products), so it stands in wherever a stochastic estimate does.
    """
    diag = hessian_diagonal(loss_fn, params, batch, kind=kind, chunk_size=chunk_size)
    leaves = jax.tree_util.tree_leaves(diag)
    value = float(sum(jnp.sum(leaf) for leaf in leaves))
    if not math.isfinite(value):
        raise ValueError(f"the exact {kind} trace is not finite ({value}): the parameters or data give NaN/inf "
                         "curvature")
    return TraceEstimate(trace=value, stderr=0.0, num_matvecs=0, method="exact_diagonal", converged=True)
