"""Learning rate versus batch size: theory curves, noise-scale estimators, a noisy quadratic, sweeps.

Conventions (THEORY.md section 9). The training loss is the *mean* of per-example losses,
L = (1/n) sum_i l_i; G = grad L is the true gradient; Sigma = (1/n) sum_i (g_i - G)(g_i - G)^T is
the per-example gradient covariance (population normalization, 1/n); H = Hessian of L. A batch of
size B has gradient G_B = (1/B) sum_{i in batch} g_i and covariance Cov(G_B) = c_B Sigma, with the
sampling factor

    c_B = (n - B) / (B (n - 1))   for batches drawn without replacement from n examples,
    c_B = 1 / B                   with replacement or from infinite data (``num_data=inf``).

(Finite-population sampling: Var of a batch mean = population variance (n - B)/(B (n - 1)).)

Theory (every formula cites its source; learning rates are SGD step sizes eps in theta <- theta - eps G_B):

* McCandlish et al. 2018, "An Empirical Model of Large-Batch Training": eps_opt(B) = eps_max/(1 + B_noise/B),
  eps_max = |G|^2/(G^T H G), B_noise = tr(H Sigma)/(G^T H G), B_simple = tr(Sigma)/|G|^2; steps and
  examples (S/S_min - 1)(E/E_min - 1) = 1, B_crit = E_min/S_min.
* Wu, Ma & E 2018 (linear stability of SGD), one dimension: lr_max(B) = 2a/(a^2 + c_B s^2).
  Wu & Su 2023 extend this to trace-type bounds of SGD's stable minima.
* Cohen et al. 2021 (edge of stability): sharpness thresholds 2/lr (GD), (2 + 2 beta)/lr (heavy ball),
  (2 + 2 beta1)/((1 - beta1) lr) for Adam's preconditioned sharpness.
* Granziol, Zohren & Roberts 2022 (batch-Hessian random-matrix model, :mod:`workbench.rmt`):
  lr_max(B) = 2/lambda'(B), linear in B below B* = P sigma^2/lambda_1^2 and saturating at 2/lambda_1;
  Adam's square-root rule lr proportional to sqrt(B) (mechanism only).
* Kaplan et al. 2020: B_crit(L) = B*/L^(1/alpha_B); Step Law ("Predictable Scale Part I", 2025):
  lr_opt = 1.79 N^-0.713 D^0.307, B_opt = 0.58 D^0.571 tokens.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from workbench.validation import check_choice, check_finite, check_positive_int, check_real

ArrayLike = Any

# ============================================================================ input helpers


def _positive_array(name: str, x: ArrayLike, *, allow_inf: bool = False) -> np.ndarray:
    """``x`` as a float64 array, checked finite (or +inf if allowed) and > 0."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a positive number or array of positive numbers, got {x!r}") from None
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    if np.any(np.isnan(arr)) or (not allow_inf and np.any(np.isinf(arr))):
        raise ValueError(f"{name} must be finite, got {x!r}")
    if np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0, got {x!r}")
    return arr


def _nonnegative_array(name: str, x: ArrayLike) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number or array of numbers, got {x!r}") from None
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {x!r}")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0, got {x!r}")
    return arr


def _out(x: np.ndarray) -> np.ndarray | float:
    """Scalars come back as Python floats, arrays as float64 arrays."""
    return float(x) if np.ndim(x) == 0 else x


def check_batch_sizes(batch_sizes: ArrayLike, num_data: float = math.inf) -> np.ndarray:
    """Batch sizes as a sorted int array: non-empty, integers >= 1, none larger than ``num_data``."""
    arr = np.atleast_1d(np.asarray(batch_sizes))
    if arr.size == 0:
        raise ValueError("batch_sizes must not be empty")
    if arr.dtype.kind not in "iu" and not (arr.dtype.kind == "f" and np.all(np.isfinite(arr))
                                             and np.all(arr == np.round(arr))):
        raise TypeError(f"batch_sizes must be integers >= 1, got {batch_sizes!r}")
    arr = arr.astype(np.int64)
    if np.any(arr < 1):
        raise ValueError(f"batch_sizes must be integers >= 1, got {arr.tolist()}")
    if np.any(arr > num_data):
        raise ValueError(f"batch_sizes must not exceed the number of training examples ({num_data:g}), "
                         f"got {arr.tolist()}")
    if len(set(arr.tolist())) != arr.size:
        raise ValueError(f"batch_sizes must be distinct, got {arr.tolist()}")
    return np.sort(arr)


def check_lrs(lrs: ArrayLike) -> np.ndarray:
    """Learning rates as a sorted, distinct, positive, finite float64 array."""
    arr = np.atleast_1d(_positive_array("lrs", lrs))
    if arr.ndim != 1:
        raise ValueError(f"lrs must be a 1-d grid of learning rates, got shape {arr.shape}")
    if len(np.unique(arr)) != arr.size:
        raise ValueError(f"lrs must be distinct, got {arr.tolist()}")
    return np.sort(arr)


def lr_grid(lr_min: float, lr_max: float, num: int) -> np.ndarray:
    """``num`` log-spaced learning rates from ``lr_min`` to ``lr_max`` (inclusive)."""
    lr_min = check_real("lr_min", lr_min, positive=True)
    lr_max = check_real("lr_max", lr_max, positive=True)
    num = check_positive_int("num", num, minimum=2)
    if lr_max <= lr_min:
        raise ValueError(f"lr_max must be > lr_min, got lr_min={lr_min:g}, lr_max={lr_max:g}")
    return np.geomspace(lr_min, lr_max, num)


# ============================================================================ McCandlish et al. 2018


def sampling_factor(batch_size: ArrayLike, num_data: float = math.inf) -> np.ndarray | float:
    """c_B = (n - B)/(B (n - 1)): variance of a without-replacement batch mean per unit of the
    population (1/n) per-example variance; 1/B for n = inf (or sampling with replacement)."""
    b = _positive_array("batch_size", batch_size)
    n = check_real("num_data", num_data, positive=True, allow_inf=True)
    if math.isinf(n):
        return _out(1.0 / b)
    if n < 2:
        raise ValueError(f"num_data must be >= 2 (or inf), got {n:g}")
    if np.any(b > n):
        raise ValueError(f"batch_size must not exceed num_data={n:g}, got {batch_size!r}")
    return _out((n - b) / (b * (n - 1.0)))


