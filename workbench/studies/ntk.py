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
  lazy training (drift ~ width^-1/2) against feature learning (drift O(1)); :func:`iter_kernel_drift` streams it
  run by run, each run one compiled program per width (GD + structured NTK, w_std/b_std/parametrization as data).
"""

from __future__ import annotations

import dataclasses
import functools
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
from workbench.nets import MLP, get_activation
from workbench.validation import (check_choice, check_finite, check_matrix_rank2, check_positive_int, check_real,
                                  check_seeds)

__all__ = ["DATASETS", "ConvergenceResult", "DriftResult", "drift_init", "fit_loglog", "iter_kernel_drift",
           "iter_width_convergence", "kernel_drift", "make_inputs", "spectrum_comparison", "SpectrumResult",
           "sphere_spectrum", "SphereSpectrum", "width_convergence"]

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
    learning, Yang & Hu 2021). :func:`iter_kernel_drift` gives the same result run by run.
    """
    result = None
    for result in iter_kernel_drift(net, x, y, widths, parametrizations=parametrizations, lr=lr,
                                    num_steps=num_steps, num_kernels=num_kernels, seeds=seeds, progress=progress):
        pass
    return result


def iter_kernel_drift(net: MLP, x: jax.Array, y: jax.Array, widths: Sequence[int], *,
                      parametrizations: Sequence[str] = ("ntk", "mup"), lr: float = 0.5, num_steps: int = 100,
                      num_kernels: int = 5, seeds: Sequence[int] | int = 2,
                      progress: bool = False) -> Iterator[DriftResult]:
    """:func:`kernel_drift` one training run (width, parametrization) at a time, widths outer: after each run,
    the result so far (runs not done yet are NaN, their slopes NaN); the last one is :func:`kernel_drift`'s.

    Each run is one compiled program (:func:`_drift_program`): the seeds' GD runs and the structured empirical
    NTK at the recorded steps. The parametrization, w_std and b_std enter it as arrays, so the program is
    compiled once per (depth, activation, width, n, number of seeds) and reused for every other setting; from
    the same init it gives what :func:`workbench.training.train` and the Jacobian-contraction
    :func:`~workbench.kernels.empirical.empirical_ntk` give (checked in the tests).
    """
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
    info = (f"{net.describe()} (width, parametrization varied), GD lr={lr:g}, {num_steps} steps, "
            f"n={x.shape[0]}; {config.device_report()}")
    bar = tqdm(total=len(parametrizations) * len(widths), desc="kernel drift", disable=not progress)
    try:
        for b, w in enumerate(widths):
            for a, par in enumerate(parametrizations):
                net_w = dataclasses.replace(net, width=int(w), parametrization=par)
                kernels, div, last = _drift_run(net_w, x, y, lr, seeds, tuple(np.diff(steps).tolist()))
                diverged[a, b] = div
                final[a, b] = last
                k0 = kernels[:, 0]
                drift[a, b] = (np.linalg.norm(kernels - k0[:, None], axis=(2, 3))
                               / np.linalg.norm(k0, axis=(1, 2))[:, None])
                drift[a, b][diverged[a, b]] = np.nan
                bar.update()
                slopes = np.full(len(parametrizations), np.nan)
                for a2 in range(len(parametrizations)):
                    done = drift[a2, : b + 1, :, -1]  # the widths so far, every seed
                    if b >= 1 and np.isfinite(done).any(axis=1).all():
                        last = np.nanmean(done, axis=1)
                        if np.all(last > 0):
                            slopes[a2] = stats.fit_loglog(widths[: b + 1], last).exponent
                yield DriftResult(tuple(parametrizations), widths, steps, drift.copy(), diverged.copy(), final.copy(),
                                  slopes, info)
    finally:
        bar.close()


# ----------------------------------------------------------------------------- kernel drift: one program per shape
def _drift_coefficients(net: MLP, in_dim: int, dtype) -> tuple[jax.Array, jax.Array, list]:
    """Per layer: the forward scales (s_l, c_l) of h = s_l a W_l + c_l b_l in ``net``'s parametrization
    (:meth:`MLP._layer`: w_std / sqrt(fan_in) and b_std for "ntk", 1 and 1 otherwise) and the SGD learning-rate
    multipliers (:meth:`MLP.lr_multipliers`: muP's per-layer ones, all ones otherwise)."""
    ntk = net.parametrization == "ntk"
    fans = [fan_in for fan_in, _ in net.layer_sizes(in_dim)]
    s = jnp.asarray([net.w_std / math.sqrt(f) if ntk else 1.0 for f in fans], dtype)
    c = jnp.asarray([float(net.b_std or 0.0) if ntk else 1.0 for _ in fans], dtype)
    mults = jax.tree_util.tree_map(lambda m: jnp.asarray(m, dtype), net.lr_multipliers(in_dim, "sgd"))
    return s, c, mults


