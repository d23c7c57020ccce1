"""Every study on your own model: a :class:`workbench.models.Model` and a labelled data set.

The functions here call the same lower layers as the MLP notebooks, with the model's ``apply_fn`` and the
mean losses of :func:`workbench.models.make_loss` (``"mse"``: (1/n) sum_i 1/2 |f_i - onehot(y_i)|^2,
``"cross_entropy"``: softmax cross-entropy with integer labels):

* :func:`ntk_study`: eigenvalues of the empirical NTK (:func:`workbench.kernels.empirical.empirical_ntk`,
  trace over outputs) at initialization; full-batch gradient descent on the MSE loss
  (:func:`workbench.training.train`) against the linearized model's closed form
  (:func:`workbench.dynamics.gradient_descent` on the full (n k) x (n k) NTK, Lee et al. 2019), and the kernel
  drift ||Theta_t - Theta_0||_F / ||Theta_0||_F at snapshots of the same run (Jacot et al. 2018: it vanishes
  as width grows in the NTK parametrization; docs/theory.md, NTK section).
* :func:`hessian_study`: :func:`workbench.studies.hessian.batch_hessian_study` (batch-Hessian or Gauss-Newton
  spectra across batch sizes against the random-matrix model, Granziol et al. 2022), plus
  :func:`top_eigenvalues` (Lanczos, :func:`workbench.linalg.krylov.top_eigenvalues`) of the full-data Hessian.
* :func:`noise_study`: the exact gradient noise scale B_simple = tr(Sigma)/|G|^2 from per-example gradients
  (and B_noise, eps_max with Hessian-vector products, :func:`workbench.experiments.gradient_noise.gradient_noise_stats`),
  McCandlish et al.'s two-batch estimator, and measured E|G_B|^2 against |G|^2 + c_B tr(Sigma)
  (McCandlish et al. 2018, app. A; docs/theory.md, learning rate and batch size section).
* :func:`lr_batch_study`: the resumable (batch size x learning rate x seed) sweep of
  :func:`workbench.experiments.sweep.sweep`, analysed by :func:`workbench.studies.lr_batch.analyze`. Every seed starts
  from the model's parameters (a Model has one set); seeds change the minibatch order.

Data: ``(x, y)`` with integer labels ``y`` (n,) (e.g. from :func:`workbench.data.load`), or float targets
(n, k) for the MSE loss.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from workbench import config
from workbench import lr_batch as lb
from workbench.experiments.gradient_noise import batch_grad_sq_norms, gradient_noise_stats
from workbench.experiments.sweep import sweep
from workbench.dynamics import UnstableLearningRateWarning, gradient_descent
from workbench.hessian import hessian_operator, per_example_grads
from workbench.kernels.empirical import empirical_ntk
from workbench.linalg.dense import eigvalsh
from workbench.linalg.krylov import Eigenpairs
from workbench.linalg.krylov import top_eigenvalues as lanczos_top
from workbench.models import Model, check_labels, make_loss
from workbench.studies.hessian import BatchHessianStudy, batch_hessian_study
from workbench.studies.lr_batch import analyze
from workbench.validation import check_choice, check_positive_int, check_real


# ----------------------------------------------------------------------------- shared helpers
def _data(model: Model, data: Any, loss: str) -> tuple[jax.Array, jax.Array, int]:
    if not isinstance(model, Model):
        raise TypeError(f"model must be a Model (workbench.models.functional(...)), got {type(model).__name__}")
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"data must be a pair (x, y), got {type(data).__name__}")
    x, y = jnp.asarray(data[0]), jnp.asarray(data[1])
    if x.ndim < 2 or y.ndim < 1 or x.shape[0] != y.shape[0] or x.shape[0] < 2:
        raise ValueError(f"data: x (n, ...) and y (n,) or (n, k) need equal leading sizes n >= 2, got {x.shape} "
                         f"and {y.shape}")
    k = check_labels(model, x, y, loss)
    return x, y, k


def _targets(y: jax.Array, k: int, dtype: Any) -> jax.Array:
    """(n, k) float targets: one-hot rows for integer labels."""
    if jnp.issubdtype(y.dtype, jnp.integer):
        return jax.nn.one_hot(y, k, dtype=dtype)
    return y.reshape(y.shape[0], -1).astype(dtype)


def _dtype(model: Model) -> Any:
    return jnp.result_type(*jax.tree_util.tree_leaves(model.params))


class ConstantInit:
    """``init_fn(key) -> params`` that ignores the key: every run starts from the model's parameters.

    Hashed by the identity of ``params`` (jit caches keyed on it are reused for the same model)."""

    def __init__(self, params: Any) -> None:
        self.params = params

    def __call__(self, key: jax.Array) -> Any:
        return self.params

    def __hash__(self) -> int:
        return id(self.params)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConstantInit) and other.params is self.params


@functools.lru_cache(maxsize=64)
def _outputs_fn(apply_fn: Callable) -> Callable:
    def outputs(params: Any, x: jax.Array) -> jax.Array:
        return apply_fn(params, x)

    return outputs


# ----------------------------------------------------------------------------- NTK and linearized dynamics
class NTKStudy(NamedTuple):
    """NTK spectrum, kernel drift and linearized vs real full-batch GD on the MSE loss.

    ``eigenvalues`` (n,) of Theta_0 (trace over outputs), descending; ``steps`` (R,) recorded GD steps;
    ``measured_train_loss``/``predicted_train_loss`` and the ``test`` versions (R,): mean MSE of the network and of
    the linearized model; ``rel_error`` (R,): |f_net - f_lin| / |f_lin| on the test inputs; ``drift_steps``,
    ``drift``: ||Theta_t - Theta_0||_F / ||Theta_0||_F of the full (n k) x (n k) kernel; ``lr``, ``lr_max`` (GD limit 2 n / lambda_max of the
    (n k) x (n k) kernel); ``diverged_step`` (-1 if not).
    """

    eigenvalues: np.ndarray
    steps: np.ndarray
    measured_train_loss: np.ndarray
    predicted_train_loss: np.ndarray
    measured_test_loss: np.ndarray
    predicted_test_loss: np.ndarray
    rel_error: np.ndarray
    drift_steps: np.ndarray
    drift: np.ndarray
    lr: float
    lr_max: float
    diverged_step: int
    info: str


def _full_kernel(apply_fn: Callable, params: Any, x1: jax.Array, x2: jax.Array | None = None) -> np.ndarray:
    """(n1 k, n2 k) matrix of the full empirical NTK Theta_{(i,a),(j,b)}."""
    t = np.asarray(empirical_ntk(apply_fn, params, x1, x2, output="full"), dtype=np.float64)
    n1, n2, k, _ = t.shape
    return t.transpose(0, 2, 1, 3).reshape(n1 * k, n2 * k)


class NTKSpectrum(NamedTuple):
    """Eigenvalues (descending) of the empirical NTK at initialization, traced over the outputs, and a line
    saying what produced them: the first, cheap part of :func:`ntk_study` (no training)."""

    eigenvalues: np.ndarray
    info: str


def ntk_spectrum_at_init(model: Model, train: Any) -> NTKSpectrum:
    """The spectrum that :func:`ntk_study` reports, alone: the empirical NTK Theta_0 on ``train``'s inputs (trace
    over outputs), one kernel and one eigendecomposition (a panel draws it while the training runs)."""
    x, _, k = _data(model, train, "mse")
    n = int(x.shape[0])
    with config.matmul_precision("highest"):
        k_train = _full_kernel(model.apply_fn, model.params, x)
    theta0 = np.trace(k_train.reshape(n, k, n, k), axis1=1, axis2=3)
    return NTKSpectrum(eigvalsh(theta0), f"{model.describe}; n={n}, k={k}; at initialization; "
                                        f"{config.device_report()}")


def ntk_study(model: Model, train: Any, test: Any, *, num_steps: int = 100, lr: float | None = None,
              lr_fraction: float = 0.5, record_every: int = 5, num_drift: int = 4,
              progress: bool = False) -> NTKStudy:
    """Empirical NTK spectrum, kernel drift, and real vs linearized full-batch GD (MSE loss) on ``train``.

    The learning rate is ``lr`` or ``lr_fraction`` times the linearized GD stability limit 2 n / lambda_max.
    ``num_drift`` snapshots of the run (evenly spaced recorded steps) give the kernel drift.
    """
    from workbench.training import train as train_runs

    x, y, k = _data(model, train, "mse")
    xt, yt, _ = _data(model, test, "mse")
    n, m = int(x.shape[0]), int(xt.shape[0])
    num_steps = check_positive_int("num_steps", num_steps)
    record_every = check_positive_int("record_every", record_every)
    num_drift = check_positive_int("num_drift", num_drift)
    dt = _dtype(model)
    yf, ytf = _targets(y, k, dt), _targets(yt, k, dt)
    with config.matmul_precision("highest"):
        k_train = _full_kernel(model.apply_fn, model.params, x)
        theta0 = np.trace(k_train.reshape(n, k, n, k), axis1=1, axis2=3)  # trace over outputs
        k_test = _full_kernel(model.apply_fn, model.params, xt, x)
    lam_max = float(np.linalg.eigvalsh(0.5 * (k_train + k_train.T))[-1])
    lr_max = 2.0 * n / lam_max if lam_max > 0 else math.inf
    if lr is None:
        lr = check_real("lr_fraction", lr_fraction, positive=True) * lr_max
    lr = check_real("lr", lr, positive=True)
    loss_fn = make_loss(model, "mse")
    rec = np.unique(np.linspace(0, num_steps, num_drift + 1).astype(int) // record_every * record_every)
    snaps = [int(s) for s in rec if s <= num_steps]
    res = train_runs(loss_fn, ConstantInit(model.params), (x, yf), optimizer="gd", lrs=lr, seeds=[0],
                     num_steps=num_steps, record_every=record_every, test_data=(xt, ytf),
                     eval_fn=_outputs_fn(model.apply_fn), eval_data=xt, snapshot_steps=snaps, progress=progress)
    steps = np.asarray(res.steps)
    f_test_net = np.asarray(res.evals)[0, 0]  # (R, m, k)
    # linearized GD on L = (1/n) 1/2 |f - y|^2 is GD on the sum loss with lr / n (workbench.dynamics "sum")
    f0 = np.asarray(model.apply_fn(model.params, x), np.float64).reshape(-1)
    f0t = np.asarray(model.apply_fn(model.params, xt), np.float64).reshape(-1)
    with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", UnstableLearningRateWarning)
        gd = gradient_descent(k_train, np.asarray(yf, np.float64).reshape(-1), lr=lr / n, ntk_test_train=k_test)
        f_tr_lin, f_te_lin = gd(steps, f0_train=f0, f0_test=f0t)
        pred_train = 0.5 * np.sum((f_tr_lin - np.asarray(yf, np.float64).reshape(-1)) ** 2, axis=-1) / n
        pred_test = 0.5 * np.sum((f_te_lin - np.asarray(ytf, np.float64).reshape(-1)) ** 2, axis=-1) / m
        rel = (np.linalg.norm(f_test_net.reshape(len(steps), -1) - f_te_lin, axis=-1)
               / np.linalg.norm(f_te_lin, axis=-1))
    norm0 = np.linalg.norm(k_train)
    drift_steps, drift = [], []
    for s in sorted(res.snapshots):  # the full (n k) x (n k) kernel: every output pair counts
        p = jax.tree_util.tree_map(lambda a: a[0, 0], res.snapshots[s])
        with config.matmul_precision("highest"):
            theta = _full_kernel(model.apply_fn, p, x)
        drift_steps.append(s)
        drift.append(np.linalg.norm(theta - k_train) / norm0)
    info = (f"{model.describe}; n={n}, test m={m}, k={k}; full-batch GD, lr={lr:.4g} (linearized limit "
            f"{lr_max:.4g}), {num_steps} steps; {config.device_report()}")
    return NTKStudy(eigvalsh(theta0),
                    steps, np.asarray(res.train_loss)[0, 0], pred_train, np.asarray(res.test_loss)[0, 0], pred_test,
                    rel, np.asarray(drift_steps), np.asarray(drift), float(lr), float(lr_max),
                    int(res.diverged_step[0, 0]), info)


# ----------------------------------------------------------------------------- curvature
@dataclasses.dataclass(frozen=True)
class FlatInputNet:
    """``apply(params, x_flat)`` = ``apply_fn(params, x_flat.reshape(-1, *shape))``: a model on images seen by
    code that wants (n, d) inputs (the batch-Hessian study). Hashable by value, so its compiled code is reused."""

    apply_fn: Callable
    shape: tuple[int, ...]

    def apply(self, params: Any, x: jax.Array) -> jax.Array:
        return self.apply_fn(params, x.reshape((x.shape[0],) + self.shape))

    def init(self, key: jax.Array, in_dim: int, dtype: Any = None) -> Any:  # pragma: no cover - params are given
        raise TypeError("FlatInputNet has no init: pass params")


FULL_KRYLOV_MAX = 256


def top_eigenvalues(model: Model, data: Any, *, loss: str = "mse", kind: str = "hessian", k: int = 3,
                    key: jax.Array | None = None) -> Eigenpairs:
    """Top-``k`` eigenpairs of the full-data Hessian (or GGN) of the model's mean loss, by Lanczos (with full
    reorthogonalization; to the full dimension for models of at most ``FULL_KRYLOV_MAX`` parameters, else
    adaptive until the Ritz residuals are below 1e-9 |theta| in float64, 1e-4 in float32)."""
    x, y, _ = _data(model, data, loss)
    op = hessian_operator(make_loss(model, loss), model.params, (x, y), kind=kind)
    tol = 1e-9 if _dtype(model) == jnp.float64 else 1e-4
    # small models: a Krylov space of the full dimension is exact and compiles once (the adaptive schedule would
    # compile one loop per depth it tries)
    num_iters = op.dim if op.dim <= FULL_KRYLOV_MAX else None
    with config.matmul_precision("highest"):
        return lanczos_top(op, check_positive_int("k", k), key=key, tol=tol, num_iters=num_iters)


def hessian_study(model: Model, data: Any, batch_sizes: Sequence[int], *, loss: str = "mse", kind: str = "hessian",
                  num_batches: int = 2, top_k: int = 3, key: jax.Array | None = None, slq_steps: int = 30,
                  progress: bool = False) -> BatchHessianStudy:
    """Batch-curvature spectra across batch sizes against the random-matrix model, at the model's parameters
    (:func:`workbench.studies.hessian.batch_hessian_study`; integer labels become one-hot targets)."""
    x, y, k = _data(model, data, loss)
    check_choice("loss", loss, ("mse", "cross_entropy"))
    net = FlatInputNet(model.apply_fn, tuple(int(s) for s in x.shape[1:]))
    dt = _dtype(model)
    return batch_hessian_study(net, x.reshape(x.shape[0], -1).astype(dt), _targets(y, k, dt), batch_sizes,
                               loss=loss, kind=kind, num_batches=num_batches, top_k=top_k, params=model.params,
                               key=key, slq_steps=slq_steps, progress=progress)


# ----------------------------------------------------------------------------- gradient noise
class NoiseStudy(NamedTuple):
    """Exact and estimated gradient noise scales.

    ``g2`` = |G|^2, ``tr_sigma`` = tr(Sigma) (1/n convention), ``b_simple`` = tr_sigma / g2 from per-example
    gradients; ``stats``: the full :class:`workbench.lr_batch.NoiseScale` (B_noise, eps_max) or None when G^T H G
    <= 0 or not asked for; ``two_batch``: McCandlish's estimate with standard errors; ``batch_sizes`` (nB,),
    ``sq_norms`` (nB, draws) measured |G_B|^2 and ``expected`` (nB,) = |G|^2 + c_B tr(Sigma).
    """

    g2: float
    tr_sigma: float
    b_simple: float
    stats: lb.NoiseScale | None
    two_batch: lb.TwoBatchEstimate
    batch_sizes: np.ndarray
    sq_norms: np.ndarray
    expected: np.ndarray
    num_data: int
    info: str


def exact_noise_scale(model: Model, data: Any, *, loss: str = "cross_entropy") -> tuple[float, float, float]:
    """(|G|^2, tr(Sigma), B_simple = tr(Sigma)/|G|^2) from the per-example gradients g_i of the mean loss:
    G = (1/n) sum_i g_i, Sigma = (1/n) sum_i (g_i - G)(g_i - G)^T (McCandlish et al. 2018, eq. 2.8)."""
    x, y, _ = _data(model, data, loss)
    with config.matmul_precision("highest"):
        grads = np.asarray(per_example_grads(make_loss(model, loss), model.params, (x, y)), dtype=np.float64)
    g = grads.mean(axis=0)
    g2 = float(g @ g)
    tr_sigma = float(np.sum((grads - g) ** 2)) / grads.shape[0]
    return g2, tr_sigma, (tr_sigma / g2 if g2 > 0 else math.inf)


def noise_study(model: Model, data: Any, *, loss: str = "cross_entropy", batch_sizes: Sequence[int] | None = None,
                num_draws: int = 32, curvature: bool = True, key: jax.Array | None = None) -> NoiseStudy:
    """Gradient noise scale of the mean ``loss`` on ``data`` at the model's parameters (see the module docstring).

    ``curvature=True`` also computes G^T H G and tr(H Sigma) (n + 1 Hessian-vector products) for B_noise.
    Batches are drawn without replacement (finite-population factor c_B).
    """
    x, y, _ = _data(model, data, loss)
    n = int(x.shape[0])
    num_draws = check_positive_int("num_draws", num_draws, minimum=2)
    key = jax.random.PRNGKey(0) if key is None else key
    if batch_sizes is None:
        batch_sizes = sorted({max(1, n // 32), max(2, n // 8), max(4, n // 2)})
    bs = lb.check_batch_sizes(batch_sizes, num_data=n).astype(int)
    if bs.size < 2:
        raise ValueError(f"batch_sizes must hold at least two distinct sizes, got {list(bs)}")
    loss_fn = make_loss(model, loss)
    g2, tr_sigma, b_simple = exact_noise_scale(model, (x, y), loss=loss)
    stats = None
    if curvature:
        try:
            stats = gradient_noise_stats(loss_fn, model.params, (x, y))
        except ValueError:  # G^T H G <= 0: B_noise and eps_max do not exist here
            stats = None
    keys = jax.random.split(key, bs.size)
    sq = np.stack([batch_grad_sq_norms(loss_fn, model.params, (x, y), int(b), num_draws, key=keys[i])
                   for i, b in enumerate(bs)])
    # McCandlish's two-batch estimator from the smallest and largest sizes' draws (independent batches, drawn
    # without replacement: c_B of the data set size), as lr_batch.two_batch_noise_scale computes it
    two = lb.noise_scale_estimate(sq[0], sq[-1], int(bs[0]), int(bs[-1]), float(n))
    expected = np.asarray([lb.expected_batch_grad_sq_norm(g2, tr_sigma, int(b), num_data=n) for b in bs])
    info = f"{model.describe}; {loss} loss, n={n}, {num_draws} draws per batch size; {config.device_report()}"
    return NoiseStudy(g2, tr_sigma, b_simple, stats, two, bs, sq, expected, n, info)


# ----------------------------------------------------------------------------- learning rate vs batch size
class LrBatchModelStudy(NamedTuple):
    """The sweep (one :class:`workbench.lr_batch.SweepResult` per optimizer) and its analysis
    (:func:`workbench.studies.lr_batch.analyze`: max-stable and optimal lr per batch size, power-law fits,
    steps to a target loss); ``gd_limit`` = 2 / lambda_max of the full-data Hessian (GD stability, Cohen et al.
    2021), or NaN when not computed."""

    sweeps: dict[str, lb.SweepResult]
    max_stable: dict[str, lb.LrEstimate]
    optimal: dict[str, lb.LrEstimate]
    fits: dict[str, lb.PowerLawFit]
    target_loss: float
    steps_to_target: dict[str, np.ndarray]
    gd_limit: float
    info: str


def lr_batch_study(model: Model, data: Any, *, loss: str = "cross_entropy", batch_sizes: Sequence[int],
                   lrs: Sequence[float], seeds: int | Sequence[int] = 2, optimizers: Sequence[str] = ("sgd",),
                   num_steps: int = 100, record_every: int = 10, results_dir: str | None = None,
                   sharpness: bool = True, progress: bool = False) -> LrBatchModelStudy:
    """Train every (optimizer, batch size, lr, seed) from the model's parameters (:func:`workbench.experiments.sweep.sweep`,
    resumable with ``results_dir``: finished points are files named by a fingerprint that includes the model's
    description and the loss) and analyse the result."""
    x, y, _ = _data(model, data, loss)
    loss_fn = make_loss(model, loss)
    sweeps = sweep(loss_fn, ConstantInit(model.params), (x, y), batch_sizes=batch_sizes, lrs=lrs,
                      optimizers=optimizers, seeds=seeds, num_steps=num_steps, record_every=record_every,
                      results_dir=results_dir, tag=f"{model.describe}; loss={loss}", progress=progress)
    max_stable, optimal, fits, target, steps, _ = analyze(sweeps, num_data=int(x.shape[0]))
    gd_limit = math.nan
    if sharpness:
        lam = float(np.asarray(top_eigenvalues(model, (x, y), loss=loss, k=1).eigenvalues)[0])
        gd_limit = lb.max_lr_from_sharpness(lam) if lam > 0 else math.inf
    first = next(iter(sweeps.values()))
    info = (f"{model.describe}; {loss} loss, n={int(x.shape[0])}, {num_steps} steps; {first.device}")
    return LrBatchModelStudy(sweeps, max_stable, optimal, fits, target, steps, gd_limit, info)


__all__ = ["ConstantInit", "FlatInputNet", "LrBatchModelStudy", "NTKSpectrum", "NTKStudy", "NoiseStudy",
           "exact_noise_scale", "hessian_study", "lr_batch_study", "noise_study", "ntk_spectrum_at_init", "ntk_study",
           "top_eigenvalues"]
