"""NTK studies: finite vs infinite width spectra, width convergence, sphere eigenvalues, kernel drift.

Each study returns arrays in a NamedTuple (with the device/precision report in ``info``); the
plots in :mod:`workbench.plots.ntk` draw them and the panel in :mod:`workbench.panels.ntk` wires
them to widgets.

* :func:`make_inputs`: the input sets of the notebook (sphere, Gaussian, digits).
* :func:`spectrum_comparison`: eigenvalues of empirical NTKs (several seeds) beside the
  infinite-width NTK's, eigenvalue by eigenvalue.
* :func:`width_convergence`: relative Frobenius and spectral-norm distances
  ||Theta_emp - Theta_inf|| / ||Theta_inf|| against width, with the fitted log-log slope
  (the empirical NTK concentrates around its limit with fluctuations O(width^-1/2), Jacot et al. 2018;
  so the slope should be -1/2).
* :func:`sphere_spectrum`: Funk-Hecke eigenvalues mu_k of the net's NTK on S^{d-1} with the fitted
  decay exponent (Bietti & Mairal 2019: k^-d for relu), and the Gram-matrix eigenvalues of the
  same kernel on uniform points, divided by n, as the matching experiment.
* :func:`kernel_drift`: ||Theta_t - Theta_0||_F / ||Theta_0||_F during full-batch gradient descent
  (via :func:`workbench.training.train_mlp`) against width, for NTK vs muP parametrizations:
  lazy training (drift ~ width^-1/2) against feature learning (drift O(1)).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from workbench import config, stats
from workbench._compat import warn_deprecated
from workbench.data import digits, gaussian_inputs, sphere_points
from workbench.kernels.analytic import infinite_kernels
from workbench.kernels.empirical import empirical_ntk
from workbench.kernels.sphere import sphere_eigenvalues, sphere_multiplicities
from workbench.linalg.dense import eigvalsh
from workbench.nets import MLP
from workbench.validation import (check_choice, check_finite, check_matrix_rank2, check_positive_int, check_real,
                                  check_seeds)

__all__ = ["DATASETS", "ConvergenceResult", "DriftResult", "fit_loglog", "kernel_drift", "make_inputs",
           "iter_width_convergence", "spectrum_comparison", "SpectrumResult", "sphere_spectrum", "SphereSpectrum",
           "width_convergence"]

DATASETS = ("sphere", "gaussian", "digits")


def make_inputs(dataset: str, n: int, dim: int, seed: int = 0) -> jax.Array:
    """``n`` inputs: uniform on S^{dim-1} (``"sphere"``), N(0, I_dim) (``"gaussian"``), or scikit-learn's
    8x8 digits (``"digits"``, dim 64 whatever ``dim`` says, centred pixels in [0, 1] scaled to unit mean norm)."""
    check_choice("dataset", dataset, DATASETS)
    check_positive_int("n", n)
    key = jax.random.PRNGKey(seed)
    if dataset == "sphere":
        return sphere_points(key, n, dim)
    if dataset == "gaussian":
        return gaussian_inputs(key, n, dim)
    x = digits(key, n, 1).x_train
    return x / jnp.mean(jnp.linalg.norm(x, axis=1))


def _seed_keys(seeds: Sequence[int] | int) -> list[int]:
    return check_seeds(seeds).tolist()  # an int is a count: seeds 0..n-1


def _check_net(net: MLP) -> None:
    if not isinstance(net, MLP):
        raise TypeError(f"net must be a workbench.nets.MLP, got {type(net).__name__}")


def _empirical(net: MLP, x: jax.Array, seed: int) -> np.ndarray:
    params = net.init(jax.random.PRNGKey(seed), int(x.shape[1]), dtype=x.dtype)
    return np.asarray(empirical_ntk(net, params, x))


class SpectrumResult(NamedTuple):
    """Eigenvalues, descending: ``empirical`` (num_seeds, n), ``infinite`` (n,); ``width``, ``seeds``, ``info``."""

    empirical: np.ndarray
    infinite: np.ndarray
    width: int
    seeds: tuple[int, ...]
    info: str


def spectrum_comparison(net: MLP, x: jax.Array, *, seeds: Sequence[int] | int = 3,
                        progress: bool = False) -> SpectrumResult:
    """Eigenvalues of the empirical NTK (trace over outputs) for each seed and of ``out_dim`` * Theta_inf."""
    _check_net(net)
    check_matrix_rank2("x", x)
    check_finite("x", x)
    seeds = _seed_keys(seeds)
    inf = net.out_dim * np.asarray(infinite_kernels(net, x).ntk)
    emp = [eigvalsh(_empirical(net, x, s)) for s in tqdm(seeds, desc="empirical NTKs", disable=not progress)]
    return SpectrumResult(np.stack(emp), eigvalsh(inf), net.width, tuple(seeds),
                          f"{net.describe()}, n={x.shape[0]}; {config.device_report()}")


class ConvergenceResult(NamedTuple):
    """Distances to the infinite-width NTK, each (num_widths, num_seeds); fitted log-log slopes and intercepts.

    ``frobenius`` = ||Theta_emp - Theta_inf||_F / ||Theta_inf||_F, ``spectral`` = ||.||_2 / ||Theta_inf||_2.
    ``slope_frobenius``/``slope_spectral``: least-squares slope of log(mean over seeds) against log(width).
    """

    widths: np.ndarray
    frobenius: np.ndarray
    spectral: np.ndarray
    slope_frobenius: float
    intercept_frobenius: float
    slope_spectral: float
    intercept_spectral: float
    info: str


def fit_loglog(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Deprecated: :func:`workbench.stats.fit_loglog` (the one log-log fit) gives a :class:`PowerLawFit`;
    this returns its (slope, intercept = log prefactor) after checking every point is positive."""
    warn_deprecated("workbench.studies.ntk.fit_loglog", "workbench.stats.fit_loglog")
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape or x.size < 2 or np.any(x <= 0) or np.any(y <= 0):
        raise ValueError(f"fit_loglog needs >= 2 positive (x, y) pairs of equal shape, got {x.shape} and {y.shape}")
    fit = stats.fit_loglog(x, y)
    return fit.exponent, math.log(fit.prefactor)


