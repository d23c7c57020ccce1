"""Theories of generalization error, with simulators of the same models to check them against.

* Advani & Saxe (2017), "High-dimensional dynamics of generalization error in neural networks": the
  linear student-teacher model under gradient flow (docs/theory.md#4-linear-student-teacher-generalization-dynamics). :func:`advani_saxe_errors`
  integrates over the Marchenko-Pastur spectrum; :func:`simulate_advani_saxe` runs the same model at
  finite size.
* Bordelon, Canatar & Pehlevan (2020), Canatar, Bordelon & Pehlevan (2021): kernel-regression learning
  curves from the Mercer spectrum (docs/theory.md#5-kernel-regression-learning-curves). :func:`kernel_learning_curve` solves the
  self-consistent equation; :func:`simulate_kernel_regression` (Gaussian features with that spectrum) and
  :func:`simulate_sphere_kernel_regression` (a real dot-product kernel on the sphere) measure it; sphere
  spectra come from :mod:`workbench.kernels.sphere`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
from scipy import integrate, optimize
from threadpoolctl import threadpool_limits

from workbench.kernels.sphere import gegenbauer_normalized, sphere_multiplicities
from workbench.stats import fit_loglog
from workbench.validation import check_allocation, check_finite, check_positive_int, check_real, scalar_or_array

__all__ = ["advani_saxe_errors", "extend_sphere_spectrum", "kernel_learning_curve", "LearningCurve",
           "marchenko_pastur_xtx", "simulate_advani_saxe", "simulate_kernel_regression",
           "simulate_sphere_kernel_regression", "SimulationResult"]
from workbench.validation import check_number_array


# =========================================================================== Advani & Saxe
#: The simulators loop over many small matrices, where a multi-threaded BLAS only adds contention (measured
#: 12x slower on a loaded 2-core machine): they run their loops with one BLAS thread.
_BLAS_THREADS = 1


class SimulationResult(NamedTuple):
    """Errors measured over ``num_trials`` independent draws: means and standard errors (sem = std / sqrt(trials)).

    Arrays are shaped like the broadcast of the inputs (alpha, t) or (p,), as documented by the producer.
    """

    E_g: np.ndarray
    E_g_sem: np.ndarray
    E_t: np.ndarray
    E_t_sem: np.ndarray
    num_trials: int


def _check_alpha(alpha: Any) -> np.ndarray:
    a = check_number_array("alpha", alpha, finite=False)
    if np.any(~np.isfinite(a)):
        raise ValueError(f"alpha must be finite, got {alpha!r}")
    if np.any(a <= 0):
        raise ValueError(f"alpha = P/N (examples per parameter) must be > 0, got min {a.min()}")
    return a


def _check_time_array(t: Any) -> np.ndarray:
    tt = check_number_array("t", t, finite=False)
    if np.any(np.isnan(tt)):
        raise ValueError("t must not contain NaN")
    if np.any(tt < 0):
        raise ValueError(f"t must be >= 0 (np.inf allowed), got min {tt.min()}")
    return tt


def marchenko_pastur_xtx(alpha: float) -> tuple[float, float, Callable[[np.ndarray], np.ndarray]]:
    """Edges and continuous density of the eigenvalues of X^T X, X of P x N with entries N(0, 1/N), alpha = P/N.

    rho(l) = sqrt((l+ - l)(l - l-)) / (2 pi l) on [l-, l+] = [(1 - sqrt(alpha))^2, (1 + sqrt(alpha))^2];
    it has mass min(alpha, 1) (an atom of mass 1 - alpha at 0 completes it when alpha < 1).
    """
    alpha = float(_check_alpha(alpha))
    lo, hi = (1 - np.sqrt(alpha)) ** 2, (1 + np.sqrt(alpha)) ** 2

    def rho(l: np.ndarray) -> np.ndarray:
        l = np.asarray(l, dtype=float)
        inside = (l > lo) & (l < hi)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(inside, np.sqrt(np.clip((hi - l) * (l - lo), 0, None)) / (2 * np.pi * l), 0.0)

    return lo, hi, rho


def advani_saxe_errors(alpha: Any, t: Any, *, teacher_var: float = 1.0, noise_var: float = 0.0,
                       init_var: float = 0.0, tau: float = 1.0, epsrel: float = 1e-11) -> tuple[np.ndarray, np.ndarray]:
    """Generalization and training error of the linear student-teacher model under gradient flow.

    Model (Advani & Saxe 2017; docs/theory.md#4-linear-student-teacher-generalization-dynamics): y = wbar . x + eps, x_i ~ N(0, 1/N), wbar_i ~ N(0, teacher_var),
    eps ~ N(0, noise_var); P = alpha N examples; student w_0,i ~ N(0, init_var), tau dw/dt = X^T (y - X w).
    With rho the continuous Marchenko-Pastur density of X^T X (:func:`marchenko_pastur_xtx`), s = init_var + teacher_var:

      E_g(t) = int rho(l) [s e^{-2 l t/tau} + (noise_var / l)(1 - e^{-l t/tau})^2] dl + s (1 - alpha)_+ + noise_var,
      E_t(t) = (1/alpha) int rho(l) e^{-2 l t/tau} [l s + noise_var] dl + noise_var (1 - 1/alpha)_+.

    E_g is the expected squared error on a fresh *noisy* example (so it includes noise_var); E_t is the
    mean squared training error (1/P) |y - X w|^2. Both are N -> infinity limits. E_g(inf) diverges at
    alpha = 1 when noise_var > 0 (returned as inf). The integrals use the substitution
    l = (l+ + l-)/2 + 2 sqrt(alpha) cos(phi) (no endpoint singularity) and adaptive quadrature
    (``scipy.integrate.quad_vec``, relative tolerance ``epsrel``); at t = inf the integral is closed:
    int rho(l) / l dl = 1/(alpha - 1) for alpha > 1 and alpha/(1 - alpha) for alpha < 1.

    Args:
      alpha: examples per parameter P/N (> 0), any shape.
      t: times (>= 0, ``np.inf`` allowed), any shape broadcastable with ``alpha``.

    Returns:
      (E_g, E_t), arrays of the broadcast shape of ``alpha`` and ``t``.
    """
    a = _check_alpha(alpha)
    tt = _check_time_array(t)
    teacher_var = check_real("teacher_var", teacher_var, nonnegative=True)
    noise_var = check_real("noise_var", noise_var, nonnegative=True)
    init_var = check_real("init_var", init_var, nonnegative=True)
    tau = check_real("tau", tau, positive=True)
    try:
        a, tt = np.broadcast_arrays(a, tt)
    except ValueError:
        raise ValueError(f"alpha (shape {np.shape(alpha)}) and t (shape {np.shape(t)}) must broadcast") from None
    shape = a.shape
    a, tt = a.ravel(), tt.ravel()
    s = init_var + teacher_var
    inf_t = np.isinf(tt)
    singular = inf_t & (a == 1.0) & (noise_var > 0)
    fin = ~inf_t
    af = a[fin]  # finite times: adaptive quadrature over those entries only
    mid, half, tf = 1 + af, 2 * np.sqrt(af), tt[fin] / tau

    def integrand(phi: float) -> np.ndarray:
        l = mid + half * np.cos(phi)
        w = half ** 2 * np.sin(phi) ** 2 / (2 * np.pi * l)  # rho(l) dl / dphi
        e1 = np.exp(-l * tf)
        with np.errstate(divide="ignore", invalid="ignore"):
            # (1 - e^{-l t})^2 / l, stable for small l t; l = 0 only at the alpha = 1 edge, where the limit is 0
            g = np.where(l <= 0, 0.0, np.expm1(-l * tf) ** 2 / l)
        eg = w * (s * e1 ** 2 + noise_var * g)
        et = w * e1 ** 2 * (l * s + noise_var) / af
        return np.concatenate([eg, et])

    int_g, int_t = np.zeros(a.size), np.zeros(a.size)
    if af.size:
        vals, _err = integrate.quad_vec(integrand, 0.0, np.pi, epsrel=epsrel, epsabs=0.0, limit=2000)
        int_g[fin], int_t[fin] = vals[: af.size], vals[af.size:]
    # t = inf in closed form: e^{-l t} = 0 and int rho(l) / l dl over the Marchenko-Pastur bulk is the N -> inf
    # limit of (1/N) tr E[(X^T X)^+]: 1/(alpha - 1) for alpha > 1 (inverse Wishart mean), alpha/(1 - alpha) for
    # alpha < 1 (the P nonzero eigenvalues, those of X X^T); the quadrature of the 1/l peak at alpha ~ 1 took seconds
    with np.errstate(divide="ignore", invalid="ignore"):
        mp_inverse_mean = np.where(a == 1.0, 0.0, np.where(a > 1, 1 / (a - 1), a / (1 - a)))  # alpha = 1: below
    int_g = np.where(inf_t & ~singular, noise_var * mp_inverse_mean, int_g)
    e_g = int_g + s * np.clip(1 - a, 0, None) + noise_var
    e_t = int_t + noise_var * np.clip(1 - 1 / a, 0, None)
    e_g = np.where(singular, np.inf, e_g)
    return scalar_or_array(e_g.reshape(shape)), scalar_or_array(e_t.reshape(shape))


def simulate_advani_saxe(alpha: Any, t: Any, *, num_features: int = 200, num_trials: int = 20,
                         teacher_var: float = 1.0, noise_var: float = 0.0, init_var: float = 0.0,
                         tau: float = 1.0, seed: int = 0) -> SimulationResult:
    """Finite-size simulation of the model of :func:`advani_saxe_errors`, exact gradient flow per trial.

    For each alpha and trial: N = ``num_features``, P = round(alpha N) >= 1, draws X, wbar, eps and w_0
    (``numpy.random.default_rng(seed)``), then solves tau dw/dt = X^T (y - X w) exactly in the eigenbasis of
    X^T X (modes with eigenvalue 0 stay at w_0). Measured: E_g = |w - wbar|^2 / N + noise_var (the exact
    expectation over a fresh noisy example) and E_t = |y - X w|^2 / P.

    Args:
      alpha: 1-d array (or scalar) of ratios P/N; t: 1-d array (or scalar) of times (inf allowed).

    Returns:
      :class:`SimulationResult` with arrays of shape (len(alpha), len(t)) (scalars dropped as in numpy).
    """
    a = _check_alpha(alpha)
    tt = _check_time_array(t)
    if a.ndim > 1 or tt.ndim > 1:
        raise ValueError(f"alpha and t must be scalars or 1-d arrays, got shapes {a.shape} and {tt.shape}")
    n = check_positive_int("num_features", num_features)
    trials = check_positive_int("num_trials", num_trials, minimum=2)
    teacher_var = check_real("teacher_var", teacher_var, nonnegative=True)
    noise_var = check_real("noise_var", noise_var, nonnegative=True)
    init_var = check_real("init_var", init_var, nonnegative=True)
    tau = check_real("tau", tau, positive=True)
    rng = np.random.default_rng(seed)
    a1, t1 = np.atleast_1d(a), np.atleast_1d(tt)
    eg = np.zeros((len(a1), len(t1), trials))
    et = np.zeros_like(eg)
    inf_t = np.isinf(t1)
    tf = np.where(inf_t, 0.0, t1) / tau
    with threadpool_limits(limits=_BLAS_THREADS, user_api="blas"):
        for i, al in enumerate(a1):
            p = max(1, int(round(al * n)))
            for r in range(trials):
                x = rng.standard_normal((p, n)) / np.sqrt(n)
                wbar = np.sqrt(teacher_var) * rng.standard_normal(n)
                y = x @ wbar + np.sqrt(noise_var) * rng.standard_normal(p)
                w0 = np.sqrt(init_var) * rng.standard_normal(n)
                lam, u = np.linalg.eigh(x.T @ x)
                null = lam <= n * np.finfo(float).eps * max(lam[-1], 1.0)
                c0, b = u.T @ w0, u.T @ (x.T @ y)
                lam_safe = np.where(null, 1.0, lam)
                decay = np.where(inf_t[:, None], 0.0, np.exp(-np.outer(tf, lam)))
                decay = np.where(null[None, :], 1.0, decay)
                c = c0[None, :] * decay + np.where(null, 0.0, b / lam_safe)[None, :] * (1 - decay)  # (T, N)
                w = c @ u.T
                eg[i, :, r] = np.sum((w - wbar[None, :]) ** 2, axis=1) / n + noise_var
                et[i, :, r] = np.sum((y[None, :] - w @ x.T) ** 2, axis=1) / p
    sq = np.sqrt(trials)

    def shaped(v: np.ndarray) -> np.ndarray:
        return v.reshape(a.shape + tt.shape)

    return SimulationResult(shaped(eg.mean(-1)), shaped(eg.std(-1, ddof=1) / sq), shaped(et.mean(-1)),
                            shaped(et.std(-1, ddof=1) / sq), trials)


# =========================================================================== kernel learning curves
class LearningCurve(NamedTuple):
    """Solution of the spectral learning-curve theory at each sample size p (arrays of shape (len(p),)).

    Attributes:
      p: the sample sizes.
      kappa: effective regularization (> 0; 0 only when ridge = 0 and p >= the number of modes).
      gamma: sum_k g_k p eta_k^2 / (p eta_k + kappa)^2.
      E_g: generalization error against the clean target.
      mode_errors: (len(p), num_modes) contributions g_k kappa^2 v_k^2 / ((p eta_k + kappa)^2 (1 - gamma)):
        E_g = mode_errors.sum(-1) + noise gamma / (1 - gamma).
    """

    p: np.ndarray
    kappa: np.ndarray
    gamma: np.ndarray
    E_g: np.ndarray
    mode_errors: np.ndarray


def _check_spectrum(eigenvalues: Any, target_powers: Any, degeneracies: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    eta = np.asarray(eigenvalues, dtype=float)
    v2 = np.asarray(target_powers, dtype=float)
    if eta.ndim != 1 or eta.size == 0:
        raise ValueError(f"eigenvalues must be a non-empty 1-d array, got shape {eta.shape}")
    if v2.shape != eta.shape:
        raise ValueError(f"target_powers must have the shape of eigenvalues {eta.shape}, got {v2.shape}")
    check_finite("eigenvalues", eta)
    check_finite("target_powers", v2)
    scale = float(np.max(np.abs(eta)))
    if np.any(eta < -1e-12 * scale):
        raise ValueError(f"eigenvalues must be >= 0 (a kernel is PSD), got min {eta.min()}")
    eta = np.clip(eta, 0.0, None)  # quadrature round-off (|eta| <= 1e-12 max) counts as 0
    if np.any(v2 < 0):
        raise ValueError(f"target_powers (v_k^2) must be >= 0, got min {v2.min()}")
    if degeneracies is None:
        g = np.ones_like(eta)
    else:
        g = np.asarray(degeneracies, dtype=float)
        if g.shape != eta.shape:
            raise ValueError(f"degeneracies must have the shape of eigenvalues {eta.shape}, got {g.shape}")
        check_finite("degeneracies", g)
        if np.any(g < 0) or np.any(g != np.round(g)):
            raise ValueError("degeneracies must be non-negative integers")
    return eta, v2, g


def _solve_kappa(eta: np.ndarray, g: np.ndarray, p: float, ridge: float) -> float:
    """The root kappa > 0 of kappa = ridge + kappa sum_k g_k eta_k / (p eta_k + kappa).

    Dividing by kappa, q(kappa) = ridge / kappa + sum_k g_k eta_k / (p eta_k + kappa) - 1 is strictly
    decreasing, so the root is unique; it is bracketed in log kappa and found by Brent's method.
    """
    pos = eta > 0
    eta, g = eta[pos], g[pos]
    hi = ridge + float(np.sum(g * eta))
    if hi <= 0:
        return ridge

    def q(u: float) -> float:
        k = np.exp(u)
        return ridge / k + float(np.sum(g * eta / (p * eta + k))) - 1.0

    u_hi = np.log(hi) + 1e-12
    if q(u_hi) > 0:  # only when rounding; the bound above guarantees q(hi) < 0
        u_hi += 1.0
    u_lo = u_hi - 1.0
    while q(u_lo) <= 0:
        u_lo -= 2.0
        if u_lo < np.log(np.finfo(float).tiny) + 10:
            return 0.0  # ridge = 0 and p >= number of modes: interpolation, kappa = 0
    return float(np.exp(optimize.brentq(q, u_lo, u_hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)))


def kernel_learning_curve(eigenvalues: Any, target_powers: Any, p: Any, *, ridge: float = 0.0,
                          noise: float = 0.0, degeneracies: Any = None) -> LearningCurve:
    """Generalization error of kernel (ridge) regression from the Mercer spectrum (Bordelon et al. 2020; Canatar et al. 2021).

    With eigenvalues eta_k (of the kernel's integral operator under the data distribution), target
    f* = sum_k v_k phi_k (``target_powers`` = v_k^2 per eigenfunction), p samples, ridge lambda (estimator
    K(x, X)(K + lambda I)^{-1} y), label-noise variance sigma^2 = ``noise`` and multiplicities g_k:

      kappa = lambda + kappa sum_k g_k eta_k / (p eta_k + kappa),
      gamma = sum_k g_k p eta_k^2 / (p eta_k + kappa)^2,
      E_g = [sum_k g_k kappa^2 v_k^2 / (p eta_k + kappa)^2 + sigma^2 gamma] / (1 - gamma).

    E_g is measured against the clean target (test labels without noise). The theory is a deterministic
    equivalent (exact as p and the number of modes grow): compare simulations within a few standard errors.
    With ``degeneracies`` a degree-k eigenspace of the sphere enters once with g_k = N(d, k).

    Returns:
      :class:`LearningCurve` with arrays over ``p`` (floats, and ``mode_errors`` of shape (num_modes,), for a scalar ``p``).
    """
    eta, v2, g = _check_spectrum(eigenvalues, target_powers, degeneracies)
    ps = np.atleast_1d(np.asarray(p, dtype=float))
    if ps.ndim != 1 or np.any(~np.isfinite(ps)) or np.any(ps <= 0):
        raise ValueError(f"p (number of samples) must be > 0 and finite, got {p!r}")
    ridge = check_real("ridge", ridge, nonnegative=True)
    noise = check_real("noise", noise, nonnegative=True)
    kappas = np.array([_solve_kappa(eta, g, pp, ridge) for pp in ps])
    den = ps[:, None] * eta[None, :] + kappas[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        gamma = np.sum(np.where(den > 0, g * ps[:, None] * eta ** 2 / den ** 2, 0.0), axis=1)
        bias = np.where(den > 0, g * kappas[:, None] ** 2 * v2 / den ** 2, g * v2)
        one_minus = 1.0 - gamma
        mode_errors = bias / one_minus[:, None]
        e_g = (bias.sum(axis=1) + noise * gamma) / one_minus
    e_g = np.where(one_minus <= 0, np.inf, e_g)
    if np.ndim(p) == 0:  # a scalar p gives floats (docs/conventions.md); mode_errors is then (num_modes,)
        return LearningCurve(float(ps[0]), float(kappas[0]), float(gamma[0]), float(e_g[0]), mode_errors[0])
    return LearningCurve(ps, kappas, gamma, e_g, mode_errors)


def simulate_kernel_regression(eigenvalues: Any, target_powers: Any, p: Any, *, ridge: float = 0.0,
                               noise: float = 0.0, degeneracies: Any = None, num_trials: int = 20,
                               seed: int = 0) -> SimulationResult:
    """Kernel regression with Gaussian features of the given spectrum; exact generalization error per trial.

    Features phi_k(x) ~ N(0, 1) i.i.d. (orthonormal under the data distribution), one per eigenfunction (each
    eigenvalue repeated ``degeneracies`` times), kernel K(x, x') = sum_k eta_k phi_k(x) phi_k(x'), target
    f* = sum_k v_k phi_k with v_k = sqrt(target power), labels y = f*(X) + N(0, noise). The estimator
    f = K(., X)(K + ridge I)^{-1} y has coefficients w = diag(eta) Phi^T (K + ridge I)^{-1} y, so
    E_g = |w - v|^2 exactly (no test sampling). E_t = mean squared training residual against the noisy labels.

    Returns:
      :class:`SimulationResult` with arrays of shape (len(p),).
    """
    eta, v2, g = _check_spectrum(eigenvalues, target_powers, degeneracies)
    ps = np.atleast_1d(np.asarray(p))
    if ps.ndim != 1 or np.any(ps != np.round(ps)) or np.any(ps < 1):
        raise ValueError(f"p must be positive integers, got {p!r}")
    ridge = check_real("ridge", ridge, nonnegative=True)
    noise = check_real("noise", noise, nonnegative=True)
    trials = check_positive_int("num_trials", num_trials, minimum=2)
    reps = g.astype(int)
    eta_f, v_f = np.repeat(eta, reps), np.sqrt(np.repeat(v2, reps))
    rng = np.random.default_rng(seed)
    eg = np.zeros((len(ps), trials))
    et = np.zeros_like(eg)
    with threadpool_limits(limits=_BLAS_THREADS, user_api="blas"):
        for i, pp in enumerate(ps.astype(int)):
            for r in range(trials):
                phi = rng.standard_normal((pp, eta_f.size))
                y = phi @ v_f + np.sqrt(noise) * rng.standard_normal(pp)
                k = (phi * eta_f) @ phi.T
                alpha = np.linalg.lstsq(k + ridge * np.eye(pp), y, rcond=None)[0] if ridge == 0 else \
                    np.linalg.solve(k + ridge * np.eye(pp), y)
                w = eta_f * (phi.T @ alpha)
                eg[i, r] = np.sum((w - v_f) ** 2)
                et[i, r] = np.mean((k @ alpha - y) ** 2)
    sq = np.sqrt(trials)
    return SimulationResult(eg.mean(-1), eg.std(-1, ddof=1) / sq, et.mean(-1), et.std(-1, ddof=1) / sq, trials)


# =========================================================================== sphere kernels
def extend_sphere_spectrum(eigenvalues: Any, dim: int, *, max_degree: int = 20000,
                           fit_last: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Sphere eigenvalues mu_0..mu_K extended by a fitted power-law tail mu_k = C k^-s up to ``max_degree``.

    A truncated spectrum drops the tail sum_{k > K} N(d, k) mu_k, which acts like extra ridge in the
    learning-curve theory (for the relu NTK on S^2 it is about 1/K): learning curves need it. The tail is
    fitted (least squares in log-log) on the last ``fit_last`` non-negligible (> 1e-12 mu_max) eigenvalues;
    when only even (or only odd) degrees are non-negligible there, as for the bias-free relu NTK
    (Bietti & Mairal 2019), the tail keeps that parity. This is a model of the tail, not a computation:
    check the fitted exponent (returned in the tail's ratio mu_{2k}/mu_k) against theory (s = d for relu).

    Returns:
      (eigenvalues, degeneracies) over the kept degrees: the computed ones and the tail, with N(d, k).
    """
    mu = np.asarray(eigenvalues, dtype=float)
    dim = check_positive_int("dim", dim, minimum=2)
    fit_last = check_positive_int("fit_last", fit_last, minimum=2)
    if mu.ndim != 1 or mu.size < 2 * fit_last:
        raise ValueError(f"eigenvalues must be a 1-d array of at least 2 * fit_last = {2 * fit_last} degrees, "
                         f"got shape {mu.shape}")
    check_finite("eigenvalues", mu)
    k_max = mu.size - 1
    max_degree = check_positive_int("max_degree", max_degree, minimum=k_max + 1)
    # the tail's degrees, eigenvalues and multiplicities: about four float64/int64 arrays of max_degree entries
    check_allocation("max_degree", 4.0 * 8 * max_degree, f"a spectrum extended to degree {max_degree:,}")
    tol = 1e-12 * float(np.max(np.abs(mu)))
    window = np.arange(k_max - 2 * fit_last + 1, k_max + 1)
    nonzero = window[mu[window] > tol]
    if nonzero.size < 2:
        raise ValueError("the last eigenvalues are all negligible: nothing to fit a tail to")
    parities = set((nonzero % 2).tolist())
    nonzero = nonzero[-fit_last:]
    tail = fit_loglog(nonzero, mu[nonzero])
    tail_k = np.arange(k_max + 1, max_degree + 1)
    if len(parities) == 1:
        tail_k = tail_k[tail_k % 2 == parities.pop()]
    degrees = np.arange(k_max + 1)
    keep = np.abs(mu) > tol
    eta = np.concatenate([np.clip(mu[keep], 0, None), tail.prefactor * tail_k.astype(float) ** tail.exponent])
    deg = np.concatenate([sphere_multiplicities(dim, degrees[keep]), sphere_multiplicities(dim, tail_k)])
    return eta, deg


def simulate_sphere_kernel_regression(kernel: Callable[[np.ndarray], np.ndarray], target_coeffs: Sequence[float],
                                      dim: int, p: Any, *, ridge: float = 0.0, noise: float = 0.0,
                                      num_trials: int = 20, num_test: int = 1000, seed: int = 0) -> SimulationResult:
    """Kernel regression with a real dot-product kernel on S^{dim-1}, inputs uniform on the sphere.

    Target f*(x) = sum_k c_k P_k(beta . x) with beta a random unit vector per trial (P_k normalized
    Gegenbauer, :func:`gegenbauer_normalized`), labels with N(0, noise) noise. E_g is the mean squared error
    against f* on ``num_test`` fresh points (Monte-Carlo; its sampling noise is inside the reported sem).
    The matching theory: :func:`kernel_learning_curve` with the eigenvalues of
    :func:`workbench.kernels.sphere.sphere_eigenvalues`, multiplicities N(d, k)
    (:func:`workbench.kernels.sphere.sphere_multiplicities`) and target powers per eigenfunction
    v_k^2 = c_k^2 / N(d, k)^2 (the power c_k^2 / N(d, k) of c_k P_k(beta . x), spread over N(d, k) functions;
    by rotation invariance only the total per degree matters).

    Returns:
      :class:`SimulationResult` with arrays of shape (len(p),).
    """
    dim = check_positive_int("dim", dim, minimum=2)
    coeffs = np.asarray(target_coeffs, dtype=float)
    if coeffs.ndim != 1 or coeffs.size == 0:
        raise ValueError(f"target_coeffs must be a non-empty 1-d sequence c_0, c_1, ..., got {target_coeffs!r}")
    check_finite("target_coeffs", coeffs)
    ps = np.atleast_1d(np.asarray(p))
    if ps.ndim != 1 or np.any(ps != np.round(ps)) or np.any(ps < 1):
        raise ValueError(f"p must be positive integers, got {p!r}")
    ridge = check_real("ridge", ridge, nonnegative=True)
    noise = check_real("noise", noise, nonnegative=True)
    trials = check_positive_int("num_trials", num_trials, minimum=2)
    num_test = check_positive_int("num_test", num_test)
    rng = np.random.default_rng(seed)

    def sphere(m: int) -> np.ndarray:
        z = rng.standard_normal((m, dim))
        return z / np.linalg.norm(z, axis=1, keepdims=True)

    def target(x: np.ndarray, beta: np.ndarray) -> np.ndarray:
        u = np.clip(x @ beta, -1, 1)
        return sum(c * gegenbauer_normalized(k, dim, u) for k, c in enumerate(coeffs))

    def gram(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.asarray(kernel(np.clip(a @ b.T, -1.0, 1.0)), dtype=float)

    eg = np.zeros((len(ps), trials))
    et = np.zeros_like(eg)
    with threadpool_limits(limits=_BLAS_THREADS, user_api="blas"):
        for i, pp in enumerate(ps.astype(int)):
            for r in range(trials):
                beta = sphere(1)[0]
                x, xt = sphere(pp), sphere(num_test)
                y = target(x, beta) + np.sqrt(noise) * rng.standard_normal(pp)
                k = gram(x, x)
                k = 0.5 * (k + k.T)
                alpha = np.linalg.lstsq(k + ridge * np.eye(pp), y, rcond=None)[0]
                eg[i, r] = np.mean((gram(xt, x) @ alpha - target(xt, beta)) ** 2)
                et[i, r] = np.mean((k @ alpha - y) ** 2)
    sq = np.sqrt(trials)
    return SimulationResult(eg.mean(-1), eg.std(-1, ddof=1) / sq, et.mean(-1), et.std(-1, ddof=1) / sq, trials)
