"""Training an :class:`~workbench.nets.MLP` with :func:`workbench.training.loop.train`.

:func:`train_mlp` wraps the core for ``MLP``s: MSE (``reduction="sum"``: L = 1/2 sum_{i,k} (f_k(x_i) - y_ik)^2,
the convention of :mod:`workbench.dynamics` ``loss="sum"``; ``"mean"``: the same divided by the number of
training targets n * out_dim) or cross entropy, muP learning-rate multipliers from the net, outputs on
``x_eval`` at every recorded step, and the empirical NTK on ``x_ntk`` at chosen steps.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from workbench import config, losses
from workbench.kernels.empirical import empirical_ntk
from workbench.nets import MLP
from workbench.training.loop import Batch, Params, TrainResult, train
from workbench.validation import check_choice, check_data_pair, check_finite, is_concrete

LOSSES = losses.LOSSES
REDUCTIONS = losses.REDUCTIONS

__all__ = ["LOSSES", "REDUCTIONS", "train_mlp"]


@functools.lru_cache(maxsize=64)
def _mlp_loss(net: MLP, loss: str, reduction: str) -> Callable[[Params, Batch], jax.Array]:
    """The loss closure for ``net`` (cached, so repeated calls reuse the compiled training program)."""
    def mse(params, batch):
        xb, yb = batch
        f = net.apply(params, xb)
        total = losses.mse(f, yb, reduction="sum")
        return total if reduction == "sum" else total / f.size  # "mean": over the n * out_dim entries

    def cross_entropy(params, batch):
        xb, yb = batch
        return losses.cross_entropy(net.apply(params, xb), yb, reduction=reduction)

    return mse if loss == "mse" else cross_entropy


@functools.lru_cache(maxsize=64)
def _mlp_init(net: MLP, in_dim: int, dtype: Any) -> Callable[[jax.Array], Params]:
    return lambda key: net.init(key, in_dim, dtype)


@functools.lru_cache(maxsize=64)
def _mlp_eval(net: MLP) -> Callable[[Params, jax.Array], jax.Array]:
    return lambda params, x_eval: net.apply(params, x_eval)


def _mlp_ntks(net: MLP, params: Params, x: jax.Array) -> np.ndarray:
    """Empirical NTKs (traced over outputs) of every run: params leaves (L, S, ...) -> (L, S, n, n)."""
    lead = jax.tree_util.tree_leaves(params)[0].shape[:2]
    out = np.zeros(lead + (x.shape[0], x.shape[0]), dtype=np.dtype(x.dtype))
    for i in range(lead[0]):
        for j in range(lead[1]):
            p = jax.tree_util.tree_map(lambda a, i=i, j=j: a[i, j], params)
            out[i, j] = np.asarray(empirical_ntk(net.apply, p, x, method="jacobian"))
    return out


def _check_mlp_targets(name: str, net: MLP, loss: str, y: jax.Array) -> None:
    if y.ndim != 2:
        raise ValueError(f"{name} targets must have shape (n, {net.out_dim}) (2-d: one column per output), got {y.shape}")
    if loss == "mse" or net.out_dim == 1:
        if y.shape[1] != net.out_dim:
            raise ValueError(f"{name} targets must have shape (n, {net.out_dim}) for this net, got {y.shape}")
    elif y.shape[1] not in (1, net.out_dim):
        raise ValueError(f"{name} targets for cross entropy must be (n, 1) integer labels or (n, {net.out_dim}) "
                         f"class probabilities, got {y.shape}")
    if loss == "cross_entropy" and is_concrete(y):
        yv = np.asarray(y)
        if net.out_dim == 1 and not np.all(np.isin(yv, (-1.0, 1.0))):
            raise ValueError(f"{name} targets for binary cross entropy (out_dim = 1) must be +-1")
        if net.out_dim > 1 and y.shape[1] == 1 and not (
                np.all(yv == np.round(yv)) and yv.min() >= 0 and yv.max() < net.out_dim):
            raise ValueError(f"{name} integer labels must lie in 0..{net.out_dim - 1}")


def train_mlp(net: MLP, data: Any, *, loss: str = "mse", reduction: str = "sum", optimizer: str = "gd",
              lrs: float | Sequence[float], seeds: int | Sequence[int] = (0,), num_steps: int,
              batch_size: int | None = None, x_eval: jax.Array | None = None, ntk_steps: Sequence[int] = (),
              x_ntk: jax.Array | None = None, record_every: int = 1, **kwargs: Any) -> TrainResult:
    """Train an :class:`~workbench.nets.MLP` with :func:`train`.

    Args:
      net: the network (its parametrization's ``lr_multipliers`` are used, e.g. muP).
      data: a :class:`workbench.data.Dataset` (its test split becomes ``test_data``) or ``(x, y)``.
      loss: ``"mse"``: 1/2 sum_{i,k} (f_k(x_i) - y_ik)^2 (``reduction="sum"``, matches
        :mod:`workbench.dynamics` ``loss="sum"``) or that divided by n * out_dim (``"mean"``, matches
        ``loss="mean"``); ``"cross_entropy"``: softmax cross entropy (targets (n, out_dim) probabilities
        or (n, 1) integer labels), or for ``out_dim = 1`` the logistic loss log(1 + exp(-y f)) with
        y = +-1; summed or averaged over examples.
      optimizer: as in :func:`train`.
      lrs: as in :func:`train`.
      seeds: as in :func:`train`.
      num_steps: as in :func:`train`.
      batch_size: as in :func:`train`.
      record_every: as in :func:`train`.
      x_eval: inputs (m, d) on which the outputs are recorded: ``result.evals`` has shape
        (num_lrs, num_seeds, R, m, out_dim).
      ntk_steps: recorded steps at which the empirical NTK on ``x_ntk`` is computed:
        ``result.ntk`` (num_lrs, num_seeds, len(ntk_steps), n_ntk, n_ntk), traced over outputs, the plain
        J J^T (not weighted by ``lr_multipliers``), from :func:`workbench.kernels.empirical.empirical_ntk`.
      x_ntk: inputs for the NTK (default: the training inputs).
      **kwargs: passed on to :func:`train` (momentum, test_data, divergence_threshold, progress, ...).
    """
    if not isinstance(net, MLP):
        raise TypeError(f"net must be a workbench.nets.MLP, got {type(net).__name__}")
    check_choice("loss", loss, LOSSES)
    check_choice("reduction", reduction, REDUCTIONS)
    if hasattr(data, "x_train") and hasattr(data, "y_test"):
        train_data = (data.x_train, data.y_train)
        kwargs.setdefault("test_data", (data.x_test, data.y_test))
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        train_data = tuple(data)
    else:
        raise TypeError(f"data must be a workbench.data.Dataset or a pair (x, y), got {type(data).__name__}")
    x, y = check_data_pair("train_data", train_data)
    if x.ndim != 2:
        raise ValueError(f"training inputs must have shape (n, in_dim), got {x.shape}")
    _check_mlp_targets("training", net, loss, y)
    if kwargs.get("test_data") is not None:
        xt, yt = check_data_pair("test_data", kwargs["test_data"])
        if xt.ndim != 2 or xt.shape[1] != x.shape[1]:
            raise ValueError(f"test inputs must have shape (n, {x.shape[1]}), got {xt.shape}")
        _check_mlp_targets("test", net, loss, yt)
    in_dim = int(x.shape[1])
    if "eval_fn" in kwargs:
        raise TypeError("train_mlp records outputs on x_eval; pass eval_fn to train() instead")
    eval_fn = None
    if x_eval is not None:
        x_eval = jnp.asarray(x_eval)
        if x_eval.ndim != 2 or x_eval.shape[1] != in_dim:
            raise ValueError(f"x_eval must have shape (m, {in_dim}), got {x_eval.shape}")
        check_finite("x_eval", x_eval)
        eval_fn = _mlp_eval(net)
    ntk_steps = tuple(sorted(set(int(s) for s in ntk_steps)))
    if x_ntk is None:
        x_ntk = x
    x_ntk = jnp.asarray(x_ntk)
    if x_ntk.ndim != 2 or x_ntk.shape[1] != in_dim:
        raise ValueError(f"x_ntk must have shape (m, {in_dim}), got {x_ntk.shape}")
    check_finite("x_ntk", x_ntk)
    opt_kind = "adam" if optimizer == "adam" else "sgd"
    mults = None if net.parametrization != "mup" else net.lr_multipliers(in_dim, opt_kind)
    if "lr_multipliers" in kwargs:
        raise TypeError("train_mlp takes the lr multipliers from net.lr_multipliers; use train() to set your own")
    dtype = x.dtype
    extra_snaps = tuple(kwargs.pop("snapshot_steps", ()))
    res = train(_mlp_loss(net, loss, reduction), _mlp_init(net, in_dim, jnp.dtype(dtype)), train_data,
                optimizer=optimizer, lrs=lrs, seeds=seeds, num_steps=num_steps, batch_size=batch_size,
                record_every=record_every, eval_fn=eval_fn, lr_multipliers=mults,
                snapshot_steps=tuple(sorted(set(ntk_steps) | set(extra_snaps))), eval_data=x_eval, **kwargs)
    ntk = None
    reached = tuple(s for s in ntk_steps if s in res.snapshots)
    if reached:
        with config.matmul_precision("highest"):
            ntk = np.stack([_mlp_ntks(net, res.snapshots[s], x_ntk) for s in reached], axis=2)
    snapshots = {s: p for s, p in res.snapshots.items() if s in extra_snaps}
    info = f"{net.describe()}, loss {loss} ({reduction}); " + res.info
    return res._replace(ntk=ntk, ntk_steps=reached, snapshots=snapshots, info=info)