def _slope_intercept(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    fit = stats.fit_loglog(x, y)
    return fit.exponent, math.log(fit.prefactor)


def width_convergence(net: MLP, x: jax.Array, widths: Sequence[int], *, seeds: Sequence[int] | int = 4,
                      progress: bool = True) -> ConvergenceResult:
    """Relative distance between empirical and infinite-width NTK as the width of ``net`` varies.

    For the standard parametrization the reference is the width-dependent NTK of
    :func:`~workbench.kernels.analytic.infinite_kernels` at each width (neural-tangents' convention).
    :func:`iter_width_convergence` gives the same result width by width.
    """
    result = None
    for result in iter_width_convergence(net, x, widths, seeds=seeds, progress=progress):
        pass
    return result


def iter_width_convergence(net: MLP, x: jax.Array, widths: Sequence[int], *, seeds: Sequence[int] | int = 4,
                           progress: bool = False) -> Iterator[ConvergenceResult]:
    """:func:`width_convergence` one width at a time: after each width, the result over the widths done so far
    (slopes and intercepts NaN until two widths are done); the last one is :func:`width_convergence`'s."""
    _check_net(net)
    check_matrix_rank2("x", x)
    check_finite("x", x)
    widths = np.asarray([check_positive_int("width", int(w)) for w in widths])
    if widths.size < 2:
        raise ValueError(f"widths must hold at least two widths to fit a slope, got {widths.tolist()}")
    seeds = _seed_keys(seeds)
    frob = np.zeros((len(widths), len(seeds)))
    spec = np.zeros_like(frob)
    info = f"{net.describe()} (width varied), n={x.shape[0]}, {len(seeds)} seeds; {config.device_report()}"
    bar = tqdm(total=len(widths) * len(seeds), desc="width convergence", disable=not progress)
    try:
        for i, w in enumerate(widths):
            with config.matmul_precision("highest"):
                net_w = dataclasses.replace(net, width=int(w))
                inf = net_w.out_dim * np.asarray(infinite_kernels(net_w, x).ntk)
                norm_f, norm_2 = np.linalg.norm(inf), np.max(np.abs(eigvalsh(inf)))
                for j, s in enumerate(seeds):
                    diff = _empirical(net_w, x, s) - inf
                    frob[i, j] = np.linalg.norm(diff) / norm_f
                    spec[i, j] = np.max(np.abs(np.linalg.eigvalsh(0.5 * (diff + diff.T)))) / norm_2
                    bar.update()
            done = slice(0, i + 1)
            if i >= 1:
                sf, inf_f = _slope_intercept(widths[done], frob[done].mean(axis=1))
                ss, inf_s = _slope_intercept(widths[done], spec[done].mean(axis=1))
            else:
                sf = inf_f = ss = inf_s = float("nan")
            yield ConvergenceResult(widths[done].copy(), frob[done].copy(), spec[done].copy(), sf, inf_f, ss, inf_s,
                                    info)
    finally:
        bar.close()


class SphereSpectrum(NamedTuple):
    """Mercer eigenvalues ``mu`` at ``degrees`` with ``multiplicities``; the fitted decay exponent over
    the even degrees >= 2 with mu > 0 (``decay``, compare with -``dim``); ``gram`` the eigenvalues of
    the kernel matrix on ``num_points`` uniform points divided by n (descending), or None."""

    degrees: np.ndarray
    mu: np.ndarray
    multiplicities: np.ndarray
    decay: float
    dim: int
    gram: np.ndarray | None
    info: str


def sphere_spectrum(net: MLP, dim: int, max_degree: int, *, which: str = "ntk", num_points: int = 0,
                    seed: int = 0) -> SphereSpectrum:
    """Funk-Hecke eigenvalues of ``net``'s infinite-width kernel on S^{dim-1}, degrees 0..max_degree.

    With ``num_points > 0``, also the eigenvalues of K(X, X)/n for n uniform points X on the sphere:
    they approach mu_k, each repeated N(dim, k) times (the Nystrom / kernel PCA limit).
    """
    _check_net(net)
    dim = check_positive_int("dim", dim, minimum=2)
    max_degree = check_positive_int("max_degree", max_degree, minimum=2)
    deg = np.arange(max_degree + 1)
    mu = sphere_eigenvalues(net, dim, deg, which=which)
    mult = sphere_multiplicities(dim, deg)
    scale = float(np.max(np.abs(mu)))
    fit = (deg >= 2) & (deg % 2 == 0) & (mu > 1e-12 * scale)
    decay = stats.fit_loglog(deg[fit], mu[fit]).exponent if np.sum(fit) >= 2 else float("nan")
    gram = None
    if num_points:
        check_positive_int("num_points", num_points)
        x = sphere_points(jax.random.PRNGKey(seed), num_points, dim)
        k = infinite_kernels(net, x)
        gram = eigvalsh(np.asarray(k.ntk if which == "ntk" else k.nngp)) / num_points
    return SphereSpectrum(deg, mu, mult, decay, dim, gram, f"{net.describe()}, {which} on S^{dim - 1}")


class DriftResult(NamedTuple):
    """Kernel drift ||Theta_t - Theta_0||_F / ||Theta_0||_F, shape (num_parametrizations, num_widths, num_seeds, num_steps).

    ``steps`` are the training steps of the kernels (``steps[0] = 0``); ``diverged`` (P, W, S) flags runs
    that diverged (their drift is NaN); ``final_loss`` (P, W, S) the last training loss; ``slopes`` (P,)
    the log-log slope of the final drift (seed mean) against width.
    """

    parametrizations: tuple[str, ...]
    widths: np.ndarray
    steps: np.ndarray
    drift: np.ndarray
    diverged: np.ndarray
    final_loss: np.ndarray
    slopes: np.ndarray
    info: str


def kernel_drift(net: MLP, x: jax.Array, y: jax.Array, widths: Sequence[int], *,
                 parametrizations: Sequence[str] = ("ntk", "mup"), lr: float = 0.5, num_steps: int = 100,
                 num_kernels: int = 5, seeds: Sequence[int] | int = 2, progress: bool = True) -> DriftResult:
    """Relative change of the empirical NTK (on the training inputs) during full-batch GD, against width.

    Training: :func:`workbench.training.train_mlp` with ``optimizer="gd"``, MSE loss with
    ``reduction="mean"`` (1/(2 n k) sum (f - y)^2), learning rate ``lr`` (times muP's per-layer
    multipliers for ``"mup"``), ``num_steps`` steps; the plain J J^T kernel is recorded at
    ``num_kernels`` evenly spaced steps including 0 and ``num_steps``. In the NTK parametrization the
    drift falls like width^-1/2 (lazy training, Chizat et al. 2019); in muP it stays O(1) (feature
    learning, Yang & Hu 2021).
    """
    from workbench.training import train_mlp  # training sits beside kernels; imported when needed

    _check_net(net)
    check_matrix_rank2("x", x)
    check_finite("x", x)
    y = jnp.asarray(y)
    if y.ndim != 2 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must have shape ({x.shape[0]}, out_dim), got {y.shape}")
    for p in parametrizations:
        check_choice("parametrization", p, ("ntk", "standard", "mup"))
    check_real("lr", lr, positive=True)
    num_steps = check_positive_int("num_steps", num_steps)
    num_kernels = check_positive_int("num_kernels", num_kernels, minimum=2)
    widths = np.asarray([check_positive_int("width", int(w)) for w in widths])
    seeds = _seed_keys(seeds)
    steps = np.unique(np.linspace(0, num_steps, num_kernels).round().astype(int))
    drift = np.full((len(parametrizations), len(widths), len(seeds), len(steps)), np.nan)
    diverged = np.zeros(drift.shape[:3], bool)
    final = np.full(drift.shape[:3], np.nan)
    bar = tqdm(total=len(parametrizations) * len(widths), desc="kernel drift", disable=not progress)
    for a, par in enumerate(parametrizations):
        for b, w in enumerate(widths):
            net_w = dataclasses.replace(net, width=int(w), parametrization=par)
            res = train_mlp(net_w, (x, y), optimizer="gd", reduction="mean", lrs=[lr], seeds=seeds,
                            num_steps=num_steps, ntk_steps=tuple(steps.tolist()), x_ntk=x, progress=False)
            diverged[a, b] = np.asarray(res.diverged)[0]
            final[a, b] = np.asarray(res.train_loss)[0, :, -1]
            if res.ntk is not None:
                ntk = np.asarray(res.ntk)[0]  # (S, T', n, n)
                got = [int(s) for s in res.ntk_steps]
                k0 = ntk[:, 0]
                rel = np.linalg.norm(ntk - k0[:, None], axis=(2, 3)) / np.linalg.norm(k0, axis=(1, 2))[:, None]
                idx = [int(np.searchsorted(steps, s)) for s in got]
                drift[a, b][:, idx] = rel
            drift[a, b][diverged[a, b]] = np.nan
            bar.update()
    bar.close()
    slopes = np.full(len(parametrizations), np.nan)
    for a in range(len(parametrizations)):
        last = np.nanmean(drift[a, :, :, -1], axis=1) if np.any(np.isfinite(drift[a, :, :, -1])) else None
        if last is not None and len(widths) >= 2 and np.all(np.isfinite(last)) and np.all(last > 0):
            slopes[a] = stats.fit_loglog(widths, last).exponent
    return DriftResult(tuple(parametrizations), widths, steps, drift, diverged, final, slopes,
                       f"{net.describe()} (width, parametrization varied), GD lr={lr:g}, {num_steps} steps, "
                       f"n={x.shape[0]}; {config.device_report()}")