def mccandlish_optimal_lr(batch_size: ArrayLike, eps_max: float, b_noise: float) -> np.ndarray | float:
    """eps_opt(B) = eps_max / (1 + B_noise / B) (McCandlish et al. 2018, eq. 2.6).

    The step minimizing the second-order expected loss after one SGD step
    E L(theta - eps G_B) = L - eps |G|^2 + eps^2/2 (G^T H G + tr(H Sigma)/B).

    >>> round(mccandlish_optimal_lr(1000, 0.1, 100), 7)
    0.0909091
    """
    b = _positive_array("batch_size", batch_size)
    eps_max = check_real("eps_max", eps_max, positive=True)
    b_noise = check_real("b_noise", b_noise, nonnegative=True)
    return _out(eps_max / (1.0 + b_noise / b))


class NoiseScale(NamedTuple):
    """Gradient-noise statistics at one point and the derived McCandlish quantities.

    g2 = |G|^2, tr_sigma = tr(Sigma), g_h_g = G^T H G, tr_h_sigma = tr(H Sigma) (Sigma with 1/n);
    eps_max = g2/g_h_g, b_noise = tr_h_sigma/g_h_g, b_simple = tr_sigma/g2.
    """

    g2: float
    tr_sigma: float
    g_h_g: float
    tr_h_sigma: float
    eps_max: float
    b_noise: float
    b_simple: float
    num_data: float


def noise_scale(g2: float, tr_sigma: float, g_h_g: float, tr_h_sigma: float,
                num_data: float = math.inf) -> NoiseScale:
    """Bundle the four statistics with eps_max, B_noise and B_simple (McCandlish et al. 2018, sec. 2.2).

    eps_max and B_noise need a positive curvature along the gradient, G^T H G > 0.
    """
    g2 = check_real("g2", g2, positive=True)
    tr_sigma = check_real("tr_sigma", tr_sigma, nonnegative=True)
    g_h_g = check_real("g_h_g", g_h_g)
    tr_h_sigma = check_real("tr_h_sigma", tr_h_sigma)
    if g_h_g <= 0:
        raise ValueError(f"g_h_g = G^T H G must be > 0 for eps_max and B_noise to exist (the loss is not "
                         f"convex along the gradient), got {g_h_g:g}")
    return NoiseScale(g2, tr_sigma, g_h_g, tr_h_sigma, g2 / g_h_g, tr_h_sigma / g_h_g, tr_sigma / g2,
                      float(num_data))


def simple_noise_scale(g2: float, tr_sigma: float) -> float:
    """B_simple = tr(Sigma)/|G|^2 (McCandlish et al. 2018, eq. 2.8)."""
    g2 = check_real("g2", g2, positive=True)
    tr_sigma = check_real("tr_sigma", tr_sigma, nonnegative=True)
    return tr_sigma / g2


def expected_batch_grad_sq_norm(g2: float, tr_sigma: float, batch_size: ArrayLike,
                                num_data: float = math.inf) -> np.ndarray | float:
    """E|G_B|^2 = |G|^2 + c_B tr(Sigma): tr(Sigma)/B for n = inf (or with replacement), c_B of
    :func:`sampling_factor` for batches drawn without replacement from n examples."""
    g2 = check_real("g2", g2, nonnegative=True)
    tr_sigma = check_real("tr_sigma", tr_sigma, nonnegative=True)
    n = check_real("num_data", num_data, positive=True, allow_inf=True)
    c = np.asarray(sampling_factor(batch_size, n))
    return _out(g2 + c * tr_sigma)


def noise_scale_estimators(sq_norm_small: ArrayLike, sq_norm_big: ArrayLike, b_small: int, b_big: int,
                           num_data: float = math.inf) -> tuple[float, float]:
    """Unbiased two-batch-size estimators of |G|^2 and tr(Sigma) (McCandlish et al. 2018, app. A.1).

    From E|G_B|^2 = |G|^2 + tr(Sigma)/B:
      |G|^2    ~ (B_big |G_big|^2 - B_small |G_small|^2) / (B_big - B_small),
      tr(Sigma) ~ (|G_small|^2 - |G_big|^2) / (1/B_small - 1/B_big).
    ``sq_norm_small``/``sq_norm_big`` may be arrays of repeated draws: each is averaged first
    (ratio of means), which keeps both estimators unbiased; B_simple is then tr_sigma / g2.
    With finite ``num_data`` (batches drawn without replacement) 1/B becomes c_B; Sigma is always
    the population covariance (1/n) sum (g_i - G)(g_i - G)^T.

    Worked value: mean |G_10|^2 = 11, mean |G_1000|^2 = 1.1 give (1.0, 100.0).
    """
    small = _nonnegative_array("sq_norm_small", sq_norm_small)
    big = _nonnegative_array("sq_norm_big", sq_norm_big)
    b_small = check_positive_int("b_small", b_small)
    b_big = check_positive_int("b_big", b_big)
    if b_big <= b_small:
        raise ValueError(f"b_big must be larger than b_small, got b_small={b_small}, b_big={b_big}")
    n = check_real("num_data", num_data, positive=True, allow_inf=True)
    c_small = float(sampling_factor(b_small, n))
    c_big = float(sampling_factor(b_big, n))
    m_small, m_big = float(np.mean(small)), float(np.mean(big))
    tr_sigma = (m_small - m_big) / (c_small - c_big)
    g2 = (c_small * m_big - c_big * m_small) / (c_small - c_big)
    return g2, tr_sigma


class TwoBatchEstimate(NamedTuple):
    """Two-batch estimates with standard errors over the draws (delta method for the ratio)."""

    g2: float
    g2_se: float
    tr_sigma: float
    tr_sigma_se: float
    b_simple: float
    b_simple_se: float
    num_draws: int


