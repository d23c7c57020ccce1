"""Training loops for any model (GD, SGD, heavy-ball momentum, Adam via optax), vmapped over
learning rates and seeds, with divergence detection, and a convenience wrapper for :class:`~workbench.nets.MLP`.

Core: :func:`train(loss_fn, init_fn, train_data, *, optimizer, lrs, seeds, num_steps, ...)` runs
``len(lrs) x len(seeds)`` independent runs in one jitted, ``vmap``-ed program:

* ``loss_fn(params, (x, y)) -> scalar`` is evaluated on a minibatch (or the full training set when
  ``batch_size=None``); ``init_fn(key) -> params`` draws the initial parameters.
* Update of run (lr, seed) at step k (optax transformations built with learning rate 1, then scaled):
  ``theta_{k+1} = theta_k + lr * m * u_k`` with ``u_k`` the optax update (``"gd"``/``"sgd"``: ``-g_k``;
  ``"momentum"``: ``-(g_k + beta v_{k-1})``, optax's heavy ball; ``"adam"``: optax's Adam direction) and
  ``m`` the per-parameter ``lr_multipliers`` (all ones by default; muP puts its width factors here).
* Seeds: seed s gives ``key = PRNGKey(s)``, split into an init key and a data key. The same seed gives
  the same initialization and the same minibatch order for every learning rate, so learning rates are
  compared on equal footing.
* Minibatches (``batch_size=B < n``): ``sampling="shuffle"`` (default) draws a fresh permutation each
  epoch and takes consecutive slices of it (``n mod B`` examples left out each epoch);
  ``sampling="iid"`` draws, at every step independently, B distinct indices uniformly (sampling
  without replacement within a batch, the model behind c_B = (n - B)/(B (n - 1)) in THEORY.md sec. 9).
* Recording: the full training loss ``loss_fn(params, train_data)`` (and ``test_data`` loss and
  ``eval_fn(params)`` if given) at steps 0, r, 2r, ... and at ``num_steps`` (r = ``record_every``),
  i.e. evaluated at the parameters *before* the update of that step.

Divergence. A run is declared diverged at step k when the loss computed for its update at step k
(the minibatch loss at theta_k) is NaN/inf or exceeds ``divergence_threshold * L_0`` (L_0 = that run's
full training loss at initialization; the relative bound is skipped when L_0 <= 0 or the threshold is
``None``), or at step k + 1 when the update produces a non-finite parameter. A diverged run is frozen:
its parameters (and optimizer state) stay at the last finite values theta_k, and its recorded losses
and ``eval_fn`` outputs are NaN at every recorded step after k (the run stopped: nothing was measured
there; a record at step k itself, if any, shows the offending loss). Other runs go on.
``diverged_step`` is -1 for runs that never diverged.

Interruption. The steps run in jitted ``lax.scan`` chunks; between chunks the loop advances a
``tqdm.auto`` progress bar and calls ``callback(steps_done)``. A ``KeyboardInterrupt`` (Ctrl-C, or
raised by the callback) *returns* the partial :class:`TrainResult` holding every chunk completed so
far (``completed=False``; ``num_steps_done`` and ``info`` say where it stopped); it does not re-raise.

:func:`train_mlp` wraps the core for ``MLP``s: MSE (``reduction="sum"``: L = 1/2 sum_{i,k} (f_k(x_i) - y_ik)^2,
the convention of :mod:`workbench.dynamics` ``loss="sum"``; ``"mean"``: the same divided by the number of
training targets n * out_dim) or cross entropy, muP learning-rate multipliers from the net, outputs on
``x_eval`` at every recorded step, and the empirical NTK on ``x_ntk`` at chosen steps.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from workbench import config
from workbench.kernels.empirical import empirical_ntk
from workbench.nets import MLP
from workbench.validation import check_choice, check_finite, check_positive_int, check_real, is_concrete
from workbench.validation import check_scalar_output

OPTIMIZERS = ("gd", "sgd", "momentum", "adam")
SAMPLINGS = ("shuffle", "iid")
LOSSES = ("mse", "cross_entropy")
REDUCTIONS = ("sum", "mean")

Params = Any
Batch = tuple[jax.Array, jax.Array]


class TrainResult(NamedTuple):
    """What :func:`train` returns. Leading axes (num_lrs, num_seeds) index the runs.

    Attributes:
      steps: (R,) recorded step indices, starting at 0 and ending at the last step done.
      train_loss: (num_lrs, num_seeds, R) full training loss at the recorded steps (NaN after divergence).
      test_loss: same shape on ``test_data``, or ``None``.
      evals: pytree of ``eval_fn`` outputs with leaves (num_lrs, num_seeds, R, ...), or ``None``.
      diverged: (num_lrs, num_seeds) bool.
      diverged_step: (num_lrs, num_seeds) int, the step k of divergence, -1 if never.
      params: final parameters, leaves (num_lrs, num_seeds, ...) (frozen values for diverged runs).
      lrs: (num_lrs,) learning rates.
      seeds: (num_seeds,) seeds.
      optimizer: the optimizer name.
      batch_size: minibatch size, ``None`` for full batch.
      num_steps: steps asked for.
      num_steps_done: steps completed (< num_steps only if interrupted).
      completed: False if the run was interrupted.
      snapshots: dict step -> params (leaves (num_lrs, num_seeds, ...)) at the ``snapshot_steps``
        reached, or ``{}``.
      ntk: (num_lrs, num_seeds, len(ntk_steps), n, n) empirical NTKs (:func:`train_mlp` only) or ``None``.
      ntk_steps: the steps of ``ntk`` (those reached), as a tuple.
      info: configuration, divergence summary and :func:`workbench.config.device_report`.
    """

    steps: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray | None
    evals: Any
    diverged: np.ndarray
    diverged_step: np.ndarray
    params: Params
    lrs: np.ndarray
    seeds: np.ndarray
    optimizer: str
    batch_size: int | None
    num_steps: int
    num_steps_done: int
    completed: bool
    snapshots: dict[int, Params]
    ntk: np.ndarray | None
    ntk_steps: tuple[int, ...]
    info: str


class _State(NamedTuple):
    step: jax.Array  # scalar int, shared by all runs
    params: Params  # leaves (L, S, ...)
    opt_state: Any  # leaves (L, S, ...)
    div_step: jax.Array  # (L, S) int, -1 = alive
    snaps: Params  # leaves (num_snap, L, S, ...) or None


# --------------------------------------------------------------------------- validation helpers
def _as_lrs(lrs: Any) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(lrs, dtype=float))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"lrs must be a positive number or a non-empty 1-d sequence of them, got {lrs!r}")
    if not np.all(np.isfinite(arr)) or not np.all(arr > 0):
        raise ValueError(f"lrs must be finite and > 0, got {arr.tolist()}")
    return arr


def _as_seeds(seeds: Any) -> np.ndarray:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        seeds = (int(seeds),)
    try:
        seq = list(seeds)
    except TypeError:
        raise TypeError(f"seeds must be an int or a sequence of ints, got {seeds!r}") from None
    if not seq:
        raise ValueError("seeds must not be empty")
    for s in seq:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
            raise ValueError(f"seeds must be non-negative integers, got {seeds!r}")
    if len(set(int(s) for s in seq)) != len(seq):
        raise ValueError(f"seeds must be distinct, got {seeds!r}")
    return np.asarray(seq, dtype=np.int64)


def _check_data(name: str, data: Any) -> tuple[jax.Array, jax.Array]:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{name} must be a pair (x, y) of arrays, got {type(data).__name__}")
    x, y = jnp.asarray(data[0]), jnp.asarray(data[1])
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(f"{name}: x and y need a leading example axis, got shapes {x.shape} and {y.shape}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{name}: x and y must have equal leading sizes, got shapes {x.shape} and {y.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} has no examples")
    check_finite(f"{name} x", x)
    check_finite(f"{name} y", y)
    return x, y


@functools.lru_cache(maxsize=64)
def _named_transform(optimizer: str, momentum: float, adam_b1: float, adam_b2: float,
                     adam_eps: float) -> optax.GradientTransformation:
    """Cached (so that jitted programs are reused across calls) optax transformation with learning rate 1."""
    if optimizer in ("gd", "sgd"):
        return optax.sgd(1.0)
    if optimizer == "momentum":
        return optax.sgd(1.0, momentum=momentum)
    return optax.adam(1.0, b1=adam_b1, b2=adam_b2, eps=adam_eps)


def _base_transform(optimizer: Any, momentum: float, adam_b1: float, adam_b2: float,
                    adam_eps: float) -> optax.GradientTransformation:
    """The optax transformation with learning rate 1 (its update is the direction u_k)."""
    if isinstance(optimizer, optax.GradientTransformation):
        return optimizer
    check_choice("optimizer", optimizer, OPTIMIZERS)
    momentum = check_real("momentum", momentum)
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    for name, v in (("adam_b1", adam_b1), ("adam_b2", adam_b2)):
        v = check_real(name, v)
        if not 0.0 <= v < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {v}")
    check_real("adam_eps", adam_eps, positive=True)
    return _named_transform(optimizer, float(momentum), float(adam_b1), float(adam_b2), float(adam_eps))


def _tree_all_finite(tree: Params) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(tree)
              if jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def _tree_where(cond: jax.Array, a: Params, b: Params) -> Params:
    return jax.tree_util.tree_map(lambda u, v: jnp.where(cond, u, v), a, b)


def _nan_where(cond: jax.Array, tree: Params) -> Params:
    def f(leaf):
        leaf = jnp.asarray(leaf)
        if jnp.issubdtype(leaf.dtype, jnp.inexact):
            return jnp.where(cond, jnp.asarray(jnp.nan, leaf.dtype), leaf)
        return leaf
    return jax.tree_util.tree_map(f, tree)


def _recorded_steps(num_steps: int, record_every: int) -> np.ndarray:
    after = [min(j * record_every, num_steps) for j in range(1, math.ceil(num_steps / record_every) + 1)]
    return np.asarray([0] + after, dtype=np.int64)


# --------------------------------------------------------------------------- jitted programs
class _Static(NamedTuple):
    """Hashable description of a training program: jitted code is reused while it stays the same."""

    loss_fn: Callable[[Params, Batch], jax.Array]
    eval_fn: Callable[..., Any] | None
    eval_with_data: bool  # eval_fn(params, eval_data) (internal) instead of eval_fn(params)
    tx: optax.GradientTransformation
    batch_size: int | None
    sampling: str
    record_every: int
    chunk_records: int
    has_test: bool
    has_snaps: bool


class _Dyn(NamedTuple):
    """Arrays a training program reads (traced, so changing their values does not recompile)."""

    x: jax.Array
    y: jax.Array
    test: Batch | None
    eval_data: Any
    lrs: jax.Array  # (L,)
    data_keys: jax.Array  # (S, 2)
    bounds: jax.Array  # (L, S)
    mults: Params
    num_steps: jax.Array  # scalar int
    snap_steps: jax.Array | None  # (num_snap,)


def _batch_at(st: _Static, dyn: _Dyn, data_key: jax.Array, step: jax.Array) -> Batch:
    if st.batch_size is None:
        return dyn.x, dyn.y
    n, b = dyn.x.shape[0], st.batch_size
    if st.sampling == "iid":
        idx = jax.random.choice(jax.random.fold_in(data_key, step), n, (b,), replace=False)
    else:
        per_epoch = n // b
        epoch, pos = step // per_epoch, step % per_epoch
        perm = jax.random.permutation(jax.random.fold_in(data_key, epoch), n)
        idx = jax.lax.dynamic_slice(perm, (pos * b,), (b,))
    return dyn.x[idx], dyn.y[idx]


def _all_runs_step(st: _Static, dyn: _Dyn, step, params, opt_state, div_step):
    def one(params, opt_state, div_step, lr, data_key, bound):
        loss, grads = jax.value_and_grad(st.loss_fn)(params, _batch_at(st, dyn, data_key, step))
        updates, new_opt = st.tx.update(grads, opt_state, params)
        new_params = jax.tree_util.tree_map(
            lambda p, u, m: p + (lr * jnp.asarray(m)).astype(u.dtype) * u, params, updates, dyn.mults)
        alive = div_step < 0
        bad_loss = ~jnp.isfinite(loss) | (loss > bound)
        bad_new = ~_tree_all_finite(new_params)
        accept = alive & ~bad_loss & ~bad_new
        params = _tree_where(accept, new_params, params)
        opt_state = _tree_where(accept, new_opt, opt_state)
        div_step = jnp.where(alive & bad_loss, step, jnp.where(alive & bad_new, step + 1, div_step))
        return params, opt_state, div_step

    per_seed = jax.vmap(one, in_axes=(0, 0, 0, None, 0, 0))
    return jax.vmap(per_seed, in_axes=(0, 0, 0, 0, None, 0))(
        params, opt_state, div_step, dyn.lrs, dyn.data_keys, dyn.bounds)


def _all_runs_record(st: _Static, dyn: _Dyn, params, div_step, step):
    def one(params, div_step):
        stopped = (div_step >= 0) & (div_step <= step)
        out = {"train": st.loss_fn(params, (dyn.x, dyn.y))}
        if st.has_test:
            out["test"] = st.loss_fn(params, dyn.test)
        if st.eval_fn is not None:
            out["eval"] = st.eval_fn(params, dyn.eval_data) if st.eval_with_data else st.eval_fn(params)
        return _nan_where(stopped, out)

    return jax.vmap(jax.vmap(one))(params, div_step)


@functools.partial(jax.jit, static_argnums=0)
def _initial_losses(st: _Static, dyn: _Dyn, params):
    return jax.vmap(jax.vmap(lambda p: st.loss_fn(p, (dyn.x, dyn.y))))(params)


@functools.partial(jax.jit, static_argnums=0)
def _initial_record(st: _Static, dyn: _Dyn, params, div_step):
    return _all_runs_record(st, dyn, params, div_step, jnp.asarray(0, jnp.int32))


@functools.partial(jax.jit, static_argnums=(0, 1, 3))
def _init_runs(init_fn, tx, init_keys, num_lrs: int):
    params = jax.vmap(init_fn)(init_keys)
    params = jax.tree_util.tree_map(lambda p: jnp.broadcast_to(p, (num_lrs,) + p.shape), params)
    return params, jax.vmap(jax.vmap(tx.init))(params)


@functools.partial(jax.jit, static_argnums=0)
def _run_chunk(st: _Static, state: _State, dyn: _Dyn):
    def step_body(s: _State, _):
        def do(s):
            p, o, d = _all_runs_step(st, dyn, s.step, s.params, s.opt_state, s.div_step)
            return s._replace(step=s.step + 1, params=p, opt_state=o, div_step=d)
        return jax.lax.cond(s.step < dyn.num_steps, do, lambda s: s, s), None

    def record_body(s: _State, _):
        s, _ = jax.lax.scan(step_body, s, None, length=st.record_every)
        rec = _all_runs_record(st, dyn, s.params, s.div_step, s.step)
        if st.has_snaps:
            match = dyn.snap_steps == s.step
            i = jnp.argmax(match)
            snaps = jax.tree_util.tree_map(
                lambda buf, p: buf.at[i].set(jnp.where(jnp.any(match), p, buf[i])), s.snaps, s.params)
            s = s._replace(snaps=snaps)
        return s, rec

    return jax.lax.scan(record_body, state, None, length=st.chunk_records)


# --------------------------------------------------------------------------- the core
def train(loss_fn: Callable[[Params, Batch], jax.Array], init_fn: Callable[[jax.Array], Params],
          train_data: Batch, *, optimizer: str | optax.GradientTransformation = "gd",
          lrs: float | Sequence[float], seeds: int | Sequence[int] = (0,), num_steps: int,
          batch_size: int | None = None, sampling: str = "shuffle", momentum: float = 0.9,
          adam_b1: float = 0.9, adam_b2: float = 0.999, adam_eps: float = 1e-8,
          record_every: int = 1, test_data: Batch | None = None,
          eval_fn: Callable[[Params], Any] | None = None, lr_multipliers: Params | None = None,
          divergence_threshold: float | None = 1e4, snapshot_steps: Sequence[int] = (),
          num_chunks: int = 20, progress: bool = True,
          callback: Callable[[int], None] | None = None, eval_data: Any = None) -> TrainResult:
    """Train ``len(lrs) * len(seeds)`` runs of a model at once; see the module docstring for conventions.

    The jitted program depends on ``loss_fn``, ``init_fn``, ``eval_fn`` (by identity), the optimizer,
    the shapes, ``batch_size``, ``record_every`` and the chunk length; calling again with new learning
    rates, data values, seeds (same count) or thresholds reuses the compiled code.

    Args:
      loss_fn: ``loss_fn(params, (x, y)) -> scalar`` (on a minibatch or the full set).
      init_fn: ``init_fn(key) -> params``.
      train_data: ``(x, y)`` with equal leading sizes n.
      optimizer: ``"gd"`` (full batch unless ``batch_size`` is set), ``"sgd"``, ``"momentum"``
        (heavy ball, coefficient ``momentum``), ``"adam"`` (``adam_b1``, ``adam_b2``, ``adam_eps``), or an
        optax transformation built with learning rate 1 (its updates are multiplied by lr and the multipliers).
      lrs: one learning rate or a sequence; runs are vmapped over them.
      seeds: one seed or a sequence of distinct non-negative ints; runs are vmapped over them.
      num_steps: number of optimizer steps (>= 1).
      batch_size: minibatch size B (1 <= B <= n), or ``None`` for the full batch.
      sampling: ``"shuffle"`` (epochs of a fresh permutation) or ``"iid"`` (independent batches).
      record_every: record every r steps (and at the last step).
      test_data: optional ``(x, y)``: ``loss_fn(params, test_data)`` is recorded too.
      eval_fn: optional ``eval_fn(params) -> pytree`` (``eval_fn(params, eval_data)`` when ``eval_data`` is
        given), recorded at every recorded step.
      eval_data: optional pytree of arrays handed to ``eval_fn`` as a traced argument (new values do not
        recompile, unlike arrays captured in a closure).
      lr_multipliers: pytree like ``params`` of per-parameter learning-rate multipliers (muP).
      divergence_threshold: relative loss bound (see the module docstring), ``None`` for only NaN/inf.
      snapshot_steps: recorded steps at which to keep the parameters of every run (``result.snapshots``).
      num_chunks: the run is split into about this many jitted chunks (progress bar / interrupt granularity).
      progress: show a ``tqdm.auto`` progress bar.
      callback: called as ``callback(steps_done)`` after every chunk.

    Returns:
      A :class:`TrainResult`.

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.eye(3); y = jnp.ones(3)
      >>> res = train(lambda w, b: 0.5 * jnp.sum((b[0] @ w - b[1]) ** 2), lambda k: jnp.zeros(3),
      ...             (x, y), lrs=[0.5, 2.5], num_steps=20, progress=False)
      >>> res.diverged.tolist(), res.diverged_step.tolist()
      ([[False], [True]], [[-1], [12]])
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable loss_fn(params, (x, y)), got {loss_fn!r}")
    if not callable(init_fn):
        raise TypeError(f"init_fn must be callable init_fn(key) -> params, got {init_fn!r}")
    if eval_fn is not None and not callable(eval_fn):
        raise TypeError(f"eval_fn must be callable eval_fn(params) or None, got {eval_fn!r}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable callback(steps_done) or None, got {callback!r}")
    x, y = _check_data("train_data", train_data)
    if test_data is not None:
        test_data = _check_data("test_data", test_data)
    n = int(x.shape[0])
    lrs_np = _as_lrs(lrs)
    seeds_np = _as_seeds(seeds)
    num_steps = check_positive_int("num_steps", num_steps)
    record_every = check_positive_int("record_every", record_every)
    num_chunks = check_positive_int("num_chunks", num_chunks)
    check_choice("sampling", sampling, SAMPLINGS)
    if batch_size is not None:
        batch_size = check_positive_int("batch_size", batch_size)
        if batch_size > n:
            raise ValueError(f"batch_size must be <= the number of training examples {n}, got {batch_size}")
        if batch_size == n:
            batch_size = None
    if divergence_threshold is not None:
        divergence_threshold = check_real("divergence_threshold", divergence_threshold, allow_inf=True)
        if not divergence_threshold > 1.0:
            raise ValueError(f"divergence_threshold must be > 1 (a factor over the initial loss) or None, "
                             f"got {divergence_threshold}")
    opt_name = optimizer if isinstance(optimizer, str) else "custom optax"
    tx = _base_transform(optimizer, momentum, adam_b1, adam_b2, adam_eps)
    rec_steps = _recorded_steps(num_steps, record_every)
    snapshot_steps = tuple(sorted(set(int(s) for s in snapshot_steps)))
    missing = [s for s in snapshot_steps if s not in set(rec_steps.tolist())]
    if missing:
        raise ValueError(f"snapshot_steps must be recorded steps (0, multiples of record_every={record_every} "
                         f"up to num_steps={num_steps}, or num_steps), got {missing}")

    num_lrs, num_seeds = len(lrs_np), len(seeds_np)
    keys = jax.vmap(lambda s: jax.random.split(jax.random.PRNGKey(s), 2))(jnp.asarray(seeds_np))
    init_keys, data_keys = keys[:, 0], keys[:, 1]
    params0, opt0 = _init_runs(init_fn, tx, init_keys, num_lrs)
    one_params = jax.tree_util.tree_map(lambda p: p[0, 0], params0)
    if lr_multipliers is None:
        mults = jax.tree_util.tree_map(lambda _p: jnp.asarray(1.0), one_params)
    else:
        p_struct = jax.tree_util.tree_structure(one_params)
        m_struct = jax.tree_util.tree_structure(lr_multipliers)
        if p_struct != m_struct:
            raise ValueError(f"lr_multipliers must have the structure of params {p_struct}, got {m_struct}")
        for leaf in jax.tree_util.tree_leaves(lr_multipliers):
            check_finite("lr_multipliers", leaf)
            if np.any(np.asarray(leaf) < 0):
                raise ValueError("lr_multipliers must be >= 0")
        mults = jax.tree_util.tree_map(jnp.asarray, lr_multipliers)

    try:  # shapes only (no FLOPs): a loss that is not one number is named before any compile
        out_shape = jax.eval_shape(loss_fn, one_params, (x, y)).shape
    except Exception:  # a loss that cannot be traced this way is left to the run to report
        out_shape = ()
    check_scalar_output("loss_fn", jnp.zeros(out_shape))

    n_after = len(rec_steps) - 1
    st = _Static(loss_fn=loss_fn, eval_fn=eval_fn, eval_with_data=eval_data is not None, tx=tx,
                 batch_size=batch_size, sampling=sampling, record_every=record_every,
                 chunk_records=max(1, math.ceil(n_after / num_chunks)), has_test=test_data is not None,
                 has_snaps=bool(snapshot_steps))
    dyn = _Dyn(x=x, y=y, test=test_data, eval_data=eval_data, lrs=jnp.asarray(lrs_np),
               data_keys=data_keys, bounds=jnp.zeros((num_lrs, num_seeds)), mults=mults,
               num_steps=jnp.asarray(num_steps, jnp.int32),
               snap_steps=jnp.asarray(snapshot_steps, jnp.int32) if snapshot_steps else None)
    l0 = _initial_losses(st, dyn, params0)
    if divergence_threshold is None or not np.isfinite(divergence_threshold):
        bounds = jnp.full((num_lrs, num_seeds), jnp.inf, dtype=l0.dtype)
    else:
        bounds = jnp.where(l0 > 0, divergence_threshold * l0, jnp.inf)
    dyn = dyn._replace(bounds=bounds)
    snaps0 = None
    if snapshot_steps:
        snaps0 = jax.tree_util.tree_map(lambda p: jnp.broadcast_to(p, (len(snapshot_steps),) + p.shape), params0)
    state = _State(jnp.asarray(0, jnp.int32), params0, opt0, jnp.full((num_lrs, num_seeds), -1, jnp.int32), snaps0)

    records = [jax.tree_util.tree_map(lambda a: np.asarray(a)[:, :, None],
                                      _initial_record(st, dyn, params0, state.div_step))]
    done_records = 0
    completed = True
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=num_steps, desc=f"train ({opt_name}, {num_lrs} lr x {num_seeds} seeds)", leave=True)
    try:
        while done_records < n_after:
            new_state, recs = _run_chunk(st, state, dyn)
            jax.block_until_ready(new_state)
            keep = min(st.chunk_records, n_after - done_records)
            # scan stacks records on axis 0: (chunk, L, S, ...) -> (L, S, chunk, ...)
            recs = jax.tree_util.tree_map(lambda a: np.moveaxis(np.asarray(a)[:keep], 0, 2), recs)
            state = new_state
            records.append(recs)
            done_records += keep
            if bar is not None:
                bar.update(int(rec_steps[done_records]) - bar.n)
            if callback is not None:
                callback(int(rec_steps[done_records]))
    except KeyboardInterrupt:
        completed = False
    finally:
        if bar is not None:
            bar.close()

    rec = jax.tree_util.tree_map(lambda *a: np.concatenate(a, axis=2), *records)
    steps = rec_steps[: done_records + 1]
    steps_done = int(steps[-1])
    div_step = np.asarray(state.div_step).astype(np.int64)
    diverged = div_step >= 0
    snapshots: dict[int, Params] = {}
    if snapshot_steps:
        for i, s in enumerate(snapshot_steps):
            if s <= steps_done:
                snapshots[s] = jax.tree_util.tree_map(lambda buf, i=i: buf[i], state.snaps)
    n_div = int(diverged.sum())
    info = (f"{opt_name} (batch {'full' if batch_size is None else f'{batch_size}, {sampling}'}), "
            f"{num_lrs} lr x {num_seeds} seeds, {steps_done}/{num_steps} steps"
            f"{'' if completed else ' (interrupted)'}; diverged {n_div}/{num_lrs * num_seeds} "
            f"(bound {divergence_threshold} x initial loss, or NaN/inf); {config.device_report()}")
    return TrainResult(
        steps=steps, train_loss=rec["train"], test_loss=rec.get("test"), evals=rec.get("eval"),
        diverged=diverged, diverged_step=div_step, params=state.params, lrs=lrs_np,
        seeds=seeds_np, optimizer=opt_name, batch_size=batch_size, num_steps=num_steps,
        num_steps_done=steps_done, completed=completed, snapshots=snapshots, ntk=None, ntk_steps=(), info=info)


