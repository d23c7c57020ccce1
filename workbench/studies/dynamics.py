"""Studies for the generalization-dynamics notebook: closed-form kernel dynamics beside real training,
Advani & Saxe curves beside their simulation, and spectral learning curves beside kernel regression.

* :func:`kernel_vs_training`: 1-d data on the unit circle, NTK-parametrized MLPs of several widths trained
  by full-batch GD (:func:`workbench.training.train_mlp`, loss "sum" = 1/2 sum (f - y)^2), against the
  closed-form discrete GD of the infinite-width NTK (:func:`workbench.dynamics.gradient_descent`, kernels
  from :func:`workbench.kernels.analytic.infinite_kernels`), both started from each net's own f_0, and the
  infinite-ensemble mean and band (NNGP for f_0). Also the per-eigenmode residuals.
* :func:`advani_saxe_study`: :func:`workbench.generalization.advani_saxe_errors` on a grid and
  :func:`workbench.generalization.simulate_advani_saxe` at a few points.
* :func:`sphere_learning_curve_study`: :func:`workbench.generalization.kernel_learning_curve` for an MLP's
  NTK on the sphere (Funk-Hecke spectrum + fitted tail) beside kernel regression with that kernel.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import numpy as np

from workbench import config
from workbench.dynamics import UnstableLearningRateWarning, gradient_descent, max_lr_from_ntk
from workbench.generalization import (
    SimulationResult,
    advani_saxe_errors,
    extend_sphere_spectrum,
    kernel_learning_curve,
    simulate_advani_saxe,
    simulate_sphere_kernel_regression,
)
from workbench.kernels.analytic import dot_product_kernel, infinite_kernels
from workbench.kernels.sphere import sphere_eigenvalues
from workbench.nets import MLP
from workbench.training import train_mlp
from workbench.validation import check_positive_int, check_real

__all__ = ["advani_saxe_study", "advani_saxe_time", "AdvaniSaxeStudy", "AdvaniSaxeTime", "circle_data",
           "circle_target", "CircleData", "kernel_vs_training", "KernelDynamicsResult", "LearningCurveStudy",
           "sphere_learning_curve_study"]


# =========================================================================== kernel dynamics vs training
class CircleData(NamedTuple):
    """Training points at angles ``angles_train`` and a test grid ``angles_test`` on the unit circle."""

    angles_train: np.ndarray
    x_train: np.ndarray
    y_train: np.ndarray  # (n, 1)
    angles_test: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray  # (m, 1), clean target


def circle_target(angles: np.ndarray) -> np.ndarray:
    """The target function on the circle: sin(2 th) + 0.5 cos(3 th)."""
    return np.sin(2 * angles) + 0.5 * np.cos(3 * angles)


def circle_data(n_train: int, n_test: int = 64, *, noise_std: float = 0.0, seed: int = 0) -> CircleData:
    """n_train random angles (uniform), targets :func:`circle_target` + noise; a uniform test grid of n_test angles."""
    n_train = check_positive_int("n_train", n_train)
    n_test = check_positive_int("n_test", n_test)
    noise_std = check_real("noise_std", noise_std, nonnegative=True)
    rng = np.random.default_rng(seed)
    th = np.sort(rng.uniform(0, 2 * np.pi, n_train))
    tt = np.linspace(0, 2 * np.pi, n_test, endpoint=False)
    circle = lambda a: np.stack([np.cos(a), np.sin(a)], axis=1)  # noqa: E731
    y = circle_target(th) + noise_std * rng.standard_normal(n_train)
    return CircleData(th, circle(th), y[:, None], tt, circle(tt), circle_target(tt)[:, None])


class KernelDynamicsResult(NamedTuple):
    """Closed-form NTK dynamics beside trained networks (arrays over recorded steps R, seeds S, test points m).

    Attributes:
      data: the :class:`CircleData`.
      steps: (R,) recorded GD steps; ``times`` = lr * steps (gradient-flow time).
      widths: the widths trained.
      lr, lr_max: learning rate and the GD stability limit 2 / lambda_max(Theta) (loss "sum").
      eigenvalues: (n,) of the infinite-width NTK on the training inputs (descending).
      ensemble_mean, ensemble_std: (R, m) infinite-ensemble mean and standard deviation on the test grid.
      ensemble_train_loss, ensemble_test_mse: (R,) their expectations over the infinite ensemble,
        1/2 |mu_t(X) - y|^2 + 1/2 tr Sigma_t(X, X) and mean over x* of (mu_t(x*) - y*)^2 + Sigma_t(x*, x*).
      measured_test: dict width -> (S, R, m) network outputs on the test grid.
      predicted_test: dict width -> (S, R, m) closed form started from each net's own f_0.
      measured_train_loss, predicted_train_loss: dict width -> (S, R), 1/2 sum (f(X) - y)^2.
      measured_test_mse, predicted_test_mse: dict width -> (S, R), mean (f(x*) - y*)^2 on the grid.
      measured_modes, predicted_modes: dict width -> (S, R, n), residuals v_k^T (f_t(X) - y) along the NTK
        eigenvectors (descending eigenvalues).
      rel_error: dict width -> (S,), max over the run of |f_net - f_pred| / |f_pred| on the test grid.
      diverged: dict width -> (S,) bool (from training).
      info: settings and device report.
      steps_done: dict width -> the last GD step trained (``steps[-1]`` once finished). A partial result (from
        ``partial_callback``) has one width in training: its measured arrays are NaN after that step, its
        closed-form ones complete.
    """

    data: CircleData
    steps: np.ndarray
    times: np.ndarray
    widths: tuple[int, ...]
    lr: float
    lr_max: float
    eigenvalues: np.ndarray
    ensemble_mean: np.ndarray
    ensemble_std: np.ndarray
    ensemble_train_loss: np.ndarray
    ensemble_test_mse: np.ndarray
    measured_test: dict
    predicted_test: dict
    measured_train_loss: dict
    predicted_train_loss: dict
    measured_test_mse: dict
    predicted_test_mse: dict
    measured_modes: dict
    predicted_modes: dict
    rel_error: dict
    diverged: dict
    info: str
    steps_done: dict

    @property
    def finished_widths(self) -> tuple[int, ...]:
        """The widths whose training has reached the last step."""
        return tuple(w for w in self.widths if self.steps_done[w] >= self.steps[-1])


def kernel_vs_training(*, widths: Sequence[int] = (64, 256, 1024), depth: int = 1, activation: str = "relu",
                       w_std: float = 2 ** 0.5, b_std: float | None = None, lr: float | None = None,
                       lr_fraction: float = 0.5, num_steps: int = 200, record_every: int = 5, n_train: int = 12,
                       n_test: int = 64, num_seeds: int = 3, noise_std: float = 0.0, data_seed: int = 0,
                       progress: bool = True,
                       callback: Callable[[int, int], None] | None = None,
                       partial_callback: Callable[[KernelDynamicsResult], None] | None = None
                       ) -> KernelDynamicsResult:
    """Train NTK-parametrized MLPs of each width by full-batch GD and compare with the closed-form NTK dynamics.

    The learning rate is ``lr`` if given, else ``lr_fraction`` times the stability limit 2 / lambda_max of the
    infinite-width NTK (loss "sum"). Above the limit the closed form is still evaluated (its growth is the
    prediction) and the trained runs are flagged diverged.
    ``callback(width, steps_done)``: called during each width's training after every chunk of steps (progress;
    an exception it raises stops the study and propagates, except ``KeyboardInterrupt``, which ends that
    training early as in :func:`workbench.training.train`).
    ``partial_callback(result)``: called after every chunk of steps with the result so far: the widths finished,
    and the width in training up to its step (``result.steps_done``), on the full step grid.
    ``widths=()`` trains nothing: the closed-form part alone (data, eigenvalues, the infinite ensemble), at once.
    """
    widths = tuple(check_positive_int("width", w) for w in widths)
    if len(set(widths)) != len(widths):
        raise ValueError(f"widths must be distinct, got {widths}")
    num_steps = check_positive_int("num_steps", num_steps)
    num_seeds = check_positive_int("num_seeds", num_seeds)
    record_every = check_positive_int("record_every", record_every)
    data = circle_data(n_train, n_test, noise_std=noise_std, seed=data_seed)
    proto = MLP(depth=depth, width=1, activation=activation, w_std=w_std, b_std=b_std)
    x_all = np.concatenate([data.x_train, data.x_test])
    k_all = infinite_kernels(proto, x_all)
    ntk = np.asarray(k_all.ntk)
    nngp = np.asarray(k_all.nngp)
    n = n_train
    k_tr, k_te_tr = ntk[:n, :n], ntk[n:, :n]
    lr_max = max_lr_from_ntk(k_tr)
    if lr is None:
        lr = check_real("lr_fraction", lr_fraction, positive=True) * lr_max
    lr = check_real("lr", lr, positive=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnstableLearningRateWarning)
        gd = gradient_descent(k_tr, data.y_train, lr=lr, ntk_test_train=k_te_tr)
    # the recorded GD steps, as train() records them: 0, every record_every, and the last step
    steps = np.unique(np.append(np.arange(0, num_steps + 1, record_every), num_steps))
    with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", UnstableLearningRateWarning)
        ens = gd.ensemble(steps, nngp[:n, :n], nngp_test_train=nngp[n:, :n], nngp_test_test=nngp[n:, n:])
    var_test = np.clip(np.diagonal(ens.cov_test, axis1=1, axis2=2), 0, None)
    std = np.sqrt(var_test)
    with np.errstate(over="ignore", invalid="ignore"):  # above the stability limit the expectations grow to inf
        ens_train_loss = 0.5 * np.sum((ens.mean_train[..., 0] - data.y_train[None, :, 0]) ** 2, axis=1) \
            + 0.5 * np.trace(ens.cov_train, axis1=1, axis2=2)
        ens_test_mse = np.mean((ens.mean_test[..., 0] - data.y_test[None, :, 0]) ** 2 + var_test, axis=1)
    fields = ("measured_test", "predicted_test", "measured_train_loss", "predicted_train_loss", "measured_test_mse",
              "predicted_test_mse", "measured_modes", "predicted_modes", "rel_error", "diverged", "steps_done")
    done: dict[str, dict] = {f: {} for f in fields}

    def width_arrays(res) -> dict:
        """The per-width entries of one training result (partial ones padded with NaN to the full step grid)."""
        out = np.asarray(res.evals[0])[..., 0]  # (S, R', n + m)
        loss = np.asarray(res.train_loss[0])  # (S, R')
        if out.shape[1] < steps.size:
            pad = steps.size - out.shape[1]
            out = np.concatenate([out, np.full((out.shape[0], pad, out.shape[2]), np.nan)], axis=1)
            loss = np.concatenate([loss, np.full((loss.shape[0], pad), np.nan)], axis=1)
        f_tr, f_te = out[:, :, :n], out[:, :, n:]
        pred_te, pred_tr_loss, pred_modes = [], [], []
        for s in range(num_seeds):
            f0 = out[s, 0]
            with np.errstate(over="ignore", invalid="ignore"):
                _, pt = gd(steps, f0_train=f0[:n, None], f0_test=f0[n:, None])
                pred_te.append(pt[..., 0])
                pred_tr_loss.append(gd.train_loss(steps, f0_train=f0[:n, None]))
                pred_modes.append(gd.mode_residuals(steps, f0_train=f0[:n, None])[..., 0])
        pred_te = np.array(pred_te)
        with np.errstate(over="ignore", invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: a diverged run
            rel = np.nanmax(np.linalg.norm(f_te - pred_te, axis=-1) / np.linalg.norm(pred_te, axis=-1), axis=1)
            return dict(
                measured_test=f_te, predicted_test=pred_te, measured_train_loss=loss,
                predicted_train_loss=np.array(pred_tr_loss),
                measured_test_mse=np.mean((f_te - data.y_test[None, None, :, 0]) ** 2, axis=-1),
                predicted_test_mse=np.mean((pred_te - data.y_test[None, None, :, 0]) ** 2, axis=-1),
                measured_modes=np.einsum("ij,srj->sri", gd.eigenvectors.T, f_tr - data.y_train[None, None, :, 0]),
                predicted_modes=np.array(pred_modes), rel_error=rel, diverged=np.asarray(res.diverged[0]),
                steps_done=int(res.num_steps_done))

    def result(current: dict | None = None, width: int | None = None) -> KernelDynamicsResult:
        per = {f: dict(done[f]) for f in fields}
        if current is not None:
            for f in fields:
                per[f][width] = current[f]
        ws = tuple(w for w in widths if w in per["steps_done"])
        info = (f"{proto.describe().replace('width=1', 'width=' + '/'.join(map(str, ws)))}; full-batch GD, "
                f"lr={lr:.4g} (stability limit {lr_max:.4g}), {num_steps} steps, {num_seeds} seeds, n_train={n_train}; "
                f"{config.device_report()}")
        return KernelDynamicsResult(data, steps, lr * steps, ws, lr, lr_max, gd.eigenvalues, ens.mean_test[..., 0],
                                    std, ens_train_loss, ens_test_mse, info=info, **per)

    for width in widths:
        net = MLP(depth=depth, width=width, activation=activation, w_std=w_std, b_std=b_std)
        partial = None if partial_callback is None else (
            lambda r, w=width: partial_callback(result(width_arrays(r), w)))
        res = train_mlp(net, (data.x_train, data.y_train), lrs=lr, seeds=tuple(range(num_seeds)),
                        num_steps=num_steps, record_every=record_every, x_eval=x_all, progress=progress,
                        callback=None if callback is None else (lambda d, w=width: callback(w, d)),
                        partial_callback=partial)
        if not np.array_equal(res.steps, steps[: res.steps.size]):
            raise AssertionError(f"recorded steps {res.steps} differ from the study's grid {steps}")
        for f, v in width_arrays(res).items():
            done[f][width] = v
    return result()


# =========================================================================== Advani & Saxe
class AdvaniSaxeStudy(NamedTuple):
    """Theory on grids and simulation points.

    Attributes:
      alphas: (A,) grid; times: (T,) times (may include inf) for the E_g(alpha) curves.
      E_g_alpha, E_t_alpha: (A, T) theory.
      t_grid: (G,) dense times; sim_alphas: (B,) alphas simulated; E_g_time, E_t_time: (B, G) theory.
      sim_times: (H,) simulated times; sim: :class:`SimulationResult` of shape (B, H).
      best_time: (B,) time minimizing E_g on ``t_grid`` (early stopping); settings in ``info``.
    """

    alphas: np.ndarray
    times: np.ndarray
    E_g_alpha: np.ndarray
    E_t_alpha: np.ndarray
    t_grid: np.ndarray
    sim_alphas: np.ndarray
    E_g_time: np.ndarray
    E_t_time: np.ndarray
    sim_times: np.ndarray
    sim: SimulationResult | None
    best_time: np.ndarray
    info: str


def advani_saxe_study(*, alphas: np.ndarray | None = None, times: Sequence[float] = (1.0, 10.0, np.inf),
                      sim_alphas: Sequence[float] = (0.5, 1.0, 2.0), sim_times: Sequence[float] = (1.0, 10.0, np.inf),
                      noise_var: float = 0.25, teacher_var: float = 1.0, init_var: float = 0.0, tau: float = 1.0,
                      num_features: int = 200, num_trials: int = 10, simulate: bool = True,
                      seed: int = 0) -> AdvaniSaxeStudy:
    """E_g and E_t against alpha (several times) and against time (several alphas), with simulation points."""
    if alphas is None:
        alphas = np.linspace(0.1, 3.0, 117)  # avoids alpha = 1 exactly, where E_g(inf) is infinite
    alphas = np.asarray(alphas, dtype=float)
    times = np.asarray(times, dtype=float)
    kw = dict(teacher_var=teacher_var, noise_var=noise_var, init_var=init_var, tau=tau)
    eg_a, et_a = advani_saxe_errors(alphas[:, None], times[None, :], **kw)
    t_grid = np.geomspace(1e-2, 1e3, 121) * tau
    sa = np.asarray(sim_alphas, dtype=float)
    eg_t, et_t = advani_saxe_errors(sa[:, None], t_grid[None, :], **kw)
    st = np.asarray(sim_times, dtype=float)
    sim = simulate_advani_saxe(sa, st, num_features=num_features, num_trials=num_trials, seed=seed, **kw) \
        if simulate else None
    info = (f"Advani & Saxe linear student-teacher: teacher_var={teacher_var:g}, noise_var={noise_var:g}, "
            f"init_var={init_var:g}, tau={tau:g}; simulation N={num_features}, {num_trials} trials")
    return AdvaniSaxeStudy(alphas, times, eg_a, et_a, t_grid, sa, eg_t, et_t, st, sim, t_grid[np.argmin(eg_t, axis=1)],
                           info)


class AdvaniSaxeTime(NamedTuple):
    """E_g(t), E_t(t) at one ``alpha`` on the times ``t`` (theory), and a simulation (1, H) at ``sim_times``."""

    alpha: float
    t: np.ndarray
    E_g: np.ndarray
    E_t: np.ndarray
    sim_times: np.ndarray
    sim: SimulationResult | None


def advani_saxe_time(alpha: float, t: Sequence[float], *, sim_times: Sequence[float] = (0.3, 3.0, 30.0),
                     noise_var: float = 0.25, teacher_var: float = 1.0, init_var: float = 0.0, tau: float = 1.0,
                     num_features: int = 200, num_trials: int = 10, seed: int = 0,
                     simulate: bool = True) -> AdvaniSaxeTime:
    """Generalization and training error against time at one alpha (Advani & Saxe 2020), theory
    (:func:`workbench.generalization.advani_saxe_errors`) and a finite-size simulation
    (:func:`workbench.generalization.simulate_advani_saxe`) at ``sim_times``: the early-stopping picture.
    ``simulate=False`` gives the theory alone (``sim`` is None), which is instant."""
    alpha = check_real("alpha", alpha, positive=True)
    t = np.asarray(t, dtype=float)
    kw = dict(teacher_var=teacher_var, noise_var=noise_var, init_var=init_var, tau=tau)
    e_g, e_t = advani_saxe_errors(alpha, t, **kw)
    st = np.asarray(sim_times, dtype=float)
    sim = simulate_advani_saxe(np.array([alpha]), st, num_features=num_features, num_trials=num_trials,
                               seed=seed, **kw) if simulate else None
    return AdvaniSaxeTime(alpha, t, e_g, e_t, st, sim)


# =========================================================================== sphere learning curves
class LearningCurveStudy(NamedTuple):
    """Theory (dense p grid) and kernel-regression simulation on the sphere.

    Attributes:
      p_grid, E_g_theory: dense theory curve; sim_p, sim: simulated sample sizes and results.
      eigenvalues, degeneracies: the spectrum used (with its fitted tail); mode_errors: (G, modes) theory.
      info: settings.
    """

    p_grid: np.ndarray
    E_g_theory: np.ndarray
    kappa: np.ndarray
    sim_p: np.ndarray
    sim: SimulationResult | None
    eigenvalues: np.ndarray
    degeneracies: np.ndarray
    mode_errors: np.ndarray
    info: str


def sphere_learning_curve_study(net: MLP | None = None, *, dim: int = 3, target_coeffs: Sequence[float] = (0.5, 1.0, 0.7),
                                ridge: float = 1e-3, noise: float = 0.01, p_grid: np.ndarray | None = None,
                                sim_p: Sequence[int] = (10, 20, 40, 80), num_trials: int = 20, num_test: int = 500,
                                max_degree: int = 60, simulate: bool = True, seed: int = 0) -> LearningCurveStudy:
    """Learning curve of kernel regression with ``net``'s infinite-width NTK on S^{dim-1}: theory vs simulation.

    Default net: 1 hidden relu layer, w_std^2 = 2, no bias. Spectrum: Funk-Hecke to ``max_degree``
    (:func:`workbench.kernels.sphere.sphere_eigenvalues`) with a fitted power-law tail to degree 20000
    (:func:`workbench.generalization.extend_sphere_spectrum`). Target sum_k c_k P_k(beta . x), label noise
    variance ``noise``.
    """
    if net is None:
        net = MLP(depth=1, width=1, activation="relu", w_std=2 ** 0.5, b_std=None)
    coeffs = np.asarray(target_coeffs, dtype=float)
    mu = sphere_eigenvalues(net, dim, np.arange(max_degree + 1))
    eta, deg = extend_sphere_spectrum(mu, dim, max_degree=20000)
    # the kept degrees start 0, 1, 2, ... as long as mu_k is non-negligible; place c_k on its degree
    kept = np.nonzero(np.abs(mu) > 1e-12 * np.max(np.abs(mu)))[0]
    v2 = np.zeros_like(eta)
    for k, c in enumerate(coeffs):
        idx = np.nonzero(kept == k)[0]
        if c != 0 and idx.size == 0:
            raise ValueError(f"target degree {k} has a zero kernel eigenvalue: the kernel cannot learn it")
        if idx.size:
            v2[idx[0]] = c ** 2 / deg[idx[0]] ** 2
    if p_grid is None:
        p_grid = np.unique(np.geomspace(2, 400, 60).round())
    lc = kernel_learning_curve(eta, v2, p_grid, ridge=ridge, noise=noise, degeneracies=deg)
    sim = None
    if simulate:
        def kernel(t):
            return np.asarray(dot_product_kernel(net, jax.numpy.asarray(t), dim))
        sim = simulate_sphere_kernel_regression(kernel, coeffs, dim, list(sim_p), ridge=ridge, noise=noise,
                                                num_trials=num_trials, num_test=num_test, seed=seed)
    info = (f"{net.describe()} infinite-width NTK on S^{dim - 1}; target coefficients {coeffs.tolist()}, ridge={ridge:g}, "
            f"noise variance={noise:g}; spectrum to degree {max_degree} + fitted tail; {num_trials} trials")
    return LearningCurveStudy(np.asarray(p_grid, float), lc.E_g, lc.kappa, np.asarray(sim_p), sim, eta, deg,
                              lc.mode_errors, info)