def noise_scale_estimate(sq_norm_small: ArrayLike, sq_norm_big: ArrayLike, b_small: int, b_big: int,
                         num_data: float = math.inf) -> TwoBatchEstimate:
    """:func:`noise_scale_estimators` plus standard errors from the spread of independent draws.

    Both estimators are linear in the two means, so their variance is a^2 var(small)/k_small +
    b^2 var(big)/k_big; B_simple's standard error comes from the delta method.
    """
    small = _nonnegative_array("sq_norm_small", sq_norm_small).ravel()
    big = _nonnegative_array("sq_norm_big", sq_norm_big).ravel()
    if small.size < 2 or big.size < 2:
        raise ValueError(f"standard errors need >= 2 draws of each size, got {small.size} and {big.size}")
    g2, tr_sigma = noise_scale_estimators(small, big, b_small, b_big, num_data)
    n = float(num_data)
    c_small = float(sampling_factor(b_small, n))
    c_big = float(sampling_factor(b_big, n))
    scale = 1.0
    d = c_small - c_big
    # d(tr)/d(m_small) = scale/d, d(tr)/d(m_big) = -scale/d; d(g2)/d(m_small) = -c_big/d, d(g2)/d(m_big) = c_small/d
    v_small = np.var(small, ddof=1) / small.size
    v_big = np.var(big, ddof=1) / big.size
    tr_se = math.sqrt((scale / d) ** 2 * (v_small + v_big))
    g2_se = math.sqrt((c_big / d) ** 2 * v_small + (c_small / d) ** 2 * v_big)
    b_simple = tr_sigma / g2
    grad_small = (scale / d) / g2 + tr_sigma * (c_big / d) / g2 ** 2
    grad_big = (-scale / d) / g2 - tr_sigma * (c_small / d) / g2 ** 2
    b_se = math.sqrt(grad_small ** 2 * v_small + grad_big ** 2 * v_big)
    return TwoBatchEstimate(g2, g2_se, tr_sigma, tr_se, b_simple, b_se, int(min(small.size, big.size)))


def critical_batch_size(s_min: float, e_min: float) -> float:
    """B_crit = E_min / S_min (McCandlish et al. 2018, eq. 2.12)."""
    s_min = check_real("s_min", s_min, positive=True)
    e_min = check_real("e_min", e_min, positive=True)
    return e_min / s_min