# --------------------------------------------------------------------------- MLP convenience
@functools.lru_cache(maxsize=64)
def _mlp_loss(net: MLP, loss: str, reduction: str) -> Callable[[Params, Batch], jax.Array]:
    """The loss closure for ``net`` (cached, so repeated calls reuse the compiled training program)."""
    def mse(params, batch):
        xb, yb = batch
        r = net.apply(params, xb) - yb
        total = 0.5 * jnp.sum(r * r)
        return total if reduction == "sum" else total / r.size

    def cross_entropy(params, batch):
        xb, yb = batch
        logits = net.apply(params, xb)
        if net.out_dim == 1:  # binary, labels +-1: log(1 + exp(-y f))
            per = jax.nn.softplus(-yb[:, 0] * logits[:, 0])
        elif yb.shape[1] == 1:  # integer class labels stored as floats
            per = optax.softmax_cross_entropy_with_integer_labels(logits, yb[:, 0].astype(jnp.int32))
        else:
            per = optax.softmax_cross_entropy(logits, yb)
        return jnp.sum(per) if reduction == "sum" else jnp.mean(per)

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
      optimizer, lrs, seeds, num_steps, batch_size, record_every: as in :func:`train`.
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
    x, y = _check_data("train_data", train_data)
    if x.ndim != 2:
        raise ValueError(f"training inputs must have shape (n, in_dim), got {x.shape}")
    _check_mlp_targets("training", net, loss, y)
    if kwargs.get("test_data") is not None:
        xt, yt = _check_data("test_data", kwargs["test_data"])
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
