"""Empirical (finite-width) neural tangent kernel of any ``apply_fn(params, x)``.

Theta(x, x')_{ij} = sum_p (d f_i(x) / d p) (d f_j(x') / d p), summed over every scalar p in the
parameter pytree (Jacot et al. 2018), with no 1/width or 1/num_params normalization.
``output="trace"`` returns sum_i Theta_{ii}, shape (n1, n2); ``output="full"`` returns
Theta_{ij}, shape (n1, n2, k, k).

Methods (Novak, Sohl-Dickstein & Schoenholz 2022, "Fast Finite Width Neural Tangent Kernel"):

* ``"jacobian"``: Jacobian contraction. Per-example Jacobians (``vmap`` of ``jacrev``) of both
  batches, contracted leaf by leaf. Memory (n1 + n2) k P; any ``apply_fn``.
* ``"ntvp"``: NTK-vector products. For each example of x2 and output j, the gradient
  J(x2)^T e_j (one VJP) is pushed through the linearized network at x1 (one JVP); memory
  n2 k P for the gradients of the block, no Jacobian of x1. Any ``apply_fn``.
* ``"structured"``: uses the layer structure of a :class:`workbench.nets.MLP`: for a dense layer
  h = s a W + c b the parameter gradients are s a (x) delta and c delta, with delta = d f / d h,
  so Theta = sum_l (s_l^2 A_l A_l'^T + c_l^2) * (D_l D_l'^T), a few n1 x n2 x width matmuls
  (the "structured derivatives" idea of Novak et al., specialised to dense layers). For x2=None and
  n >= 768 only the upper triangle of 2 or 4 row blocks is computed (the rest by symmetry).
  To use it, pass the ``MLP`` itself (or its bound ``net.apply``) as ``apply_fn``: that is how
  the function learns the layer structure; params must be that net's params.
* ``"auto"``: ``"structured"`` when the layer structure is known, else ``"jacobian"`` if its
  memory estimate fits the budget, else ``"ntvp"``.

``apply_fn`` must map a batch x of shape (n, ...) to outputs of shape (n, k) and act on each
example independently (no batch statistics): the per-example methods ``vmap`` over examples.
Inputs and parameters are checked for NaN/inf inside the same compiled program (one flag read
after the kernel is computed; a failure names the first bad entry).

Memory: :func:`estimate_memory` estimates the peak bytes of a request; with ``block_size=None``
the whole kernel is computed in one jitted call, and a request whose estimate exceeds the budget
(``memory_limit`` bytes, default: the available memory of the first device, or of the host on
CPU) raises :class:`KernelMemoryError` naming a block size that fits. With ``block_size=b`` the
kernel is assembled on the host from b x b blocks (only two blocks' features are held at once;
for x2=None only the upper triangle of blocks is computed). When JAX sees several devices, the
rows of each block are sharded over them with ``jax.sharding`` (a 1-d mesh over ``devices``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from workbench.nets import MLP
from workbench.validation import available_memory, check_choice, check_finite, check_positive_int, is_concrete

METHODS = ("auto", "jacobian", "ntvp", "structured")
OUTPUTS = ("trace", "full")
#: fraction of the available memory a request may use before it is refused
MEMORY_FRACTION = 0.8


class KernelMemoryError(MemoryError, ValueError):
    """A kernel request whose estimated peak memory exceeds the budget (the message says what fits)."""


# ----------------------------------------------------------------------------- resolving apply_fn
def _resolve(apply_fn: Any) -> tuple[Callable, MLP | None]:
    """(callable, MLP or None): an MLP, or a bound ``MLP.apply``, exposes its layer structure."""
    if isinstance(apply_fn, MLP):
        return apply_fn.apply, apply_fn
    owner = getattr(apply_fn, "__self__", None)
    if isinstance(owner, MLP) and getattr(apply_fn, "__func__", None) is MLP.apply:
        return owner.apply, owner
    if not callable(apply_fn):
        raise TypeError(f"apply_fn must be a callable apply_fn(params, x) or an MLP, got {type(apply_fn).__name__}")
    return apply_fn, None


def _hashable(obj: Any) -> bool:
    try:
        hash(obj)
    except TypeError:
        return False
    return True


# ----------------------------------------------------------------------------- per-method blocks
def _per_example(fn: Callable) -> Callable:
    """f(params, x_single) -> (k,) from a batched fn(params, x) -> (n, k)."""
    return lambda p, xi: fn(p, xi[None])[0]


def _jacobians(fn: Callable, params: Any, x: jax.Array) -> list[jax.Array]:
    """Per-example Jacobians, one array (n, k, size) per parameter leaf."""
    single = _per_example(fn)
    jac = jax.vmap(lambda xi: jax.jacrev(single)(params, xi))(x)
    n, k = x.shape[0], jax.eval_shape(single, params, x[0]).shape[0]
    return [leaf.reshape(n, k, -1) for leaf in jax.tree_util.tree_leaves(jac)]


def _contract(j1: Sequence[jax.Array], j2: Sequence[jax.Array], output: str) -> jax.Array:
    spec = "aip,bip->ab" if output == "trace" else "aip,bjp->abij"
    return sum(jnp.einsum(spec, a, b) for a, b in zip(j1, j2))


def _jacobian_block(fn, net, output, params, x1, x2):
    j1 = _jacobians(fn, params, x1)
    j2 = j1 if x2 is None else _jacobians(fn, params, x2)
    return _contract(j1, j2, output)


def _ntvp_block(fn, net, output, params, x1, x2):
    x2_ = x1 if x2 is None else x2
    single = _per_example(fn)
    k = jax.eval_shape(single, params, x1[0]).shape[0]
    _, push = jax.linearize(lambda p: fn(p, x1), params)  # tangent in parameter space -> (n1, k)
    eye = jnp.eye(k, dtype=jnp.result_type(*jax.tree_util.tree_leaves(params)))

    def column(xb):
        _, pull = jax.vjp(lambda p: single(p, xb), params)
        grads = jax.vmap(lambda ct: pull(ct)[0])(eye)  # k parameter-space vectors J(xb)^T e_j
        return jax.vmap(push)(grads)  # (k_j, n1, k_i)

    cols = jax.vmap(column)(x2_)  # (n2, k_j, n1, k_i)
    full = jnp.transpose(cols, (2, 0, 3, 1))  # (n1, n2, k_i, k_j)
    return jnp.trace(full, axis1=2, axis2=3) if output == "trace" else full


def _layer_scales(net: MLP, fan_in: int, scales: tuple[Any, Any] | None = None) -> tuple[Any, Any]:
    """(s, c) with h = s a W + c b in ``net``'s parametrization; ``scales`` = (w_std, b_std) overrides the net's
    (traced values, so that one compiled kernel program serves every w_std and b_std)."""
    w_std, b_std = (net.w_std, net.b_std or 0.0) if scales is None else scales
    if net.parametrization == "ntk":
        return w_std / math.sqrt(fan_in), b_std
    return 1.0, 1.0


def mlp_ntk_features(net: MLP, params: Any, x: jax.Array,
                     scales: tuple[Any, Any] | None = None) -> list[tuple[jax.Array, jax.Array]]:
    """Per-layer factors of the MLP's NTK: [(s_l a^{l-1}, D_l)], D_l = d f / d h^l of shape (n, k, fan_out).

    Theta(x, x')_{ij} = sum_l (s_l^2 a^{l-1}(x).a^{l-1}(x') + c_l^2 [bias]) * D_l(x)_i . D_l(x')_j,
    with h^l = s_l a^{l-1} W^l + c_l b^l (s_l = w_std/sqrt(fan_in), c_l = b_std for ``"ntk"``;
    s_l = c_l = 1 for ``"standard"`` and ``"mup"``). The readout's D is the identity (k, k). ``scales`` =
    (w_std, b_std) replaces the net's own (they may be traced).
    """
    phi = net.phi
    acts, pre = [], []
    a = x
    for layer, p in enumerate(params):
        s, c = _layer_scales(net, a.shape[-1], scales)
        acts.append(s * a)
        h = (s * a) @ p["W"]
        if net.has_bias:
            h = h + c * p["b"][None, :]
        if layer < net.depth:
            pre.append(h)
            a = phi(h)
    n, k = x.shape[0], params[-1]["W"].shape[1]
    delta = jnp.broadcast_to(jnp.eye(k, dtype=x.dtype), (n, k, k))
    out = [(acts[-1], delta)]
    for layer in range(net.depth - 1, -1, -1):
        s_next, _ = _layer_scales(net, params[layer + 1]["W"].shape[0], scales)
        dphi = jax.jvp(phi, (pre[layer],), (jnp.ones_like(pre[layer]),))[1]
        delta = jnp.einsum("nko,io->nki", delta, s_next * params[layer + 1]["W"]) * dphi[:, None, :]
        out.append((acts[layer], delta))
    return out[::-1]


def _structured_pair(net, output, f1, f2, c2):
    """sum_l (A_l A_l'^T + c_l^2) * (D_l D_l'^T) for two sets of per-layer features."""
    total = None
    for layer, ((a1, d1), (a2, d2), cc) in enumerate(zip(f1, f2, c2)):
        gram_a = a1 @ a2.T + cc
        if layer == net.depth:  # readout: D = I
            k = d1.shape[1]
            eye = jnp.eye(k, dtype=gram_a.dtype)[None, None]
            term = k * gram_a if output == "trace" else gram_a[:, :, None, None] * eye
        elif output == "trace":
            term = gram_a * jnp.einsum("aim,bim->ab", d1, d2)
        else:
            term = gram_a[:, :, None, None] * jnp.einsum("aim,bjm->abij", d1, d2)
        total = term if total is None else total + term
    return total


#: for x2=None and n >= this, the kernel is assembled from the upper triangle of row blocks
SYMMETRIC_MIN_ROWS = 768


def _structured_block(fn, net, output, params, x1, x2, scales=None):
    f1 = mlp_ntk_features(net, params, x1, scales)
    c2 = [(_layer_scales(net, p["W"].shape[0], scales)[1] ** 2 if net.has_bias else 0.0) for p in params]
    if x2 is not None:
        return _structured_pair(net, output, f1, mlp_ntk_features(net, params, x2, scales), c2)
    n = x1.shape[0]
    if n < SYMMETRIC_MIN_ROWS:
        return _structured_pair(net, output, f1, f1, c2)
    # symmetric: m row blocks, only the m (m + 1) / 2 blocks with j >= i are computed (3/4 of the work
    # for m = 2, 5/8 for m = 4), the others are transposes
    m = 2 if n < 3072 else 4
    edges = np.linspace(0, n, m + 1).astype(int)
    part = [[(a[edges[i]:edges[i + 1]], d[edges[i]:edges[i + 1]]) for a, d in f1] for i in range(m)]
    blocks = {(i, j): _structured_pair(net, output, part[i], part[j], c2) for i in range(m) for j in range(i, m)}
    axes = (1, 0) if output == "trace" else (1, 0, 3, 2)
    rows = [jnp.concatenate([blocks[i, j] if j >= i else jnp.transpose(blocks[j, i], axes) for j in range(m)], axis=1)
            for i in range(m)]
    return jnp.concatenate(rows, axis=0)


_BLOCKS = {"jacobian": _jacobian_block, "ntvp": _ntvp_block, "structured": _structured_block}


def _checked_block(method, fn, net, output, params, x1, x2, scales=None):
    """The block and one flag: are x1, x2 and every parameter finite (checked inside the same program)."""
    out = (_structured_block(fn, net, output, params, x1, x2, scales) if method == "structured"
           else _BLOCKS[method](fn, net, output, params, x1, x2))
    leaves = [x1] + ([] if x2 is None else [x2]) + jax.tree_util.tree_leaves(params)
    ok = jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))
    return out, ok


@partial(jax.jit, static_argnames=("method", "fn", "net", "output"))
def _block_jit(method, fn, net, output, params, x1, x2, scales=None):
    return _checked_block(method, fn, net, output, params, x1, x2, scales)


def _block_fn(method: str, fn: Callable, net: MLP | None, output: str) -> Callable:
    """The jitted block function (cached by jit on the static arguments when ``fn`` is hashable).

    The structured method reads the widths from the parameters and takes w_std and b_std as traced values:
    its compiled program is keyed only on the net's depth, activation, parametrization and whether it has
    biases, so a slider on w_std or b_std (or the width) reuses it."""
    if method == "structured" and net is not None:
        scales = (float(net.w_std), float(net.b_std or 0.0))
        shape_net = dataclasses.replace(net, width=1, w_std=1.0, b_std=None if net.b_std is None else 1.0)
        return partial(_block_jit, method, None, shape_net, output, scales=scales)
    if _hashable(fn) and _hashable(net):
        return partial(_block_jit, method, fn, net, output)
    return jax.jit(partial(_checked_block, method, fn, net, output))


# ----------------------------------------------------------------------------- memory
def _param_count(params: Any) -> int:
    return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(params)))


def _block_bytes(method: str, net: MLP | None, params: Any, b1: int, b2: int, k: int, output: str,
                 itemsize: int, symmetric: bool = False) -> int:
    """Estimated peak bytes of one block (features, temporaries and the block itself)."""
    out = b1 * b2 * (k * k if output == "full" else 1)
    num_p = _param_count(params)
    if method == "jacobian":
        work = (b1 + (0 if symmetric else b2)) * k * num_p + 2 * out  # x2=None: one set of Jacobians
    elif method == "ntvp":
        work = b2 * k * num_p + 2 * b2 * k * b1 * k + b1 * num_p // max(1, int(np.sqrt(num_p))) + 2 * out
    else:
        widths = sum(int(np.shape(p["W"])[0]) + (k + 1) * int(np.shape(p["W"])[1]) for p in params)
        work = (b1 + b2) * widths + 3 * out
    return int(work * itemsize + num_p * itemsize)


def estimate_memory(apply_fn: Any, params: Any, x1: jax.Array, x2: jax.Array | None = None, *,
                    method: str = "auto", block_size: int | None = None, output: str = "trace") -> int:
    """Estimated peak bytes of :func:`empirical_ntk` with these arguments (kernel plus one block's work).

    The estimate counts the stored kernel (n1 n2, times k^2 for ``"full"``), the per-block features
    (Jacobians (b1 + b2) k P for ``"jacobian"``; b2 k P gradients for ``"ntvp"``; activations and
    backpropagated cotangents for ``"structured"``) and a few block-sized temporaries; P = number
    of parameters. It is a model, accurate to a small factor, meant to refuse hopeless requests.
    """
    fn, net = _resolve(apply_fn)
    n1, n2, k, dtype = _shapes(fn, params, x1, x2, net)
    method = _pick_method(method, net, params, n1, n2, k, output, dtype, block_size, None, x2 is None)
    return _total_bytes(method, net, params, n1, n2, k, output, jnp.dtype(dtype).itemsize, block_size, x2 is None)


def _total_bytes(method, net, params, n1, n2, k, output, itemsize, block_size, symmetric=False) -> int:
    b1 = n1 if block_size is None else min(block_size, n1)
    b2 = n2 if block_size is None else min(block_size, n2)
    kernel = n1 * n2 * (k * k if output == "full" else 1) * itemsize
    block = _block_bytes(method, net, params, b1, b2, k, output, itemsize, symmetric and block_size is None)
    return (kernel if block_size is not None else 0) + block


def _suggest_block(method, net, params, n1, n2, k, output, itemsize, limit) -> int | None:
    b = max(n1, n2)
    while b >= 1:
        if _total_bytes(method, net, params, n1, n2, k, output, itemsize, b) <= limit:
            return b
        b //= 2
    return None


# ----------------------------------------------------------------------------- validation
def _shapes(fn, params, x1, x2, net=None) -> tuple[int, int, int, Any]:
    for name, x in (("x1", x1), ("x2", x2)):
        if x is None:
            continue
        if not hasattr(x, "shape") or np.ndim(x) < 2:
            raise ValueError(f"{name} must be an array of shape (n, features...) with n >= 1, got shape {np.shape(x)}")
        if np.shape(x)[0] < 1:
            raise ValueError(f"{name} must hold at least one input, got shape {np.shape(x)}")
    if x2 is not None and np.shape(x1)[1:] != np.shape(x2)[1:]:
        raise ValueError(f"x1 and x2 must have the same feature shape, got x1 {np.shape(x1)[1:]} and x2 {np.shape(x2)[1:]}")
    leaves = jax.tree_util.tree_leaves(params)
    if not leaves:
        raise ValueError("params must be a pytree with at least one array leaf")
    if net is not None:  # an MLP: shapes from its params, no tracing
        in_dim = net._check_params(params)
        if np.ndim(x1) != 2 or np.shape(x1)[1] != in_dim:
            raise ValueError(f"x1 must have shape (n, {in_dim}) for these params of {net.describe()}, got {np.shape(x1)}")
        n1 = int(np.shape(x1)[0])
        n2 = n1 if x2 is None else int(np.shape(x2)[0])
        return n1, n2, int(np.shape(params[-1]["W"])[1]), jnp.result_type(*leaves, x1)
    try:
        out = jax.eval_shape(fn, params, x1)
    except Exception as exc:
        raise ValueError(f"apply_fn(params, x1) failed for x1 of shape {np.shape(x1)}: {type(exc).__name__}: {exc}") from exc
    n1 = int(np.shape(x1)[0])
    if not hasattr(out, "shape") or len(out.shape) != 2 or out.shape[0] != n1:
        raise ValueError(
            f"apply_fn must return outputs of shape (n, k) for inputs of shape (n, ...); for x1 of shape "
            f"{np.shape(x1)} it returned {getattr(out, 'shape', type(out).__name__)} (rank "
            f"{len(getattr(out, 'shape', ())) }, expected 2)")
    n2 = n1 if x2 is None else int(np.shape(x2)[0])
    return n1, n2, int(out.shape[1]), out.dtype


def _pick_method(method, net, params, n1, n2, k, output, dtype, block_size, limit, symmetric=False) -> str:
    check_choice("method", method, METHODS)
    if method == "structured" and net is None:
        raise ValueError(
            "method='structured' needs the layer structure: pass the MLP itself (or its bound net.apply) as apply_fn; "
            "for other apply_fn use method='jacobian' or 'ntvp'")
    if method != "auto":
        return method
    if net is not None:
        return "structured"
    if limit is None:
        limit = MEMORY_FRACTION * available_memory()
    itemsize = jnp.dtype(dtype).itemsize
    jac = _total_bytes("jacobian", net, params, n1, n2, k, output, itemsize, block_size, symmetric)
    return "jacobian" if jac <= limit else "ntvp"


# ----------------------------------------------------------------------------- public entry point
def empirical_ntk(apply_fn: Callable | MLP, params: Any, x1: jax.Array, x2: jax.Array | None = None, *,
                  method: str = "auto", block_size: int | None = None, output: str = "trace",
                  memory_limit: int | None = None, devices: Sequence[jax.Device] | None = None,
                  executor: Any = None) -> jax.Array | np.ndarray:
    """The empirical NTK of ``apply_fn`` at ``params`` between ``x1`` and ``x2`` (default ``x2 = x1``).

    When ``x2`` is ``x1`` or holds the same values (checked cheaply: same shape and dtype, then
    ``array_equal``), the symmetric path of ``x2=None`` is used (one set of features, the upper triangle of
    row blocks): the result is identical to ``empirical_ntk(apply_fn, params, x1)`` and costs the same.

    Args:
      apply_fn: ``apply_fn(params, x) -> (n, k)`` over any parameter pytree (flax, equinox, plain
        dicts), or a :class:`~workbench.nets.MLP` / its bound ``net.apply`` (enables ``"structured"``).
      params: the parameter pytree.
      x1: inputs of shape (n1, ...).
      x2: inputs of shape (n2, ...) with the feature shape of ``x1`` (default ``x1``).
      method: ``"auto"``, ``"jacobian"``, ``"ntvp"`` or ``"structured"`` (module docstring).
      block_size: compute in blocks of at most this many rows and columns (bounds memory).
      output: ``"trace"`` (n1, n2), summed over outputs, or ``"full"`` (n1, n2, k, k).
      memory_limit: byte budget for the estimate (default 80% of the available memory).
      devices: devices to shard block rows over (default ``jax.devices()``).
      executor: with ``block_size``, one task per block on this ``concurrent.futures.Executor`` or Dask
        ``Client`` (each on the worker's default device; assembled here as blocks arrive; ``docs/scaling.md``).

    Returns:
      The kernel (no normalization: Theta = J J^T summed over all parameters): a ``jax.Array``, or
      with ``block_size`` smaller than n1 or n2 a host ``numpy.ndarray`` assembled block by block
      (no second copy on the device: the 20,000-input float32 kernel is 1.6 GB).

    Raises:
      ValueError: bad shapes, non-finite inputs, block_size < 1, unknown method/output, an
        ``apply_fn`` that does not return rank-2 outputs; :class:`KernelMemoryError` (a
        ``ValueError`` and ``MemoryError``) when the estimate exceeds the budget.
    """
    fn, net = _resolve(apply_fn)
    check_choice("output", output, OUTPUTS)
    if _same_inputs(x1, x2):
        x2 = None  # the symmetric path: same kernel, about half the work
    if block_size is not None:
        block_size = check_positive_int("block_size", block_size)
    if memory_limit is not None:
        memory_limit = check_positive_int("memory_limit", memory_limit)
    n1, n2, k, dtype = _shapes(fn, params, x1, x2, net)
    limit = memory_limit if memory_limit is not None else int(MEMORY_FRACTION * available_memory())
    method = _pick_method(method, net, params, n1, n2, k, output, dtype, block_size, limit, x2 is None)
    if net is not None and method == "structured" and len(params) != net.depth + 1:
        raise ValueError(f"params must be the {net.depth + 1} layers of {net.describe()}, got {len(params)} entries")
    itemsize = jnp.dtype(dtype).itemsize
    need = _total_bytes(method, net, params, n1, n2, k, output, itemsize, block_size, x2 is None)
    if need > limit:
        fit = _suggest_block(method, net, params, n1, n2, k, output, itemsize, limit)
        hint = (f"block_size={fit} would fit" if fit is not None else
                f"no block size fits: the kernel alone needs {n1 * n2 * (k * k if output == 'full' else 1) * itemsize / 2**30:.2f} GiB"
                + ("; try output='trace'" if output == "full" else ""))
        raise KernelMemoryError(
            f"empirical_ntk(method={method!r}, n1={n1}, n2={n2}, k={k}, output={output!r}, block_size={block_size}) "
            f"needs about {need / 2**30:.2f} GiB but the budget is {limit / 2**30:.2f} GiB; {hint}")
    devices = list(devices) if devices is not None else jax.devices()
    block = _block_fn(method, fn, net, output)  # structured: keyed on the net's shape-free fields only
    if executor is not None and (block_size is None or (block_size >= n1 and block_size >= n2)):
        raise ValueError("executor needs block_size smaller than the inputs (one task per block); "
                         f"got block_size={block_size} for n1={n1}, n2={n2}")
    if executor is not None:
        from workbench.kernels.blocks_on_executor import blocked_on_executor

        out, ok = blocked_on_executor(executor, method, fn, net, output, params, x1, x2, n1, n2, k, block_size,
                                       dtype)
    elif block_size is None or (block_size >= n1 and block_size >= n2):
        out, ok = _run_block(block, params, x1, x2, devices)
    elif not (is_concrete(x1) and (x2 is None or is_concrete(x2))):
        raise TypeError("block_size needs concrete inputs (the blocks are assembled on the host): call empirical_ntk "
                        "outside jit, or use block_size=None inside jit")
    else:
        out, ok = _blocked(block, params, x1, x2, n1, n2, k, output, block_size, dtype, devices)
    if is_concrete(ok) and not bool(ok):
        _raise_non_finite(params, x1, x2)
    return out


def _same_inputs(x1: Any, x2: Any) -> bool:
    """True if ``x2`` is ``x1`` or holds the same values (same shape and dtype, then ``array_equal``: O(n d),
    nothing next to the kernel). Under ``jit`` only identity can be seen."""
    if x2 is None:
        return False
    if x2 is x1:
        return True
    if not (hasattr(x1, "shape") and hasattr(x2, "shape") and is_concrete(x1) and is_concrete(x2)):
        return False
    if np.shape(x1) != np.shape(x2) or jnp.result_type(x1) != jnp.result_type(x2):
        return False
    return bool(jnp.array_equal(x1, x2))


def _raise_non_finite(params: Any, x1: jax.Array, x2: jax.Array | None) -> None:
    """Name the first non-finite input (NaN or inf) with its index; called when the in-program check failed."""
    check_finite("x1", x1)
    if x2 is not None:
        check_finite("x2", x2)
    for i, leaf in enumerate(jax.tree_util.tree_leaves(params)):
        check_finite(f"params leaf {i}", leaf)
    raise ValueError("inputs or params contain non-finite values (NaN or inf)")  # pragma: no cover


def _run_block(block: Callable, params: Any, x1: jax.Array, x2: jax.Array | None, devices: Sequence[jax.Device]):
    """One block and its finiteness flag; with several devices its rows (x1) are sharded over a 1-d mesh."""
    if len(devices) <= 1 or not is_concrete(x1):
        return block(params, x1, x2)
    ndev = len(devices)
    n = x1.shape[0]
    pad = (-n) % ndev
    mesh = Mesh(np.asarray(devices), ("rows",))
    rows, rep = NamedSharding(mesh, P("rows")), NamedSharding(mesh, P())
    x1p = jnp.concatenate([x1, jnp.broadcast_to(x1[:1], (pad, *x1.shape[1:]))]) if pad else x1
    x2r = jax.device_put(x1 if x2 is None else x2, rep)
    out, ok = block(jax.device_put(params, rep), jax.device_put(x1p, rows), x2r)
    return out[:n], ok


def _blocked(block, params, x1, x2, n1, n2, k, output, b, dtype, devices) -> tuple[np.ndarray, bool]:
    shape = (n1, n2) if output == "trace" else (n1, n2, k, k)
    result = np.empty(shape, dtype=dtype)
    symmetric = x2 is None
    x2_ = x1 if symmetric else x2
    ok = True
    for i in range(0, n1, b):
        xi = x1[i:i + b]
        for j in range(i if symmetric else 0, n2, b):
            xj = None if symmetric and j == i else x2_[j:j + b]
            blk, blk_ok = _run_block(block, params, xi, xj, devices)
            if not bool(blk_ok):
                return result, False
            blk = np.asarray(blk)
            result[i:i + b, j:j + b] = blk
            if symmetric and j != i:
                result[j:j + b, i:i + b] = np.swapaxes(blk, 0, 1) if output == "trace" else blk.transpose(1, 0, 3, 2)
    return result, ok  # host array: a device copy would double the peak memory of a large kernel