def critical_batch_tradeoff(s_min: float, e_min: float, batch_size: ArrayLike
                            ) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Steps and examples to reach a target at batch size B: S = S_min (1 + B_crit/B), E = E_min (1 + B/B_crit).

    These solve (S/S_min - 1)(E/E_min - 1) = 1 with E = B S (McCandlish et al. 2018, eq. 2.11).
    Worked value: S_min = 1000, E_min = 1e5 give B_crit = 100 and S(100) = 2000.
    """
    b_crit = critical_batch_size(s_min, e_min)
    b = _positive_array("batch_size", batch_size)
    return _out(s_min * (1.0 + b_crit / b)), _out(e_min * (1.0 + b / b_crit))


class TradeoffFit(NamedTuple):
    """S(B) = S_min + E_min / B fitted to measured steps-to-target; b_crit = E_min / S_min."""

    s_min: float
    e_min: float
    b_crit: float
    s_min_se: float
    e_min_se: float


def fit_steps_examples(batch_sizes: ArrayLike, steps: ArrayLike) -> TradeoffFit:
    """Least-squares fit of McCandlish's S = S_min (1 + B_crit/B) = S_min + E_min/B (linear in 1/B).

    Entries with non-finite steps (target never reached) are dropped; at least 2 must remain.
    """
    b = _positive_array("batch_sizes", batch_sizes).ravel()
    s = np.asarray(steps, dtype=np.float64).ravel()
    if s.shape != b.shape:
        raise ValueError(f"steps must have the same length as batch_sizes ({b.size}), got shape {s.shape}")
    ok = np.isfinite(s)
    if np.any(s[ok] <= 0):
        raise ValueError(f"steps must be > 0, got {s.tolist()}")
    if ok.sum() < 2:
        raise ValueError(f"need at least 2 batch sizes that reached the target, got {int(ok.sum())}")
    x = np.stack([np.ones(ok.sum()), 1.0 / b[ok]], axis=1)
    coef, *_ = np.linalg.lstsq(x, s[ok], rcond=None)
    resid = s[ok] - x @ coef
    dof = max(int(ok.sum()) - 2, 1)
    cov = np.linalg.pinv(x.T @ x) * float(resid @ resid) / dof
    s_min, e_min = float(coef[0]), float(coef[1])
    b_crit = e_min / s_min if s_min > 0 else math.inf
    return TradeoffFit(s_min, e_min, b_crit, float(np.sqrt(cov[0, 0])), float(np.sqrt(cov[1, 1])))


# ============================================================================ stability


def sgd_stability_limit_1d(batch_size: ArrayLike, sharpness: float, nonuniformity: float,
                           num_data: float = math.inf) -> np.ndarray | float:
    """Mean-square stability limit of SGD on a 1-d quadratic (Wu, Ma & E 2018):

    per-example curvatures h_i with mean a (``sharpness``) and standard deviation s (``nonuniformity``,
    the population 1/n one for finite n), batches of B drawn without replacement from n:
    E(1 - lr h_B)^2 = (1 - lr a)^2 + lr^2 c_B s^2 <= 1  <=>  lr <= 2a / (a^2 + c_B s^2),
    c_B = (n - B)/(B (n - 1)) (1/B for n = inf). At B = n (or s = 0) it is GD's 2/a.

    Worked value: h_i in {0, 2} equally likely, n = inf: a = s = 1 and lr_max = 2B/(B + 1).
    """
    a = check_real("sharpness", sharpness, positive=True)
    s = check_real("nonuniformity", nonuniformity, nonnegative=True)
    c = np.asarray(sampling_factor(batch_size, num_data))
    return _out(2.0 * a / (a * a + c * s * s))


def gd_stability_limit(sharpness: float, momentum: float = 0.0) -> float:
    """Largest stable step of (heavy-ball) GD on a quadratic of top curvature lambda: (2 + 2 beta)/lambda."""
    lam = check_real("sharpness", sharpness, positive=True)
    beta = check_real("momentum", momentum, nonnegative=True)
    if beta >= 1:
        raise ValueError(f"momentum must be in [0, 1), got {beta:g}")
    return (2.0 + 2.0 * beta) / lam


EOS_OPTIMIZERS = ("gd", "momentum", "adam")


def eos_threshold(lr: ArrayLike, optimizer: str = "gd", momentum: float = 0.9) -> np.ndarray | float:
    """Edge-of-stability sharpness threshold (Cohen et al. 2021; Cohen et al. 2022 for Adam).

    ``"gd"``: 2/lr; ``"momentum"`` (heavy ball, beta = ``momentum``): (2 + 2 beta)/lr;
    ``"adam"`` (beta1 = ``momentum``): the preconditioned sharpness hovers near (2 + 2 beta1)/((1 - beta1) lr).
    """
    check_choice("optimizer", optimizer, EOS_OPTIMIZERS)
    eta = _positive_array("lr", lr)
    beta = check_real("momentum", momentum, nonnegative=True)
    if beta >= 1:
        raise ValueError(f"momentum must be in [0, 1), got {beta:g}")
    if optimizer == "gd":
        return _out(2.0 / eta)
    if optimizer == "momentum":
        return _out((2.0 + 2.0 * beta) / eta)
    return _out((2.0 + 2.0 * beta) / ((1.0 - beta) * eta))


# ============================================================================ random-matrix model


def rmt_max_lr(batch_size: ArrayLike, lambda1: float, num_params: int, sigma2: float,
               num_data: float = math.inf) -> np.ndarray | float:
    """Largest stable SGD step 2/lambda'(B) from the batch-Hessian random-matrix model
    (Granziol, Zohren & Roberts 2022, as reconstructed in THEORY.md section 8): lambda'(B) is
    :func:`workbench.rmt.batch_hessian_top` (lambda1 + P s^2/lambda1 above the BBP threshold, the
    Wigner edge 2 s sqrt(P) below it; s^2 = sigma2 (1/B - 1/N) N/(N - 1)).
    """
    from workbench import rmt  # the theory module of the Hessian issue

    b = _positive_array("batch_size", batch_size)
    lam = check_real("lambda1", lambda1, positive=True)
    p = check_positive_int("num_params", num_params)
    s2 = check_real("sigma2", sigma2, nonnegative=True)
    n = check_real("num_data", num_data, positive=True, allow_inf=True)
    pred = rmt.batch_hessian_top(lam, p, s2, b.ravel(), num_data=n)
    return _out(np.asarray(pred.lr_max, dtype=np.float64).reshape(b.shape))


def rmt_critical_batch(lambda1: float, num_params: int, sigma2: float) -> float:
    """B* = P sigma^2 / lambda1^2: below it the random-matrix max lr grows linearly in B (THEORY.md section 8;
    :func:`workbench.rmt.critical_batch_size`)."""
    from workbench import rmt

    return rmt.critical_batch_size(lambda1, num_params, sigma2)


def scaling_rule(batch_size: ArrayLike, lr_ref: float, b_ref: float, exponent: float = 1.0
                 ) -> np.ndarray | float:
    """lr(B) = lr_ref (B / b_ref)^exponent: exponent 1 is the linear rule for SGD (Goyal et al. 2017;
    Granziol et al. 2022 in the noise-dominated regime), 1/2 the square-root rule for Adam."""
    b = _positive_array("batch_size", batch_size)
    lr_ref = check_real("lr_ref", lr_ref, positive=True)
    b_ref = check_real("b_ref", b_ref, positive=True)
    exponent = check_real("exponent", exponent)
    return _out(lr_ref * (b / b_ref) ** exponent)


# ============================================================================ scaling-law calculators


def kaplan_critical_batch(loss: ArrayLike, b_star: float = 2e8, inv_alpha_b: float = 4.76
                          ) -> np.ndarray | float:
    """Kaplan et al. 2020 (eq. 5.3): B_crit(L) = B* / L^(1/alpha_B) tokens, L in nats per token.

    Defaults B* = 2e8 tokens, 1/alpha_B = 4.76 are the paper's fitted values (editable).
    Worked value: L = 3 gives about 1.07e6 tokens.
    """
    loss_arr = _positive_array("loss", loss)
    b_star = check_real("b_star", b_star, positive=True)
    inv_alpha_b = check_real("inv_alpha_b", inv_alpha_b, positive=True)
    return _out(b_star / loss_arr ** inv_alpha_b)


def step_law(num_params: ArrayLike, num_tokens: ArrayLike, *, lr_coef: float = 1.79, lr_n_exp: float = -0.713,
             lr_d_exp: float = 0.307, b_coef: float = 0.58, b_d_exp: float = 0.571
             ) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Step Law ("Predictable Scale Part I", 2025): lr_opt = 1.79 N^-0.713 D^0.307 and
    B_opt = 0.58 D^0.571 tokens, N non-embedding parameters, D training tokens (AdamW).

    Worked value: N = 1e9, D = 1e11 give lr = 1.6325e-3 and B = 1.108e6 tokens.
    """
    n = _positive_array("num_params", num_params)
    d = _positive_array("num_tokens", num_tokens)
    for name, v in (("lr_coef", lr_coef), ("b_coef", b_coef)):
        check_real(name, v, positive=True)
    for name, v in (("lr_n_exp", lr_n_exp), ("lr_d_exp", lr_d_exp), ("b_d_exp", b_d_exp)):
        check_real(name, v)
    return _out(lr_coef * n ** lr_n_exp * d ** lr_d_exp), _out(b_coef * d ** b_d_exp)


# ============================================================================ sweep results and their analysis


class SweepResult(NamedTuple):
    """Training losses over a (batch size, learning rate, seed) grid for one optimizer.

    train_loss has shape (num_batch_sizes, num_lrs, num_seeds, num_records) at the steps in ``steps``;
    diverged (same leading shape, bool) and diverged_step (-1 where not diverged) say which runs blew up
    and when. Losses after divergence are +inf. ``seconds`` is the wall time per batch size and
    ``device`` the :func:`workbench.config.device_report` line of the run.
    """

    optimizer: str
    batch_sizes: np.ndarray
    lrs: np.ndarray
    seeds: np.ndarray
    steps: np.ndarray
    train_loss: np.ndarray
    diverged: np.ndarray
    diverged_step: np.ndarray
    seconds: np.ndarray
    device: str
    completed: bool = True


def _check_sweep(result: SweepResult) -> None:
    if not isinstance(result, SweepResult):
        raise TypeError(f"result must be a SweepResult, got {type(result).__name__}")


