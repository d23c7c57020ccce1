"""A noisy quadratic model of SGD (Zhang et al. 2019; McCandlish et al. 2018 app. C): random instances,
exact gradient-noise statistics, stability limit and expected loss, and a vmapped simulator whose result is a
:class:`~workbench.lr_batch.analysis.SweepResult` like a sweep on a real model.

Conventions as in :mod:`workbench.lr_batch.theory` (docs/theory.md#9-learning-rate-and-batch-size).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from workbench import config
from workbench.lr_batch._inputs import ArrayLike, _out, check_batch_sizes
from workbench.lr_batch.analysis import SweepResult
from workbench.lr_batch.theory import NoiseScale, max_lr_from_sharpness, noise_scale
from workbench.validation import (check_allocation, check_array, check_choice, check_finite, check_lrs,
                                  check_positive_int, check_real, check_seeds)

__all__ = ["QUADRATIC_OPTIMIZERS", "NoisyQuadratic", "noisy_quadratic_expected_loss", "noisy_quadratic_stability_limit",
           "noisy_quadratic_stats", "random_noisy_quadratic", "simulate_noisy_quadratic"]


class NoisyQuadratic(NamedTuple):
    """L(theta) = 1/2 theta^T H theta with H = Q diag(eigvals) Q^T, and per-example gradients

        g_i = H_i theta + xi_i,  H_i = Q diag(eigvals + curvature_std * u_i) Q^T,  xi_i ~ N(0, noise_cov),

    u_i ~ N(0, I) (infinite data: batches are means of B independent examples). With
    ``curvature_std = 0`` the gradient noise is additive with known covariance Sigma = noise_cov;
    otherwise Sigma(theta) = noise_cov + Q diag(curvature_std^2 (Q^T theta)^2) Q^T.
    (After the noisy quadratic model of Zhang et al. 2019 and McCandlish et al. 2018 app. C.)
    """

    eigvals: jax.Array
    basis: jax.Array
    noise_cov: jax.Array
    curvature_std: jax.Array
    theta0: jax.Array


def random_noisy_quadratic(key: jax.Array, dim: int, *, eig_min: float = 0.01, eig_max: float = 1.0,
                           noise_std: float = 1.0, curvature_std: float = 0.0,
                           theta0_norm: float = 1.0) -> NoisyQuadratic:
    """A random instance: eigenvalues log-spaced in [eig_min, eig_max], a Haar-random basis Q, a random
    noise covariance noise_std^2 * W W^T / dim (W a dim x dim Gaussian, so tr(Sigma) about noise_std^2 dim),
    the same per-example curvature std in every eigendirection, and theta0 uniform on a sphere."""
    dim = check_positive_int("dim", dim)
    # a QR of a dim x dim Gaussian, the basis and the noise covariance: about four dim x dim float64 matrices
    check_allocation("dim", 4.0 * 8 * dim ** 2, f"a noisy quadratic in dim = {dim:,}")
    eig_min = check_real("eig_min", eig_min, positive=True)
    eig_max = check_real("eig_max", eig_max, positive=True)
    if eig_max < eig_min:
        raise ValueError(f"eig_max must be >= eig_min, got eig_min={eig_min:g}, eig_max={eig_max:g}")
    noise_std = check_real("noise_std", noise_std, nonnegative=True)
    curvature_std = check_real("curvature_std", curvature_std, nonnegative=True)
    theta0_norm = check_real("theta0_norm", theta0_norm, positive=True)
    dtype = jnp.result_type(float)
    kq, kw, kt = jax.random.split(key, 3)
    q, r = jnp.linalg.qr(jax.random.normal(kq, (dim, dim), dtype))
    q = q * jnp.sign(jnp.diag(r))[None, :]  # Haar measure
    eig = jnp.asarray(np.geomspace(eig_min, eig_max, dim)[::-1].copy(), dtype)
    w = jax.random.normal(kw, (dim, dim), dtype)
    cov = noise_std ** 2 * (w @ w.T) / dim
    theta0 = jax.random.normal(kt, (dim,), dtype)
    theta0 = theta0_norm * theta0 / jnp.linalg.norm(theta0)
    return NoisyQuadratic(eig, q, cov, jnp.full((dim,), curvature_std, dtype), theta0)


def _check_quadratic(problem: NoisyQuadratic) -> int:
    if not isinstance(problem, NoisyQuadratic):
        raise TypeError(f"problem must be a NoisyQuadratic, got {type(problem).__name__}")
    d = int(np.shape(problem.eigvals)[0])
    for name, shape in (("basis", (d, d)), ("noise_cov", (d, d)), ("curvature_std", (d,)), ("theta0", (d,))):
        if np.shape(getattr(problem, name)) != shape:
            raise ValueError(f"problem.{name} must have shape {shape}, got {np.shape(getattr(problem, name))}")
        check_finite(f"problem.{name}", getattr(problem, name))
    if np.any(np.asarray(problem.eigvals) <= 0):
        raise ValueError("problem.eigvals must be > 0 (a positive-definite quadratic)")
    return d


def noisy_quadratic_stats(problem: NoisyQuadratic, theta: ArrayLike | None = None) -> NoiseScale:
    """Exact |G|^2, tr(Sigma), G^T H G, tr(H Sigma) at ``theta`` (default theta0) and the McCandlish scales."""
    _check_quadratic(problem)
    theta = np.asarray(problem.theta0 if theta is None else theta, dtype=np.float64)
    lam = np.asarray(problem.eigvals, np.float64)
    q = np.asarray(problem.basis, np.float64)
    h = (q * lam) @ q.T
    phi = q.T @ theta
    sigma = np.asarray(problem.noise_cov, np.float64) + (q * (np.asarray(problem.curvature_std) ** 2 * phi ** 2)) @ q.T
    g = h @ theta
    return noise_scale(float(g @ g), float(np.trace(sigma)), float(g @ h @ g), float(np.sum(h * sigma)))


def noisy_quadratic_stability_limit(problem: NoisyQuadratic, batch_size: ArrayLike, *,
                                    momentum: float = 0.0) -> np.ndarray | float:
    """Mean-square stability limit of SGD on the noisy quadratic: each eigendirection k is a 1-d
    problem with curvature mean lambda_k and per-example std s_k, so (Wu, Ma & E 2018, n = inf)
    lr_max(B) = min_k 2 lambda_k / (lambda_k^2 + s_k^2 / B). Additive noise does not change it
    (it is then GD's 2/lambda_max); with heavy-ball momentum beta (additive noise only) it is
    (2 + 2 beta)/lambda_max."""
    _check_quadratic(problem)
    b = check_array("batch_size", batch_size, positive=True)
    lam = np.asarray(problem.eigvals, np.float64)
    s = np.asarray(problem.curvature_std, np.float64)
    beta = check_real("momentum", momentum, nonnegative=True)
    if beta > 0:
        if np.any(s > 0):
            raise ValueError("momentum > 0 is only supported with curvature_std = 0 (additive noise)")
        return _out(np.broadcast_to(max_lr_from_sharpness(float(lam.max()), beta), b.shape).copy())
    lim = 2.0 * lam[None, :] / (lam[None, :] ** 2 + s[None, :] ** 2 / b.reshape(-1, 1))
    return _out(np.min(lim, axis=1).reshape(b.shape))


def noisy_quadratic_expected_loss(problem: NoisyQuadratic, lrs: ArrayLike, batch_size: int,
                                  num_steps: int) -> np.ndarray:
    """Exact E L(theta_t) of plain SGD for t = 0..num_steps, shape (num_lrs, num_steps + 1).

    In the eigenbasis the second moments m_k = E phi_k^2 obey
    m_k <- ((1 - lr lambda_k)^2 + lr^2 s_k^2 / B) m_k + lr^2 (Q^T Sigma Q)_kk / B, and E L = 1/2 sum lambda_k m_k.
    One step from theta0 gives McCandlish's L - lr |G|^2 + lr^2/2 (G^T H G + tr(H Sigma)/B) exactly.
    """
    _check_quadratic(problem)
    eta = np.atleast_1d(check_array("lrs", lrs, positive=True)).reshape(-1, 1)
    b = check_positive_int("batch_size", batch_size)
    num_steps = check_positive_int("num_steps", num_steps, minimum=0)
    lam = np.asarray(problem.eigvals, np.float64)[None, :]
    q = np.asarray(problem.basis, np.float64)
    s2 = np.asarray(problem.curvature_std, np.float64)[None, :] ** 2
    noise = np.diag(q.T @ np.asarray(problem.noise_cov, np.float64) @ q)[None, :]
    m = np.broadcast_to((q.T @ np.asarray(problem.theta0, np.float64)) ** 2, (eta.shape[0], lam.shape[1])).copy()
    rate = (1.0 - eta * lam) ** 2 + eta ** 2 * s2 / b
    out = [0.5 * np.sum(lam * m, axis=1)]
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(num_steps):
            m = rate * m + eta ** 2 * noise / b
            out.append(0.5 * np.sum(lam * m, axis=1))
    return np.stack(out, axis=1)


QUADRATIC_OPTIMIZERS = ("sgd", "momentum")


def _quadratic_runner(num_steps: int, optimizer: str, divergence_factor: float):
    def run(eig, sqrt_noise, s, phi0, lr, seed, batch_size, momentum):
        """One run in the eigenbasis phi = Q^T theta; returns losses (num_steps + 1,), diverged, step."""
        key = jax.random.PRNGKey(seed)
        loss0 = 0.5 * jnp.sum(eig * phi0 ** 2)
        limit = divergence_factor * jnp.maximum(loss0, jnp.finfo(phi0.dtype).tiny)
        inv_sqrt_b = 1.0 / jnp.sqrt(batch_size)

        def step(carry, t):
            phi, vel, div, div_step = carry
            ku, kz = jax.random.split(jax.random.fold_in(key, t))
            u = jax.random.normal(ku, phi.shape, phi.dtype)
            z = jax.random.normal(kz, phi.shape, phi.dtype)
            grad = (eig + s * u * inv_sqrt_b) * phi + (sqrt_noise @ z) * inv_sqrt_b
            new_vel = momentum * vel + grad if optimizer == "momentum" else grad
            new_phi = phi - lr * new_vel
            loss = 0.5 * jnp.sum(eig * new_phi ** 2)
            now = ~div & (~jnp.isfinite(loss) | (loss > limit))
            keep = div | now
            phi = jnp.where(keep, phi, new_phi)
            vel = jnp.where(keep, vel, new_vel)
            div_step = jnp.where(now, t + 1, div_step)
            return (phi, vel, keep, div_step), jnp.where(keep, jnp.inf, loss)

        init = (phi0, jnp.zeros_like(phi0), jnp.asarray(False), jnp.asarray(-1))
        (_, _, div, div_step), losses = jax.lax.scan(step, init, jnp.arange(num_steps))
        return jnp.concatenate([loss0[None], losses]), div, div_step

    over_seeds = jax.vmap(run, in_axes=(None, None, None, None, None, 0, None, None))
    over_lrs = jax.vmap(over_seeds, in_axes=(None, None, None, None, 0, None, None, None))
    return jax.jit(over_lrs)


def simulate_noisy_quadratic(problem: NoisyQuadratic, lrs: ArrayLike, batch_sizes: ArrayLike, *,
                             num_steps: int, seeds: int | Sequence[int] = 8, optimizer: str = "sgd",
                             momentum: float = 0.9, divergence_factor: float = 1e6) -> SweepResult:
    """Run SGD (or heavy-ball momentum: v <- beta v + g_B, theta <- theta - lr v) on the noisy quadratic
    for every (batch size, lr, seed); one compiled program serves every batch size (B only scales the noise).

    The noise of step t of seed s is the same for every learning rate (common random numbers), so the
    loss-vs-lr curves of one seed are smooth and their argmin is not blurred by independent noise.
    A run is diverged at the first step whose loss is non-finite or above ``divergence_factor`` times
    the initial loss; its state is frozen there and later losses are +inf.
    """
    _check_quadratic(problem)
    eta = check_lrs(lrs, grid=True)
    bs = check_batch_sizes(batch_sizes)
    num_steps = check_positive_int("num_steps", num_steps)
    check_choice("optimizer", optimizer, QUADRATIC_OPTIMIZERS)
    beta = check_real("momentum", momentum, nonnegative=True)
    if beta >= 1:
        raise ValueError(f"momentum must be in [0, 1), got {beta:g}")
    factor = check_real("divergence_factor", divergence_factor, positive=True)
    seed_arr = check_seeds(seeds)
    run = _quadratic_runner(num_steps, optimizer, factor)
    dtype = jnp.result_type(float)
    q = jnp.asarray(problem.basis, dtype)
    cov_eig = q.T @ jnp.asarray(problem.noise_cov, dtype) @ q
    w, v = jnp.linalg.eigh(0.5 * (cov_eig + cov_eig.T))
    sqrt_noise = (v * jnp.sqrt(jnp.clip(w, 0.0, None))[None, :]) @ v.T
    phi0 = q.T @ jnp.asarray(problem.theta0, dtype)
    losses, divs, steps_div, seconds = [], [], [], []
    for b in bs:
        start = time.perf_counter()
        loss, div, div_step = run(jnp.asarray(problem.eigvals, dtype), sqrt_noise,
                                  jnp.asarray(problem.curvature_std, dtype), phi0, jnp.asarray(eta, dtype),
                                  jnp.asarray(seed_arr), jnp.asarray(float(b), dtype),
                                  jnp.asarray(beta if optimizer == "momentum" else 0.0, dtype))
        losses.append(np.asarray(loss))
        divs.append(np.asarray(div))
        steps_div.append(np.asarray(div_step))
        seconds.append(time.perf_counter() - start)
    return SweepResult(optimizer, bs, eta, seed_arr, np.arange(num_steps + 1), np.stack(losses), np.stack(divs),
                       np.stack(steps_div), np.asarray(seconds), config.device_report())