def _drift_run(net: MLP, x: jax.Array, y: jax.Array, lr: float, seeds: list[int],
               segments: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GD of ``net`` from each seed's init: (kernels (S, T, n, n) at steps 0 and after each segment,
    diverged (S,), final loss (S,), NaN where diverged); init: :func:`drift_init` of each seed."""
    in_dim = int(x.shape[1])
    dtype = x.dtype
    s, c, mults = _drift_coefficients(net, in_dim, dtype)
    sizes = net.layer_sizes(in_dim)
    init_w = jnp.asarray([net._weight_init_std(layer, fan_in) for layer, (fan_in, _) in enumerate(sizes)], dtype)
    init_b = jnp.asarray(net._bias_init_std() if net.has_bias else 0.0, dtype)
    # the program depends on the depth, activation, width and bias only, never on w_std, b_std or the
    # parametrization (those enter as arrays)
    unit = MLP(depth=net.depth, width=net.width, activation=net.activation, w_std=1.0,
               b_std=None if net.b_std is None else 0.0, parametrization="ntk", out_dim=net.out_dim)
    with config.matmul_precision("highest"):
        kernels, div, last = _drift_program(unit, jnp.asarray(np.asarray(seeds)), jnp.asarray(segments, jnp.int32),
                                            x, y.astype(dtype), jnp.asarray(lr, dtype), s, c, init_w, init_b, mults)
    return np.asarray(kernels), np.asarray(div), np.asarray(last)


def drift_init(unit: MLP, in_dim: int, seed, init_w: jax.Array, init_b: jax.Array, dtype) -> list:
    """The drift study's initial parameters: one draw of unit normals from ``PRNGKey(seed)`` for every parameter
    (one random-number program: it compiles in a fraction of the time of one draw per layer), cut into the layers
    of ``unit`` and scaled by the per-layer init standard deviations ``init_w`` and ``init_b``
    (:meth:`MLP._weight_init_std`, :meth:`MLP._bias_init_std`). Same distribution as :meth:`MLP.init`, other
    values."""
    sizes = unit.layer_sizes(in_dim)
    total = sum(fi * fo + (fo if unit.has_bias else 0) for fi, fo in sizes)
    z = jax.random.normal(jax.random.PRNGKey(seed), (total,), dtype)
    params, at = [], 0
    for layer, (fi, fo) in enumerate(sizes):
        q = {"W": init_w[layer] * z[at:at + fi * fo].reshape(fi, fo)}
        at += fi * fo
        if unit.has_bias:
            q["b"] = init_b * z[at:at + fo]
            at += fo
        params.append(q)
    return params


@functools.partial(jax.jit, static_argnames=("unit",))
def _drift_program(unit, seeds, segments, x, y, lr, s, c, init_w, init_b, mults):
    """Full-batch GD on L = 1/(2 n k) sum (f - y)^2 from each seed's init, with the plain J J^T NTK (traced over
    outputs) at step 0 and after each segment of ``segments[i]`` steps (an int array: the step counts are data,
    not part of the compiled program).

    Init: :func:`drift_init`. Forward: h = s_l a W_l + c_l b_l. Structured NTK (Novak et al.
    2022): Theta = sum_l (s_l^2 a_{l-1} a_{l-1}^T + c_l^2) * (D_l D_l^T), D_l = d f / d h_l (the readout's D is
    the identity). Divergence as in :func:`workbench.training.train`: a loss that is NaN/inf or above 1e4 x the
    initial loss, or a non-finite update, freezes the run and flags it."""
    activation = unit.activation
    phi = get_activation(activation)
    depth = unit.depth
    n, k = y.shape

    def forward(p, shifts):
        a, acts = x, []
        for layer, q in enumerate(p):
            acts.append(a)
            h = s[layer] * (a @ q["W"])
            if "b" in q:
                h = h + c[layer] * q["b"][None, :]
            if layer < depth:
                a = phi(h + shifts[layer])
        return h, acts

    def loss(p):
        f, _ = forward(p, [0.0] * depth)
        return 0.5 * jnp.sum((f - y) ** 2) / f.size

    def kernel(p):
        shifts = [jnp.zeros((n, q["W"].shape[1]), x.dtype) for q in p[:depth]]
        _, pullback, acts = jax.vjp(lambda e: forward(p, e), shifts, has_aux=True)
        cotangents = jnp.broadcast_to(jnp.eye(k, dtype=x.dtype)[:, None, :], (k, n, k))  # e_i for every example
        deltas = jax.vmap(lambda ct: pullback(ct)[0])(cotangents)  # per hidden layer: (k, n, width)
        bias = [(c[layer] ** 2 if "b" in q else 0.0) for layer, q in enumerate(p)]
        theta = k * (s[depth] ** 2 * acts[depth] @ acts[depth].T + bias[depth])
        for layer in range(depth):
            d = deltas[layer]  # (k, n, width)
            gram = s[layer] ** 2 * acts[layer] @ acts[layer].T + bias[layer]
            theta = theta + gram * jnp.einsum("iam,ibm->ab", d, d)
        return theta

    def finite(tree):
        return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(tree)]))

    def one_seed(seed):
        p0 = drift_init(unit, x.shape[1], seed, init_w, init_b, x.dtype)
        bound = jnp.where(loss(p0) > 0, 1e4 * loss(p0), jnp.inf)

        def step(carry, _):
            p, dead = carry
            value, grads = jax.value_and_grad(loss)(p)
            new = jax.tree_util.tree_map(lambda w, g, m: w - lr * m * g, p, grads, mults)
            dead = dead | ~jnp.isfinite(value) | (value > bound) | ~finite(new)
            p = jax.tree_util.tree_map(lambda w_new, w: jnp.where(dead, w, w_new), new, p)
            return (p, dead), None

        def segment(carry, length):  # ``length`` GD steps, then the kernel (one traced body for every segment)
            carry = jax.lax.fori_loop(0, length, lambda _i, cd: step(cd, None)[0], carry)
            return carry, kernel(carry[0])

        (p, dead), kernels = jax.lax.scan(segment, (p0, jnp.asarray(False)), segments)
        return jnp.concatenate([kernel(p0)[None], kernels]), dead, jnp.where(dead, jnp.nan, loss(p))

    return jax.vmap(one_seed)(seeds)