def _clean_losses(result: SweepResult) -> np.ndarray:
    loss = np.array(result.train_loss, dtype=np.float64)
    loss[~np.isfinite(loss)] = np.inf
    loss[np.broadcast_to(result.diverged[..., None], loss.shape)
         & (np.asarray(result.steps)[None, None, None, :] >= result.diverged_step[..., None])] = np.inf
    return loss


def final_loss(result: SweepResult) -> np.ndarray:
    """Loss at the last recorded step, shape (num_batch_sizes, num_lrs, num_seeds); +inf if diverged."""
    _check_sweep(result)
    out = _clean_losses(result)[..., -1]
    out[result.diverged] = np.inf
    return out


def best_loss(result: SweepResult) -> np.ndarray:
    """Smallest recorded loss of each run, shape (num_batch_sizes, num_lrs, num_seeds)."""
    _check_sweep(result)
    return np.min(_clean_losses(result), axis=-1)


def steps_to_target(result: SweepResult, target_loss: float) -> np.ndarray:
    """First recorded step at which the loss is <= ``target_loss`` (+inf if never), per run."""
    _check_sweep(result)
    target_loss = check_real("target_loss", target_loss)
    hit = _clean_losses(result) <= target_loss
    first = np.argmax(hit, axis=-1)
    out = np.asarray(result.steps, dtype=np.float64)[first]
    out[~np.any(hit, axis=-1)] = np.inf
    return out


class LrEstimate(NamedTuple):
    """A learning rate per batch size: ``value`` (from all seeds together), ``lo``/``hi`` (the geometric
    mean of per-seed values times/divided by their geometric spread, over seeds), ``per_seed``."""

    value: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    per_seed: np.ndarray


