"""Batch-Hessian spectra across batch sizes against the random-matrix model (docs/theory.md#8-the-batch-hessian).

:func:`batch_hessian_study` takes a net, a data set (x, y), a loss and a list of batch sizes; it draws
``num_batches`` batches per B (without replacement within a batch), and measures for each:

* the top-k eigenvalues of the batch curvature H_B (Hessian or GGN; Lanczos, Ritz residuals kept);
* its SLQ spectral density (nodes and weights; densities on a common grid at the end);
* the noise E_B = H_B - H: ||E_B||_F^2 by Hutchinson on E_B^2 and its top eigenvalue by Lanczos;

and for the full data: the top-k eigenvalues and the SLQ density of H. It fits sigma^2 in
s^2 = ||E_B||_F^2/P^2 = sigma^2 (1/B - 1/N) N/(N - 1), and returns the random-matrix prediction
(:func:`workbench.rmt.batch_hessian_top`) beside the measurements.

Implementation: the batch loss is the full-data loss with weights w_i = 1/B on the batch and 0 elsewhere
(:class:`WeightedOutputLoss`), so H_B and E_B (weights 1/B - 1/N) share one compiled product with H for
every batch size: moving a batch-size slider recompiles nothing. Each product then costs a pass over
all N points, which is what one wants for N up to a few thousand.

GGN model: for ``kind="ggn"`` the per-example GGN terms are modelled as the sample second-moment matrix
of a population sigma_b^2 (I + spikes); its off-diagonal entries have variance sigma_b^4 (1/B - 1/N) N/(N - 1),
so the fitted Frobenius sigma^2 gives the bulk level sigma_b^2 = sqrt(sigma^2) for the Marchenko-Pastur
prediction (a reconstruction, see :func:`workbench.rmt.batch_hessian_top`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from workbench import config, rmt
from workbench.studies.partial import Partial, last
from workbench.data import digits, gaussian_inputs, mlp_teacher
from workbench.hessian import KINDS, OUTPUT_LOSSES, ComposedLoss, hessian_operator, mlp_loss, num_params
from workbench.linalg.krylov import gaussian_broadening, slq_density, squared_norms, top_eigenvalues
from workbench.losses import per_example_loss
from workbench.validation import check_choice, check_data_pair, check_positive_int, check_real

__all__ = ["BULK_POINTS", "DATASETS", "batch_hessian_study", "BatchHessianStudy", "iter_batch_hessian_study",
           "make_data", "noise_bulks",
           "train_full_batch", "TrainedParams", "weighted_mlp_loss", "WeightedOutputLoss", "with_weights"]


# ----------------------------------------------------------------------------- weighted loss
@dataclasses.dataclass(frozen=True)
class WeightedOutputLoss:
    """sum_i w_i l(f_i, y_i) with ``yw = concat(y, w[:, None])``: l the per-example ``"mse"``
    (1/2 |f - y|^2) or ``"cross_entropy"`` loss. Weights 1/N give the mean loss of :mod:`workbench.hessian`."""

    loss: str

    def __call__(self, f: jax.Array, yw: jax.Array) -> jax.Array:
        return jnp.sum(yw[:, -1] * per_example_loss(self.loss, f, yw[:, :-1]))


@functools.lru_cache(maxsize=64)
def weighted_mlp_loss(net: Any, loss: str) -> ComposedLoss:
    """The cached :class:`ComposedLoss` of ``net.apply`` and :class:`WeightedOutputLoss` (one compile per net)."""
    check_choice("loss", loss, OUTPUT_LOSSES)
    return ComposedLoss(net.apply, WeightedOutputLoss(loss))


def with_weights(y: jax.Array, w: jax.Array) -> jax.Array:
    """Targets with the weight column appended, shape (n, out_dim + 1)."""
    return jnp.concatenate([y, w[:, None].astype(y.dtype)], axis=1)


# ----------------------------------------------------------------------------- training
class TrainedParams(NamedTuple):
    params: Any
    steps_done: int
    diverged_at: int | None
    losses: np.ndarray


@functools.partial(jax.jit, static_argnames=("loss_fn", "num_steps"))
def _gd(loss_fn, params, batch, lr, num_steps):
    opt = optax.sgd(1.0)

    def step(carry, _):
        p, s = carry
        val, g = jax.value_and_grad(loss_fn)(p, batch)
        upd, s = opt.update(g, s, p)
        p_new = optax.apply_updates(p, jax.tree_util.tree_map(lambda u: lr * u, upd))
        return (p_new, s), (val, p_new)

    (_, _), (vals, traj) = jax.lax.scan(step, (params, opt.init(params)), None, length=num_steps)
    return vals, traj


def train_full_batch(net: Any, params: Any, x: jax.Array, y: jax.Array, loss: str, num_steps: int,
                     lr: float) -> TrainedParams:
    """``num_steps`` of full-batch gradient descent on the mean loss; stops at the last finite parameters.

    Divergence (a non-finite loss or parameter at step k) is a result: ``diverged_at = k`` and the
    parameters are those before step k.
    """
    num_steps = check_positive_int("num_steps", num_steps, minimum=0)
    lr = check_real("lr", lr, positive=True)
    if num_steps == 0:
        return TrainedParams(params, 0, None, np.zeros(0))
    lf = mlp_loss(net, loss)
    vals, traj = _gd(lf, params, (x, y), lr, num_steps)
    vals = np.asarray(vals)
    leaves = jax.tree_util.tree_leaves(traj)
    finite_p = np.all(np.stack([np.asarray(jnp.all(jnp.isfinite(a.reshape(num_steps, -1)), axis=1))
                                for a in leaves]), axis=0)
    ok = np.isfinite(vals) & finite_p
    if ok.all():
        last = jax.tree_util.tree_map(lambda a: a[-1], traj)
        return TrainedParams(last, num_steps, None, vals)
    k = int(np.argmin(ok))
    last = params if k == 0 else jax.tree_util.tree_map(lambda a: a[k - 1], traj)
    return TrainedParams(last, k, k, vals[:k])


class TrainingDivergedError(ValueError):
    """The pre-training diverged so far that no curvature can be measured at its last finite parameters."""


def _check_curvature_after_divergence(op: Any, trained: TrainedParams, lr: float, key: jax.Array) -> None:
    """Before Lanczos: one product with a random vector at the last finite parameters must be finite.

    A diverged pre-training keeps the parameters before the step that blew up (a result, flagged), but those
    can already be so large that every curvature product overflows; that is the divergence, not a Lanczos
    failure, and is reported as such.
    """
    hv = op.matvec(jax.random.rademacher(key, (op.dim,), dtype=op.dtype))
    if not bool(jnp.all(jnp.isfinite(hv))):
        raise TrainingDivergedError(
            f"the pre-training diverged at step {trained.diverged_at} (learning rate lr = {lr:g}): its last finite "
            "parameters are so large that the curvature is not finite, so there is no spectrum to measure; lower "
            f"the learning rate (below 2 / lambda_max of the loss, e.g. lr = {lr / 10:g}) or use fewer train steps")


# ----------------------------------------------------------------------------- study
class BatchHessianStudy(NamedTuple):
    """Everything the notebook plots. Shapes: nB = len(batch_sizes), J = num_batches, k = top_k.

    ``batch_top`` (nB, J, k), ``full_top`` (k,), ``frob_sq`` (nB, J) estimates of ||H_B - H||_F^2 with
    ``frob_sq_stderr``; ``noise_var`` (nB,) = mean frob_sq / P^2; ``noise_top`` (nB, J) top eigenvalue
    of H_B - H; ``wigner_edge`` (nB,) = 2 sqrt(noise_var P) (the edge the Wigner model predicts from the
    measured noise); ``fit`` (:class:`workbench.rmt.NoiseFit`), ``prediction``
    (:class:`workbench.rmt.BatchTopPrediction` from ``full_top`` and the fitted sigma^2) and ``curve``, the
    same on a dense grid of batch sizes from 1 to N (for plotting);
    ``grid``, ``full_density`` (G,), ``batch_density`` (nB, G): SLQ densities (pooled over batches);
    ``moments`` (nB + 1, 2) SLQ first two moments (batch sizes, then full data);
    ``bulk_x``, ``bulk_density`` (nB, BULK_POINTS): the random-matrix bulk of the noise with the measured s^2
    (semicircle of radius 2 s sqrt(P) for the Hessian, Marchenko-Pastur at the fitted level for the GGN), NaN
    rows where there is none (B = N or s^2 = 0); the plots draw them as they are.
    """

    batch_sizes: np.ndarray
    num_params: int
    num_data: int
    kind: str
    loss: str
    full_top: np.ndarray
    full_residuals: np.ndarray
    batch_top: np.ndarray
    frob_sq: np.ndarray
    frob_sq_stderr: np.ndarray
    noise_var: np.ndarray
    noise_top: np.ndarray
    wigner_edge: np.ndarray
    fit: rmt.NoiseFit
    prediction: rmt.BatchTopPrediction
    curve: rmt.BatchTopPrediction
    grid: np.ndarray
    full_density: np.ndarray
    batch_density: np.ndarray
    sigma: float
    moments: np.ndarray
    train_steps: int
    diverged_at: int | None
    device: str
    elapsed_s: float
    bulk_x: np.ndarray | None = None
    bulk_density: np.ndarray | None = None


BULK_POINTS = 200
DATASETS = ("synthetic", "digits")


def noise_bulks(kind: str, batch_sizes: np.ndarray, noise_var: np.ndarray, num_params: int, num_data: int,
                sigma2: float) -> tuple[np.ndarray, np.ndarray]:
    """The random-matrix bulk of the batch noise at each B, on BULK_POINTS points (NaN rows where none).

    Hessian: the semicircle :func:`workbench.rmt.semicircle_density` of sigma = s sqrt(P) on [-2 sigma, 2 sigma].
    GGN: the Marchenko-Pastur density :func:`workbench.rmt.marchenko_pastur_density` of ratio P s^2/sigma2 at
    level sqrt(sigma2), strictly inside its edges (the end points are dropped, NaN-padded).
    """
    xs = np.full((len(batch_sizes), BULK_POINTS), np.nan)
    ys = np.full((len(batch_sizes), BULK_POINTS), np.nan)
    for i, (b, s2) in enumerate(zip(batch_sizes, noise_var)):
        s2 = float(s2)
        if b >= num_data or not s2 > 0:
            continue
        if kind == "hessian":
            sig = math.sqrt(s2 * num_params)
            x = np.linspace(-2 * sig, 2 * sig, BULK_POINTS)
            y = rmt.semicircle_density(x, sig)
        else:
            level = math.sqrt(max(sigma2, 1e-300))
            ratio = num_params * s2 / max(sigma2, 1e-300)
            lo, hi = rmt.marchenko_pastur_edges(ratio, level)
            x = np.linspace(lo, hi, BULK_POINTS)[1:-1]
            y = rmt.marchenko_pastur_density(x, ratio, level)
        xs[i, :x.size], ys[i, :y.size] = x, y
    return xs, ys


def make_data(name: str, loss: str, n: int, *, seed: int = 0) -> tuple[jax.Array, jax.Array, str]:
    """Inputs (n, d) and targets (n, out) for ``name`` in :data:`DATASETS` and ``loss``.

    ``"synthetic"``: Gaussian inputs in 8 dimensions; MSE targets from a random tanh teacher, cross-entropy
    labels the argmax of a random linear map to 4 classes (one-hot). ``"digits"``: scikit-learn's 8x8 digits,
    one-hot targets (used as regression targets for MSE).
    """
    if name not in DATASETS:
        raise ValueError(f"data set must be one of {DATASETS}, got {name!r}")
    check_choice("loss", loss, OUTPUT_LOSSES)
    n = check_positive_int("n", n)
    key = jax.random.PRNGKey(seed)
    if name == "synthetic":
        if loss == "mse":
            ds = mlp_teacher(key, n, 1, 8, noise_std=0.1, inputs="gaussian")
            return ds.x_train, ds.y_train, ds.description
        kx, kt = jax.random.split(key)
        x = gaussian_inputs(kx, n, 8)
        labels = jnp.argmax(x @ jax.random.normal(kt, (8, 4), x.dtype), axis=1)
        return x, jax.nn.one_hot(labels, 4, dtype=x.dtype), "Gaussian inputs (d = 8), 4 classes from a linear teacher"
    ds = digits(key, n, 10, targets="onehot", center=False)
    return ds.x_train, ds.y_train, "scikit-learn 8x8 digits, one-hot targets"


def _batch_weights(key: jax.Array, n: int, b: int, dtype: Any) -> jax.Array:
    """Weights 1/B on B indices drawn without replacement (a permutation prefix), 0 elsewhere."""
    idx = np.asarray(jax.random.permutation(key, n))[:b]
    w = np.zeros(n)
    w[idx] = 1.0 / b
    return jnp.asarray(w, dtype)


def _batch_draw(lf: ComposedLoss, params: Any, x: jax.Array, y: jax.Array, uniform: jax.Array, k_data: jax.Array,
                i: int, b: int, j: int, *, kind: str, top_k: int, tol: float, slq_steps: int, slq_probes: int,
                noise_probes: int) -> dict[str, Any]:
    """Draw j at batch size b (index i): top-k of H_B, its SLQ nodes/weights, and the noise E_B = H_B - H."""
    n = int(x.shape[0])
    kb, kt, ks, kn = jax.random.split(jax.random.fold_in(k_data, i * 1000 + j), 4)
    w = _batch_weights(kb, n, b, x.dtype)
    op_b = hessian_operator(lf, params, (x, with_weights(y, w)), kind=kind)
    out: dict[str, Any] = {"top": top_eigenvalues(op_b, top_k, key=kt, tol=tol).eigenvalues}
    d = slq_density(op_b, slq_steps, slq_probes, key=ks, grid=2)
    out["nodes"], out["weights"] = d.nodes, d.weights
    if b < n:  # at B = N the batch is the data set: E_B = 0 exactly
        op_e = hessian_operator(lf, params, (x, with_weights(y, w - uniform)), kind=kind)
        vals = squared_norms(op_e, noise_probes, key=kn)
        out["frob"] = vals.mean()
        out["frob_se"] = vals.std(ddof=1) / math.sqrt(len(vals))
        out["noise_top"] = top_eigenvalues(op_e, 1, key=kn, tol=1e-4).eigenvalues[0]
    return out


def _batch_draw_task(shared: dict[str, Any], i: int, b: int, j: int) -> dict[str, Any]:
    """Worker side: one :func:`_batch_draw` at matmul precision ``"highest"`` on the default device."""
    x, y = jnp.asarray(shared["x"]), jnp.asarray(shared["y"])
    uniform = jnp.full((x.shape[0],), 1.0 / x.shape[0], x.dtype)
    lf = weighted_mlp_loss(shared["net"], shared["loss"])
    with config.matmul_precision("highest"):
        out = _batch_draw(lf, shared["params"], x, y, uniform, jnp.asarray(shared["k_data"]), i, b, j,
                          **shared["settings"])
    return {k: np.asarray(v) for k, v in out.items()}


def batch_hessian_study(net: Any, x: jax.Array, y: jax.Array, batch_sizes: Sequence[int], *, loss: str = "mse",
                        kind: str = "hessian", num_batches: int = 3, top_k: int = 3, params: Any = None,
                        key: jax.Array | None = None, train_steps: int = 0, lr: float = 0.1,
                        slq_steps: int = 40, slq_probes: int = 4, noise_probes: int = 8,
                        grid_size: int = 400, progress: bool = True, executor: Any = None) -> BatchHessianStudy:
    """Measure batch-curvature spectra at each batch size and compare with the random-matrix model: the last
    result of :func:`iter_batch_hessian_study` (same arguments)."""
    return last(iter_batch_hessian_study(
        net, x, y, batch_sizes, loss=loss, kind=kind, num_batches=num_batches, top_k=top_k, params=params, key=key,
        train_steps=train_steps, lr=lr, slq_steps=slq_steps, slq_probes=slq_probes, noise_probes=noise_probes,
        grid_size=grid_size, progress=progress, executor=executor))


def iter_batch_hessian_study(net: Any, x: jax.Array, y: jax.Array, batch_sizes: Sequence[int], *, loss: str = "mse",
                             kind: str = "hessian", num_batches: int = 3, top_k: int = 3, params: Any = None,
                             key: jax.Array | None = None, train_steps: int = 0, lr: float = 0.1,
                             slq_steps: int = 40, slq_probes: int = 4, noise_probes: int = 8,
                             grid_size: int = 400, progress: bool = True,
                             executor: Any = None) -> Iterator[Partial]:
    """Measure batch-curvature spectra at each batch size and compare with the random-matrix model, yielding a
    :class:`~workbench.studies.partial.Partial` study after every draw (batch sizes in the order given, draws in
    order): the study of the batch sizes begun so far, the one in progress from its draws done (its rows of
    ``batch_top``, ``frob_sq``, ``frob_sq_stderr`` and ``noise_top`` NaN for the draws to come; fit, prediction and densities
    from the draws done), so SLQ densities appear and sharpen draw by draw. Once all draws of a batch size are done,
    the partial equals the one-shot study of the batch sizes so far. The last one is the full study
    (:func:`batch_hessian_study`), with no NaN. With an ``executor`` the draws run as tasks in any order and only
    the full study is yielded.

    Args:
      net: an MLP (anything hashable with ``init(key, in_dim)`` and ``apply(params, x)``).
      x: the data set's inputs, shape (N, d).
      y: its targets, shape (N, out_dim) (one-hot rows for cross-entropy).
      batch_sizes: batch sizes B in [1, N].
      loss: ``"mse"`` or ``"cross_entropy"`` (mean over the batch, :mod:`workbench.hessian`).
      kind: ``"hessian"`` or ``"ggn"``.
      num_batches: batches drawn per B; top_k: eigenvalues kept per batch.
      params: parameters to look at (default ``net.init(key)``), then ``train_steps`` of full-batch GD at ``lr``.
      slq_steps: Lanczos depth for the densities.
      slq_probes: probes per batch for the densities.
      noise_probes: Hutchinson probes for ||H_B - H||_F^2.
      executor: a ``concurrent.futures.Executor`` or Dask ``Client``: one task per (batch size, draw), each on
        the worker's default device (the full-data spectrum and the training stay here; ``docs/scaling.md``).
    """
    check_choice("loss", loss, OUTPUT_LOSSES)
    check_choice("kind", kind, KINDS)
    x, y = check_data_pair("(x, y)", (x, y))
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError(f"x and y must be 2-d with equal leading sizes, got shapes {x.shape} and {y.shape}")
    n = int(x.shape[0])
    bs = np.asarray([check_positive_int("batch_sizes[i]", int(b)) for b in batch_sizes])
    if bs.size == 0 or np.any(bs > n):
        raise ValueError(f"batch_sizes must be a non-empty list of integers in [1, N={n}], got {list(bs)}")
    num_batches = check_positive_int("num_batches", num_batches, minimum=1)
    top_k = check_positive_int("top_k", top_k)
    key = jax.random.PRNGKey(0) if key is None else key
    k_init, k_data, k_probe = jax.random.split(key, 3)
    if params is None:
        params = net.init(k_init, int(x.shape[1]), dtype=x.dtype)
    trained = train_full_batch(net, params, x, y, loss, train_steps, lr)
    params = trained.params

    start = time.perf_counter()
    lf = weighted_mlp_loss(net, loss)
    p = num_params(params)
    dtype = x.dtype
    tol = 1e-6 if dtype == jnp.float64 else 1e-3  # Ritz residual / |theta|, reachable in this precision
    uniform = jnp.full((n,), 1.0 / n, dtype)
    full_op = hessian_operator(lf, params, (x, with_weights(y, uniform)), kind=kind)
    if trained.diverged_at is not None:
        _check_curvature_after_divergence(full_op, trained, lr, k_probe)
    full = top_eigenvalues(full_op, top_k, key=k_probe, tol=tol)
    full_slq = slq_density(full_op, min(slq_steps, p), max(slq_probes, 2), key=k_probe, grid=2)

    nb = len(bs)
    # NaN until drawn: a partial study shows the draws done of the batch size in progress
    batch_top = np.full((nb, num_batches, top_k), np.nan)
    frob = np.full((nb, num_batches), np.nan)
    frob_se = np.full((nb, num_batches), np.nan)
    noise_top = np.full((nb, num_batches), np.nan)
    nodes: list[list[np.ndarray]] = [[] for _ in bs]
    weights: list[list[np.ndarray]] = [[] for _ in bs]
    draws = [(i, int(b), j) for i, b in enumerate(bs) for j in range(num_batches)]
    settings = {"kind": kind, "top_k": top_k, "tol": tol, "slq_steps": min(slq_steps, p),
                "slq_probes": max(slq_probes, 2), "noise_probes": max(noise_probes, 2)}

    def store(t: int, r: dict[str, Any]) -> None:
        i, _, j = draws[t]
        batch_top[i, j] = r["top"]
        nodes[i].append(r["nodes"])
        weights[i].append(r["weights"])
        if "frob" in r:
            frob[i, j], frob_se[i, j], noise_top[i, j] = r["frob"], r["frob_se"], r["noise_top"]
        else:  # B = N: the batch curvature is the full one, no noise
            frob[i, j] = frob_se[i, j] = noise_top[i, j] = 0.0

    def study(k: int) -> BatchHessianStudy:
        """The study of the first ``k`` batch sizes (the last one's undone draws NaN)."""
        return _assemble(bs[:k], p, n, kind, loss, full, full_slq, batch_top[:k].copy(), frob[:k].copy(),
                         frob_se[:k].copy(), noise_top[:k].copy(), nodes[:k], weights[:k], grid_size, trained,
                         time.perf_counter() - start)

    if executor is None:
        bar = tqdm(total=nb * num_batches, desc="batch Hessians", disable=not progress, leave=True)
        try:
            for t, (i, b, j) in enumerate(draws):
                with config.matmul_precision("highest"):  # not held across a yield: the consumer runs in between
                    store(t, _batch_draw(lf, params, x, y, uniform, k_data, i, b, j, **settings))
                bar.update(1)
                if t < len(draws) - 1 and bs[: i + 1].min() < n:  # the fit needs a B < N
                    note = f"batch size {b}" if j == num_batches - 1 else f"batch size {b}, draw {j + 1}/{num_batches}"
                    yield Partial(study(i + 1), (t + 1) / len(draws), note)
        finally:
            bar.close()
    else:
        from workbench.executors import run_tasks

        shared = {"net": net, "loss": loss, "params": params, "x": np.asarray(x), "y": np.asarray(y),
                  "k_data": np.asarray(k_data), "settings": settings}
        results = dict(run_tasks(executor, _batch_draw_task, shared, draws, progress=progress, desc="batch Hessians"))
        for t in range(len(draws)):  # in draw order: the pooled SLQ nodes are concatenated as in-process
            store(t, results[t])
    yield Partial(study(nb), 1.0, f"batch sizes {', '.join(str(int(b)) for b in bs)}")


def _assemble(bs: np.ndarray, p: int, n: int, kind: str, loss: str, full: Any, full_slq: Any, batch_top: np.ndarray,
              frob: np.ndarray, frob_se: np.ndarray, noise_top: np.ndarray, nodes: list, weights: list,
              grid_size: int, trained: Any, elapsed: float) -> BatchHessianStudy:
    """Fit, prediction and densities from the measured draws of the batch sizes ``bs``."""
    nb = len(bs)
    moments = np.zeros((nb + 1, 2))
    frob_mean = np.nanmean(frob, axis=1)  # over the draws done (a partial study's last row has NaN to come)
    noise_var = frob_mean / p ** 2
    fit = rmt.fit_noise_variance(bs, frob_mean, p, n)
    model_sigma2 = max(fit.sigma2, 1e-300) if kind == "hessian" else math.sqrt(max(fit.sigma2, 1e-300))
    lam = np.maximum(full.eigenvalues, 1e-300)
    pred = rmt.batch_hessian_top(lam, p, model_sigma2, bs, n, kind=kind)
    dense_b = np.unique(np.concatenate([np.geomspace(1, n, 60), bs.astype(float)]))
    curve = rmt.batch_hessian_top(lam, p, model_sigma2, dense_b, n, kind=kind)
    wigner_edge = 2 * np.sqrt(noise_var * p)

    all_nodes = np.concatenate([full_slq.nodes.ravel()] + [np.concatenate(v).ravel() for v in nodes])
    lo, hi = float(all_nodes.min()), float(all_nodes.max())
    sigma = 0.01 * (hi - lo) if hi > lo else 1e-3
    grid = np.linspace(lo - 5 * sigma, hi + 5 * sigma, grid_size)
    full_density = gaussian_broadening(grid, full_slq.nodes, full_slq.weights, sigma)
    batch_density = np.stack([gaussian_broadening(grid, np.concatenate(nodes[i]), np.concatenate(weights[i]), sigma)
                              for i in range(nb)])
    for i in range(nb):
        nn, ww = np.concatenate(nodes[i]), np.concatenate(weights[i])
        moments[i] = [np.mean(np.sum(ww * nn, axis=1)), np.mean(np.sum(ww * nn ** 2, axis=1))]
    moments[nb] = full_slq.moments
    return BatchHessianStudy(
        bs, p, n, kind, loss, full.eigenvalues, full.residuals, batch_top, frob, frob_se, noise_var, noise_top,
        wigner_edge, fit, pred, curve, grid, full_density, batch_density, sigma, moments, trained.steps_done,
        trained.diverged_at, config.device_report(), elapsed,
        *noise_bulks(kind, bs, noise_var, p, n, fit.sigma2))
