"""Training loops for any model (GD, SGD, heavy-ball momentum, Adam via optax), vmapped over
learning rates and seeds, with divergence detection.

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
  without replacement within a batch, the model behind c_B = (n - B)/(B (n - 1)) in docs/theory.md#9-learning-rate-and-batch-size).
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

The MLP convenience wrapper :func:`~workbench.training.mlp.train_mlp` lives in :mod:`workbench.training.mlp`.
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
from tqdm.auto import tqdm

from workbench import config
from workbench._compat import warn_deprecated
from workbench.validation import (check_choice, check_data_pair, check_finite, check_lrs, check_positive_int,
                                  check_real, check_seeds)
from workbench.validation import check_scalar_output

OPTIMIZERS = ("gd", "sgd", "momentum", "adam")
SAMPLINGS = ("shuffle", "iid")

Params = Any
Batch = tuple[jax.Array, jax.Array]

__all__ = ["OPTIMIZERS", "SAMPLINGS", "Batch", "Params", "TrainResult", "train"]


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
          callback: Callable[[int], None] | None = None, eval_data: Any = None,
          partial_callback: Callable[[TrainResult], None] | None = None) -> TrainResult:
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
      seeds: a sequence of distinct non-negative ints; runs are vmapped over them (an int is deprecated
        here: it meant one seed, and will mean a count as in :func:`workbench.validation.check_seeds`).
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
      partial_callback: called as ``partial_callback(result)`` after every chunk with the result so far (a
        :class:`TrainResult` of the steps done, ``completed=False``), e.g. to draw a curve while it trains; each
        call concatenates the records so far. Called after ``callback``.

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
    if partial_callback is not None and not callable(partial_callback):
        raise TypeError(f"partial_callback must be callable partial_callback(result) or None, got {partial_callback!r}")
    x, y = check_data_pair("train_data", train_data)
    if test_data is not None:
        test_data = check_data_pair("test_data", test_data)
    n = int(x.shape[0])
    lrs_np = check_lrs(lrs)
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        # the one meaning of an int seed argument is a count (validation.check_seeds); here it was one seed
        warn_deprecated(f"train(seeds={int(seeds)}) meaning the single seed {int(seeds)}",
                        f"seeds=[{int(seeds)}] (an int will mean a count of seeds 0..n-1, as everywhere else)")
        seeds = [int(seeds)]
    seeds_np = check_seeds(seeds)
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

    def _result(records: list, state: _State, done_records: int, completed: bool,
                note: str = " (interrupted)") -> TrainResult:
        """The result of the records so far (the end of the run, or a partial one for partial_callback)."""
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
                f"{'' if completed else note}; diverged {n_div}/{num_lrs * num_seeds} "
                f"(bound {divergence_threshold} x initial loss, or NaN/inf); {config.device_report()}")
        return TrainResult(
            steps=steps, train_loss=rec["train"], test_loss=rec.get("test"), evals=rec.get("eval"),
            diverged=diverged, diverged_step=div_step, params=state.params, lrs=lrs_np,
            seeds=seeds_np, optimizer=opt_name, batch_size=batch_size, num_steps=num_steps,
            num_steps_done=steps_done, completed=completed, snapshots=snapshots, ntk=None, ntk_steps=(), info=info)

    records = [jax.tree_util.tree_map(lambda a: np.asarray(a)[:, :, None],
                                      _initial_record(st, dyn, params0, state.div_step))]
    done_records = 0
    completed = True
    bar = None
    if progress:
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
            if partial_callback is not None and done_records < n_after:
                partial_callback(_result(records, state, done_records, False, " (in progress)"))
    except KeyboardInterrupt:
        completed = False
    finally:
        if bar is not None:
            bar.close()
    return _result(records, state, done_records, completed)