def _geo_band(per_seed: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    logs = np.log(per_seed)
    with np.errstate(invalid="ignore"):
        spread = np.nanstd(np.where(np.isfinite(logs), logs, np.nan), axis=-1) if logs.shape[-1] > 1 else \
            np.zeros(logs.shape[:-1])
    spread = np.nan_to_num(spread)
    return value * np.exp(-spread), value * np.exp(spread)


def _largest_stable(lrs: np.ndarray, diverged: np.ndarray) -> np.ndarray:
    """Largest grid lr below the first diverged one (along the last axis); nan if the smallest diverges."""
    first = np.where(np.any(diverged, axis=-1), np.argmax(diverged, axis=-1), diverged.shape[-1])
    out = np.where(first > 0, lrs[np.maximum(first - 1, 0)], np.nan)
    return out


def max_stable_lr(result: SweepResult) -> LrEstimate:
    """Largest stable learning rate per batch size: the largest grid value below the smallest lr at
    which a run diverged. ``value`` needs every seed stable; ``per_seed`` is each seed's own limit.
    NaN where even the smallest lr diverged."""
    _check_sweep(result)
    lrs = np.asarray(result.lrs)
    div = np.asarray(result.diverged)  # (B, L, S)
    per_seed = _largest_stable(lrs, np.moveaxis(div, 1, -1))  # (B, S)
    value = _largest_stable(lrs, np.any(div, axis=2))  # (B,)
    lo, hi = _geo_band(per_seed, value)
    return LrEstimate(value, lo, hi, per_seed)


def optimal_lr(result: SweepResult, *, by: str = "final") -> LrEstimate:
    """Learning rate of the smallest loss per batch size (grid argmin; ``by`` = "final" or "best" loss).

    ``value`` minimizes the loss averaged over seeds (diverged runs count as +inf); ``per_seed`` is each
    seed's own argmin, whose geometric spread gives ``lo``/``hi``. NaN where every lr diverged.
    """
    _check_sweep(result)
    check_choice("by", by, ("final", "best"))
    loss = final_loss(result) if by == "final" else best_loss(result)  # (B, L, S)
    lrs = np.asarray(result.lrs)
    mean = np.mean(loss, axis=2)
    value = np.where(np.all(~np.isfinite(mean), axis=1), np.nan, lrs[np.argmin(mean, axis=1)])
    per_seed = np.where(np.all(~np.isfinite(loss), axis=1), np.nan, lrs[np.argmin(loss, axis=1)])
    lo, hi = _geo_band(per_seed, value)
    return LrEstimate(value, lo, hi, per_seed)


class PowerLawFit(NamedTuple):
    """y = prefactor * x^exponent fitted by least squares in log-log, with the slope's standard error."""

    exponent: float
    exponent_se: float
    prefactor: float
    num_points: int


def fit_power_law(x: ArrayLike, y: ArrayLike, *, x_max: float = math.inf) -> PowerLawFit:
    """Least-squares line through (log x, log y) for points with x <= ``x_max`` and finite positive y.

    Used for lr*(B) ~ B^alpha: expect alpha about 1 for SGD and 1/2 for Adam in the small-B regime.
    """
    xa = _positive_array("x", x).ravel()
    ya = np.asarray(y, dtype=np.float64).ravel()
    if ya.shape != xa.shape:
        raise ValueError(f"y must have the same length as x ({xa.size}), got shape {ya.shape}")
    x_max = check_real("x_max", x_max, positive=True, allow_inf=True)
    ok = (xa <= x_max) & np.isfinite(ya) & (ya > 0)
    if ok.sum() < 2:
        raise ValueError(f"need at least 2 points with x <= x_max and finite positive y, got {int(ok.sum())}")
    lx, ly = np.log(xa[ok]), np.log(ya[ok])
    coef, res, *_ = np.polyfit(lx, ly, 1, full=True)
    slope, intercept = float(coef[0]), float(coef[1])
    k = int(ok.sum())
    if k > 2:
        resid = ly - (slope * lx + intercept)
        se = math.sqrt(float(resid @ resid) / (k - 2) / float(np.sum((lx - lx.mean()) ** 2)))
    else:
        se = math.nan
    return PowerLawFit(slope, se, math.exp(intercept), k)


def steps_to_target_per_batch(result: SweepResult, target_loss: float) -> np.ndarray:
    """Fewest steps to reach ``target_loss`` at each batch size, over the lr grid, of the median over
    seeds (+inf where no lr reaches it): the S(B) of McCandlish's steps/examples trade-off."""
    s = steps_to_target(result, target_loss)  # (B, L, S)
    return np.min(np.median(s, axis=2), axis=1)


# ============================================================================ noisy quadratic model


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
    b = _positive_array("batch_size", batch_size)
    lam = np.asarray(problem.eigvals, np.float64)
    s = np.asarray(problem.curvature_std, np.float64)
    beta = check_real("momentum", momentum, nonnegative=True)
    if beta > 0:
        if np.any(s > 0):
            raise ValueError("momentum > 0 is only supported with curvature_std = 0 (additive noise)")
        return _out(np.broadcast_to(gd_stability_limit(float(lam.max()), beta), b.shape).copy())
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
    eta = np.atleast_1d(_positive_array("lrs", lrs)).reshape(-1, 1)
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


def _seed_array(seeds: int | Sequence[int]) -> np.ndarray:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        n = check_positive_int("seeds", seeds)
        return np.arange(n)
    arr = np.atleast_1d(np.asarray(seeds))
    if arr.size == 0 or arr.dtype.kind not in "iu" or arr.ndim != 1:
        raise ValueError(f"seeds must be a positive count or a non-empty 1-d list of integers, got {seeds!r}")
    return arr.astype(np.int64)


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
    import time

    from workbench import config

    _check_quadratic(problem)
    eta = check_lrs(lrs)
    bs = check_batch_sizes(batch_sizes)
    num_steps = check_positive_int("num_steps", num_steps)
    check_choice("optimizer", optimizer, QUADRATIC_OPTIMIZERS)
    beta = check_real("momentum", momentum, nonnegative=True)
    if beta >= 1:
        raise ValueError(f"momentum must be in [0, 1), got {beta:g}")
    factor = check_real("divergence_factor", divergence_factor, positive=True)
    seed_arr = _seed_array(seeds)
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


# ============================================================================ measurements on a model


def _check_data_pair(name: str, data: Any) -> tuple[jax.Array, jax.Array]:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{name} must be a pair (x, y) of arrays, got {type(data).__name__}")
    x, y = jnp.asarray(data[0]), jnp.asarray(data[1])
    if x.ndim == 0 or y.ndim == 0 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(f"{name}: x and y need equal, non-zero leading sizes, got shapes {x.shape} and {y.shape}")
    check_finite(f"{name} x", x)
    check_finite(f"{name} y", y)
    return x, y


def gradient_noise_stats(loss_fn: Callable, params: Any, data: Any, *, chunk_size: int = 64) -> NoiseScale:
    """Exact |G|^2, tr(Sigma), G^T H G and tr(H Sigma) of a mean loss over the ``data`` (x, y), with
    the McCandlish scales (eps_max, B_noise, B_simple) derived from them.

    ``loss_fn(params, (x, y))`` must be the *mean* of per-example losses (e.g. :func:`workbench.hessian.mlp_loss`).
    Per-example gradients g_i come from :func:`workbench.hessian.per_example_grads` (vmapped), Hessian-vector
    products from :func:`workbench.hessian.hessian_operator` on the full data:
    tr(H Sigma) = (1/n) sum_i (g_i - G)^T H (g_i - G), done as ``chunk_size`` HVPs at a time.
    Cost: n + 1 full-data HVPs, so for small data sets (n up to a few thousand).
    """
    from workbench import config
    from workbench.hessian import hessian_operator, per_example_grads

    x, y = _check_data_pair("data", data)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    with config.matmul_precision("highest"):
        grads = per_example_grads(loss_fn, params, (x, y))  # (n, P)
        n = grads.shape[0]
        g = jnp.mean(grads, axis=0)
        dev = grads - g[None, :]
        op = hessian_operator(loss_fn, params, (x, y), kind="hessian")
        hg = op.matvec(g)
        chunk = min(chunk_size, n)
        pad = (-n) % chunk
        dev_p = jnp.concatenate([dev, jnp.zeros((pad, dev.shape[1]), dev.dtype)]) if pad else dev
        quad = 0.0
        for i in range(0, n + pad, chunk):
            block = dev_p[i:i + chunk]
            quad += float(jnp.sum(block * op.matmat(block)))
        g2 = float(g @ g)
        tr_sigma = float(jnp.sum(dev * dev)) / n
        g_h_g = float(g @ hg)
    return noise_scale(g2, tr_sigma, g_h_g, quad / n, num_data=float(n))


def _sq_norm_runner(loss_fn: Callable, batch_size: int, replace: bool):
    @jax.jit
    def run(params, x, y, keys):
        n = x.shape[0]

        def one(k):
            idx = jax.random.choice(k, n, (batch_size,), replace=replace)
            grads = jax.grad(loss_fn)(params, (x[idx], y[idx]))
            return sum(jnp.sum(leaf ** 2) for leaf in jax.tree_util.tree_leaves(grads))

        return jax.lax.map(one, keys)

    return run


def batch_grad_sq_norms(loss_fn: Callable, params: Any, data: Any, batch_size: int, num_draws: int,
                        key: jax.Array, *, replace: bool = False) -> np.ndarray:
    """|G_B|^2 of ``num_draws`` random batches of size B (gradient of the mean loss on the batch), shape (num_draws,).

    Batches are drawn without replacement within a batch (``replace=False``: E|G_B|^2 = |G|^2 + c_B tr(Sigma))
    or with replacement (``replace=True``: |G|^2 + tr(Sigma)/B); independent across draws.
    """
    x, y = _check_data_pair("data", data)
    n = int(x.shape[0])
    batch_size = check_positive_int("batch_size", batch_size)
    if not replace and batch_size > n:
        raise ValueError(f"batch_size must not exceed the number of examples ({n}) without replacement, "
                         f"got {batch_size}")
    num_draws = check_positive_int("num_draws", num_draws)
    keys = jax.random.split(key, num_draws)
    return np.asarray(_sq_norm_runner(loss_fn, batch_size, bool(replace))(params, x, y, keys))


def two_batch_noise_scale(loss_fn: Callable, params: Any, data: Any, b_small: int, b_big: int, *,
                          num_draws: int, key: jax.Array, replace: bool = False) -> TwoBatchEstimate:
    """McCandlish's two-batch-size estimates of |G|^2, tr(Sigma) and B_simple from ``num_draws`` random
    batches of each size (:func:`batch_grad_sq_norms`, :func:`noise_scale_estimate`), with standard errors.
    Without replacement the sampling factor c_B of the data set size is used (num_data = n)."""
    x, y = _check_data_pair("data", data)
    k1, k2 = jax.random.split(key)
    small = batch_grad_sq_norms(loss_fn, params, (x, y), b_small, num_draws, k1, replace=replace)
    big = batch_grad_sq_norms(loss_fn, params, (x, y), b_big, num_draws, k2, replace=replace)
    return noise_scale_estimate(small, big, b_small, b_big, math.inf if replace else float(x.shape[0]))


# ============================================================================ sweeps on a model

SWEEP_OPTIMIZERS = ("sgd", "momentum", "adam")


def _fingerprint(**fields: Any) -> str:
    import hashlib

    h = hashlib.sha1()
    for k in sorted(fields):
        v = fields[k]
        h.update(k.encode())
        if isinstance(v, (np.ndarray, jax.Array)):
            a = np.ascontiguousarray(np.asarray(v))
            h.update(str((a.dtype, a.shape)).encode())
            h.update(a.tobytes())
        else:
            h.update(repr(v).encode())
    return h.hexdigest()[:16]


def sweep_point_path(results_dir: str, optimizer: str, batch_size: int, fingerprint: str) -> str:
    """File of one finished (optimizer, batch size) point of a sweep: ``<dir>/<opt>_B<B>_<fingerprint>.npz``."""
    import os

    return os.path.join(str(results_dir), f"{optimizer}_B{int(batch_size)}_{fingerprint}.npz")


def sweep(loss_fn: Callable, init_fn: Callable[[jax.Array], Any], train_data: Any, *,
          batch_sizes: ArrayLike, lrs: ArrayLike, optimizers: Sequence[str] = SWEEP_OPTIMIZERS,
          seeds: int | Sequence[int] = 2, num_steps: int, record_every: int = 10, momentum: float = 0.9,
          sampling: str = "iid", divergence_threshold: float = 1e4, results_dir: str | None = None,
          tag: str = "", progress: bool = True, devices: Sequence[Any] | None = None,
          **train_kwargs: Any) -> dict[str, SweepResult]:
    """Train every (optimizer, batch size, lr, seed) with :func:`workbench.training.train`; one
    :class:`SweepResult` per optimizer.

    Each batch size is a separately compiled program (a new shape); inside it the learning rates and seeds
    are vmapped. ``optimizers``: ``"sgd"``, ``"momentum"`` (heavy ball with coefficient ``momentum``),
    ``"adam"``. Batches are drawn with ``sampling`` (``"iid"``: B distinct examples per step, the c_B model).

    Resume: with ``results_dir``, every finished (optimizer, B) point is written at once to
    :func:`sweep_point_path`; its file name holds a fingerprint of everything that defines the run
    (data, lrs, seeds, steps, optimizer settings, ``tag``: describe the model there, e.g.
    ``net.describe()``), so a rerun loads finished points and trains only the missing ones, and a
    changed configuration never reuses stale files. Files are written atomically with a checksum
    (:mod:`workbench.store`); a damaged, truncated, empty or foreign one is recomputed, with one
    ``DamagedResultWarning`` naming it. Interrupting (Ctrl-C) returns the finished points
    (``completed=False``); divergent runs are results (``diverged``), never errors.

    Devices: ``devices=None`` uses ``jax.devices()``; with several, the lr grid of each point is split into
    one contiguous chunk per device, each trained by :func:`~workbench.training.train` in its own thread
    under ``jax.default_device`` (runs are independent per lr, so the result is the same as on one device).
    """
    import os
    import time

    from workbench import config, store
    from workbench.training import train

    x, y = _check_data_pair("train_data", train_data)
    n = int(x.shape[0])
    bs = check_batch_sizes(batch_sizes, num_data=n)
    eta = check_lrs(lrs)
    if isinstance(optimizers, str):
        optimizers = (optimizers,)
    optimizers = tuple(optimizers)
    if not optimizers:
        raise ValueError("optimizers must not be empty")
    for opt in optimizers:
        check_choice("optimizers", opt, SWEEP_OPTIMIZERS)
    seed_arr = _seed_array(seeds)
    num_steps = check_positive_int("num_steps", num_steps)
    record_every = check_positive_int("record_every", record_every)
    check_choice("sampling", sampling, ("iid", "shuffle"))
    if not isinstance(tag, str):
        raise TypeError(f"tag must be a string, got {type(tag).__name__}")
    if results_dir is not None:
        os.makedirs(results_dir, exist_ok=True)
    devices = list(jax.devices()) if devices is None else list(devices)
    if not devices:
        raise ValueError("devices must not be empty (None uses jax.devices())")
    out: dict[str, SweepResult] = {}
    interrupted = False
    for opt in optimizers:
        rows: dict[int, dict[str, Any]] = {}
        for b in bs:
            if interrupted:
                break
            fp = _fingerprint(x=x, y=y, lrs=eta, seeds=seed_arr, num_steps=num_steps, record_every=record_every,
                              optimizer=opt, momentum=momentum if opt == "momentum" else None, batch_size=int(b),
                              sampling=sampling, divergence_threshold=divergence_threshold, tag=tag,
                              extra=sorted((k, repr(v)) for k, v in train_kwargs.items()))
            path = sweep_point_path(results_dir, opt, b, fp) if results_dir is not None else None
            stored = store.load_result(path) if path is not None else None  # damaged file: warned, recomputed
            if stored is not None:
                rows[int(b)] = stored
                continue
            start = time.perf_counter()
            row = _run_point(train, devices, loss_fn, init_fn, x, y, eta, optimizer=opt, seeds=seed_arr.tolist(),
                             num_steps=num_steps, batch_size=int(b), sampling=sampling, momentum=momentum,
                             record_every=record_every, divergence_threshold=divergence_threshold,
                             progress=progress, **train_kwargs)
            if row is None:  # interrupted: keep what is finished
                interrupted = True
                break
            row["seconds"] = np.asarray(time.perf_counter() - start)
            row["device"] = np.asarray(config.device_report() + (f" ({len(devices)} devices, lrs sharded)"
                                                                 if devices and len(devices) > 1 else ""))
            rows[int(b)] = row
            if path is not None:
                store.save_result(path, row)  # atomic, checksummed
        if rows:
            done = np.asarray(sorted(rows))
            first = rows[int(done[0])]
            out[opt] = SweepResult(
                opt, done, eta, seed_arr, np.asarray(first["steps"]),
                np.stack([rows[int(b)]["train_loss"] for b in done]),
                np.stack([rows[int(b)]["diverged"] for b in done]),
                np.stack([rows[int(b)]["diverged_step"] for b in done]),
                np.asarray([float(rows[int(b)]["seconds"]) for b in done]),
                str(first["device"]), completed=not interrupted and done.size == bs.size)
        if interrupted:
            break
    return out


class CurvatureStats(NamedTuple):
    """Curvature of a mean loss at one point, for the stability theories.

    lambda1: top Hessian eigenvalue (Lanczos); direction: its unit eigenvector (flat);
    curv_mean, curv_std: mean and population std over examples of h_i = v^T H_i v along it
    (the a and s of the 1-d SGD stability limit, Wu, Ma & E 2018);
    sigma2: per-entry variance of the per-example Hessians, (1/P^2)(1/n) sum_i ||H_i - H||_F^2
    (Hutchinson, Rademacher probes), the sigma^2 of the batch-Hessian model (THEORY.md section 8),
    with its standard error; num_params, num_data.
    """

    lambda1: float
    direction: np.ndarray
    curv_mean: float
    curv_std: float
    sigma2: float
    sigma2_se: float
    num_params: int
    num_data: int


def _per_example_hvps(loss_fn: Callable):
    from workbench.hessian import hvp

    @jax.jit
    def run(params, x, y, vs):
        def one_vector(v):
            return jax.vmap(lambda xi, yi: hvp(loss_fn, params, (xi[None], yi[None]), v))(x, y)  # (n, P)

        return jax.lax.map(one_vector, vs)  # (k, n, P)

    return run


def curvature_stats(loss_fn: Callable, params: Any, data: Any, *, num_probes: int = 8,
                    key: jax.Array | None = None, dense_max: int = 1500) -> CurvatureStats:
    """Top eigenpair of H, per-example curvatures along it, and the per-example Hessian entry variance
    sigma^2 = E_z mean_i |(H_i - H) z|^2 / P^2 (Rademacher z, unbiased).

    H is :func:`workbench.hessian.hessian_operator` on the full data; its top eigenpair comes from the
    dense matrix (``numpy.linalg.eigh``, exact) when P <= ``dense_max`` and from Lanczos
    (:func:`workbench.linalg.krylov.top_eigenvalues`) otherwise. Per-example products are n HVPs per
    vector (:func:`workbench.hessian.hvp` vmapped over examples): for small data sets and models.
    """
    from workbench import config
    from workbench.hessian import hessian_operator
    from workbench.linalg.krylov import top_eigenvalues

    x, y = _check_data_pair("data", data)
    num_probes = check_positive_int("num_probes", num_probes, minimum=2)
    dense_max = check_positive_int("dense_max", dense_max, minimum=0)
    key = jax.random.PRNGKey(0) if key is None else key
    k_lanczos, k_probe = jax.random.split(key)
    with config.matmul_precision("highest"):
        op = hessian_operator(loss_fn, params, (x, y), kind="hessian")
        if op.dim <= dense_max:
            # chunk 64 matches gradient_noise_stats' products: the compiled matmat is reused
            w, vecs = np.linalg.eigh(np.asarray(op.dense(chunk_size=64), dtype=np.float64))
            lam, v = float(w[-1]), jnp.asarray(vecs[:, -1], op.dtype)
        else:
            eig = top_eigenvalues(op, 1, key=k_lanczos)
            lam, v = float(np.asarray(eig.eigenvalues)[0]), jnp.asarray(eig.eigenvectors)[0]
        v = v / jnp.linalg.norm(v)
        z = jax.random.rademacher(k_probe, (num_probes, op.dim), dtype=v.dtype)
        hvs = _per_example_hvps(loss_fn)(params, x, y, jnp.concatenate([v[None, :], z]))  # (1 + k, n, P)
        h = np.asarray(hvs[0] @ v)  # h_i = v^T H_i v
        dev = hvs[1:] - jnp.mean(hvs[1:], axis=1, keepdims=True)
        per_probe = np.asarray(jnp.mean(jnp.sum(dev ** 2, axis=2), axis=1)) / op.dim ** 2
    if lam <= 0:
        raise ValueError(f"the top Hessian eigenvalue is {lam:g} <= 0: no stability limit exists at these parameters")
    return CurvatureStats(lam, np.asarray(v), float(h.mean()), float(h.std()), float(per_probe.mean()),
                          float(per_probe.std(ddof=1) / math.sqrt(num_probes)), int(op.dim), int(x.shape[0]))


def _run_point(train: Callable, devices: list[Any], loss_fn: Callable, init_fn: Callable, x: jax.Array,
               y: jax.Array, lrs: np.ndarray, *, progress: bool, **kwargs: Any) -> dict[str, np.ndarray] | None:
    """One (optimizer, B) point: train on one device, or shard the lr grid over several (one thread each).
    Returns the arrays to store, or None if the run was interrupted."""
    chunks = [c for c in np.array_split(lrs, min(len(devices), lrs.size)) if c.size]
    if len(chunks) == 1:
        results = [train(loss_fn, init_fn, (x, y), lrs=lrs, progress=progress, **kwargs)]
    else:
        from concurrent.futures import ThreadPoolExecutor

        def run(i: int) -> Any:
            dev = devices[i]
            with jax.default_device(dev):
                data = (jax.device_put(x, dev), jax.device_put(y, dev))
                return train(loss_fn, init_fn, data, lrs=chunks[i], progress=progress and i == 0, **kwargs)

        with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
            results = list(pool.map(run, range(len(chunks))))
    if not all(r.completed for r in results):
        return None
    return {"train_loss": np.concatenate([np.asarray(r.train_loss) for r in results], axis=0),
            "diverged": np.concatenate([np.asarray(r.diverged) for r in results], axis=0),
            "diverged_step": np.concatenate([np.asarray(r.diverged_step) for r in results], axis=0),
            "steps": np.asarray(results[0].steps)}
